package shop_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/memstore"
	"github.com/livehub/livehub/internal/shop"
)

// manyPublisher is a publisher that also takes several channels at once,
// recording each such call.
type manyPublisher struct {
	*publisher
	mu    sync.Mutex
	calls [][]string
}

func (m *manyPublisher) PublishMany(ctx context.Context, channels []string, data []byte, key string, low bool) []error {
	m.mu.Lock()
	m.calls = append(m.calls, slices.Clone(channels))
	m.mu.Unlock()
	errs := make([]error, len(channels))
	for i, ch := range channels {
		errs[i] = m.publish(ch, data, key, low)
	}
	return errs
}

// An event for several channels goes to a ManyPublisher in one call, with
// the same idempotency key in each channel.
func TestEmit_ManyPublisherGetsEveryChannelInOneCall(t *testing.T) {
	log := &hubLog{}
	pub := &manyPublisher{publisher: newPublisher("A", log, false)}
	n := startNode(t, shop.Config{
		Store: memstore.New(memstore.Options{}), Publisher: pub,
		StockInterval: 10 * time.Millisecond, SweepInterval: time.Hour,
	})
	st, sale := openSale(t, n.svc, 10, 1)
	buyer := shop.Actor{UserID: "b1", Name: "Budi", Roles: []string{"customer"}}
	o, _, err := n.svc.Checkout(t.Context(), buyer, shop.CheckoutInput{FlashSaleID: sale.ID, Quantity: 1}, "k1")
	if err != nil {
		t.Fatal(err)
	}
	user, studio, live := "user:#b1", "studio:"+st.ID, "live:"+st.ID
	for _, ch := range []string{user, studio} {
		got := log.find(ch, commerce.EventOrderCreated)
		if len(got) != 1 || got[0].key != "order.created:"+o.ID {
			t.Fatalf("order.created in %s: %+v, want one with key order.created:%s", ch, got, o.ID)
		}
	}
	waitFor(t, "the stock event in the room and the studio", func() bool {
		return len(log.find(live, commerce.EventFlashSaleStock)) > 0 && len(log.find(studio, commerce.EventFlashSaleStock)) > 0
	})
	pub.mu.Lock()
	defer pub.mu.Unlock()
	for _, want := range [][]string{{user, studio}, {live, studio}} {
		if !slices.ContainsFunc(pub.calls, func(c []string) bool { return slices.Equal(c, want) }) {
			t.Errorf("no PublishMany call for %v; calls %v", want, pub.calls)
		}
	}
}
