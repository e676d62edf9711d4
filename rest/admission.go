package rest

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/promreg"
)

// CheckoutAdmission bounds the checkouts one node works on at once. In a
// flash-sale spike more buyers tap "buy" than the node and its store can
// answer; without a bound every request waits its turn inside the node (for
// a Redis connection, for the CPU) and every buyer gets a slow answer, the
// last ones seconds late. With it, at most MaxInFlight checkouts run, at
// most as many more wait up to MaxWait for a place, and the rest are
// answered at once with 503 and Retry-After: nothing is reserved for them
// and the app retries with the same Idempotency-Key.
type CheckoutAdmission struct {
	// MaxInFlight is how many checkouts run at once; zero disables the
	// bound.
	MaxInFlight int
	// MaxWait is how long a checkout waits for a place before it is
	// refused; zero refuses at once when every place is taken.
	MaxWait time.Duration
	// RetryAfter is the Retry-After of a refusal; zero means 1 second.
	RetryAfter time.Duration
}

type admission struct {
	h          *v1
	slots      chan struct{}
	waiting    atomic.Int64
	maxWaiting int64
	wait       time.Duration
	retryAfter string
	shed       *prometheus.CounterVec
	inFlight   prometheus.Gauge
	queued     prometheus.Gauge
}

func newAdmission(a CheckoutAdmission, h *v1, reg prometheus.Registerer) *admission {
	ad := &admission{h: h, wait: a.MaxWait, maxWaiting: int64(a.MaxInFlight), retryAfter: "1"}
	if a.MaxInFlight > 0 {
		ad.slots = make(chan struct{}, a.MaxInFlight)
	}
	if a.RetryAfter > 0 {
		ad.retryAfter = strconv.Itoa(int((a.RetryAfter + time.Second - 1) / time.Second))
	}
	ad.shed = promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "livehub_rest_shed_total",
		Help: "REST requests refused with 503 because the node had too many of them in progress, by route and reason (full: every place and every waiting place taken; wait: no place freed within the wait).",
	}, []string{"route", "reason"}))
	ad.inFlight = promreg.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "livehub_rest_checkouts_in_flight",
		Help: "Checkouts the node is working on now (admitted, not answered yet).",
	}))
	ad.queued = promreg.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "livehub_rest_checkouts_waiting",
		Help: "Checkouts waiting for a place among those in flight.",
	}))
	return ad
}

// handle runs first on POST /v1/checkout, before the token check, the rate
// limits and the body: a refused request costs the node nothing but its
// answer.
func (a *admission) handle(c *gin.Context) {
	if a.slots == nil {
		c.Next()
		return
	}
	select {
	case a.slots <- struct{}{}:
	default:
		if !a.queue(c) {
			return
		}
	}
	a.inFlight.Inc()
	defer func() {
		a.inFlight.Dec()
		<-a.slots
	}()
	c.Next()
}

// queue waits for a place. It answers the request and returns false when
// none frees up in time.
func (a *admission) queue(c *gin.Context) bool {
	if a.waiting.Add(1) > a.maxWaiting || a.wait <= 0 {
		a.waiting.Add(-1)
		a.refuse(c, "full")
		return false
	}
	a.queued.Inc()
	defer func() {
		a.queued.Dec()
		a.waiting.Add(-1)
	}()
	t := time.NewTimer(a.wait)
	defer t.Stop()
	select {
	case a.slots <- struct{}{}:
		return true
	case <-t.C:
		a.refuse(c, "wait")
	case <-c.Request.Context().Done():
		// The buyer hung up while waiting: nothing was done for them.
		a.refuse(c, "wait")
	}
	return false
}

func (a *admission) refuse(c *gin.Context, reason string) {
	a.shed.WithLabelValues("checkout", reason).Inc()
	c.Header("Retry-After", a.retryAfter)
	// Not logged: under overload a line per refusal would add to it; the
	// counter tells.
	a.h.writeProblem(c, commerce.Errorf(commerce.EUNAVAILABLE, "this node has too many checkouts in progress; retry in a moment"))
	c.Abort()
}
