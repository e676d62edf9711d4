package rest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/centrifugal/protocol"
	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/hub/hubtest"
	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/hubauth"
	"github.com/livehub/livehub/internal/protoclient"
	"github.com/livehub/livehub/rest"
)

var testSecret = []byte("rest-test-secret-of-enough-length")

const testAPIKey = "test-api-key"

// testServer is a running node behind rest.New on loopback.
type testServer struct {
	node  *hub.Node
	srv   *httptest.Server
	reg   *prometheus.Registry
	key   string
	wsURL string
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testNamespaces are the built-in ones plus "plain", which keeps neither
// history nor presence.
func testNamespaces() []hub.NamespaceOptions {
	return append(hub.DefaultNamespaces(), hub.NamespaceOptions{Name: "plain", Anonymous: true})
}

// newNode builds and runs a node on the memory engine; Shutdown is a cleanup.
func newNode(t testing.TB, reg prometheus.Registerer) *hub.Node {
	t.Helper()
	v, err := auth.NewVerifier(auth.VerifierConfig{Secrets: [][]byte{testSecret}})
	if err != nil {
		t.Fatal(err)
	}
	return hubtest.StartNode(t, hub.Config{
		Version:          "test-version",
		Namespaces:       testNamespaces(),
		Tokens:           hubauth.New(v),
		AllowAnonymous:   true,
		Logger:           quietLogger(),
		ShutdownGrace:    50 * time.Millisecond,
		NodeInfoInterval: 50 * time.Millisecond,
		Registerer:       reg,
	})
}

// newTestServer starts the HTTP edge; mutate adjusts its options.
func newTestServer(t testing.TB, mutate func(*rest.Options)) *testServer {
	t.Helper()
	reg := prometheus.NewRegistry()
	n := newNode(t, reg)
	o := rest.Options{
		Node:      n,
		WebSocket: hub.NewWebSocketHandler(n, hub.HandlerOptions{}),
		APIKey:    testAPIKey,
		Gatherer:  reg,
		Logger:    quietLogger(),
	}
	if mutate != nil {
		mutate(&o)
	}
	srv := httptest.NewServer(rest.New(o))
	// Registered after the node's cleanup, so it runs first: the server
	// stops taking requests, then the node drains.
	t.Cleanup(srv.Close)
	return &testServer{
		node:  n,
		srv:   srv,
		reg:   reg,
		key:   o.APIKey,
		wsURL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/connection/websocket",
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// apiReply is the envelope of every server API answer.
type apiReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    uint32 `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// post sends body to path with the given headers and returns the status and raw body.
func (s *testServer) post(t testing.TB, path string, body []byte, header http.Header) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, s.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// call posts body to /api/<method> with the API key and decodes the envelope.
func (s *testServer) call(t testing.TB, method, body string) (int, apiReply) {
	t.Helper()
	status, raw := s.post(t, "/api/"+method, []byte(body), http.Header{"X-Api-Key": {s.key}})
	var r apiReply
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%s: response is not JSON (%d): %q", method, status, raw)
	}
	return status, r
}

// ok calls method, requires a result and decodes it into v (when not nil).
func (s *testServer) ok(t testing.TB, method, body string, v any) {
	t.Helper()
	status, r := s.call(t, method, body)
	if status != http.StatusOK || r.Error != nil || r.Result == nil {
		t.Fatalf("%s %s: status %d, error %+v, result %s", method, body, status, r.Error, r.Result)
	}
	if v != nil {
		if err := json.Unmarshal(r.Result, v); err != nil {
			t.Fatalf("%s: result %s: %v", method, r.Result, err)
		}
	}
}

func (s *testServer) get(t testing.TB, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodGet, s.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func token(t testing.TB, sub string, roles ...auth.Role) string {
	t.Helper()
	tok, err := auth.Mint(testSecret, auth.Claims{Subject: sub, Roles: roles}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// connect opens a socket through the HTTP edge and authenticates as sub.
func (s *testServer) connect(t testing.TB, sub string, roles ...auth.Role) (*protoclient.Conn, *protocol.ConnectResult) {
	t.Helper()
	c, err := protoclient.Dial(ctxT(t), s.wsURL, protoclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseNow)
	res, err := c.Connect(ctxT(t), token(t, sub, roles...))
	if err != nil {
		t.Fatalf("connect %s: %v", sub, err)
	}
	return c, res
}

func subscribe(t testing.TB, c *protoclient.Conn, channel string) *protocol.SubscribeResult {
	t.Helper()
	res, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: channel})
	if err != nil {
		t.Fatalf("subscribe %s: %v", channel, err)
	}
	return res
}

// nextPush waits for the next push on channel that match accepts, skipping others.
func nextPush(t testing.TB, c *protoclient.Conn, channel string, what string, match func(*protocol.Push) bool) *protocol.Push {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case p, ok := <-c.Pushes():
			if !ok {
				code, reason := c.CloseStatus()
				t.Fatalf("connection closed (%d %s) while waiting for %s on %s", code, reason, what, channel)
			}
			if p.Channel == channel && match(p) {
				return p
			}
		case <-timeout:
			t.Fatalf("no %s on %s within 5s", what, channel)
		}
	}
}

func nextPub(t testing.TB, c *protoclient.Conn, channel string) *protocol.Publication {
	t.Helper()
	return nextPush(t, c, channel, "publication", func(p *protocol.Push) bool { return p.Pub != nil }).Pub
}

// noPub asserts no publication arrives on channel within wait.
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

// waitClosed waits for the server to close c and returns its close status.
func waitClosed(t testing.TB, c *protoclient.Conn) (websocket.StatusCode, string) {
	t.Helper()
	select {
	case <-c.Done():
		return c.CloseStatus()
	case <-time.After(5 * time.Second):
		t.Fatal("connection still open after 5s")
		return 0, ""
	}
}

// gauge reads a metric line "name value" from a Prometheus text exposition.
func gauge(t testing.TB, exposition, name string) (float64, bool) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(exposition))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return v, true
		}
	}
	return 0, false
}

func TestHealthz_AlwaysOK(t *testing.T) {
	s := newTestServer(t, nil)
	if status, body := s.get(t, "/healthz"); status != http.StatusOK || !strings.Contains(body, `"ok"`) {
		t.Fatalf("/healthz: %d %s", status, body)
	}
	if err := s.node.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	// A draining process is still alive: liveness must not fail.
	if status, body := s.get(t, "/healthz"); status != http.StatusOK {
		t.Fatalf("/healthz while draining: %d %s", status, body)
	}
}

func TestReadyz_ReadyThenUnavailableAfterShutdown(t *testing.T) {
	s := newTestServer(t, nil)
	if status, body := s.get(t, "/readyz"); status != http.StatusOK || !strings.Contains(body, `"ready"`) {
		t.Fatalf("/readyz: %d %s", status, body)
	}
	if err := s.node.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if status, body := s.get(t, "/readyz"); status != http.StatusServiceUnavailable || !strings.Contains(body, `"draining"`) {
		t.Fatalf("/readyz after shutdown: %d %s, want 503 draining", status, body)
	}
}

func TestMetrics_ExposesConnectionsGauge(t *testing.T) {
	s := newTestServer(t, nil)
	c, _ := s.connect(t, "u1")
	status, body := s.get(t, "/metrics")
	if status != http.StatusOK {
		t.Fatalf("/metrics: %d", status)
	}
	if v, ok := gauge(t, body, "livehub_hub_connections"); !ok || v != 1 {
		t.Fatalf("livehub_hub_connections = %v (present %v), want 1\n%s", v, ok, body)
	}
	c.CloseNow()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, body := s.get(t, "/metrics")
		if v, _ := gauge(t, body, "livehub_hub_connections"); v == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("livehub_hub_connections did not drop to 0 after the socket closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWebSocket_MountedAtConnectionPath(t *testing.T) {
	s := newTestServer(t, nil)
	c, res := s.connect(t, "u1")
	if res.Client == "" {
		t.Fatalf("connect result without client id: %+v", res)
	}
	subscribe(t, c, "live:ws")
	if _, err := s.node.Publish(ctxT(t), "live:ws", []byte(`{"ok":1}`), hub.PublishRequest{}); err != nil {
		t.Fatal(err)
	}
	if p := nextPub(t, c, "live:ws"); string(p.Data) != `{"ok":1}` {
		t.Fatalf("got %s", p.Data)
	}
}

func TestStatic_ServesUnclaimedPathsOnly(t *testing.T) {
	static := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "ui:"+r.URL.Path)
	})
	s := newTestServer(t, func(o *rest.Options) { o.Static = static })
	if status, body := s.get(t, "/app/index.html"); status != http.StatusOK || body != "ui:/app/index.html" {
		t.Fatalf("static: %d %q", status, body)
	}
	if status, body := s.get(t, "/healthz"); status != http.StatusOK || strings.HasPrefix(body, "ui:") {
		t.Fatalf("/healthz taken by static: %d %q", status, body)
	}
	status, raw := s.post(t, "/api/info", nil, http.Header{"X-Api-Key": {s.key}})
	if status != http.StatusOK || strings.HasPrefix(string(raw), "ui:") {
		t.Fatalf("/api/info taken by static: %d %q", status, raw)
	}

	bare := newTestServer(t, nil)
	if status, _ := bare.get(t, "/app/index.html"); status != http.StatusNotFound {
		t.Fatalf("without static, unknown path: %d, want 404", status)
	}
}

// An http.Handler that writes without calling WriteHeader answers 200.
func TestStatic_ImplicitStatusIsOK(t *testing.T) {
	static := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "<!doctype html>")
	})
	s := newTestServer(t, func(o *rest.Options) { o.Static = static })
	if status, body := s.get(t, "/shop/cart"); status != http.StatusOK || body != "<!doctype html>" {
		t.Fatalf("static without WriteHeader: %d %q, want 200", status, body)
	}
}

func TestAPI_WrongHTTPMethodRefused(t *testing.T) {
	s := newTestServer(t, nil)
	if status, _ := s.get(t, "/api/publish"); status != http.StatusMethodNotAllowed {
		t.Fatalf("GET /api/publish: %d, want 405", status)
	}
}
