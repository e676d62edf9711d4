package push

import (
	"context"
	"sync"
	"time"
)

var _ Dedupe = (*MemoryDedupe)(nil)

// MemoryDedupe is a Dedupe in the process's memory: it catches duplicates
// that one node sees.
type MemoryDedupe struct {
	opts DedupeOptions

	mu        sync.Mutex
	marks     map[dedupeKey]dedupeMark
	nextSweep time.Time
}

type dedupeKey struct{ event, token string }

type dedupeMark struct {
	sent    bool
	expires time.Time
}

// NewMemoryDedupe returns an empty MemoryDedupe.
func NewMemoryDedupe(o DedupeOptions) *MemoryDedupe {
	return &MemoryDedupe{opts: o.withDefaults(), marks: make(map[dedupeKey]dedupeMark)}
}

// Claim claims eventID for each token not claimed or sent.
func (m *MemoryDedupe) Claim(ctx context.Context, eventID string, tokens []string) ([]ClaimState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked(now)
	out := make([]ClaimState, len(tokens))
	for i, t := range tokens {
		k := dedupeKey{eventID, t}
		mark, ok := m.marks[k]
		switch {
		case ok && mark.expires.After(now) && mark.sent:
			out[i] = AlreadySent
		case ok && mark.expires.After(now):
			out[i] = InFlight
		default:
			m.marks[k] = dedupeMark{expires: now.Add(m.opts.ClaimTTL)}
			out[i] = Claimed
		}
	}
	return out, nil
}

// Confirm marks eventID as sent to tokens.
func (m *MemoryDedupe) Confirm(ctx context.Context, eventID string, tokens []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	expires := time.Now().Add(m.opts.TTL)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range tokens {
		m.marks[dedupeKey{eventID, t}] = dedupeMark{sent: true, expires: expires}
	}
	return nil
}

// Release drops the claims of eventID on tokens.
func (m *MemoryDedupe) Release(ctx context.Context, eventID string, tokens []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range tokens {
		delete(m.marks, dedupeKey{eventID, t})
	}
	return nil
}

// sweepLocked drops expired marks, at most once per ClaimTTL, so the map
// holds about what the last TTL sent. m.mu must be held.
func (m *MemoryDedupe) sweepLocked(now time.Time) {
	if now.Before(m.nextSweep) {
		return
	}
	m.nextSweep = now.Add(m.opts.ClaimTTL)
	for k, mark := range m.marks {
		if !mark.expires.After(now) {
			delete(m.marks, k)
		}
	}
}
