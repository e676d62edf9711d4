// Package campaign lets viewers follow hosts and hosts notify their
// followers when they go live: a follower list per host, a campaign record per
// notification round, and a Service whose goroutines page through a host's
// followers and enqueue one push job per follower, reporting progress on the
// stream's studio channel.
//
// The memory implementations serve one node and tests; the Redis ones share
// follows, campaign records and the per-stream rate limit between nodes. Both
// pass the same test suite.
package campaign

import (
	"errors"
	"fmt"
	"time"

	"github.com/livehub/livehub/internal/commerce"
)

// State is where a campaign is.
type State string

// Campaign states.
const (
	// StateRunning: followers are still being queued.
	StateRunning State = "running"
	// StateDone: every follower reached was queued.
	StateDone State = "done"
	// StateFailed: the store or the queue kept failing and the campaign
	// stopped; Queued says how far it got.
	StateFailed State = "failed"
)

// Campaign is one round of notifications to a host's followers about a
// stream.
type Campaign struct {
	ID       string `json:"id"`
	StreamID string `json:"stream_id"`
	HostID   string `json:"host_id"`
	// Total is the number of followers when the campaign started; once
	// done, it is the number of followers the campaign reached, which
	// differs when some followed or unfollowed meanwhile.
	Total int64 `json:"total"`
	// Queued counts the push jobs enqueued so far.
	Queued    int64     `json:"queued"`
	State     State     `json:"state"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Actor is who asks: the signed-in user and the roles of the token.
type Actor struct {
	UserID string
	Roles  []string
}

// HasRole reports whether the actor holds role r.
func (a Actor) HasRole(r string) bool {
	for _, have := range a.Roles {
		if have == r {
			return true
		}
	}
	return false
}

// roleAdmin may act on any host's streams.
const roleAdmin = "admin"

// ErrNotFound is returned for an unknown campaign.
var ErrNotFound = &commerce.Error{Code: commerce.ENOTFOUND, Message: "no such campaign"}

// rateLimited carries how long a refused caller should wait. It travels as
// the cause of an ERATELIMIT commerce error, so it is never shown as text
// but the HTTP edge can read it for Retry-After.
type rateLimited struct{ wait time.Duration }

func (e *rateLimited) Error() string { return fmt.Sprintf("retry after %s", e.wait) }

// RetryAfter returns how long the caller refused with err should wait
// before trying again, when err says.
func RetryAfter(err error) (time.Duration, bool) {
	var rl *rateLimited
	if errors.As(err, &rl) {
		return rl.wait, true
	}
	return 0, false
}

func rateLimitError(window, wait time.Duration) error {
	return &commerce.Error{
		Code:    commerce.ERATELIMIT,
		Message: fmt.Sprintf("a stream may notify its followers once every %s; try again in %s", window, wait.Round(time.Second)),
		Err:     &rateLimited{wait: wait},
	}
}
