package rest

import (
	"context"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/promreg"
	"github.com/livehub/livehub/internal/ratelimit"
)

// CheckoutLimits bound how fast one buyer and one client IP may call
// POST /v1/checkout. Bots hammering a flash sale hit these before they reach
// the stock script; a refused call is 429 with Retry-After and changes
// nothing.
type CheckoutLimits struct {
	// Limiter decides; nil disables both limits. With Redis configured it is
	// shared by every node, so spreading requests over nodes gains nothing.
	Limiter ratelimit.Limiter
	// PerUser is the limit per authenticated buyer.
	PerUser ratelimit.Limit
	// PerIP is the limit per client IP (after trusted proxies). Mobile
	// carriers put many buyers behind one address, so keep it generous.
	PerIP ratelimit.Limit
}

type checkoutGuard struct {
	l       CheckoutLimits
	h       *v1
	refused *prometheus.CounterVec
	// errLog keeps a limiter outage to one log line a minute.
	errMu   sync.Mutex
	errLast time.Time
}

func newCheckoutGuard(l CheckoutLimits, h *v1, reg prometheus.Registerer) *checkoutGuard {
	return &checkoutGuard{l: l, h: h, refused: promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "livehub_rest_rate_limited_total",
		Help: "REST requests refused with 429, by route and by the limit that refused them.",
	}, []string{"route", "scope"}))}
}

// handle runs before the checkout handler. Both limits take the request or
// neither does (one round trip on Redis). A limiter that fails (Redis down)
// lets the request through: the checkout itself then decides, and refusing
// every buyer because a guard is unreachable would be worse.
func (g *checkoutGuard) handle(c *gin.Context) {
	if g.l.Limiter == nil {
		c.Next()
		return
	}
	ctx := c.Request.Context()
	scopes := [2]string{"user", "ip"}
	d, refused, err := g.l.Limiter.AllowAll(ctx, []ratelimit.Request{
		{Key: "checkout:u:" + actor(c).UserID, Limit: g.l.PerUser},
		{Key: "checkout:ip:" + c.ClientIP(), Limit: g.l.PerIP},
	})
	if err != nil {
		g.logError(ctx, err)
		c.Next()
		return
	}
	if !d.Allowed {
		scope := scopes[refused]
		g.refused.WithLabelValues("checkout", scope).Inc()
		c.Header("Retry-After", strconv.Itoa(int(math.Ceil(d.RetryAfter.Seconds()))))
		g.h.problem(c, commerce.Errorf(commerce.ERATELIMIT, "too many checkout requests from this %s; retry later", scopeNoun(scope)))
		c.Abort()
		return
	}
	c.Next()
}

func scopeNoun(scope string) string {
	if scope == "ip" {
		return "address"
	}
	return "account"
}

func (g *checkoutGuard) logError(ctx context.Context, err error) {
	g.errMu.Lock()
	defer g.errMu.Unlock()
	if time.Since(g.errLast) < time.Minute {
		return
	}
	g.errLast = time.Now()
	g.h.log.WarnContext(ctx, "checkout rate limiter unavailable; requests pass unlimited", "err", err)
}
