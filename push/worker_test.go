package push_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livehub/livehub/push"
	"github.com/livehub/livehub/push/pushtest"
)

func TestWorker_SendsToEveryDeviceWithHeadersAndPayload(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		e := newEnv(t, b, time.Minute)
		e.register(t, iosDevice("u1", 1), androidDevice("u1", 1), iosDevice("u2", 2))
		expiry := time.Now().Add(time.Hour).Truncate(time.Second)
		n := push.Notification{
			ID: "ev-paid-A42", UserID: "u1",
			TitleKey: "order_paid_title", TitleArgs: []string{"A-42"},
			BodyKey: "order_paid_body", BodyArgs: []string{"Rp 15.000"},
			Title: "Order paid", Body: "Order A-42 is paid",
			Data:       map[string]string{"order_id": "A-42", "type": "order.paid"},
			CollapseID: "order-A-42",
			Expiry:     expiry,
			Category:   "ORDER_STATUS",
		}
		e.enqueue(t, n)
		e.run(t, e.options())
		eventually(t, "one request at each fake", func() bool {
			return len(e.apns.Requests()) == 1 && len(e.fcm.Requests()) == 1
		})

		a := e.apns.Requests()[0]
		if a.Token != pushtest.IOSToken(1) || a.Topic != bundleID || a.PushType != "alert" || a.Priority != 10 ||
			a.CollapseID != "order-A-42" || !a.Expiration.Equal(expiry) {
			t.Errorf("APNs request: token %s topic %q push type %q priority %d collapse id %q expiration %v",
				a.Token, a.Topic, a.PushType, a.Priority, a.CollapseID, a.Expiration)
		}
		alert := a.Alert()
		for k, want := range map[string]any{
			"title": "Order paid", "body": "Order A-42 is paid",
			"title-loc-key": "order_paid_title", "title-loc-args": []any{"A-42"},
			"loc-key": "order_paid_body", "loc-args": []any{"Rp 15.000"},
		} {
			if fmt.Sprint(alert[k]) != fmt.Sprint(want) {
				t.Errorf("aps.alert.%s = %v, want %v (payload %s)", k, alert[k], want, a.Body)
			}
		}
		if aps := a.Payload["aps"].(map[string]any); aps["category"] != "ORDER_STATUS" {
			t.Errorf("aps.category = %v", aps["category"])
		}
		if a.Payload["order_id"] != "A-42" || a.Payload["type"] != "order.paid" {
			t.Errorf("custom data missing from the payload: %s", a.Body)
		}

		f := e.fcm.Requests()[0]
		m := f.Message
		if f.Token != pushtest.AndroidToken(1) || f.ValidateOnly {
			t.Errorf("FCM request for %s, validate only %v", f.Token, f.ValidateOnly)
		}
		if m.Notification == nil || m.Notification.Title != "Order paid" || m.Notification.Body != "Order A-42 is paid" {
			t.Errorf("FCM notification = %+v", m.Notification)
		}
		if m.Data["order_id"] != "A-42" || m.Data["type"] != "order.paid" {
			t.Errorf("FCM data = %v", m.Data)
		}
		ac := m.Android
		if ac == nil || ac.Priority != "high" || ac.CollapseKey != "order-A-42" || ac.RestrictedPackageName != bundleID {
			t.Fatalf("FCM android = %+v", ac)
		}
		ttl, err := ac.TTLDuration()
		if err != nil || ttl > time.Hour || ttl < time.Hour-time.Minute {
			t.Errorf("FCM android ttl = %q (%v), want about an hour", ac.TTL, err)
		}
		an := ac.Notification
		if an == nil || an.TitleLocKey != "order_paid_title" || !slices.Equal(an.TitleLocArgs, []string{"A-42"}) ||
			an.BodyLocKey != "order_paid_body" || !slices.Equal(an.BodyLocArgs, []string{"Rp 15.000"}) ||
			an.Tag != "order-A-42" || an.ClickAction != "ORDER_STATUS" {
			t.Errorf("FCM android notification = %+v", an)
		}
		eventually(t, "sent metrics", func() bool {
			return e.metric(t, "livehub_push_sent_total", "platform", "ios") == 1 &&
				e.metric(t, "livehub_push_sent_total", "platform", "android") == 1
		})
	})
}

func TestWorker_NormalPriorityAndNoExpiry(t *testing.T) {
	e := newEnv(t, backends[0], time.Minute)
	e.register(t, iosDevice("u1", 1), androidDevice("u1", 1))
	n := note("ev1", "u1")
	n.Priority = push.PriorityNormal
	e.enqueue(t, n)
	e.run(t, e.options())
	eventually(t, "both sent", func() bool { return len(e.apns.Requests()) == 1 && len(e.fcm.Requests()) == 1 })
	a := e.apns.Requests()[0]
	if a.Priority != 5 || !a.Expiration.IsZero() || a.Header.Get("apns-expiration") != "" || a.Header.Get("apns-collapse-id") != "" {
		t.Errorf("APNs priority %d expiration %q collapse id %q", a.Priority, a.Header.Get("apns-expiration"), a.Header.Get("apns-collapse-id"))
	}
	if m := e.fcm.Requests()[0].Message; m.Android.Priority != "normal" || m.Android.TTL != "" {
		t.Errorf("FCM android priority %q ttl %q", m.Android.Priority, m.Android.TTL)
	}
}

func TestWorker_DeadTokensArePruned(t *testing.T) {
	type tc struct {
		name     string
		platform string
		script   func(e *env, token string)
	}
	cases := []tc{
		{"APNs Unregistered", push.PlatformIOS, func(e *env, tok string) { e.apns.Reply(tok, pushtest.APNsUnregistered) }},
		{"APNs ExpiredToken", push.PlatformIOS, func(e *env, tok string) { e.apns.Reply(tok, pushtest.APNsExpiredToken) }},
		{"APNs BadDeviceToken", push.PlatformIOS, func(e *env, tok string) { e.apns.Reply(tok, pushtest.APNsBadDeviceToken) }},
		{"APNs DeviceTokenNotForTopic", push.PlatformIOS, func(e *env, tok string) { e.apns.Reply(tok, pushtest.APNsDeviceTokenNotForTopic) }},
		{"FCM UNREGISTERED", push.PlatformAndroid, func(e *env, tok string) { e.fcm.Reply(tok, pushtest.FCMUnregistered) }},
		{"FCM SENDER_ID_MISMATCH", push.PlatformAndroid, func(e *env, tok string) { e.fcm.Reply(tok, pushtest.FCMSenderIDMismatch) }},
	}
	forBackends(t, func(t *testing.T, b backend) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e := newEnv(t, b, time.Minute)
				dead, alive := iosDevice("u1", 1), iosDevice("u1", 2)
				if c.platform == push.PlatformAndroid {
					dead, alive = androidDevice("u1", 1), androidDevice("u1", 2)
				}
				e.register(t, dead, alive)
				c.script(e, dead.Token)
				e.enqueue(t, note("ev1", "u1"))
				e.run(t, e.options())
				eventually(t, "the dead token pruned", func() bool {
					return e.metric(t, "livehub_push_pruned_tokens_total", "platform", c.platform) == 1
				})
				ds, err := e.devices.List(t.Context(), "u1")
				if err != nil {
					t.Fatal(err)
				}
				if len(ds) != 1 || ds[0].Token != alive.Token {
					t.Fatalf("devices after pruning: %+v, want only %s", ds, alive.Token)
				}
				e.enqueue(t, note("ev2", "u1"))
				eventually(t, "ev2 sent to the live device", func() bool {
					return e.metric(t, "livehub_push_sent_total", "platform", c.platform) == 2
				})
				if n := countFor(e, dead.Token); n != 1 {
					t.Fatalf("dead token got %d requests, want 1", n)
				}
				if e.metric(t, "livehub_push_retried_total", "platform", c.platform) != 0 {
					t.Fatal("a dead token was retried")
				}
			})
		}
	})
}

func countFor(e *env, token string) int {
	return len(e.apns.RequestsFor(token)) + len(e.fcm.RequestsFor(token))
}

func TestWorker_RetryAfterIsHonoured(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		e := newEnv(t, b, time.Minute)
		ios, android := iosDevice("u1", 1), androidDevice("u1", 1)
		e.register(t, ios, android)
		e.apns.Reply(ios.Token, pushtest.APNsTooManyRequests.WithRetryAfter("1"))
		e.fcm.Reply(android.Token, pushtest.FCMQuotaExceeded.WithRetryAfter("1"))
		o := e.options()
		o.BackoffBase, o.BackoffCap = time.Millisecond, time.Millisecond
		e.enqueue(t, note("ev1", "u1"))
		e.run(t, o)
		eventually(t, "the retries", func() bool { return len(e.apns.Requests()) == 2 && len(e.fcm.Requests()) == 2 })
		a, f := e.apns.Requests(), e.fcm.Requests()
		// Retry-After has whole seconds; allow for the rounding of the
		// delayed set's millisecond scores.
		if gap := a[1].At.Sub(a[0].At); gap < 990*time.Millisecond || gap > 3*time.Second {
			t.Errorf("APNs retried %v after a 429 with Retry-After: 1", gap)
		}
		if gap := f[1].At.Sub(f[0].At); gap < 990*time.Millisecond || gap > 3*time.Second {
			t.Errorf("FCM retried %v after a 429 with Retry-After: 1", gap)
		}
		if a[1].Reply.Status != 200 || f[1].Reply.Status != 200 {
			t.Errorf("retries answered %d and %d", a[1].Reply.Status, f[1].Reply.Status)
		}
		eventually(t, "metrics", func() bool {
			return e.metric(t, "livehub_push_retried_total", "platform", "ios") == 1 &&
				e.metric(t, "livehub_push_retried_total", "platform", "android") == 1 &&
				e.metric(t, "livehub_push_sent_total", "platform", "ios") == 1 &&
				e.metric(t, "livehub_push_sent_total", "platform", "android") == 1
		})
	})
}

func TestWorker_ServerErrorsRetriedWithBackoffThenSent(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		e := newEnv(t, b, time.Minute)
		ios, android := iosDevice("u1", 1), androidDevice("u1", 1)
		e.register(t, ios, android)
		e.apns.Reply(ios.Token, pushtest.APNsInternalServerError, pushtest.APNsServiceUnavailable)
		// The SDK retries a 503 by itself; a 500 reaches the worker.
		e.fcm.Reply(android.Token, pushtest.FCMInternal, pushtest.FCMInternal)
		o := e.options()
		o.BackoffBase, o.BackoffCap = 100*time.Millisecond, time.Second
		e.enqueue(t, note("ev1", "u1"))
		e.run(t, o)
		eventually(t, "three requests at each fake", func() bool {
			return len(e.apns.Requests()) == 3 && len(e.fcm.Requests()) == 3
		})
		for name, at := range map[string][]time.Time{
			"APNs": {e.apns.Requests()[0].At, e.apns.Requests()[1].At, e.apns.Requests()[2].At},
			"FCM":  {e.fcm.Requests()[0].At, e.fcm.Requests()[1].At, e.fcm.Requests()[2].At},
		} {
			// Equal jitter: the n-th delay is between half and all of
			// base*2^n.
			if gap := at[1].Sub(at[0]); gap < 50*time.Millisecond {
				t.Errorf("%s: first retry after %v, want at least 50ms", name, gap)
			}
			if gap := at[2].Sub(at[1]); gap < 100*time.Millisecond {
				t.Errorf("%s: second retry after %v, want at least 100ms", name, gap)
			}
		}
		eventually(t, "metrics", func() bool {
			return e.metric(t, "livehub_push_retried_total", "platform", "ios") == 2 &&
				e.metric(t, "livehub_push_retried_total", "platform", "android") == 2 &&
				e.metric(t, "livehub_push_sent_total", "platform", "ios") == 1 &&
				e.metric(t, "livehub_push_sent_total", "platform", "android") == 1
		})
	})
}

func TestWorker_GivesUpAfterMaxAttempts(t *testing.T) {
	e := newEnv(t, backends[0], time.Minute)
	ios := iosDevice("u1", 1)
	e.register(t, ios)
	e.apns.Reply(ios.Token, pushtest.APNsInternalServerError, pushtest.APNsInternalServerError, pushtest.APNsInternalServerError)
	o := e.options()
	o.MaxAttempts = 3
	e.enqueue(t, note("ev1", "u1"))
	e.run(t, o)
	eventually(t, "giving up", func() bool {
		return e.metric(t, "livehub_push_failed_total", "platform", "ios", "reason", "max_attempts") == 1
	})
	time.Sleep(300 * time.Millisecond)
	if n := len(e.apns.Requests()); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
}

func TestWorker_ExpiredNotificationIsNotSent(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		e := newEnv(t, b, time.Minute)
		e.register(t, iosDevice("u1", 1), androidDevice("u1", 1))
		expired := note("ev-old", "u1")
		expired.Expiry = time.Now().Add(-time.Second)
		e.enqueue(t, expired)
		e.enqueue(t, note("ev-new", "u1"))
		e.run(t, e.options())
		eventually(t, "the fresh one sent and the old one dropped", func() bool {
			return len(e.apns.Requests()) == 1 && len(e.fcm.Requests()) == 1 &&
				e.metric(t, "livehub_push_dropped_total", "reason", "expired") == 1
		})
		if got := e.apns.Requests()[0].Alert()["body"]; got != "Body of ev-new" {
			t.Fatalf("APNs got %v", got)
		}
	})
}

func TestWorker_RetryPastExpiryIsDropped(t *testing.T) {
	e := newEnv(t, backends[0], time.Minute)
	ios := iosDevice("u1", 1)
	e.register(t, ios)
	e.apns.Reply(ios.Token, pushtest.APNsTooManyRequests.WithRetryAfter("5"))
	n := note("ev1", "u1")
	n.Expiry = time.Now().Add(2 * time.Second)
	e.enqueue(t, n)
	e.run(t, e.options())
	eventually(t, "the retry dropped as expired", func() bool {
		return e.metric(t, "livehub_push_failed_total", "platform", "ios", "reason", "expired") == 1
	})
	if got := len(e.apns.Requests()); got != 1 {
		t.Fatalf("%d requests, want 1", got)
	}
}

func TestWorker_DedupeSendsEachEventOncePerDevice(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		e := newEnv(t, b, time.Minute)
		e.register(t, iosDevice("u1", 1), androidDevice("u1", 1))
		ev1, ev2 := note("ev1", "u1"), note("ev2", "u1")
		ev1.Data = map[string]string{"event": "ev1"}
		ev2.Data = map[string]string{"event": "ev2"}
		// The same event twice in one batch, and again in a later one.
		e.enqueue(t, ev1, ev1, ev2)
		e.run(t, e.options())
		eventually(t, "ev1 and ev2 on both devices", func() bool { return len(e.pairs()) == 4 })
		e.enqueue(t, ev1)
		eventually(t, "the duplicates dropped", func() bool {
			return e.metric(t, "livehub_push_dropped_total", "reason", "duplicate") == 4
		})
		for pair, n := range e.pairs() {
			if n != 1 {
				t.Errorf("%s sent %d times", pair, n)
			}
		}
		if n := len(e.apns.Requests()) + len(e.fcm.Requests()); n != 4 {
			t.Fatalf("%d requests, want 4", n)
		}
	})
}

func TestWorker_PerUserRateLimit(t *testing.T) {
	e := newEnv(t, backends[0], time.Minute)
	e.register(t, iosDevice("alice", 1), iosDevice("bob", 2))
	for i := range 5 {
		e.enqueue(t, note(fmt.Sprintf("a%d", i), "alice"))
	}
	e.enqueue(t, note("b0", "bob"), note("b1", "bob"))
	o := e.options()
	o.PerUserRate = 3 // a minute: no token comes back during the test
	e.run(t, o)
	eventually(t, "the excess dropped", func() bool {
		return e.metric(t, "livehub_push_dropped_total", "reason", "rate_limited") == 2 &&
			e.metric(t, "livehub_push_sent_total", "platform", "ios") == 5
	})
	if a, b := len(e.apns.RequestsFor(pushtest.IOSToken(1))), len(e.apns.RequestsFor(pushtest.IOSToken(2))); a != 3 || b != 2 {
		t.Fatalf("alice got %d, bob %d; want 3 and 2", a, b)
	}
}

func TestWorker_PlatformWithoutSenderIsSkippedAndLoggedOnce(t *testing.T) {
	e := newEnv(t, backends[0], time.Minute)
	e.register(t, iosDevice("u1", 1), androidDevice("u1", 1))
	o := e.options()
	o.Senders = []push.Sender{e.android}
	e.enqueue(t, note("ev1", "u1"), note("ev2", "u1"))
	e.run(t, o)
	eventually(t, "android sends", func() bool { return len(e.fcm.Requests()) == 2 })
	eventually(t, "ios skipped", func() bool {
		return e.metric(t, "livehub_push_dropped_total", "reason", "platform_off") == 2
	})
	if n := e.logs.count("push for ios is off: no APNs credentials"); n != 1 {
		t.Fatalf("the ios-off line logged %d times, want 1", n)
	}
	if e.logs.count("push for android is off") != 0 {
		t.Fatal("android logged as off")
	}
	if len(e.apns.Requests()) != 0 {
		t.Fatal("APNs got a request")
	}
}

func TestWorker_RunReturnsPromptlyWhenCancelled(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		e := newEnv(t, b, time.Minute)
		o := e.options()
		o.Block = 200 * time.Millisecond
		stop := e.run(t, o)
		time.Sleep(50 * time.Millisecond)
		start := time.Now()
		stop()
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Run took %v to return", d)
		}
	})
}

// dyingQueue stands for a worker process that dies between sending a batch
// and acknowledging it: at the ack it cancels the worker and drops the ack
// and everything after.
type dyingQueue struct {
	push.Queue
	dieAtAck int
	kill     context.CancelFunc
	acks     atomic.Int32
	dead     atomic.Bool
}

var errDead = errors.New("the worker died")

func (q *dyingQueue) Ack(ctx context.Context, ids ...string) error {
	if q.dead.Load() || int(q.acks.Add(1)) >= q.dieAtAck {
		q.dead.Store(true)
		q.kill()
		return errDead
	}
	return q.Queue.Ack(ctx, ids...)
}

func (q *dyingQueue) Read(ctx context.Context, consumer string, count int, block time.Duration) ([]push.Delivery, error) {
	if q.dead.Load() {
		return nil, errDead
	}
	return q.Queue.Read(ctx, consumer, count, block)
}

func TestWorker_KilledMidQueueRestartedOneSendsPendingExactlyOnce(t *testing.T) {
	const events = 20
	e := newEnv(t, backends[1], 300*time.Millisecond)
	e.register(t, iosDevice("u1", 1), androidDevice("u1", 1))
	for i := range events {
		n := note(fmt.Sprintf("ev%d", i), "u1")
		n.Data = map[string]string{"event": n.ID}
		e.enqueue(t, n)
	}

	// The first worker acks its first batch of four, sends the second and
	// dies before acknowledging it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := e.options()
	o.Queue = &dyingQueue{Queue: e.queue, dieAtAck: 2, kill: cancel}
	o.Consumer, o.BatchSize = "first", 4
	w1, err := push.NewWorker(o)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { w1.Run(ctx) })
	wg.Wait()
	if got := len(e.pairs()); got != 16 {
		t.Fatalf("the first worker sent %d before dying, want 16 (two batches of four jobs, two devices each)", got)
	}

	o = e.options()
	o.Consumer = "second"
	e.run(t, o)
	eventually(t, "every event on both devices", func() bool { return len(e.pairs()) == 2*events })
	// The unacknowledged batch comes back after the claim idle time; give it
	// time to be sent twice if it were going to be.
	eventually(t, "the second batch redelivered and dropped as duplicates", func() bool {
		return e.metric(t, "livehub_push_dropped_total", "reason", "duplicate") == 8
	})
	time.Sleep(500 * time.Millisecond)
	for pair, n := range e.pairs() {
		if n != 1 {
			t.Errorf("%s sent %d times", pair, n)
		}
	}
	if n := len(e.apns.Requests()) + len(e.fcm.Requests()); n != 2*events {
		t.Fatalf("%d requests at the fakes, want %d", n, 2*events)
	}
	// Nothing is left pending.
	time.Sleep(400 * time.Millisecond)
	if ds, err := e.queue.Read(t.Context(), "inspector", 100, 0); err != nil || len(ds) != 0 {
		t.Fatalf("left in the queue: %d jobs, %v", len(ds), err)
	}
}
