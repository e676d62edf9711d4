package notify_test

import (
	"context"
	"testing"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/internal/notify"
	"github.com/livehub/livehub/internal/shop"
	"github.com/livehub/livehub/push"
)

// The Notifier is the shop's Publisher, and publishes its ticker at low
// priority.
var (
	_ shop.Publisher            = (*notify.Notifier)(nil)
	_ shop.LowPriorityPublisher = (*notify.Notifier)(nil)
	_ shop.ManyPublisher        = (*notify.Notifier)(nil)
)

// requestHub records the requests the Notifier publishes with.
type requestHub struct{ reqs []hub.PublishRequest }

func (h *requestHub) Publish(_ context.Context, _ string, _ []byte, req hub.PublishRequest) (hub.StreamPosition, error) {
	h.reqs = append(h.reqs, req)
	return hub.StreamPosition{}, nil
}

func (h *requestHub) UserForeground(context.Context, string) (bool, error) { return false, nil }

func TestNotifier_PublishLowPriorityReachesTheHubAsLow(t *testing.T) {
	h := &requestHub{}
	n, err := notify.New(notify.Options{Hub: h, Queue: push.NewMemoryQueue(push.MemoryQueueOptions{}), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(`{"type":"order.placed","v":1,"id":"ev_1","data":{}}`)
	if err := n.Publish(ctxT(t), "live:s1", data, "k1"); err != nil {
		t.Fatal(err)
	}
	if err := n.PublishLowPriority(ctxT(t), "live:s1", data, "k2"); err != nil {
		t.Fatal(err)
	}
	want := []hub.PublishRequest{{IdempotencyKey: "k1"}, {IdempotencyKey: "k2", Priority: hub.PriorityLow}}
	if len(h.reqs) != 2 || h.reqs[0].IdempotencyKey != want[0].IdempotencyKey || h.reqs[0].Priority != want[0].Priority ||
		h.reqs[1].IdempotencyKey != want[1].IdempotencyKey || h.reqs[1].Priority != want[1].Priority {
		t.Fatalf("hub requests %+v, want %+v", h.reqs, want)
	}
}
