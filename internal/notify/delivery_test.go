package notify_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/push"
	"github.com/livehub/livehub/push/apns"
	"github.com/livehub/livehub/push/pushtest"
)

const (
	bundleID = "com.example.live"
	keyID    = "KEY1234567"
	teamID   = "TEAM123456"
)

// A backgrounded buyer's order.paid goes through the queue and the worker
// to APNs, once per registered device, even when it is published twice.
func TestDelivery_BackgroundOrderPaidReachesEachDeviceOnce(t *testing.T) {
	p8, pub := pushtest.NewAPNsKey(t)
	fake := pushtest.NewAPNs(t, pushtest.APNsOptions{Key: pub, KeyID: keyID, TeamID: teamID, Topics: []string{bundleID}})
	sender, err := apns.New(apns.Options{AuthKey: p8, KeyID: keyID, TeamID: teamID, BundleID: bundleID, Host: fake.URL, RootCAs: fake.RootCAs()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sender.Close() })

	devices := push.NewMemoryDeviceStore()
	buyerPhones := []string{pushtest.IOSToken(1), pushtest.IOSToken(2)}
	other := pushtest.IOSToken(3)
	for _, d := range []push.Device{
		{UserID: "buyer", Platform: push.PlatformIOS, Token: buyerPhones[0], AppID: bundleID},
		{UserID: "buyer", Platform: push.PlatformIOS, Token: buyerPhones[1]},
		{UserID: "someone", Platform: push.PlatformIOS, Token: other, AppID: bundleID},
	} {
		if err := devices.Register(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	queue := push.NewMemoryQueue(push.MemoryQueueOptions{})
	reg := prometheus.NewRegistry()
	worker, err := push.NewWorker(push.WorkerOptions{
		Queue: queue, Devices: devices, Senders: []push.Sender{sender},
		Block: 20 * time.Millisecond, BackoffBase: 50 * time.Millisecond, Registerer: reg, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		worker.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })

	e := newEnv(t, envOptions{window: time.Hour, queue: queue})
	c := e.connect(t, "buyer")
	setState(t, c, "background")

	ev, err := commerce.NewEvent(commerce.EventOrderPaid, time.Now(), order("ord_1", "buyer", 150000))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ev)
	for range 2 {
		if err := e.notifier.Publish(ctxT(t), "user:#buyer", b, "order.paid:ord_1@user:#buyer"); err != nil {
			t.Fatal(err)
		}
	}
	if got := nextEvent(t, c, "buyer"); got.ID != ev.ID {
		t.Fatalf("socket got %s, want %s", got.ID, ev.ID)
	}

	// Both jobs handled: two sends, two duplicates dropped.
	deadline := time.Now().Add(10 * time.Second)
	for counter(t, reg, "livehub_push_sent_total") < 2 || counter(t, reg, "livehub_push_dropped_total", "reason", "duplicate") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("sent %v, duplicates %v; requests %d", counter(t, reg, "livehub_push_sent_total"),
				counter(t, reg, "livehub_push_dropped_total", "reason", "duplicate"), len(fake.Requests()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(fake.Requests()); n != 2 {
		t.Fatalf("APNs got %d requests, want 2", n)
	}
	for _, tok := range buyerPhones {
		reqs := fake.RequestsFor(tok)
		if len(reqs) != 1 {
			t.Fatalf("device %s got %d notifications, want 1", tok[:8], len(reqs))
		}
		r := reqs[0]
		alert := r.Alert()
		if r.Topic != bundleID || r.CollapseID != "ord_1" || r.Priority != 10 ||
			alert["title"] != "Pembayaran diterima" || alert["title-loc-key"] != "order_paid_title" ||
			alert["loc-key"] != "order_paid_body" || r.Payload["order_id"] != "ord_1" || r.Payload["event_id"] != ev.ID {
			t.Fatalf("APNs request %+v", r)
		}
		if r.Expiration.IsZero() {
			t.Fatal("no apns-expiration")
		}
	}
	if n := len(fake.RequestsFor(other)); n != 0 {
		t.Fatalf("another user's device got %d notifications", n)
	}
}

// counter returns the sum of a counter family's series with the labels.
func counter(t *testing.T, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}
