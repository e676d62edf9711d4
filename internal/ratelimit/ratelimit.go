// Package ratelimit decides whether one more request under a key fits its
// rate. It implements the generic cell rate algorithm (GCRA): one number per
// key, the theoretical arrival time of the next request, so a limit costs
// the same memory whatever its burst. The memory implementation serves one
// node; the Redis one makes a limit shared by every node, so a bot spreading
// its requests over a load balancer gets the limit once, not once per node.
package ratelimit

import (
	"context"
	"fmt"
	"time"
)

// Limit is a sustained rate with a burst.
type Limit struct {
	// Rate is requests per second. Zero or less disables the limit.
	Rate float64
	// Burst is how many requests may arrive at once after a quiet period.
	// Zero or less means 1.
	Burst int
}

// Enabled reports whether the limit restricts anything.
func (l Limit) Enabled() bool { return l.Rate > 0 }

func (l Limit) String() string {
	if !l.Enabled() {
		return "off"
	}
	return fmt.Sprintf("%g/s burst %d", l.Rate, l.burst())
}

func (l Limit) burst() int { return max(l.Burst, 1) }

// interval is the time one request uses up.
func (l Limit) interval() time.Duration {
	return time.Duration(float64(time.Second) / l.Rate)
}

// Decision is the answer for one request.
type Decision struct {
	Allowed bool
	// RetryAfter, when the request is refused, is how long until one
	// request under the key fits again.
	RetryAfter time.Duration
}

// Limiter decides requests against a limit per key.
type Limiter interface {
	// Allow takes one request under key. A disabled limit allows all.
	Allow(ctx context.Context, key string, l Limit) (Decision, error)
	// AllowAll takes one request under every key, or under none: a request
	// counted against several limits (a buyer's and their address's) uses
	// up none of them when one refuses it. It returns the decision and, when
	// refused, the index of the first request that refused.
	AllowAll(ctx context.Context, reqs []Request) (Decision, int, error)
}

// Request is one key and its limit, for AllowAll.
type Request struct {
	Key   string
	Limit Limit
}

// gcra is the decision for a request at now given the stored theoretical
// arrival time tat (zero when the key is new). It returns the decision and
// the tat to store when allowed.
func gcra(now, tat time.Time, l Limit) (Decision, time.Time) {
	t := l.interval()
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(t)
	// The request fits while the schedule runs at most burst intervals ahead.
	if ahead := next.Sub(now); ahead > time.Duration(l.burst())*t {
		return Decision{RetryAfter: ahead - time.Duration(l.burst())*t}, tat
	}
	return Decision{Allowed: true}, next
}
