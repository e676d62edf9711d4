package rest_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/internal/ratelimit"
	"github.com/livehub/livehub/rest"
)

// dialWS opens a socket to the server's hub endpoint; on a refused
// handshake it returns the HTTP response.
func dialWS(t *testing.T, s *v1Server) (*websocket.Conn, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.url, "http")+"/connection/websocket", nil)
	if err != nil {
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		return nil, resp
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c, resp
}

func withHub(l rest.ConnLimits, reg prometheus.Registerer) func(*rest.Options) {
	return func(o *rest.Options) {
		o.WebSocket = hub.NewWebSocketHandler(o.Node, hub.HandlerOptions{})
		o.ConnLimits = l
		o.Registerer = reg
	}
}

func TestConnGuard_OpenSocketsPerIPBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newV1Server(t, time.Minute, withHub(rest.ConnLimits{PerIP: 2}, reg))
	first, _ := dialWS(t, s)
	if c, resp := dialWS(t, s); c == nil {
		t.Fatalf("second socket refused: %d", resp.StatusCode)
	}
	if c, resp := dialWS(t, s); c != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third socket from one address: %v, want 429", resp.Status)
	}
	if got := counterValue(t, reg, "livehub_ws_refused_total", "reason", "ip_connections"); got != 1 {
		t.Fatalf("refusals counted: %v, want 1", got)
	}
	// A closed socket frees its place once the server has seen it go.
	_ = first.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, resp := dialWS(t, s)
		if c != nil {
			break
		}
		if resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("after closing one socket: %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConnGuard_HandshakeRatePerIP(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newV1Server(t, time.Minute, withHub(rest.ConnLimits{
		Limiter: ratelimit.NewMemory(), Rate: ratelimit.Limit{Rate: 0.001, Burst: 3},
	}, reg))
	for i := range 3 {
		if c, resp := dialWS(t, s); c == nil {
			t.Fatalf("handshake %d within the burst refused: %d", i+1, resp.StatusCode)
		}
	}
	c, resp := dialWS(t, s)
	if c != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("handshake past the burst: %v, want 429", resp.Status)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q, want whole seconds", resp.Header.Get("Retry-After"))
	}
	if got := counterValue(t, reg, "livehub_ws_refused_total", "reason", "ip_rate"); got != 1 {
		t.Fatalf("refusals counted: %v, want 1", got)
	}
}

// counterValue sums the counter name's series whose label has value.
func counterValue(t *testing.T, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}
