package push_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livehub/livehub/push"
	"github.com/livehub/livehub/push/apns"
	"github.com/livehub/livehub/push/fcm"
	"github.com/livehub/livehub/push/pushtest"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

const (
	bundleID = "com.example.live"
	keyID    = "KEY1234567"
	teamID   = "TEAM123456"
)

// env is a worker's world: fake APNs and FCM, the real senders pointed at
// them, and stores on memory or on a private Redis.
type env struct {
	apns    *pushtest.APNs
	fcm     *pushtest.FCM
	ios     *apns.Sender
	android *fcm.Sender
	devices push.DeviceStore
	queue   push.Queue
	dedupe  push.Dedupe
	reg     *prometheus.Registry
	logs    *logRecorder
}

type backend struct {
	name  string
	redis bool
}

var backends = []backend{{"memory", false}, {"redis", true}}

// forBackends runs f once on the memory stores and once on Redis.
func forBackends(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

// newEnv builds an env; claimIdle is the queue's.
func newEnv(t *testing.T, b backend, claimIdle time.Duration) *env {
	t.Helper()
	p8, pub := pushtest.NewAPNsKey(t)
	e := &env{
		apns: pushtest.NewAPNs(t, pushtest.APNsOptions{Key: pub, KeyID: keyID, TeamID: teamID, Topics: []string{bundleID}}),
		fcm:  pushtest.NewFCM(t, pushtest.FCMOptions{}),
		reg:  prometheus.NewRegistry(),
		logs: &logRecorder{t: t},
	}
	var err error
	e.ios, err = apns.New(apns.Options{AuthKey: p8, KeyID: keyID, TeamID: teamID, BundleID: bundleID, Host: e.apns.URL, RootCAs: e.apns.RootCAs()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.ios.Close() })
	e.android, err = fcm.New(t.Context(), fcm.Options{ProjectID: e.fcm.ProjectID, ClientOptions: e.fcm.ClientOptions()})
	if err != nil {
		t.Fatal(err)
	}
	if !b.redis {
		e.devices = push.NewMemoryDeviceStore()
		e.queue = push.NewMemoryQueue(push.MemoryQueueOptions{ClaimIdle: claimIdle})
		e.dedupe = push.NewMemoryDedupe(push.DedupeOptions{})
		return e
	}
	ro := push.RedisOptions{Client: newRedis(t)}
	if e.devices, err = push.NewRedisDeviceStore(ro); err != nil {
		t.Fatal(err)
	}
	if e.queue, err = push.NewRedisQueue(push.RedisQueueOptions{RedisOptions: ro, ClaimIdle: claimIdle}); err != nil {
		t.Fatal(err)
	}
	if e.dedupe, err = push.NewRedisDedupe(push.RedisDedupeOptions{RedisOptions: ro}); err != nil {
		t.Fatal(err)
	}
	return e
}

// options returns worker options on e with short delays.
func (e *env) options() push.WorkerOptions {
	return push.WorkerOptions{
		Queue:       e.queue,
		Devices:     e.devices,
		Senders:     []push.Sender{e.ios, e.android},
		Dedupe:      e.dedupe,
		BackoffBase: 20 * time.Millisecond,
		BackoffCap:  200 * time.Millisecond,
		PerUserRate: -1,
		Block:       50 * time.Millisecond,
		Registerer:  e.reg,
		Logger:      slog.New(slog.NewTextHandler(e.logs, nil)),
	}
}

// run starts a worker with o and returns a function that stops it and
// waits for Run to return; it is also called when the test ends.
func (e *env) run(t *testing.T, o push.WorkerOptions) (stop func()) {
	t.Helper()
	w, err := push.NewWorker(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	stop = sync.OnceFunc(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return 10s after its context was cancelled")
		}
	})
	t.Cleanup(stop)
	return stop
}

func (e *env) register(t *testing.T, devs ...push.Device) {
	t.Helper()
	for _, d := range devs {
		if err := e.devices.Register(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *env) enqueue(t *testing.T, ns ...push.Notification) {
	t.Helper()
	for _, n := range ns {
		if err := e.queue.Enqueue(t.Context(), push.Job{Notification: n}); err != nil {
			t.Fatal(err)
		}
	}
}

// metric returns the value of the counter or gauge name with labels.
func (e *env) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelsMatch(m, labels) {
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				}
			}
		}
	}
	return 0
}

func labelsMatch(m *dto.Metric, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == kv[i] && lp.GetValue() == kv[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// eventually polls cond until it holds or 10s have passed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func iosDevice(user string, n int) push.Device {
	return push.Device{UserID: user, Platform: push.PlatformIOS, Token: pushtest.IOSToken(n), AppID: bundleID, Locale: "id-ID"}
}

func androidDevice(user string, n int) push.Device {
	return push.Device{UserID: user, Platform: push.PlatformAndroid, Token: pushtest.AndroidToken(n), AppID: bundleID, Locale: "id-ID"}
}

func note(id, user string) push.Notification {
	return push.Notification{ID: id, UserID: user, Title: "Hi", Body: "Body of " + id}
}

// logRecorder keeps log lines and passes them to the test log.
type logRecorder struct {
	t     testing.TB
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) Write(p []byte) (int, error) {
	line := strings.TrimSuffix(string(p), "\n")
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
	l.t.Log(line)
	return len(p), nil
}

func (l *logRecorder) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, substr) {
			n++
		}
	}
	return n
}

// pairs counts the requests the fakes received per event and token.
func (e *env) pairs() map[string]int {
	out := make(map[string]int)
	for _, r := range e.apns.Requests() {
		if r.Reply.Status == 200 {
			out[fmt.Sprintf("%v/%s", r.Payload["event"], r.Token)]++
		}
	}
	for _, r := range e.fcm.Requests() {
		if r.Reply.Status == 200 {
			out[r.Message.Data["event"]+"/"+r.Token]++
		}
	}
	return out
}
