package room_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/centrifugal/protocol"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/hub/hubtest"
	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/hubauth"
	"github.com/livehub/livehub/internal/memstore"
	"github.com/livehub/livehub/internal/protoclient"
	"github.com/livehub/livehub/internal/room"
	"github.com/livehub/livehub/rest"
)

var testSecret = []byte("room-test-secret-of-enough-length")

// The cast of every test: the stream s1 is hosted by host1.
const (
	streamID  = "s1"
	hostID    = "host1"
	modID     = "mod1"
	otherHost = "host2"
	viewerID  = "v1"
	adminID   = "admin1"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// clock is a test clock that can jump ahead.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// env is one hub node with a room, its WebSocket endpoint and the room's
// REST routes behind one loopback server.
type env struct {
	reg   *prometheus.Registry
	node  *hub.Node
	room  *room.Room
	store *memstore.Store
	clock *clock
	srv   *httptest.Server
	wsURL string
}

type envOptions struct {
	// state of the room; nil means a MemoryState.
	state room.State
	// engine of the hub; nil means the memory engine.
	broker   hub.Broker
	presence hub.PresenceManager
	registry hub.NodeRegistry
	// store shared with other nodes; nil means a new one with the stream s1.
	store *memstore.Store
	clock *clock
	// room tweaks the room's configuration.
	room func(*room.Config)
}

// newStore returns a store holding the live stream s1 hosted by host1.
func newStore(t testing.TB) *memstore.Store {
	t.Helper()
	s := memstore.New(memstore.Options{})
	if err := s.CreateStream(context.Background(), commerce.Stream{
		ID: streamID, HostID: hostID, Title: "Flash Friday", State: commerce.StreamLive, CreatedAt: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	if o.store == nil {
		o.store = newStore(t)
	}
	if o.clock == nil {
		o.clock = &clock{}
	}
	reg := prometheus.NewRegistry()
	cfg := room.Config{
		Registerer:      reg,
		Streams:         o.store,
		State:           o.state,
		LikesInterval:   100 * time.Millisecond,
		ViewersInterval: 100 * time.Millisecond,
		StreamCacheTTL:  -1,
		Now:             o.clock.now,
		Logger:          quietLogger(),
	}
	if o.room != nil {
		o.room(&cfg)
	}
	rm, err := room.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{Secrets: [][]byte{testSecret}})
	if err != nil {
		t.Fatal(err)
	}
	node := hubtest.StartNode(t, hub.Config{
		Broker: o.broker, Presence: o.presence, Registry: o.registry,
		Tokens: hubauth.New(v), AllowAnonymous: true,
		Hooks: rm.Hooks(hub.Hooks{}),
		// The load test sends hundreds of taps a second per socket.
		CommandRate: 5000, CommandBurst: 5000,
		Logger: quietLogger(), ShutdownGrace: 20 * time.Millisecond,
		NodeInfoInterval: 100 * time.Millisecond,
	})
	rm.Bind(node)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); rm.Run(ctx) }()
	t.Cleanup(func() { stop(); wg.Wait() })

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	rest.MountRoom(r, rest.RoomOptions{Room: rm, Tokens: v, Logger: quietLogger()})
	r.GET("/connection/websocket", gin.WrapH(hub.NewWebSocketHandler(node, hub.HandlerOptions{})))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &env{
		reg: reg, node: node, room: rm, store: o.store, clock: o.clock, srv: srv,
		wsURL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/connection/websocket",
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rolesOf gives each test user the token roles the stories need.
func rolesOf(user string) []auth.Role {
	switch user {
	case hostID, otherHost:
		return []auth.Role{auth.RoleHost}
	case adminID:
		return []auth.Role{auth.RoleAdmin}
	}
	return []auth.Role{auth.RoleCustomer}
}

func token(t testing.TB, user string) string {
	t.Helper()
	tok, err := auth.Mint(testSecret, auth.Claims{Subject: user, Name: "Name of " + user, Roles: rolesOf(user)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// connect dials the node and signs in as user (anonymous when empty).
func (e *env) connect(t testing.TB, user string) *protoclient.Conn {
	t.Helper()
	tok := ""
	if user != "" {
		tok = token(t, user)
	}
	return hubtest.Connect(t, e.wsURL, tok)
}

// join connects user and subscribes to the stream's room.
func (e *env) join(t testing.TB, user string) *protoclient.Conn {
	t.Helper()
	c := e.connect(t, user)
	subscribe(t, c, "live:"+streamID)
	return c
}

func subscribe(t testing.TB, c *protoclient.Conn, channel string) {
	t.Helper()
	ctx := ctxT(t)
	for {
		_, err := c.Subscribe(ctx, &protocol.SubscribeRequest{Channel: channel})
		var re *protoclient.ReplyError
		// A node that just started on Redis may answer a temporary error.
		if errors.As(err, &re) && re.Code == hub.ErrorInternal.Code && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("subscribe %s: %v", channel, err)
		}
		return
	}
}

// say publishes a chat message and returns the error.
func say(t testing.TB, c *protoclient.Conn, text string) error {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"text": text})
	return c.Publish(ctxT(t), "live:"+streamID, b)
}

// event is a received envelope with its publication time.
type event struct {
	commerce.Event
	Time time.Time
}

// nextEvent waits for the next event of type typ on channel, skipping others.
func nextEvent(t testing.TB, c *protoclient.Conn, channel, typ string) event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case p, ok := <-c.Pushes():
			if !ok {
				code, reason := c.CloseStatus()
				t.Fatalf("connection closed (%d %s) waiting for %s on %s", code, reason, typ, channel)
			}
			if p.Channel != channel || p.Pub == nil {
				continue
			}
			var ev commerce.Event
			if err := json.Unmarshal(p.Pub.Data, &ev); err != nil {
				t.Fatalf("publication on %s is not an event: %s", channel, p.Pub.Data)
			}
			if ev.Type == typ {
				return event{Event: ev, Time: time.UnixMilli(p.Pub.Time)}
			}
		case <-timeout:
			t.Fatalf("no %s on %s within 10s", typ, channel)
		}
	}
}

// data decodes an event's data.
func decode[T any](t testing.TB, ev event) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(ev.Data, &v); err != nil {
		t.Fatalf("%s data %s: %v", ev.Type, ev.Data, err)
	}
	return v
}

func wantCode(t testing.TB, err error, code uint32, reason string) {
	t.Helper()
	var re *protoclient.ReplyError
	if !errors.As(err, &re) {
		t.Fatalf("want protocol error %d, got %v", code, err)
	}
	if re.Code != code {
		t.Fatalf("want protocol error %d, got %d (%s)", code, re.Code, re.Message)
	}
	if !strings.Contains(re.Message, reason) {
		t.Fatalf("error %d says %q, want it to mention %q", code, re.Message, reason)
	}
}

// call sends a REST request as user (no token when empty) and returns the
// status and the decoded body.
func (e *env) call(t testing.TB, user, method, path, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewReader([]byte(body))
	}
	req, err := http.NewRequestWithContext(ctxT(t), method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+token(t, user))
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: body is not a JSON object: %s", method, path, raw)
		}
	}
	if res.StatusCode >= 400 && res.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%s %s: error %d is %q, not application/problem+json", method, path, res.StatusCode, res.Header.Get("Content-Type"))
	}
	return res.StatusCode, out
}

// must sends a REST request that must answer want.
func (e *env) must(t testing.TB, want int, user, method, path, body string) map[string]any {
	t.Helper()
	status, out := e.call(t, user, method, path, body)
	if status != want {
		t.Fatalf("%s %s as %q: status %d, want %d: %v", method, path, user, status, want, out)
	}
	return out
}

// appoint makes mod1 a moderator of s1.
func (e *env) appoint(t testing.TB, user string) {
	t.Helper()
	e.must(t, http.StatusOK, hostID, "POST", "/v1/streams/s1/moderation/moderators", `{"user_id":"`+user+`"}`)
}

// roomState reads the room's whole state as the host sees it.
func (e *env) roomState(t testing.TB) room.Snapshot {
	t.Helper()
	s, err := e.room.Moderation(ctxT(t), room.Actor{UserID: hostID}, streamID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// metric returns the sum of a room metric's series whose labels include want.
func (e *env) metric(t testing.TB, name string, want map[string]string) float64 {
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
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := want[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}
