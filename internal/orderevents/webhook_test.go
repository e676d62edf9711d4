package orderevents_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/orderevents"
	"github.com/prometheus/client_golang/prometheus"
)

const testSecret = "whsec-test"

// received is one request the receiver got.
type received struct {
	header http.Header
	body   []byte
	at     time.Time
}

// receiver is the merchant's endpoint. respond answers request n (from 1);
// nil answers 200.
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []received
	respond func(n int, w http.ResponseWriter, r *http.Request)
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	rc := &receiver{respond: respond}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, received{header: r.Header.Clone(), body: body, at: time.Now()})
		n := len(rc.reqs)
		rc.mu.Unlock()
		if rc.respond != nil {
			rc.respond(n, w, r)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.reqs...)
}

func (rc *receiver) count() int { return len(rc.requests()) }

// newWebhook returns a worker with fast test settings delivering l to rc.
func newWebhook(t *testing.T, l orderevents.Log, rc *receiver, opts ...func(*orderevents.Options)) (*orderevents.Webhook, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	o := orderevents.Options{
		URL:           rc.srv.URL + "/hooks/livehub",
		Secret:        testSecret,
		Log:           l,
		Consumer:      "w1",
		Backoff:       10 * time.Millisecond,
		Timeout:       2 * time.Second,
		ReadBlock:     100 * time.Millisecond,
		TouchInterval: 50 * time.Millisecond,
		Logger:        slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer:    reg,
	}
	for _, f := range opts {
		f(&o)
	}
	w, err := orderevents.NewWebhook(o)
	if err != nil {
		t.Fatal(err)
	}
	return w, reg
}

// start runs w until the returned stop is called or the test ends; stop
// waits for Run to return and fails the test if it takes long.
func start(t *testing.T, w *orderevents.Webhook) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func deliveries(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "livehub_webhook_deliveries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "result" && lp.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func requestSeconds(t *testing.T, reg *prometheus.Registry) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "livehub_webhook_delivery_seconds" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	return 0
}

// assertNothingPending checks, once the claim idle time has passed, that no
// delivery of the webhook group is left for another consumer.
func assertNothingPending(t *testing.T, l orderevents.Log) {
	t.Helper()
	time.Sleep(testClaimIdle + 50*time.Millisecond)
	if ds := mustRead(t, l, "webhook", "checker", 10, 0); len(ds) != 0 {
		t.Fatalf("left in the log: %+v", ds)
	}
}

func TestWebhook_DeliversVerifiableSignedEvent(t *testing.T) {
	for _, impl := range logs {
		t.Run(impl.name, func(t *testing.T) {
			l := impl.new(t, testClaimIdle)
			rc := newReceiver(t, nil)
			w, reg := newWebhook(t, l, rc)
			e := testEvent(t, 1)
			mustAppend(t, l, e)
			stop := start(t, w)
			eventually(t, 5*time.Second, "delivery", func() bool { return deliveries(t, reg, "delivered") == 1 })
			stop()

			reqs := rc.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			h := r.header
			if h.Get("X-LiveHub-Event") != "order.placed" || h.Get("X-LiveHub-Delivery") != e.ID ||
				h.Get("Content-Type") != "application/json" {
				t.Errorf("headers %v", h)
			}
			ts := h.Get("X-LiveHub-Timestamp")
			if secs, err := strconv.ParseInt(ts, 10, 64); err != nil || time.Since(time.Unix(secs, 0)) > time.Minute {
				t.Errorf("timestamp %q", ts)
			}
			if err := orderevents.Verify(testSecret, ts, string(r.body), h.Get("X-LiveHub-Signature"), time.Minute, time.Now()); err != nil {
				t.Errorf("Verify: %v", err)
			}
			if err := orderevents.Verify("another-secret", ts, string(r.body), h.Get("X-LiveHub-Signature"), time.Minute, time.Now()); err == nil {
				t.Error("signature verifies under another secret")
			}
			var got orderevents.Event
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatalf("body %s: %v", r.body, err)
			}
			assertEvent(t, got, e)
			if requestSeconds(t, reg) != 1 {
				t.Errorf("delivery_seconds count %d, want 1", requestSeconds(t, reg))
			}
			assertNothingPending(t, l)
		})
	}
}

func TestWebhook_RetriesAfterServerErrorThenSucceeds(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	l := newMemoryLog(t, testClaimIdle)
	w, reg := newWebhook(t, l, rc)
	mustAppend(t, l, testEvent(t, 1))
	start(t, w)
	eventually(t, 5*time.Second, "delivery", func() bool { return deliveries(t, reg, "delivered") == 1 })
	reqs := rc.requests()
	if len(reqs) != 2 || deliveries(t, reg, "retry") != 1 {
		t.Fatalf("%d requests, %v retries; want 2 and 1", len(reqs), deliveries(t, reg, "retry"))
	}
	if reqs[0].header.Get("X-LiveHub-Delivery") != reqs[1].header.Get("X-LiveHub-Delivery") {
		t.Error("the retry carries another delivery id")
	}
	for _, r := range reqs {
		if err := orderevents.Verify(testSecret, r.header.Get("X-LiveHub-Timestamp"), string(r.body),
			r.header.Get("X-LiveHub-Signature"), time.Minute, time.Now()); err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
	assertNothingPending(t, l)
}

func TestWebhook_HonoursRetryAfter(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	l := newMemoryLog(t, 5*time.Second)
	w, reg := newWebhook(t, l, rc, func(o *orderevents.Options) { o.Backoff = time.Millisecond })
	mustAppend(t, l, testEvent(t, 1))
	start(t, w)
	eventually(t, 5*time.Second, "delivery", func() bool { return deliveries(t, reg, "delivered") == 1 })
	reqs := rc.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	if gap := reqs[1].at.Sub(reqs[0].at); gap < 950*time.Millisecond {
		t.Errorf("retried after %v, before Retry-After's second (backoff was 1ms)", gap)
	}
}

func TestWebhook_StatusDecidesRetryOrRefusal(t *testing.T) {
	for _, tc := range []struct {
		status   int
		retried  bool
		requests int
	}{
		{http.StatusBadRequest, false, 1},
		{http.StatusUnauthorized, false, 1},
		{http.StatusNotFound, false, 1},
		{http.StatusGone, false, 1},
		{http.StatusUnprocessableEntity, false, 1},
		{http.StatusMovedPermanently, false, 1},
		{http.StatusRequestTimeout, true, 3},
		{http.StatusTooManyRequests, true, 3},
		{http.StatusInternalServerError, true, 3},
		{http.StatusBadGateway, true, 3},
		{http.StatusServiceUnavailable, true, 3},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				if tc.status == http.StatusMovedPermanently {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tc.status)
			})
			l := newMemoryLog(t, testClaimIdle)
			w, reg := newWebhook(t, l, rc, func(o *orderevents.Options) {
				o.MaxAttempts = 3
				o.Backoff = time.Millisecond
			})
			mustAppend(t, l, testEvent(t, 1))
			start(t, w)
			final := "rejected"
			if tc.retried {
				final = "dropped"
			}
			eventually(t, 5*time.Second, final, func() bool { return deliveries(t, reg, final) == 1 })
			time.Sleep(100 * time.Millisecond) // room for a wrong extra attempt
			if n := rc.count(); n != tc.requests {
				t.Errorf("%d requests, want %d", n, tc.requests)
			}
			if got, want := deliveries(t, reg, "retry"), float64(tc.requests-1); got != want {
				t.Errorf("retry count %v, want %v", got, want)
			}
			if deliveries(t, reg, "delivered") != 0 {
				t.Error("counted as delivered")
			}
			assertNothingPending(t, l)
		})
	}
}

func TestWebhook_SlowReceiverTimesOutAndIsRetried(t *testing.T) {
	rc := newReceiver(t, func(n int, _ http.ResponseWriter, r *http.Request) {
		if n == 1 {
			<-r.Context().Done()
		}
	})
	l := newMemoryLog(t, 5*time.Second)
	w, reg := newWebhook(t, l, rc, func(o *orderevents.Options) { o.Timeout = 100 * time.Millisecond })
	mustAppend(t, l, testEvent(t, 1))
	start(t, w)
	eventually(t, 5*time.Second, "delivery", func() bool { return deliveries(t, reg, "delivered") == 1 })
	if n := rc.count(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestWebhook_RedeliversEventOfWorkerKilledBeforeAck(t *testing.T) {
	for _, impl := range logs {
		t.Run(impl.name, func(t *testing.T) {
			l := impl.new(t, testClaimIdle)
			firstArrived := make(chan struct{})
			rc := newReceiver(t, func(n int, _ http.ResponseWriter, r *http.Request) {
				if n == 1 {
					// Hold the first request until the worker gives up on it.
					close(firstArrived)
					<-r.Context().Done()
				}
			})
			w1, reg1 := newWebhook(t, l, rc)
			e := testEvent(t, 1)
			mustAppend(t, l, e)
			stop1 := start(t, w1)
			select {
			case <-firstArrived:
			case <-time.After(5 * time.Second):
				t.Fatal("first request never came")
			}
			stop1()
			if deliveries(t, reg1, "delivered")+deliveries(t, reg1, "dropped")+deliveries(t, reg1, "rejected") != 0 {
				t.Fatal("the killed worker finished the event")
			}

			w2, reg2 := newWebhook(t, l, rc, func(o *orderevents.Options) { o.Consumer = "w2" })
			start(t, w2)
			eventually(t, 5*time.Second, "redelivery", func() bool { return deliveries(t, reg2, "delivered") == 1 })
			reqs := rc.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d requests, want 2", len(reqs))
			}
			for _, r := range reqs {
				if id := r.header.Get("X-LiveHub-Delivery"); id != e.ID {
					t.Errorf("delivery id %q, want %q", id, e.ID)
				}
			}
			if gap := reqs[1].at.Sub(reqs[0].at); gap < testClaimIdle {
				t.Errorf("redelivered after %v, before the claim idle time", gap)
			}
			assertNothingPending(t, l)
		})
	}
}

func TestWebhook_TouchKeepsRetryingEventFromOtherConsumers(t *testing.T) {
	for _, impl := range logs {
		t.Run(impl.name, func(t *testing.T) {
			l := impl.new(t, testClaimIdle)
			rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
				if n == 1 {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
			})
			// One slot, busy waiting to retry for longer than the claim
			// idle time: the worker does not read meanwhile, so only
			// touching keeps the event from looking abandoned.
			w, reg := newWebhook(t, l, rc, func(o *orderevents.Options) {
				o.Concurrency = 1
				o.Backoff = 4 * testClaimIdle
			})
			mustAppend(t, l, testEvent(t, 1))
			start(t, w)
			eventually(t, 5*time.Second, "first attempt", func() bool { return rc.count() == 1 })
			time.Sleep(testClaimIdle + 150*time.Millisecond)
			if ds := mustRead(t, l, "webhook", "thief", 10, 0); len(ds) != 0 {
				t.Fatalf("another consumer took the event being retried (%d deliveries)", len(ds))
			}
			eventually(t, 5*time.Second, "delivery", func() bool { return deliveries(t, reg, "delivered") == 1 })
			if n := rc.count(); n != 2 {
				t.Errorf("%d requests, want 2", n)
			}
			assertNothingPending(t, l)
		})
	}
}

func TestWebhook_FailingEventDoesNotHoldUpOthers(t *testing.T) {
	l := newMemoryLog(t, 5*time.Second)
	bad := testEvent(t, 0)
	var mu sync.Mutex
	delivered := map[string]bool{}
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-LiveHub-Delivery")
		if id == bad.ID {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		delivered[id] = true
		mu.Unlock()
	})
	w, reg := newWebhook(t, l, rc, func(o *orderevents.Options) {
		o.Backoff = time.Second
		o.MaxAttempts = 3
		o.Concurrency = 2
	})
	mustAppend(t, l, bad)
	for i := 1; i <= 20; i++ {
		mustAppend(t, l, testEvent(t, i))
	}
	start(t, w)
	eventually(t, 1400*time.Millisecond, "the good events, while the bad one waits to retry", func() bool {
		return deliveries(t, reg, "delivered") == 20
	})
	mu.Lock()
	defer mu.Unlock()
	if len(delivered) != 20 {
		t.Errorf("%d distinct events delivered, want 20", len(delivered))
	}
}

func TestWebhook_RunTwiceAtOnceFails(t *testing.T) {
	l := newMemoryLog(t, testClaimIdle)
	w, _ := newWebhook(t, l, newReceiver(t, nil))
	stop := start(t, w)
	time.Sleep(20 * time.Millisecond)
	if err := w.Run(context.Background()); err == nil {
		t.Error("second Run accepted")
	}
	stop()
}

func TestNewWebhook_RefusesIncompleteOptions(t *testing.T) {
	l := orderevents.NewMemoryLog(orderevents.MemoryOptions{})
	for name, o := range map[string]orderevents.Options{
		"no url":     {Secret: "s", Log: l},
		"bad scheme": {URL: "ftp://x", Secret: "s", Log: l},
		"relative":   {URL: "/hooks", Secret: "s", Log: l},
		"no secret":  {URL: "https://x", Log: l},
		"no log":     {URL: "https://x", Secret: "s"},
	} {
		if _, err := orderevents.NewWebhook(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := orderevents.NewWebhook(orderevents.Options{URL: "https://x", Secret: "s", Log: l}); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestNewWebhook_SharesRegistry(t *testing.T) {
	l := orderevents.NewMemoryLog(orderevents.MemoryOptions{})
	reg := prometheus.NewRegistry()
	for range 2 {
		if _, err := orderevents.NewWebhook(orderevents.Options{URL: "https://x", Secret: "s", Log: l, Registerer: reg}); err != nil {
			t.Fatal(err)
		}
	}
}
