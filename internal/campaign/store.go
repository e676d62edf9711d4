package campaign

import (
	"context"
	"time"
)

// Store keeps campaign records and the per-stream rate limit.
type Store interface {
	// Claim reserves the stream's next campaign for window: it returns
	// zero when the caller may start one, and otherwise how long until
	// the stream's current window ends. Between nodes on Redis, one claim
	// of a window wins.
	Claim(ctx context.Context, streamID string, window time.Duration, now time.Time) (wait time.Duration, err error)
	// Release gives back a claim whose campaign could not be created, so
	// a failure does not cost the host a window.
	Release(ctx context.Context, streamID string) error
	// Create stores a new campaign.
	Create(ctx context.Context, c Campaign) error
	// Get returns a campaign, ErrNotFound when there is none.
	Get(ctx context.Context, id string) (Campaign, error)
	// Progress records a campaign's progress: its queued count, its total
	// and its state, at updatedAt. An unknown id is ErrNotFound.
	Progress(ctx context.Context, id string, queued, total int64, state State, updatedAt time.Time) error
}
