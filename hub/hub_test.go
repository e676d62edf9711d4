package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/centrifugal/protocol"
	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/hubauth"
	"github.com/livehub/livehub/internal/protoclient"
)

var testSecret = []byte("test-secret-of-enough-length-000")

// testHub is a node behind a real HTTP server on loopback.
type testHub struct {
	node *hub.Node
	srv  *httptest.Server
	url  string
	reg  *prometheus.Registry
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestHub(t testing.TB, mutate func(*hub.Config)) *testHub {
	t.Helper()
	reg := prometheus.NewRegistry()
	v, err := auth.NewVerifier(auth.VerifierConfig{Secrets: [][]byte{testSecret}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := hub.Config{
		Tokens:         hubauth.New(v),
		AllowAnonymous: true,
		Logger:         quietLogger(),
		ShutdownGrace:  50 * time.Millisecond,
		Registerer:     reg,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	n, err := hub.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Run(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(hub.NewWebSocketHandler(n, hub.HandlerOptions{}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		srv.Close()
	})
	return &testHub{node: n, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http"), reg: reg}
}

// metric returns the value of a counter or gauge the node registered.
func (h *testHub) metric(t testing.TB, name string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		return sum
	}
	return 0
}

func (h *testHub) slowDisconnects(t testing.TB) float64 {
	return h.metric(t, "livehub_hub_slow_disconnects_total")
}

func token(t testing.TB, sub string, ttl time.Duration, roles ...auth.Role) string {
	t.Helper()
	tok, err := auth.Mint(testSecret, auth.Claims{Subject: sub, Roles: roles}, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (h *testHub) dial(t testing.TB, o protoclient.Options) *protoclient.Conn {
	t.Helper()
	c, err := protoclient.Dial(ctxT(t), h.url, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// connect dials and authenticates as sub (anonymous when sub is empty).
func (h *testHub) connect(t testing.TB, sub string, roles ...auth.Role) (*protoclient.Conn, *protocol.ConnectResult) {
	t.Helper()
	c := h.dial(t, protoclient.Options{})
	tok := ""
	if sub != "" {
		tok = token(t, sub, time.Hour, roles...)
	}
	res, err := c.Connect(ctxT(t), tok)
	if err != nil {
		t.Fatalf("connect %q: %v", sub, err)
	}
	return c, res
}

func (h *testHub) publish(t testing.TB, channel string, data string) hub.StreamPosition {
	t.Helper()
	sp, err := h.node.Publish(ctxT(t), channel, []byte(data), hub.PublishRequest{})
	if err != nil {
		t.Fatalf("publish %s: %v", channel, err)
	}
	return sp
}

// nextPub waits for the next publication push on channel, skipping others.
func nextPub(t testing.TB, c *protoclient.Conn, channel string) *protocol.Publication {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case p, ok := <-c.Pushes():
			if !ok {
				code, reason := c.CloseStatus()
				t.Fatalf("connection closed (%d %s) while waiting for a publication on %s", code, reason, channel)
			}
			if p.Channel == channel && p.Pub != nil {
				return p.Pub
			}
		case <-timeout:
			t.Fatalf("no publication on %s within 5s", channel)
		}
	}
}

// noPub asserts nothing arrives on channel for a short while.
func noPub(t testing.TB, c *protoclient.Conn, channel string, wait time.Duration) {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case p, ok := <-c.Pushes():
			if !ok {
				return
			}
			if p.Channel == channel && p.Pub != nil {
				t.Fatalf("unexpected publication on %s: %s", channel, p.Pub.Data)
			}
		case <-timeout:
			return
		}
	}
}

// waitClosed waits for the server to close the connection and returns its code.
func waitClosed(t testing.TB, c *protoclient.Conn, within time.Duration) (websocket.StatusCode, string) {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case _, ok := <-c.Pushes():
			if !ok {
				<-c.Done()
				return c.CloseStatus()
			}
		case <-timeout:
			t.Fatalf("connection still open after %v", within)
		}
	}
}

func wantCode(t testing.TB, err error, code uint32) {
	t.Helper()
	var re *protoclient.ReplyError
	if !errors.As(err, &re) {
		t.Fatalf("want protocol error %d, got %v", code, err)
	}
	if re.Code != code {
		t.Fatalf("want protocol error %d, got %d (%s)", code, re.Code, re.Message)
	}
}

func TestConnect_JWTGivesClientAndPersonalChannel(t *testing.T) {
	h := newTestHub(t, nil)
	c, res := h.connect(t, "u1", auth.RoleCustomer)
	if res.Client == "" || !res.Pong || res.Ping == 0 {
		t.Fatalf("connect result lacks client, ping or pong: %+v", res)
	}
	sub, ok := res.Subs["user:#u1"]
	if !ok {
		t.Fatalf("personal channel not subscribed by the server: %v", res.Subs)
	}
	if !sub.Recoverable || sub.Epoch == "" {
		t.Fatalf("personal channel is not recoverable: %+v", sub)
	}
	h.publish(t, "user:#u1", `{"type":"order.paid"}`)
	if got := nextPub(t, c, "user:#u1"); string(got.Data) != `{"type":"order.paid"}` {
		t.Fatalf("personal publication data %s", got.Data)
	}
}

func TestConnect_Refusals(t *testing.T) {
	h := newTestHub(t, func(c *hub.Config) { c.AllowAnonymous = false })

	t.Run("no token closes with invalid token", func(t *testing.T) {
		c := h.dial(t, protoclient.Options{})
		_, err := c.Connect(ctxT(t), "")
		if err == nil {
			t.Fatal("anonymous connect accepted")
		}
		if code, _ := waitClosed(t, c, 5*time.Second); code != 3500 {
			t.Fatalf("close code %d, want 3500", code)
		}
	})
	t.Run("bad signature closes with invalid token", func(t *testing.T) {
		c := h.dial(t, protoclient.Options{})
		bad, _ := auth.Mint([]byte("another-secret-another-secret-00"), auth.Claims{Subject: "u1"}, time.Hour)
		_, _ = c.Connect(ctxT(t), bad)
		if code, _ := waitClosed(t, c, 5*time.Second); code != 3500 {
			t.Fatalf("close code %d, want 3500", code)
		}
	})
	t.Run("expired token asks for a new one", func(t *testing.T) {
		c := h.dial(t, protoclient.Options{})
		tok, _ := auth.Mint(testSecret, auth.Claims{Subject: "u1", ExpiresAt: time.Now().Add(-time.Minute)}, 0)
		_, err := c.Connect(ctxT(t), tok)
		wantCode(t, err, 109)
	})
	t.Run("command before connect is a bad request", func(t *testing.T) {
		c := h.dial(t, protoclient.Options{})
		_, _ = c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:1"})
		if code, _ := waitClosed(t, c, 5*time.Second); code != 3501 {
			t.Fatalf("close code %d, want 3501", code)
		}
	})
}

func TestConnect_StaleSocketClosed(t *testing.T) {
	h := newTestHub(t, func(c *hub.Config) { c.ConnectTimeout = 100 * time.Millisecond })
	c := h.dial(t, protoclient.Options{})
	if code, _ := waitClosed(t, c, 5*time.Second); code != 3502 {
		t.Fatalf("close code %d, want 3502 stale", code)
	}
}

func TestSubscribe_ReceivesPublicationsInOrder(t *testing.T) {
	h := newTestHub(t, nil)
	c, _ := h.connect(t, "u1")
	res, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:room"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Recoverable || res.Epoch == "" {
		t.Fatalf("live channel not recoverable: %+v", res)
	}
	for i := 1; i <= 50; i++ {
		h.publish(t, "live:room", fmt.Sprintf(`{"n":%d}`, i))
	}
	for i := 1; i <= 50; i++ {
		p := nextPub(t, c, "live:room")
		if want := fmt.Sprintf(`{"n":%d}`, i); string(p.Data) != want || p.Offset != res.Offset+uint64(i) {
			t.Fatalf("publication %d: data %s offset %d, want %s offset %d", i, p.Data, p.Offset, want, res.Offset+uint64(i))
		}
	}
}

func TestSubscribe_Rules(t *testing.T) {
	h := newTestHub(t, nil)
	anon, _ := h.connect(t, "")
	cust, _ := h.connect(t, "u1", auth.RoleCustomer)
	admin, _ := h.connect(t, "boss", auth.RoleAdmin)

	tests := []struct {
		name    string
		c       *protoclient.Conn
		channel string
		code    uint32 // 0: allowed
	}{
		{"anonymous watches a live room", anon, "live:1", 0},
		{"anonymous may not open an order", anon, "order:o1", 103},
		{"customer may not open an order without a token", cust, "order:o1", 103},
		{"admin opens an order", admin, "order:o1", 0},
		{"customer may not read another user's channel", cust, "user:#u2", 103},
		{"anonymous may not read a personal channel", anon, "user:#u1", 103},
		{"customer may not open a studio", cust, "studio:1", 103},
		{"unknown namespace", cust, "nope:1", 102},
		{"bad channel name", cust, "live:with space", 107},
		{"empty channel", cust, "", 107},
		{"already subscribed by the server", cust, "user:#u1", 105},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: tt.channel})
			if tt.code == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantCode(t, err, tt.code)
		})
	}
}

func TestSubscribe_SubscriptionTokenGrantsOrderChannel(t *testing.T) {
	h := newTestHub(t, nil)
	c, _ := h.connect(t, "buyer", auth.RoleCustomer)
	grant, err := auth.Mint(testSecret, auth.Claims{Subject: "buyer", Channel: "order:o7"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "order:o7", Token: grant}); err != nil {
		t.Fatalf("subscription token refused: %v", err)
	}
	// The same token does not open another order, nor serve another user.
	_, err = c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "order:o8", Token: grant})
	wantCode(t, err, 103)
	other, _ := h.connect(t, "thief", auth.RoleCustomer)
	_, err = other.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "order:o7", Token: grant})
	wantCode(t, err, 103)
}

func TestPublish_ClientRules(t *testing.T) {
	h := newTestHub(t, nil)
	anon, _ := h.connect(t, "")
	viewer, _ := h.connect(t, "v1", auth.RoleCustomer)
	for _, c := range []*protoclient.Conn{anon, viewer} {
		if _, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:1"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := viewer.Publish(ctxT(t), "live:1", []byte(`{"text":"halo"}`)); err != nil {
		t.Fatalf("viewer publish refused: %v", err)
	}
	for _, c := range []*protoclient.Conn{anon, viewer} {
		p := nextPub(t, c, "live:1")
		if string(p.Data) != `{"text":"halo"}` || p.Info == nil || p.Info.User != "v1" {
			t.Fatalf("publication %s info %+v", p.Data, p.Info)
		}
	}
	wantCode(t, anon.Publish(ctxT(t), "live:1", []byte(`{}`)), 103)
	wantCode(t, viewer.Publish(ctxT(t), "live:2", []byte(`{}`)), 103) // not subscribed
	wantCode(t, viewer.Publish(ctxT(t), "user:#v1", []byte(`{}`)), 103)
}

func TestPublish_HookRewritesAndRefuses(t *testing.T) {
	h := newTestHub(t, func(c *hub.Config) {
		c.Hooks.OnPublish = func(_ context.Context, cl *hub.Client, ch string, data []byte) ([]byte, error) {
			if strings.Contains(string(data), "spam") {
				return nil, hub.ErrorBadRequest.WithMessage("muted word")
			}
			return []byte(fmt.Sprintf(`{"from":%q,"msg":%s}`, cl.UserID(), data)), nil
		}
	})
	c, _ := h.connect(t, "v1")
	if _, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:1"}); err != nil {
		t.Fatal(err)
	}
	err := c.Publish(ctxT(t), "live:1", []byte(`"buy spam"`))
	wantCode(t, err, 107)
	if !strings.Contains(err.Error(), "muted word") {
		t.Fatalf("reason lost: %v", err)
	}
	if err := c.Publish(ctxT(t), "live:1", []byte(`"hi"`)); err != nil {
		t.Fatal(err)
	}
	if p := nextPub(t, c, "live:1"); string(p.Data) != `{"from":"v1","msg":"hi"}` {
		t.Fatalf("hook result not published: %s", p.Data)
	}
}

func TestHistoryAndPresence(t *testing.T) {
	h := newTestHub(t, nil)
	host, _ := h.connect(t, "h1", auth.RoleHost)
	viewer, _ := h.connect(t, "v1", auth.RoleCustomer)
	viewer2, _ := h.connect(t, "v1", auth.RoleCustomer) // same user, second device
	for _, c := range []*protoclient.Conn{host, viewer, viewer2} {
		if _, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:9"}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 5; i++ {
		h.publish(t, "live:9", fmt.Sprintf(`{"n":%d}`, i))
	}
	hist, err := viewer.History(ctxT(t), &protocol.HistoryRequest{Channel: "live:9", Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(hist.Publications) != 3 || string(hist.Publications[0].Data) != `{"n":1}` || hist.Offset != 5 {
		t.Fatalf("history: %d pubs, first %s, offset %d", len(hist.Publications), hist.Publications[0].Data, hist.Offset)
	}
	rev, err := viewer.History(ctxT(t), &protocol.HistoryRequest{Channel: "live:9", Limit: 2, Reverse: true})
	if err != nil || string(rev.Publications[0].Data) != `{"n":5}` {
		t.Fatalf("reverse history: %v %v", rev, err)
	}
	since, err := viewer.History(ctxT(t), &protocol.HistoryRequest{Channel: "live:9", Limit: -1, Since: &protocol.StreamPosition{Offset: 3, Epoch: hist.Epoch}})
	if err != nil || len(since.Publications) != 2 || since.Publications[0].Offset != 4 {
		t.Fatalf("history since 3: %+v %v", since, err)
	}
	_, err = viewer.History(ctxT(t), &protocol.HistoryRequest{Channel: "live:9", Limit: 1, Since: &protocol.StreamPosition{Offset: 3, Epoch: "other"}})
	wantCode(t, err, 112)

	st, err := viewer.PresenceStats(ctxT(t), "live:9")
	if err != nil || st.NumClients != 3 || st.NumUsers != 2 {
		t.Fatalf("presence stats %+v %v, want 3 clients 2 users", st, err)
	}
	_, err = viewer.Presence(ctxT(t), "live:9")
	wantCode(t, err, 103) // the viewer list is for the host
	p, err := host.Presence(ctxT(t), "live:9")
	if err != nil || len(p.Presence) != 3 {
		t.Fatalf("host presence %v %v", p, err)
	}
	// Not subscribed: no history.
	stranger, _ := h.connect(t, "s1")
	_, err = stranger.History(ctxT(t), &protocol.HistoryRequest{Channel: "live:9", Limit: 1})
	wantCode(t, err, 103)

	viewer2.CloseNow()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _ := h.node.PresenceStats(ctxT(t), "live:9")
		if st.NumClients == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("presence not cleaned after disconnect: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRecovery_MissedPublicationsDeliveredInOrder(t *testing.T) {
	h := newTestHub(t, nil)
	c, _ := h.connect(t, "u1")
	res, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:r"})
	if err != nil {
		t.Fatal(err)
	}
	h.publish(t, "live:r", `{"n":1}`)
	last := nextPub(t, c, "live:r")
	c.CloseNow() // a lift: no close handshake

	for i := 2; i <= 4; i++ {
		h.publish(t, "live:r", fmt.Sprintf(`{"n":%d}`, i))
	}
	c2, _ := h.connect(t, "u1")
	rec, err := c2.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:r", Recover: true, Offset: last.Offset, Epoch: res.Epoch})
	if err != nil {
		t.Fatal(err)
	}
	if !rec.WasRecovering || !rec.Recovered {
		t.Fatalf("not recovered: %+v", rec)
	}
	if len(rec.Publications) != 3 {
		t.Fatalf("recovered %d publications, want 3", len(rec.Publications))
	}
	for i, p := range rec.Publications {
		if want := fmt.Sprintf(`{"n":%d}`, i+2); string(p.Data) != want {
			t.Fatalf("recovered[%d] = %s, want %s", i, p.Data, want)
		}
	}
	h.publish(t, "live:r", `{"n":5}`)
	if p := nextPub(t, c2, "live:r"); string(p.Data) != `{"n":5}` {
		t.Fatalf("after recovery got %s", p.Data)
	}

	t.Run("another epoch is not recovered", func(t *testing.T) {
		c3, _ := h.connect(t, "u1")
		rec, err := c3.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:r", Recover: true, Offset: 1, Epoch: "gone"})
		if err != nil {
			t.Fatal(err)
		}
		if !rec.WasRecovering || rec.Recovered || len(rec.Publications) != 0 {
			t.Fatalf("want recovered=false without publications, got %+v", rec)
		}
	})
	t.Run("removed history is not recovered", func(t *testing.T) {
		c5, _ := h.connect(t, "u1")
		res5, err := c5.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:rm"})
		if err != nil {
			t.Fatal(err)
		}
		c5.CloseNow()
		h.publish(t, "live:rm", `{"lost":1}`)
		if err := h.node.RemoveHistory(ctxT(t), "live:rm"); err != nil {
			t.Fatal(err)
		}
		c6, _ := h.connect(t, "u1")
		rec, err := c6.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:rm", Recover: true, Offset: res5.Offset, Epoch: res5.Epoch})
		if err != nil {
			t.Fatal(err)
		}
		if rec.Recovered {
			t.Fatalf("recovered=true although a publication is gone: %+v", rec)
		}
	})
	t.Run("a gap beyond history is not recovered", func(t *testing.T) {
		for i := 0; i < 120; i++ { // history keeps 100
			h.publish(t, "live:r", `{"flood":true}`)
		}
		c4, _ := h.connect(t, "u1")
		rec, err := c4.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:r", Recover: true, Offset: last.Offset, Epoch: res.Epoch})
		if err != nil {
			t.Fatal(err)
		}
		if rec.Recovered {
			t.Fatalf("recovered across a gap beyond history: %d pubs", len(rec.Publications))
		}
	})
}

func TestRecovery_PersonalChannelAtConnect(t *testing.T) {
	h := newTestHub(t, nil)
	c, res := h.connect(t, "u5")
	pos := res.Subs["user:#u5"]
	c.CloseNow()
	h.publish(t, "user:#u5", `{"type":"order.paid"}`)
	c2 := h.dial(t, protoclient.Options{})
	res2, err := c2.ConnectWith(ctxT(t), &protocol.ConnectRequest{
		Token: token(t, "u5", time.Hour),
		Subs:  map[string]*protocol.SubscribeRequest{"user:#u5": {Recover: true, Offset: pos.Offset, Epoch: pos.Epoch}},
	})
	if err != nil {
		t.Fatal(err)
	}
	sub := res2.Subs["user:#u5"]
	if !sub.Recovered || len(sub.Publications) != 1 || string(sub.Publications[0].Data) != `{"type":"order.paid"}` {
		t.Fatalf("personal channel not recovered at connect: %+v", sub)
	}
}

// A subscriber joining while publications flow sees each exactly once and
// in order: those before its position come from history, those after live.
func TestSubscribe_ConcurrentPublishNoGapNoDuplicate(t *testing.T) {
	h := newTestHub(t, nil)
	const total = 400
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= total; i++ {
			if _, err := h.node.Publish(context.Background(), "live:busy", []byte(fmt.Sprintf(`{"n":%d}`, i)), hub.PublishRequest{}); err != nil {
				t.Errorf("publish: %v", err)
				return
			}
		}
	}()
	for k := 0; k < 5; k++ {
		c, _ := h.connect(t, fmt.Sprintf("v%d", k))
		res, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:busy"})
		if err != nil {
			t.Fatal(err)
		}
		expect := res.Offset + 1
		for expect <= uint64(total) {
			p := nextPub(t, c, "live:busy")
			if p.Offset != expect {
				t.Fatalf("client %d: offset %d, want %d", k, p.Offset, expect)
			}
			expect++
		}
	}
	<-done
}

func TestFrames_SeveralCommandsInOneFrame(t *testing.T) {
	h := newTestHub(t, nil)
	c, _ := h.connect(t, "u1")
	frame := `{"id":10,"subscribe":{"channel":"live:a"}}` + "\n" +
		`{"id":11,"subscribe":{"channel":"live:b"}}` + "\n" +
		`{"id":12,"ping":{}}`
	if err := c.WriteRaw(ctxT(t), []byte(frame)); err != nil {
		t.Fatal(err)
	}
	// Commands are answered in order, so once a later call is answered the
	// frame's subscriptions exist.
	if _, err := c.Call(ctxT(t), &protocol.Command{Ping: &protocol.PingRequest{}}); err != nil {
		t.Fatal(err)
	}
	h.publish(t, "live:b", `{"ok":true}`)
	if p := nextPub(t, c, "live:b"); string(p.Data) != `{"ok":true}` {
		t.Fatalf("got %s", p.Data)
	}
	_, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:a"})
	wantCode(t, err, 105)
}

func TestFrames_BadInputClosesWithBadRequest(t *testing.T) {
	h := newTestHub(t, func(c *hub.Config) { c.MaxFrameBytes = 1024 })
	cases := map[string]func(c *protoclient.Conn) error{
		"malformed JSON": func(c *protoclient.Conn) error { return c.WriteRaw(ctxT(t), []byte(`{"id":1,"subscribe":`)) },
		"binary frame":   func(c *protoclient.Conn) error { return c.WriteBinary(ctxT(t), []byte{1, 2, 3}) },
		"empty command with id": func(c *protoclient.Conn) error {
			return c.WriteRaw(ctxT(t), []byte(`{"id":5}`))
		},
	}
	for name, send := range cases {
		t.Run(name, func(t *testing.T) {
			c, _ := h.connect(t, "u1")
			if err := send(c); err != nil {
				t.Fatal(err)
			}
			if code, _ := waitClosed(t, c, 5*time.Second); code != 3501 {
				t.Fatalf("close code %d, want 3501", code)
			}
		})
	}
	t.Run("frame over the limit", func(t *testing.T) {
		c, _ := h.connect(t, "u1")
		big := `{"id":1,"publish":{"channel":"live:1","data":"` + strings.Repeat("x", 2048) + `"}}`
		_ = c.WriteRaw(ctxT(t), []byte(big))
		if code, _ := waitClosed(t, c, 5*time.Second); code != websocket.StatusMessageTooBig {
			t.Fatalf("close code %d, want 1009", code)
		}
	})
	// The node still serves others.
	c, _ := h.connect(t, "u2")
	if _, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:1"}); err != nil {
		t.Fatal(err)
	}
}

func TestLimits_ChannelsAndCommandRate(t *testing.T) {
	h := newTestHub(t, func(c *hub.Config) {
		c.MaxChannelsPerConn = 3 // the personal channel is one
		c.CommandRate = 1
		c.CommandBurst = 5
	})
	c, _ := h.connect(t, "u1")
	for i := 0; i < 2; i++ {
		if _, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: fmt.Sprintf("live:%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:x"})
	wantCode(t, err, 106)
	var limited bool
	for i := 0; i < 10 && !limited; i++ {
		_, err := c.Call(ctxT(t), &protocol.Command{Ping: &protocol.PingRequest{}})
		var re *protoclient.ReplyError
		limited = errors.As(err, &re) && re.Code == 111
	}
	if !limited {
		t.Fatal("command rate never limited")
	}
}

func TestSlowClient_DisconnectedWithoutDelayingOthers(t *testing.T) {
	h := newTestHub(t, func(c *hub.Config) { c.MaxQueueBytes = 64 << 10 })
	// The slow client stops reading: its push buffer is tiny and never drained.
	slow := h.dial(t, protoclient.Options{PushBuffer: 1})
	if _, err := slow.Connect(ctxT(t), token(t, "slow", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := slow.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:s"}); err != nil {
		t.Fatal(err)
	}
	fast, _ := h.connect(t, "fast")
	if _, err := fast.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:s"}); err != nil {
		t.Fatal(err)
	}
	payload := `{"pad":"` + strings.Repeat("p", 2000) + `"}`
	// 16 MB in rounds the fast reader keeps up with (a round fits in the
	// queue): more than loopback socket buffers and the slow client's queue hold.
	const rounds, perRound = 400, 20
	for r := 0; r < rounds; r++ {
		for i := 0; i < perRound; i++ {
			h.publish(t, "live:s", payload)
		}
		for i := 0; i < perRound; i++ {
			nextPub(t, fast, "live:s")
		}
		if h.slowDisconnects(t) > 0 {
			break
		}
	}
	// The slow client reads nothing, so it cannot see its close frame; the
	// server's count is the evidence.
	if got := h.slowDisconnects(t); got != 1 {
		t.Fatalf("slow disconnects %v, want 1", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for h.metric(t, "livehub_hub_connections") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%v connections left, want only the fast one", h.metric(t, "livehub_hub_connections"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The fast client is still there.
	h.publish(t, "live:s", `{"last":true}`)
	if p := nextPub(t, fast, "live:s"); string(p.Data) != `{"last":true}` {
		t.Fatalf("fast client got %s", p.Data)
	}
}

func TestPing_DeadClientClosedLiveClientKept(t *testing.T) {
	h := newTestHub(t, func(c *hub.Config) {
		c.PingInterval = 50 * time.Millisecond
		c.PongTimeout = 100 * time.Millisecond
	})
	live, _ := h.connect(t, "alive")
	dead := h.dial(t, protoclient.Options{NoPong: true})
	if _, err := dead.Connect(ctxT(t), token(t, "dead", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if code, _ := waitClosed(t, dead, 5*time.Second); code != 3012 {
		t.Fatalf("close code %d, want 3012 no pong", code)
	}
	time.Sleep(400 * time.Millisecond) // several ping periods
	if _, err := live.Call(ctxT(t), &protocol.Command{Ping: &protocol.PingRequest{}}); err != nil {
		t.Fatalf("answering client was closed: %v", err)
	}
}

func TestRefresh_ExtendsAndExpiryDisconnects(t *testing.T) {
	h := newTestHub(t, func(c *hub.Config) { c.ExpiredCloseDelay = 500 * time.Millisecond })
	c := h.dial(t, protoclient.Options{})
	res, err := c.Connect(ctxT(t), token(t, "u1", 2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Expires || res.Ttl == 0 || res.Ttl > 2 {
		t.Fatalf("connect result expires=%v ttl=%d", res.Expires, res.Ttl)
	}
	ref, err := c.Refresh(ctxT(t), token(t, "u1", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !ref.Expires || ref.Ttl < 3000 {
		t.Fatalf("refresh result %+v", ref)
	}
	time.Sleep(3 * time.Second) // past the first token's expiry and the close delay
	if _, err := c.Call(ctxT(t), &protocol.Command{Ping: &protocol.PingRequest{}}); err != nil {
		t.Fatalf("refreshed connection closed: %v", err)
	}
	// Refreshing as someone else is refused.
	_, _ = c.Refresh(ctxT(t), token(t, "intruder", time.Hour))
	if code, _ := waitClosed(t, c, 5*time.Second); code != 3500 {
		t.Fatalf("close code %d, want 3500", code)
	}

	c2 := h.dial(t, protoclient.Options{})
	if _, err := c2.Connect(ctxT(t), token(t, "u2", time.Second)); err != nil {
		t.Fatal(err)
	}
	if code, _ := waitClosed(t, c2, 5*time.Second); code != 3005 {
		t.Fatalf("close code %d, want 3005 expired", code)
	}
}

func TestRPC_AppStateAndHooks(t *testing.T) {
	h := newTestHub(t, func(c *hub.Config) {
		c.Hooks.RPC = map[string]hub.RPCHandler{
			"echo": func(_ context.Context, _ *hub.Client, data []byte) ([]byte, error) { return data, nil },
		}
	})
	c, _ := h.connect(t, "u1")
	out, err := c.RPC(ctxT(t), "echo", []byte(`{"x":1}`))
	if err != nil || string(out) != `{"x":1}` {
		t.Fatalf("echo: %s %v", out, err)
	}
	_, err = c.RPC(ctxT(t), "nope", []byte(`{}`))
	wantCode(t, err, 104)
	_, err = c.RPC(ctxT(t), hub.AppStateMethod, []byte(`{"state":"asleep"}`))
	wantCode(t, err, 107)

	fg, err := h.node.UserForeground(ctxT(t), "u1")
	if err != nil || !fg {
		t.Fatalf("a new connection is foreground: %v %v", fg, err)
	}
	if _, err := c.RPC(ctxT(t), hub.AppStateMethod, []byte(`{"state":"background"}`)); err != nil {
		t.Fatal(err)
	}
	if fg, _ := h.node.UserForeground(ctxT(t), "u1"); fg {
		t.Fatal("still foreground after background")
	}
	if _, err := c.RPC(ctxT(t), hub.AppStateMethod, []byte(`{"state":"foreground"}`)); err != nil {
		t.Fatal(err)
	}
	c.CloseNow()
	deadline := time.Now().Add(5 * time.Second)
	for {
		fg, _ := h.node.UserForeground(ctxT(t), "u1")
		if !fg {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed connection still counts as foreground")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServerAPI_SubscribeUnsubscribeDisconnect(t *testing.T) {
	h := newTestHub(t, nil)
	c, _ := h.connect(t, "buyer")
	if err := h.node.Subscribe(ctxT(t), "buyer", "order:o1"); err != nil {
		t.Fatal(err)
	}
	// The SDK learns of the server-side subscription through a subscribe push.
	deadline := time.After(5 * time.Second)
	for got := false; !got; {
		select {
		case p := <-c.Pushes():
			got = p.Channel == "order:o1" && p.Subscribe != nil
		case <-deadline:
			t.Fatal("no subscribe push")
		}
	}
	h.publish(t, "order:o1", `{"type":"order.status"}`)
	if p := nextPub(t, c, "order:o1"); string(p.Data) != `{"type":"order.status"}` {
		t.Fatalf("got %s", p.Data)
	}
	if err := h.node.Unsubscribe(ctxT(t), "buyer", "order:o1"); err != nil {
		t.Fatal(err)
	}
	deadline = time.After(5 * time.Second)
	for got := false; !got; {
		select {
		case p := <-c.Pushes():
			got = p.Channel == "order:o1" && p.Unsubscribe != nil
		case <-deadline:
			t.Fatal("no unsubscribe push")
		}
	}
	h.publish(t, "order:o1", `{"after":true}`)
	noPub(t, c, "order:o1", 200*time.Millisecond)

	if err := h.node.DisconnectUser(ctxT(t), "buyer", "", hub.DisconnectForceReconnect); err != nil {
		t.Fatal(err)
	}
	if code, reason := waitClosed(t, c, 5*time.Second); code != 3011 || reason != "force reconnect" {
		t.Fatalf("close %d %q, want 3011", code, reason)
	}
}

func TestGap_InsufficientStateMakesClientRecover(t *testing.T) {
	// An engine that loses one publication on its way to the node, as a
	// Redis pub/sub reconnect can: the subscriber must be told to recover.
	lossy := &lossyBroker{MemoryEngine: hub.NewMemoryEngine(), dropOffset: 3}
	h := newTestHub(t, func(c *hub.Config) {
		c.Broker = lossy
		c.Presence = lossy.MemoryEngine
		c.Registry = lossy.MemoryEngine
	})
	c, _ := h.connect(t, "u1")
	if _, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:g"}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 4; i++ {
		h.publish(t, "live:g", fmt.Sprintf(`{"n":%d}`, i))
	}
	if code, _ := waitClosed(t, c, 5*time.Second); code != 3010 {
		t.Fatalf("close code %d, want 3010 insufficient state", code)
	}
}

// lossyBroker drops the delivery (not the history) of one offset.
type lossyBroker struct {
	*hub.MemoryEngine
	dropOffset uint64
}

type lossyHandler struct {
	hub.BrokerEventHandler
	drop uint64
}

func (l lossyHandler) HandlePublication(ch string, p *hub.Publication, sp hub.StreamPosition) error {
	if p.Offset == l.drop {
		return nil
	}
	return l.BrokerEventHandler.HandlePublication(ch, p, sp)
}

func (b *lossyBroker) Run(ctx context.Context, h hub.BrokerEventHandler) error {
	return b.MemoryEngine.Run(ctx, lossyHandler{h, b.dropOffset})
}

func TestShutdown_ClientsToldToReconnect(t *testing.T) {
	h := newTestHub(t, func(c *hub.Config) { c.ShutdownGrace = 200 * time.Millisecond })
	var conns []*protoclient.Conn
	for i := 0; i < 10; i++ {
		c, _ := h.connect(t, fmt.Sprintf("u%d", i))
		conns = append(conns, c)
	}
	if err := h.node.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		if code, _ := waitClosed(t, c, 5*time.Second); code != 3001 {
			t.Fatalf("close code %d, want 3001 shutdown", code)
		}
	}
	if !h.node.Draining() {
		t.Fatal("node not draining")
	}
	if _, err := protoclient.Dial(ctxT(t), h.url, protoclient.Options{}); err == nil {
		t.Fatal("a draining node accepted a socket")
	}
}

func TestJoinLeave(t *testing.T) {
	h := newTestHub(t, func(c *hub.Config) {
		ns := hub.DefaultNamespaces()
		for i := range ns {
			if ns[i].Name == "live" {
				ns[i].JoinLeave = true
			}
		}
		c.Namespaces = ns
	})
	watcher, _ := h.connect(t, "w")
	if _, err := watcher.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:j", JoinLeave: true}); err != nil {
		t.Fatal(err)
	}
	other, _ := h.connect(t, "o")
	if _, err := other.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:j"}); err != nil {
		t.Fatal(err)
	}
	var joined, left bool
	deadline := time.After(5 * time.Second)
	other.CloseNow()
	for !(joined && left) {
		select {
		case p := <-watcher.Pushes():
			if p.Join != nil && p.Join.Info.User == "o" {
				joined = true
			}
			if p.Leave != nil && p.Leave.Info.User == "o" {
				left = true
			}
		case <-deadline:
			t.Fatalf("joined=%v left=%v", joined, left)
		}
	}
}

func TestServerPublish_RejectsInvalidJSON(t *testing.T) {
	h := newTestHub(t, nil)
	_, err := h.node.Publish(ctxT(t), "live:1", []byte(`{broken`), hub.PublishRequest{})
	var he *hub.Error
	if !errors.As(err, &he) || he.Code != 107 {
		t.Fatalf("want bad request, got %v", err)
	}
	_, err = h.node.Publish(ctxT(t), "nope:1", []byte(`{}`), hub.PublishRequest{})
	if !errors.As(err, &he) || he.Code != 102 {
		t.Fatalf("want unknown channel, got %v", err)
	}
	var v map[string]any
	_ = json.Unmarshal([]byte(`{}`), &v)
}

func TestPublish_EphemeralSkipsHistory(t *testing.T) {
	h := newTestHub(t, nil)
	c, _ := h.connect(t, "v1")
	res, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:e"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.node.Publish(ctxT(t), "live:e", []byte(`{"type":"likes.count"}`), hub.PublishRequest{Ephemeral: true}); err != nil {
		t.Fatal(err)
	}
	if p := nextPub(t, c, "live:e"); p.Offset != 0 || string(p.Data) != `{"type":"likes.count"}` {
		t.Fatalf("ephemeral publication offset %d data %s", p.Offset, p.Data)
	}
	// Kept publications go on from the same position: nothing was lost.
	h.publish(t, "live:e", `{"type":"chat.message"}`)
	if p := nextPub(t, c, "live:e"); p.Offset != res.Offset+1 {
		t.Fatalf("offset %d after an ephemeral one, want %d", p.Offset, res.Offset+1)
	}
	pubs, _, err := h.node.History(ctxT(t), "live:e", -1, nil, false)
	if err != nil || len(pubs) != 1 {
		t.Fatalf("history has %d publications, want only the kept one (%v)", len(pubs), err)
	}
}

func TestSubscribe_GrantOpensRoleRestrictedChannelToOneUser(t *testing.T) {
	h := newTestHub(t, func(c *hub.Config) {
		c.Hooks.Grant = func(_ context.Context, cl *hub.Client, ch string) (bool, error) {
			return ch == "order:o1" && cl.UserID() == "buyer", nil
		}
	})
	buyer, _ := h.connect(t, "buyer", auth.RoleCustomer)
	other, _ := h.connect(t, "other", auth.RoleCustomer)
	if _, err := buyer.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "order:o1"}); err != nil {
		t.Fatalf("granted subscription refused: %v", err)
	}
	_, err := other.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "order:o1"})
	wantCode(t, err, 103)
	_, err = buyer.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "studio:1"})
	wantCode(t, err, 103)
}

func TestLimits_ConnectionsPerUser(t *testing.T) {
	h := newTestHub(t, func(c *hub.Config) {
		c.MaxConnsPerUser = 2
		c.AllowAnonymous = true
	})
	first, _ := h.connect(t, "u1")
	h.connect(t, "u1")
	third := h.dial(t, protoclient.Options{})
	if _, err := third.Connect(ctxT(t), token(t, "u1", time.Hour)); err == nil {
		t.Fatal("third connection of one user accepted")
	}
	if code, _ := waitClosed(t, third, 5*time.Second); code != 3504 {
		t.Fatalf("third connection closed with %d, want 3504 (connection limit)", code)
	}
	if got := h.metric(t, "livehub_hub_disconnects_total"); got != 1 {
		t.Fatalf("connection limit disconnects counted: %v, want 1", got)
	}
	// Another user and anonymous viewers are not affected.
	h.connect(t, "u2")
	for range 3 {
		h.connect(t, "")
	}
	// A closed connection frees its place.
	first.CloseNow()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := h.dial(t, protoclient.Options{})
		if _, err := c.Connect(ctxT(t), token(t, "u1", time.Hour)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the user's place was not freed after a connection closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOverload_LowPriorityShedBeforeNormal(t *testing.T) {
	h := newTestHub(t, func(c *hub.Config) {
		c.MaxQueueBytes = 64 << 20 // never slow-closed in this test
		c.LowPriorityQueueBytes = 64 << 10
	})
	// The client stops reading: its push buffer holds one push, so the
	// socket buffers fill and the server's queue grows.
	c := h.dial(t, protoclient.Options{PushBuffer: 1})
	if _, err := c.Connect(ctxT(t), token(t, "viewer", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:busy"}); err != nil {
		t.Fatal(err)
	}
	chatter := `{"type":"likes.count","pad":"` + strings.Repeat("x", 8<<10) + `"}`
	const rounds = 3000 // 24 MB of chatter: more than loopback buffers hold
	for i := range rounds {
		if _, err := h.node.Publish(ctxT(t), "live:busy", []byte(chatter), hub.PublishRequest{Priority: hub.PriorityLow}); err != nil {
			t.Fatal(err)
		}
		h.publish(t, "live:busy", fmt.Sprintf(`{"type":"flash_sale.stock","seq":%d}`, i))
	}
	shed := h.metric(t, "livehub_hub_shed_publications_total")
	if shed == 0 {
		t.Fatal("nothing shed although the queue went far past the low-priority bound")
	}
	// Reading again: every stock event arrives, in order; the chatter that
	// arrives plus what was shed is all of it.
	var low, seq int
	var last uint64
	for seq < rounds {
		p := nextPub(t, c, "live:busy")
		if p.Offset <= last {
			t.Fatalf("offset %d after %d", p.Offset, last)
		}
		last = p.Offset
		var ev struct {
			Type string `json:"type"`
			Seq  int    `json:"seq"`
		}
		if err := json.Unmarshal(p.Data, &ev); err != nil {
			t.Fatal(err)
		}
		switch ev.Type {
		case "likes.count":
			low++
		case "flash_sale.stock":
			if ev.Seq != seq {
				t.Fatalf("stock event %d arrived where %d was due: a normal publication was lost", ev.Seq, seq)
			}
			seq++
		}
	}
	if float64(low)+shed != rounds {
		t.Fatalf("chatter received %d + shed %v != published %d", low, shed, rounds)
	}
	if got := h.slowDisconnects(t); got != 0 {
		t.Fatalf("slow disconnects %v: shedding should have kept the client", got)
	}
}

func TestWriteTimeout_StuckSocketIsCut(t *testing.T) {
	h := newTestHub(t, func(c *hub.Config) {
		c.MaxQueueBytes = 256 << 20 // the queue never fills: only the deadline can act
		c.LowPriorityQueueBytes = 256 << 20
		c.WriteTimeout = 300 * time.Millisecond
	})
	stuck := h.dial(t, protoclient.Options{PushBuffer: 1})
	if _, err := stuck.Connect(ctxT(t), token(t, "stuck", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := stuck.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:w"}); err != nil {
		t.Fatal(err)
	}
	payload := `{"pad":"` + strings.Repeat("w", 16<<10) + `"}`
	deadline := time.Now().Add(20 * time.Second)
	for h.metric(t, "livehub_hub_connections") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("a socket whose peer stopped reading was never cut")
		}
		// More than loopback buffers hold, so a write blocks.
		for range 64 {
			h.publish(t, "live:w", payload)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := h.slowDisconnects(t); got != 0 {
		t.Fatalf("closed as slow (%v): the queue bound acted, not the write deadline", got)
	}
}

func TestSlowClient_ToldWhyWhenItsSocketStillTakesData(t *testing.T) {
	h := newTestHub(t, func(c *hub.Config) { c.MaxQueueBytes = 16 << 10 })
	c, _ := h.connect(t, "behind")
	if _, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:big"}); err != nil {
		t.Fatal(err)
	}
	// One publication larger than the whole queue: the connection is over
	// its bound at once, while its socket is perfectly writable.
	h.publish(t, "live:big", `{"pad":"`+strings.Repeat("b", 20<<10)+`"}`)
	if code, reason := waitClosed(t, c, 5*time.Second); code != 3008 || reason != "slow" {
		t.Fatalf("closed with %d %q, want 3008 \"slow\"", code, reason)
	}
	if got := h.slowDisconnects(t); got != 1 {
		t.Fatalf("slow disconnects %v, want 1", got)
	}
}

// unavailableVerifier stands for an identity provider that cannot be
// reached: no token can be checked.
type unavailableVerifier struct{}

func (unavailableVerifier) VerifyConnectToken(context.Context, string) (hub.Credentials, error) {
	return hub.Credentials{}, fmt.Errorf("%w: key set not reachable", hub.ErrVerifierUnavailable)
}

func (unavailableVerifier) VerifySubscribeToken(context.Context, string) (string, hub.Credentials, error) {
	return "", hub.Credentials{}, fmt.Errorf("%w: key set not reachable", hub.ErrVerifierUnavailable)
}

func TestConnect_VerifierUnavailableIsRetryable(t *testing.T) {
	h := newTestHub(t, func(c *hub.Config) { c.Tokens = unavailableVerifier{} })
	c := h.dial(t, protoclient.Options{})
	if _, err := c.Connect(ctxT(t), token(t, "u1", time.Hour)); err == nil {
		t.Fatal("connect accepted a token nobody could check")
	}
	// 3004 lets the SDKs reconnect later; 3500 would make them give up.
	if code, _ := waitClosed(t, c, 5*time.Second); code != 3004 {
		t.Fatalf("closed with %d, want 3004", code)
	}
}
