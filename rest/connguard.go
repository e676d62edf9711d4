package rest

import (
	"math"
	"net/http"
	"strconv"
	"sync"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/internal/promreg"
	"github.com/livehub/livehub/internal/ratelimit"
)

// ConnLimits bound the WebSocket handshakes of one client IP: how many
// sockets it may hold open on a node and how fast it may open new ones. A
// script opening thousands of sockets from one address is refused at the
// handshake, before any memory is spent on a connection.
type ConnLimits struct {
	// PerIP is the sockets one client IP may hold open on this node. Zero
	// disables the bound. Mobile carriers put many phones behind one
	// address, so keep it generous.
	PerIP int
	// Rate is the handshakes one client IP may start; it needs Limiter.
	Rate ratelimit.Limit
	// Limiter decides Rate; with Redis it is shared by every node. Nil
	// disables Rate.
	Limiter ratelimit.Limiter
}

type connGuard struct {
	l       ConnLimits
	refused *prometheus.CounterVec
	mu      sync.Mutex
	open    map[string]int // client IP -> sockets open on this node
}

func newConnGuard(l ConnLimits, reg prometheus.Registerer) *connGuard {
	return &connGuard{l: l, open: make(map[string]int), refused: promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "livehub_ws_refused_total",
		Help: "WebSocket handshakes refused before the upgrade, by reason (ip_connections, ip_rate).",
	}, []string{"reason"}))}
}

// handle guards the WebSocket handler.
func (g *connGuard) handle(c *gin.Context) {
	ip := c.ClientIP()
	if g.l.Limiter != nil && g.l.Rate.Enabled() {
		d, err := g.l.Limiter.Allow(c.Request.Context(), "ws:ip:"+ip, g.l.Rate)
		// A limiter outage lets handshakes through; the per-node bound
		// below still holds.
		if err == nil && !d.Allowed {
			g.refused.WithLabelValues("ip_rate").Inc()
			c.Header("Retry-After", strconv.Itoa(int(math.Ceil(d.RetryAfter.Seconds()))))
			c.String(http.StatusTooManyRequests, "too many connections opened from this address; retry later\n")
			c.Abort()
			return
		}
	}
	if !g.acquire(ip) {
		g.refused.WithLabelValues("ip_connections").Inc()
		c.Header("Retry-After", "5")
		c.String(http.StatusTooManyRequests, "too many open connections from this address\n")
		c.Abort()
		return
	}
	// The WebSocket handler returns once the socket is up; it frees the
	// address's slot when the socket closes (or at once if it opens none).
	c.Request = c.Request.WithContext(hub.OnSocketEnd(c.Request.Context(), func() { g.release(ip) }))
	c.Next()
}

func (g *connGuard) acquire(ip string) bool {
	if g.l.PerIP <= 0 {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open[ip] >= g.l.PerIP {
		return false
	}
	g.open[ip]++
	return true
}

func (g *connGuard) release(ip string) {
	if g.l.PerIP <= 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open[ip]--; g.open[ip] <= 0 {
		delete(g.open, ip)
	}
}
