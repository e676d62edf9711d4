package tracking_test

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
	"sync/atomic"
	"testing"
	"time"

	"github.com/centrifugal/protocol"
	"github.com/gin-gonic/gin"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/hub/hubtest"
	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/hubauth"
	"github.com/livehub/livehub/internal/memstore"
	"github.com/livehub/livehub/internal/protoclient"
	"github.com/livehub/livehub/internal/redistest"
	"github.com/livehub/livehub/internal/tracking"
	"github.com/livehub/livehub/rest"
)

var testSecret = []byte("tracking-test-secret-of-enough-length")

// The cast: merchant1 hosts the stream; buyer1 bought ord1 (paid) and
// ord2 (not paid); courier1 is assigned to ord1.
const (
	merchantID = "merchant1"
	otherHost  = "merchant2"
	buyerID    = "buyer1"
	otherBuyer = "buyer2"
	courierID  = "courier1"
	otherCour  = "courier2"
	adminID    = "admin1"
	orderID    = "ord1"
	unpaidID   = "ord2"
)

// The delivery address, and a start about 2 km south of it.
const (
	addrLat  = -6.2000
	addrLng  = 106.8000
	startLat = -6.2180
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

type env struct {
	node    *hub.Node
	tracker *tracking.Tracker
	store   *memstore.Store
	clock   *clock
	srv     *httptest.Server
	wsURL   string
}

// stateKinds runs a test against the memory and the Redis state.
func stateKinds(t *testing.T, fn func(t *testing.T, newState func(t *testing.T) tracking.State)) {
	t.Run("memory", func(t *testing.T) {
		fn(t, func(*testing.T) tracking.State { return tracking.NewMemoryState() })
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		fn(t, func(t *testing.T) tracking.State {
			return tracking.NewRedisState(newRedisClient(t, srv.URL), tracking.RedisStateOptions{Prefix: keyPrefix()})
		})
	})
}

func newEnv(t *testing.T, state tracking.State, edit ...func(*tracking.Config)) *env {
	t.Helper()
	ck := &clock{}
	store := newStore(t)
	cfg := tracking.Config{Orders: store, State: state, Now: ck.now, Logger: quietLogger()}
	for _, e := range edit {
		e(&cfg)
	}
	tr, err := tracking.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{Secrets: [][]byte{testSecret}})
	if err != nil {
		t.Fatal(err)
	}
	node := hubtest.StartNode(t, hub.Config{
		Tokens: hubauth.New(v), Hooks: tr.Hooks(hub.Hooks{}),
		CommandRate: 1000, CommandBurst: 1000,
		Logger: quietLogger(), ShutdownGrace: 20 * time.Millisecond,
	})
	tr.Bind(node)
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	rest.MountTracking(r, rest.TrackingOptions{Tracker: tr, Tokens: v, Logger: quietLogger()})
	r.GET("/connection/websocket", gin.WrapH(hub.NewWebSocketHandler(node, hub.HandlerOptions{})))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &env{
		node: node, tracker: tr, store: store, clock: ck, srv: srv,
		wsURL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/connection/websocket",
	}
}

// newStore holds the stream, a sale, the paid order ord1 and the unpaid ord2.
func newStore(t *testing.T) *memstore.Store {
	t.Helper()
	ctx := context.Background()
	s := memstore.New(memstore.Options{})
	now := time.Now()
	must(t, s.CreateStream(ctx, commerce.Stream{ID: "s1", HostID: merchantID, Title: "Friday", State: commerce.StreamLive, CreatedAt: now}))
	must(t, s.CreateFlashSale(ctx, commerce.FlashSale{
		ID: "fs1", StreamID: "s1", HostID: merchantID, Product: commerce.Product{ID: "p1", Name: "Batik"},
		Price: 100000, Quantity: 10, PerUserLimit: 5, StartsAt: now.Add(-time.Minute), EndsAt: now.Add(time.Hour),
	}))
	for _, id := range []string{orderID, unpaidID} {
		_, err := s.Reserve(ctx, commerce.ReserveRequest{
			SaleID: "fs1", BuyerID: buyerID, Quantity: 1, OrderID: id, Now: now, ReservedUntil: now.Add(10 * time.Minute),
		})
		must(t, err)
	}
	_, err := s.MarkPaid(ctx, orderID, commerce.Payment{Gateway: "simulated", Status: "settlement"}, now)
	must(t, err)
	return s
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func rolesOf(user string) []auth.Role {
	switch user {
	case merchantID, otherHost:
		return []auth.Role{auth.RoleHost}
	case courierID, otherCour:
		return []auth.Role{auth.RoleCourier}
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

func (e *env) connect(t testing.TB, user string) *protoclient.Conn {
	t.Helper()
	return hubtest.Connect(t, e.wsURL, token(t, user))
}

func trySubscribe(t testing.TB, c *protoclient.Conn, channel string) (*protocol.SubscribeResult, error) {
	t.Helper()
	ctx := ctxT(t)
	for {
		res, err := c.Subscribe(ctx, &protocol.SubscribeRequest{Channel: channel})
		var re *protoclient.ReplyError
		if errors.As(err, &re) && re.Code == hub.ErrorInternal.Code && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		return res, err
	}
}

// follow connects user and subscribes to order:ord1.
func (e *env) follow(t testing.TB, user string) *protoclient.Conn {
	t.Helper()
	c := e.connect(t, user)
	if _, err := trySubscribe(t, c, "order:"+orderID); err != nil {
		t.Fatalf("%s subscribes to order:%s: %v", user, orderID, err)
	}
	return c
}

// point is a location dt seconds into the trip, north from the start at
// about 10 m/s.
func point(dt int) map[string]any {
	return map[string]any{
		"lat": startLat + float64(dt)*0.00009, "lng": addrLng, "accuracy": 8, "heading": 0, "speed": 10,
		"device_time": baseDeviceTime + int64(dt)*1000,
	}
}

const baseDeviceTime = 1_750_000_000_000

func publish(t testing.TB, c *protoclient.Conn, p any) error {
	t.Helper()
	b, _ := json.Marshal(p)
	return c.Publish(ctxT(t), "order:"+orderID, b)
}

type event struct{ commerce.Event }

// nextEvent waits for the next event of type typ on channel, skipping others.
func nextEvent(t testing.TB, c *protoclient.Conn, channel, typ string) event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case p, ok := <-c.Pushes():
			if !ok {
				t.Fatalf("connection closed waiting for %s on %s", typ, channel)
			}
			if p.Channel != channel || p.Pub == nil {
				continue
			}
			var ev commerce.Event
			if err := json.Unmarshal(p.Pub.Data, &ev); err != nil {
				t.Fatalf("publication on %s is not an event: %s", channel, p.Pub.Data)
			}
			if ev.Type == typ {
				return event{ev}
			}
		case <-timeout:
			t.Fatalf("no %s on %s within 10s", typ, channel)
		}
	}
}

// noEvent fails if an event of type typ arrives on channel within d.
func noEvent(t testing.TB, c *protoclient.Conn, channel, typ string, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case p := <-c.Pushes():
			if p == nil || p.Channel != channel || p.Pub == nil {
				continue
			}
			var ev commerce.Event
			_ = json.Unmarshal(p.Pub.Data, &ev)
			if ev.Type == typ {
				t.Fatalf("unexpected %s on %s: %s", typ, channel, ev.Data)
			}
		case <-timeout:
			return
		}
	}
}

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
	if re.Code != code || !strings.Contains(re.Message, reason) {
		t.Fatalf("want protocol error %d mentioning %q, got %d (%s)", code, reason, re.Code, re.Message)
	}
}

// call sends a REST request as user and returns the status and the body.
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
	req.Header.Set("Authorization", "Bearer "+token(t, user))
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

// assignCourier gives ord1 to courier as the merchant.
func (e *env) assignCourier(t testing.TB, courier string) {
	t.Helper()
	body := `{"courier_id":"` + courier + `","address":{"lat":-6.2,"lng":106.8,"text":"Jl. Sudirman 1"}}`
	if code, out := e.call(t, merchantID, "POST", "/v1/orders/"+orderID+"/courier", body); code != http.StatusOK {
		t.Fatalf("assign %s: %d %v", courier, code, out)
	}
}

func (e *env) setStatus(t testing.TB, user, status string) (int, map[string]any) {
	t.Helper()
	return e.call(t, user, "POST", "/v1/orders/"+orderID+"/status", `{"status":"`+status+`"}`)
}
