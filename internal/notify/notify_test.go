package notify_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/hub/redisengine"
	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/notify"
	"github.com/livehub/livehub/internal/redistest"
	"github.com/livehub/livehub/push"
)

func TestNotifier_ForegroundAckWithinWindow_NoPush(t *testing.T) {
	e := newEnv(t, envOptions{window: 500 * time.Millisecond})
	c := e.connect(t, "u1")

	sent := e.publish(t, "u1", commerce.EventOrderPaid, order("ord_1", "u1", 150000))
	got := nextEvent(t, c, "u1")
	if got.ID != sent.ID || got.Type != commerce.EventOrderPaid {
		t.Fatalf("socket got %s %s, want %s %s", got.Type, got.ID, sent.Type, sent.ID)
	}
	if n := ack(t, c, got.ID); n != 1 {
		t.Fatalf("ack within the window: acked %d, want 1", n)
	}
	e.waitMetric(t, 1, "livehub_notify_windows_total", "result", "acked")
	if jobs := e.jobs(t); len(jobs) != 0 {
		t.Fatalf("acknowledged event pushed: %+v", jobs)
	}
	if n := ack(t, c, got.ID); n != 0 {
		t.Fatalf("a late second ack: acked %d, want 0", n)
	}
}

func TestNotifier_ForegroundWithoutAck_PushesOnceAfterWindow(t *testing.T) {
	const window = 300 * time.Millisecond
	e := newEnv(t, envOptions{window: window})
	c := e.connect(t, "u1")

	start := time.Now()
	sent := e.publish(t, "u1", commerce.EventOrderPaid, order("ord_1", "u1", 150000))
	if jobs := e.jobs(t); len(jobs) != 0 {
		t.Fatalf("pushed before the window ended: %+v", jobs)
	}
	if got := nextEvent(t, c, "u1"); got.ID != sent.ID {
		t.Fatalf("socket got %s, want %s", got.ID, sent.ID)
	}
	e.waitMetric(t, 1, "livehub_notify_pushes_total", "reason", "unacked")
	if took := time.Since(start); took < window {
		t.Fatalf("pushed after %v, before the %v window ended", took, window)
	}
	jobs := e.jobs(t)
	if len(jobs) != 1 {
		t.Fatalf("%d jobs after the window, want 1", len(jobs))
	}
	n := jobs[0].Notification
	if n.ID != sent.ID || n.UserID != "u1" || n.TitleKey != "order_paid_title" || n.Title != "Pembayaran diterima" ||
		n.CollapseID != "ord_1" || n.Data["order_id"] != "ord_1" || !strings.Contains(n.Body, "Rp150.000") {
		t.Fatalf("notification %+v", n)
	}

	// An ack after the window changes nothing, and nothing more comes.
	if k := ack(t, c, sent.ID); k != 0 {
		t.Fatalf("ack after the window: acked %d, want 0", k)
	}
	time.Sleep(2 * window)
	if jobs := e.jobs(t); len(jobs) != 0 {
		t.Fatalf("pushed again: %+v", jobs)
	}
	if got := e.metric(t, "livehub_notify_pushes_total", "reason", "unacked"); got != 1 {
		t.Fatalf("unacked pushes %v, want 1", got)
	}
}

func TestNotifier_BackgroundApp_PushesAtOnceAndSocketStillGetsEvent(t *testing.T) {
	e := newEnv(t, envOptions{window: time.Hour})
	c := e.connect(t, "u1")
	setState(t, c, "background")

	sent := e.publish(t, "u1", commerce.EventOrderPaid, order("ord_1", "u1", 150000))
	jobs := e.jobs(t)
	if len(jobs) != 1 || jobs[0].Notification.ID != sent.ID {
		t.Fatalf("jobs right after the publish: %+v, want the event's", jobs)
	}
	if got := nextEvent(t, c, "u1"); got.ID != sent.ID {
		t.Fatalf("socket got %s, want %s", got.ID, sent.ID)
	}
	// Back in the foreground, the next event waits for its ack instead.
	setState(t, c, "foreground")
	e.publish(t, "u1", commerce.EventOrderCancelled, order("ord_2", "u1", 5000))
	if jobs := e.jobs(t); len(jobs) != 0 {
		t.Fatalf("pushed at once in the foreground: %+v", jobs)
	}
	if got := e.metric(t, "livehub_notify_windows_open"); got != 1 {
		t.Fatalf("open windows %v, want 1", got)
	}
}

func TestNotifier_NoSocket_PushesAtOnce(t *testing.T) {
	e := newEnv(t, envOptions{window: time.Hour})
	sent := e.publish(t, "u1", commerce.EventOrderExpired, order("ord_1", "u1", 5000))
	jobs := e.jobs(t)
	if len(jobs) != 1 {
		t.Fatalf("%d jobs, want 1", len(jobs))
	}
	if n := jobs[0].Notification; n.ID != sent.ID || n.TitleKey != "order_expired_title" || n.Priority != push.PriorityHigh {
		t.Fatalf("notification %+v", n)
	}
	if got := e.metric(t, "livehub_notify_pushes_total", "reason", "background"); got != 1 {
		t.Fatalf("background pushes %v, want 1", got)
	}
}

func TestNotifier_ClosedSocketCountsAsBackground(t *testing.T) {
	e := newEnv(t, envOptions{window: time.Hour})
	c := e.connect(t, "u1")
	c.CloseNow()
	e.waitBackground(t, "u1")
	e.publish(t, "u1", commerce.EventOrderPaid, order("ord_1", "u1", 150000))
	if jobs := e.jobs(t); len(jobs) != 1 {
		t.Fatalf("%d jobs, want 1 at once", len(jobs))
	}
}

func TestNotifier_OnlyPolicyEventsOfPersonalChannelsArePushed(t *testing.T) {
	e := newEnv(t, envOptions{window: time.Hour})
	ctx := ctxT(t)
	e.publish(t, "u1", commerce.EventOrderCreated, order("ord_1", "u1", 150000))
	e.publish(t, "u1", commerce.EventFlashSaleStock, map[string]any{"flash_sale_id": "fs_1", "stock_left": 3})
	e.publish(t, "u1", "chat.message", map[string]any{"text": "halo"})
	ev, _ := commerce.NewEvent(commerce.EventOrderPaid, time.Now(), order("ord_1", "u1", 150000))
	for _, ch := range []string{"studio:str_1", "order:ord_1"} {
		b := fmt.Appendf(nil, `{"type":%q,"v":1,"id":%q,"data":{"id":"ord_1"}}`, ev.Type, ev.ID)
		if err := e.notifier.Publish(ctx, ch, b, ""); err != nil {
			t.Fatalf("publish to %s: %v", ch, err)
		}
	}
	// Not an envelope, or one without an id: published, not pushed.
	for _, data := range []string{`{"text":"x"}`, `{"type":"order.paid","data":{}}`, `[1,2]`} {
		if err := e.notifier.Publish(ctx, "user:#u1", []byte(data), ""); err != nil {
			t.Fatalf("publish %s: %v", data, err)
		}
	}
	if jobs := e.jobs(t); len(jobs) != 0 {
		t.Fatalf("pushed: %+v", jobs)
	}
	if hist, _, err := e.node.History(ctx, "user:#u1", 100, nil, false); err != nil || len(hist) != 6 {
		t.Fatalf("personal channel history %d %v, want all 6 publications", len(hist), err)
	}
}

// Courier tracking publishes with a hub.PublishRequest; through the
// NodePublisher its events to a backgrounded buyer are pushed too.
func TestNotifier_NodePublisherPushesDeliveryEvents(t *testing.T) {
	e := newEnv(t, envOptions{window: time.Hour})
	c := e.connect(t, "buyer")
	setState(t, c, "background")
	ev, err := commerce.NewEvent("order.status", time.Now(), map[string]any{"order_id": "ord_1", "status": "on_the_way", "courier_id": "c1"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ev)
	pub := e.notifier.NodePublisher()
	sp, err := pub.Publish(ctxT(t), "user:#buyer", b, hub.PublishRequest{IdempotencyKey: "order.status:ord_1:on_the_way@user:#buyer"})
	if err != nil || sp.Offset == 0 {
		t.Fatalf("publish: %+v %v", sp, err)
	}
	if got := nextEvent(t, c, "buyer"); got.ID != ev.ID {
		t.Fatalf("socket got %s, want %s", got.ID, ev.ID)
	}
	jobs := e.jobs(t)
	if len(jobs) != 1 || jobs[0].Notification.TitleKey != "order_on_the_way_title" || jobs[0].Notification.CollapseID != "ord_1" {
		t.Fatalf("jobs %+v", jobs)
	}
	// order:{id} is not a personal channel: published, not pushed.
	if _, err := pub.Publish(ctxT(t), "order:ord_1", b, hub.PublishRequest{}); err != nil {
		t.Fatal(err)
	}
	if jobs := e.jobs(t); len(jobs) != 0 {
		t.Fatalf("pushed from order:ord_1: %+v", jobs)
	}
}

func TestNotifier_FlashSalePushExpiresSoon(t *testing.T) {
	e := newEnv(t, envOptions{window: time.Hour})
	sale := commerce.FlashSale{ID: "fs_1", StreamID: "str_1", Product: commerce.Product{ID: "p1", Name: "Sepatu Lari"}, Price: 199000}
	e.publish(t, "u1", commerce.EventFlashSaleStarted, sale)
	jobs := e.jobs(t)
	if len(jobs) != 1 {
		t.Fatalf("%d jobs, want 1", len(jobs))
	}
	n := jobs[0].Notification
	if until := time.Until(n.Expiry); until <= 9*time.Minute || until > 10*time.Minute {
		t.Fatalf("flash sale push expires in %v, want about 10m", until)
	}
	if n.CollapseID != "fs_1" || n.Body != "Sepatu Lari sekarang Rp199.000. Buruan sebelum habis!" ||
		len(n.BodyArgs) != 2 || n.BodyArgs[0] != "Sepatu Lari" || n.BodyArgs[1] != "Rp199.000" {
		t.Fatalf("notification %+v", n)
	}
	// An event published long ago has expired: no push.
	old, _ := commerce.NewEvent(commerce.EventFlashSaleStarted, time.Now().Add(-time.Hour), sale)
	b := fmt.Appendf(nil, `{"type":%q,"v":1,"id":%q,"at":%q,"data":{"id":"fs_1"}}`, old.Type, old.ID, old.At.Format(time.RFC3339))
	if err := e.notifier.Publish(ctxT(t), "user:#u1", b, ""); err != nil {
		t.Fatal(err)
	}
	if jobs := e.jobs(t); len(jobs) != 0 {
		t.Fatalf("expired event pushed: %+v", jobs)
	}
}

func TestNotifier_AckOnlyClosesOwnEvents(t *testing.T) {
	e := newEnv(t, envOptions{window: 300 * time.Millisecond})
	c1 := e.connect(t, "u1")
	c2 := e.connect(t, "u2")
	sent := e.publish(t, "u1", commerce.EventOrderPaid, order("ord_1", "u1", 150000))
	nextEvent(t, c1, "u1")
	if n := ack(t, c2, sent.ID); n != 0 {
		t.Fatalf("u2 acknowledged u1's event: %d", n)
	}
	e.waitMetric(t, 1, "livehub_notify_pushes_total", "reason", "unacked")
	if jobs := e.jobs(t); len(jobs) != 1 || jobs[0].Notification.UserID != "u1" {
		t.Fatalf("jobs %+v, want u1's push", jobs)
	}
}

func TestNotifier_AckRefusesBadRequests(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.connect(t, "u1")
	ctx := ctxT(t)
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf(`"ev_%d"`, i)
	}
	for _, data := range []string{
		`{"ids":"ev_1"}`, `{"ids":[]}`, `{}`, `[1]`,
		`{"ids":[""]}`, `{"ids":["ev 1"]}`, `{"ids":["` + strings.Repeat("x", 129) + `"]}`,
		`{"ids":[` + strings.Join(many, ",") + `]}`,
	} {
		_, err := c.RPC(ctx, notify.AckMethod, []byte(data))
		wantCode(t, err, 107)
	}
	anon := e.connect(t, "")
	_, err := anon.RPC(ctx, notify.AckMethod, []byte(`{"ids":["ev_1"]}`))
	wantCode(t, err, 103)
}

func TestNotifier_CloseClosesOpenWindows(t *testing.T) {
	e := newEnv(t, envOptions{window: time.Hour})
	c := e.connect(t, "u1")
	acked := e.publish(t, "u1", commerce.EventOrderPaid, order("ord_1", "u1", 150000))
	unacked := e.publish(t, "u1", commerce.EventOrderCancelled, order("ord_2", "u1", 5000))
	nextEvent(t, c, "u1")
	if n := ack(t, c, acked.ID); n != 1 {
		t.Fatalf("acked %d", n)
	}
	if err := e.notifier.Close(); err != nil {
		t.Fatal(err)
	}
	jobs := e.jobs(t)
	if len(jobs) != 1 || jobs[0].Notification.ID != unacked.ID {
		t.Fatalf("jobs at close %+v, want the unacknowledged event only", jobs)
	}
	// After Close nothing is held: a foreground user's event goes at once.
	e.publish(t, "u1", commerce.EventOrderPaid, order("ord_3", "u1", 7000))
	if jobs := e.jobs(t); len(jobs) != 1 {
		t.Fatalf("%d jobs after close, want 1", len(jobs))
	}
	if err := e.notifier.Close(); err != nil {
		t.Fatal(err)
	}
}

// Two nodes share Redis: the socket is on one, the shop publishes on the
// other; the window is the publisher's and the ack reaches it through
// Redis.
func TestNotifier_AckOnAnotherNode(t *testing.T) {
	srv := redistest.Start(t)
	queue, err := push.NewRedisQueue(push.RedisQueueOptions{RedisOptions: push.RedisOptions{Client: newRedis(t), Prefix: "q"}})
	if err != nil {
		t.Fatal(err)
	}
	const window = 400 * time.Millisecond
	nodes := make([]*env, 2)
	for i := range nodes {
		eng, err := redisengine.New(redisengine.Options{URL: srv.URL, Prefix: "lh", Logger: quietLogger(), Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = eng.Close() })
		pending, err := notify.NewRedisPending(notify.RedisPendingOptions{Client: eng.Client(), Prefix: "lh.notify"})
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = newEnv(t, envOptions{window: window, queue: queue, pending: pending, engine: eng})
	}
	sockets, shop := nodes[0], nodes[1]
	c := sockets.connect(t, "u1")
	deadline := time.Now().Add(5 * time.Second)
	for fg, _ := shop.node.UserForeground(ctxT(t), "u1"); !fg; fg, _ = shop.node.UserForeground(ctxT(t), "u1") {
		if time.Now().After(deadline) {
			t.Fatal("the other node does not see u1 in the foreground")
		}
		time.Sleep(5 * time.Millisecond)
	}

	first := shop.publish(t, "u1", commerce.EventOrderPaid, order("ord_1", "u1", 150000))
	if got := nextEvent(t, c, "u1"); got.ID != first.ID {
		t.Fatalf("socket got %s, want %s", got.ID, first.ID)
	}
	if n := ack(t, c, first.ID); n != 1 {
		t.Fatalf("ack on the socket's node: acked %d, want 1", n)
	}
	second := shop.publish(t, "u1", commerce.EventOrderCancelled, order("ord_2", "u1", 5000))
	nextEvent(t, c, "u1")
	shop.waitMetric(t, 1, "livehub_notify_windows_total", "result", "acked")
	shop.waitMetric(t, 1, "livehub_notify_pushes_total", "reason", "unacked")
	jobs := shop.jobs(t)
	if len(jobs) != 1 || jobs[0].Notification.ID != second.ID {
		t.Fatalf("jobs %+v, want only the unacknowledged event", jobs)
	}

	// Backgrounded on the socket's node: the publishing node pushes at once.
	setState(t, c, "background")
	third := shop.publish(t, "u1", commerce.EventOrderPaid, order("ord_3", "u1", 9000))
	if jobs := shop.jobs(t); len(jobs) != 1 || jobs[0].Notification.ID != third.ID {
		t.Fatalf("jobs %+v, want the third event at once", jobs)
	}
}

// PublishMany publishes into every channel through the node at once and
// decides the push of the personal channel's event as Publish does: at once
// for a user without a socket, after the window for one in the foreground.
func TestNotifier_PublishManyPushesForThePersonalChannel(t *testing.T) {
	e := newEnv(t, envOptions{window: time.Hour})
	many := func(user, typ string, data any) commerce.Event {
		t.Helper()
		ev, err := commerce.NewEvent(typ, time.Now(), data)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(ev)
		for i, err := range e.notifier.PublishMany(ctxT(t), []string{"user:#" + user, "studio:s1"}, b, typ+":"+ev.ID, false) {
			if err != nil {
				t.Fatalf("channel %d: %v", i, err)
			}
		}
		return ev
	}
	sent := many("u1", commerce.EventOrderPaid, order("ord_1", "u1", 150000))
	if jobs := e.jobs(t); len(jobs) != 1 || jobs[0].Notification.ID != sent.ID || jobs[0].Notification.UserID != "u1" {
		t.Fatalf("jobs %+v, want one push of %s to u1", jobs, sent.ID)
	}

	c := e.connect(t, "u2")
	sent = many("u2", commerce.EventOrderPaid, order("ord_2", "u2", 5000))
	if got := nextEvent(t, c, "u2"); got.ID != sent.ID {
		t.Fatalf("socket got %s, want %s", got.ID, sent.ID)
	}
	if jobs := e.jobs(t); len(jobs) != 0 {
		t.Fatalf("pushed at once in the foreground: %+v", jobs)
	}
	if got := e.metric(t, "livehub_notify_windows_open"); got != 1 {
		t.Fatalf("open windows %v, want 1", got)
	}
}
