package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/hub/hubtest"
	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/hubauth"
	"github.com/livehub/livehub/internal/notify"
	"github.com/livehub/livehub/internal/protoclient"
	"github.com/livehub/livehub/push"
)

var testSecret = []byte("notify-test-secret-0123456789abc")

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// env is one hub node on a real loopback server with a Notifier on it,
// pushing into queue.
type env struct {
	node     *hub.Node
	url      string
	notifier *notify.Notifier
	queue    push.Queue
	reg      *prometheus.Registry
}

type envOptions struct {
	window  time.Duration
	queue   push.Queue
	pending notify.PendingStore
	// engine, when set, is the node's broker, presence and registry.
	engine interface {
		hub.Broker
		hub.PresenceManager
		hub.NodeRegistry
	}
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	if o.queue == nil {
		o.queue = push.NewMemoryQueue(push.MemoryQueueOptions{})
	}
	reg := prometheus.NewRegistry()
	n, err := notify.New(notify.Options{
		Queue: o.queue, Pending: o.pending, AckWindow: o.window,
		Logger: quietLogger(), Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{Secrets: [][]byte{testSecret}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := hub.Config{
		Tokens:         hubauth.New(v),
		AllowAnonymous: true,
		Hooks:          n.Hooks(hub.Hooks{}),
		Logger:         quietLogger(),
		ShutdownGrace:  20 * time.Millisecond,
	}
	if o.engine != nil {
		cfg.Broker, cfg.Presence, cfg.Registry = o.engine, o.engine, o.engine
	}
	node, err := hub.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.Bind(node)
	if err := node.Run(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(hub.NewWebSocketHandler(node, hub.HandlerOptions{}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Run(ctx)
	}()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := node.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		srv.Close()
		cancel()
		<-done
	})
	return &env{node: node, url: "ws" + strings.TrimPrefix(srv.URL, "http"), notifier: n, queue: o.queue, reg: reg}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// connect opens a socket signed in as user; its personal channel is
// subscribed by the server.
func (e *env) connect(t *testing.T, user string) *protoclient.Conn {
	t.Helper()
	tok := ""
	if user != "" {
		var err error
		if tok, err = auth.Mint(testSecret, auth.Claims{Subject: user}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	return hubtest.Connect(t, e.url, tok)
}

// publish sends an event of typ to user's personal channel through the
// Notifier, as the shop does, and returns it.
func (e *env) publish(t *testing.T, user, typ string, data any) commerce.Event {
	t.Helper()
	ev, err := commerce.NewEvent(typ, time.Now(), data)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ev)
	if err := e.notifier.Publish(ctxT(t), "user:#"+user, b, typ+":"+ev.ID); err != nil {
		t.Fatalf("publish: %v", err)
	}
	return ev
}

// nextEvent returns the next event on c's personal channel of user.
func nextEvent(t *testing.T, c *protoclient.Conn, user string) commerce.Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case p, ok := <-c.Pushes():
			if !ok {
				code, reason := c.CloseStatus()
				t.Fatalf("connection closed (%d %s) while waiting for an event", code, reason)
			}
			if p.Channel != "user:#"+user || p.Pub == nil {
				continue
			}
			var ev commerce.Event
			if err := json.Unmarshal(p.Pub.Data, &ev); err != nil {
				t.Fatal(err)
			}
			return ev
		case <-timeout:
			t.Fatalf("no event on user:#%s within 10s (%d frames received)", user, c.Frames.Load())
		}
	}
}

// ack acknowledges ids over c and returns how many came in time.
func ack(t *testing.T, c *protoclient.Conn, ids ...string) int {
	t.Helper()
	b, _ := json.Marshal(map[string][]string{"ids": ids})
	out, err := c.RPC(ctxT(t), notify.AckMethod, b)
	if err != nil {
		t.Fatalf("ack: %v", err)
	}
	var r struct {
		Acked int `json:"acked"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	return r.Acked
}

// setState sends the app.state RPC.
func setState(t *testing.T, c *protoclient.Conn, state string) {
	t.Helper()
	if _, err := c.RPC(ctxT(t), hub.AppStateMethod, []byte(`{"state":"`+state+`"}`)); err != nil {
		t.Fatal(err)
	}
}

// jobs reads what the queue holds now, without waiting, and acknowledges it.
func (e *env) jobs(t *testing.T) []push.Job {
	t.Helper()
	var out []push.Job
	for {
		ds, err := e.queue.Read(ctxT(t), "test", 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			return out
		}
		ids := make([]string, len(ds))
		for i, d := range ds {
			out = append(out, d.Job)
			ids[i] = d.ID
		}
		if err := e.queue.Ack(ctxT(t), ids...); err != nil {
			t.Fatal(err)
		}
	}
}

// metric returns the sum of a counter or gauge's series with the labels.
func (e *env) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
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
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// waitMetric waits until the metric reaches want.
func (e *env) waitMetric(t *testing.T, want float64, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.metric(t, name, labels...) < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v, want %v", name, labels, e.metric(t, name, labels...), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitBackground waits until user has no foreground connection.
func (e *env) waitBackground(t *testing.T, user string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		fg, err := e.node.UserForeground(ctxT(t), user)
		if err != nil {
			t.Fatal(err)
		}
		if !fg {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still in the foreground", user)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wantCode(t *testing.T, err error, code uint32) {
	t.Helper()
	var re *protoclient.ReplyError
	if !errors.As(err, &re) || re.Code != code {
		t.Fatalf("error %v, want code %d", err, code)
	}
}

// order is the data of an order event.
func order(id, buyer string, amount int64) commerce.Order {
	return commerce.Order{ID: id, BuyerID: buyer, StreamID: "str_1", Amount: amount, Quantity: 1, Status: commerce.OrderPaid}
}
