package hub_test

import (
	"testing"
	"time"

	"github.com/centrifugal/protocol"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/protoclient"
)

// subToken mints a subscription token for user on channel; ttl zero mints
// one without expiry.
func subToken(t testing.TB, user, channel string, ttl time.Duration) string {
	t.Helper()
	tok, err := auth.Mint(testSecret, auth.Claims{Subject: user, Channel: channel}, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// expiredSubToken mints a subscription token that expired ago.
func expiredSubToken(t testing.TB, user, channel string, ago time.Duration) string {
	t.Helper()
	tok, err := auth.Mint(testSecret, auth.Claims{Subject: user, Channel: channel, ExpiresAt: time.Now().Add(-ago)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// pushWatch reads a connection's pushes in the background, so a test can
// both wait for a publication and know whether an unsubscribe came.
type pushWatch struct {
	pubs   chan *protocol.Push
	unsubs chan *protocol.Push
	done   chan struct{}
}

func watchPushes(t testing.TB, c *protoclient.Conn) *pushWatch {
	w := &pushWatch{
		pubs:   make(chan *protocol.Push, 64),
		unsubs: make(chan *protocol.Push, 16),
		done:   make(chan struct{}),
	}
	go func() {
		defer close(w.done)
		for p := range c.Pushes() {
			switch {
			case p.Pub != nil:
				w.pubs <- p
			case p.Unsubscribe != nil:
				w.unsubs <- p
			}
		}
	}()
	t.Cleanup(func() {
		c.CloseNow()
		<-w.done
	})
	return w
}

// pub waits for the next publication on channel, skipping others.
func (w *pushWatch) pub(t testing.TB, channel string) *protocol.Publication {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case p := <-w.pubs:
			if p.Channel == channel {
				return p.Pub
			}
		case <-timeout:
			t.Fatalf("no publication on %s within 5s", channel)
		}
	}
}

// noUnsubscribe fails when an unsubscribe push has arrived.
func (w *pushWatch) noUnsubscribe(t testing.TB) {
	t.Helper()
	select {
	case p := <-w.unsubs:
		t.Fatalf("unexpected unsubscribe push on %s: %d %s", p.Channel, p.Unsubscribe.Code, p.Unsubscribe.Reason)
	default:
	}
}

func subscribeWithToken(t testing.TB, c *protoclient.Conn, channel, tok string) *protocol.SubscribeResult {
	t.Helper()
	res, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: channel, Token: tok})
	if err != nil {
		t.Fatalf("subscribe %s: %v", channel, err)
	}
	return res
}

func TestSubRefresh_TTLInResultAndRefreshExtends(t *testing.T) {
	h := newTestHub(t, func(c *hub.Config) { c.ExpiredCloseDelay = 300 * time.Millisecond })
	c, _ := h.connect(t, "buyer", auth.RoleCustomer)
	w := watchPushes(t, c)

	res := subscribeWithToken(t, c, "order:r1", subToken(t, "buyer", "order:r1", 2*time.Second))
	if !res.Expires || res.Ttl < 1 || res.Ttl > 2 {
		t.Fatalf("subscribe result expires=%v ttl=%d, want expires with ttl 1..2", res.Expires, res.Ttl)
	}

	ref, err := c.SubRefresh(ctxT(t), "order:r1", subToken(t, "buyer", "order:r1", time.Hour))
	if err != nil {
		t.Fatalf("sub_refresh: %v", err)
	}
	if !ref.Expires || ref.Ttl < 3500 || ref.Ttl > 3600 {
		t.Fatalf("sub_refresh result expires=%v ttl=%d, want about 3600", ref.Expires, ref.Ttl)
	}

	// Past the first token's expiry and the close delay, the subscription
	// still delivers and was not ended.
	time.Sleep(3 * time.Second)
	h.publish(t, "order:r1", `{"status":"paid"}`)
	if p := w.pub(t, "order:r1"); string(p.Data) != `{"status":"paid"}` {
		t.Fatalf("publication data %s", p.Data)
	}
	w.noUnsubscribe(t)

	// A refresh with a token without expiry makes the subscription endless.
	ref, err = c.SubRefresh(ctxT(t), "order:r1", subToken(t, "buyer", "order:r1", 0))
	if err != nil {
		t.Fatalf("sub_refresh without exp: %v", err)
	}
	if ref.Expires || ref.Ttl != 0 {
		t.Fatalf("sub_refresh without exp: expires=%v ttl=%d", ref.Expires, ref.Ttl)
	}
}

func TestSubRefresh_Refusals(t *testing.T) {
	h := newTestHub(t, func(c *hub.Config) { c.ExpiredCloseDelay = time.Hour })
	c, _ := h.connect(t, "buyer", auth.RoleCustomer)

	// Not subscribed: 103.
	_, err := c.SubRefresh(ctxT(t), "order:x1", subToken(t, "buyer", "order:x1", time.Hour))
	wantCode(t, err, 103)

	subscribeWithToken(t, c, "order:x1", subToken(t, "buyer", "order:x1", time.Hour))
	// No token: 107.
	_, err = c.SubRefresh(ctxT(t), "order:x1", "")
	wantCode(t, err, 107)
	// Expired, beyond the verifier's leeway and within it: 110.
	_, err = c.SubRefresh(ctxT(t), "order:x1", expiredSubToken(t, "buyer", "order:x1", time.Minute))
	wantCode(t, err, 110)
	_, err = c.SubRefresh(ctxT(t), "order:x1", expiredSubToken(t, "buyer", "order:x1", 2*time.Second))
	wantCode(t, err, 110)
	// The refusals left the subscription and the connection as they were.
	h.publish(t, "order:x1", `{"n":1}`)
	if p := nextPub(t, c, "order:x1"); string(p.Data) != `{"n":1}` {
		t.Fatalf("publication data %s", p.Data)
	}

	// A subscribe token just past its expiry (inside the leeway) is expired
	// too, not a subscription that ends at once.
	_, err = c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "order:x2", Token: expiredSubToken(t, "buyer", "order:x2", 2*time.Second)})
	wantCode(t, err, 109)

	cases := []struct {
		name  string
		token func(t *testing.T) string
	}{
		{"token for another channel", func(t *testing.T) string { return subToken(t, "buyer", "order:x9", time.Hour) }},
		{"token of another user", func(t *testing.T) string { return subToken(t, "thief", "order:x1", time.Hour) }},
		{"connection token", func(t *testing.T) string { return token(t, "buyer", time.Hour) }},
		{"garbage", func(t *testing.T) string { return "not-a-jwt" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := h.connect(t, "buyer", auth.RoleCustomer)
			subscribeWithToken(t, c, "order:x1", subToken(t, "buyer", "order:x1", time.Hour))
			_, _ = c.SubRefresh(ctxT(t), "order:x1", tc.token(t))
			if code, _ := waitClosed(t, c, 5*time.Second); code != 3500 {
				t.Fatalf("close code %d, want 3500 invalid token", code)
			}
		})
	}

	t.Run("subscription without a token", func(t *testing.T) {
		c, _ := h.connect(t, "viewer", auth.RoleCustomer)
		if _, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:s1"}); err != nil {
			t.Fatal(err)
		}
		_, _ = c.SubRefresh(ctxT(t), "live:s1", subToken(t, "viewer", "live:s1", time.Hour))
		if code, _ := waitClosed(t, c, 5*time.Second); code != 3501 {
			t.Fatalf("close code %d, want 3501 bad request", code)
		}
	})
}

func TestSubRefresh_ExpiryWithoutRefreshUnsubscribes(t *testing.T) {
	h := newTestHub(t, func(c *hub.Config) { c.ExpiredCloseDelay = 200 * time.Millisecond })
	c, _ := h.connect(t, "buyer", auth.RoleCustomer)
	w := watchPushes(t, c)

	// Unaffected: a subscription token without expiry, and a subscription
	// without a token.
	if res := subscribeWithToken(t, c, "order:e2", subToken(t, "buyer", "order:e2", 0)); res.Expires || res.Ttl != 0 {
		t.Fatalf("token without exp: expires=%v ttl=%d", res.Expires, res.Ttl)
	}
	if res, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:e3"}); err != nil || res.Expires {
		t.Fatalf("plain subscribe: %+v %v", res, err)
	}
	res := subscribeWithToken(t, c, "order:e1", subToken(t, "buyer", "order:e1", 2*time.Second))
	if !res.Expires {
		t.Fatalf("subscribe result has no expiry: %+v", res)
	}

	select {
	case p := <-w.unsubs:
		if p.Channel != "order:e1" || p.Unsubscribe.Code != 2501 || p.Unsubscribe.Reason != "subscription expired" {
			t.Fatalf("unsubscribe push %s %d %q, want order:e1 2501 subscription expired", p.Channel, p.Unsubscribe.Code, p.Unsubscribe.Reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no unsubscribe push for the expired subscription within 10s")
	}

	// The node no longer delivers the expired channel, the others still
	// deliver, and the connection stays open.
	h.publish(t, "order:e1", `{"gone":true}`)
	h.publish(t, "order:e2", `{"n":2}`)
	h.publish(t, "live:e3", `{"n":3}`)
	for _, ch := range []string{"order:e2", "live:e3"} {
		w.pub(t, ch)
	}
	select {
	case p := <-w.pubs:
		t.Fatalf("unexpected publication on %s after expiry: %s", p.Channel, p.Pub.Data)
	default:
	}
	w.noUnsubscribe(t)
	if _, err := c.Call(ctxT(t), &protocol.Command{Ping: &protocol.PingRequest{}}); err != nil {
		t.Fatalf("connection closed after a subscription expired: %v", err)
	}
	// sub_refresh for the ended subscription is refused; subscribing again
	// with a fresh token works.
	_, err := c.SubRefresh(ctxT(t), "order:e1", subToken(t, "buyer", "order:e1", time.Hour))
	wantCode(t, err, 103)
	subscribeWithToken(t, c, "order:e1", subToken(t, "buyer", "order:e1", time.Hour))
}

// A connection that closes with a subscription expiry pending stops it: the
// node shuts down promptly and the timer does nothing afterwards.
func TestSubRefresh_CloseStopsExpiry(t *testing.T) {
	h := newTestHub(t, func(c *hub.Config) { c.ExpiredCloseDelay = 100 * time.Millisecond })
	c, _ := h.connect(t, "buyer", auth.RoleCustomer)
	subscribeWithToken(t, c, "order:c1", subToken(t, "buyer", "order:c1", 2*time.Second))
	c.CloseNow()
	waitFor(t, func() bool { return h.metric(t, "livehub_hub_connections") == 0 }, "connection gone")
}

func waitFor(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
