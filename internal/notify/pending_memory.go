package notify

import (
	"context"
	"errors"
	"sync"
	"time"
)

var _ PendingStore = (*MemoryPending)(nil)

// memorySweepEvery is the least time between two sweeps of expired marks.
const memorySweepEvery = 10 * time.Second

// MemoryPending is a PendingStore in the process's memory: it serves one
// node, where the app's acknowledgement reaches the node that published.
type MemoryPending struct {
	mu        sync.Mutex
	open      map[pendingKey]time.Time // expiry of each open window
	nextSweep time.Time
}

type pendingKey struct{ user, event string }

// NewMemoryPending returns an empty MemoryPending.
func NewMemoryPending() *MemoryPending {
	return &MemoryPending{open: make(map[pendingKey]time.Time)}
}

// Add opens the window of (userID, eventID) for ttl.
func (m *MemoryPending) Add(ctx context.Context, userID, eventID string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := checkPending(userID, eventID); err != nil {
		return false, err
	}
	if ttl <= 0 {
		return false, errors.New("notify: a pending window needs a positive ttl")
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked(now)
	k := pendingKey{userID, eventID}
	if exp, ok := m.open[k]; ok && exp.After(now) {
		return false, nil
	}
	m.open[k] = now.Add(ttl)
	return true, nil
}

// Ack closes the open windows among userID's eventIDs.
func (m *MemoryPending) Ack(ctx context.Context, userID string, eventIDs []string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, id := range eventIDs {
		if m.takeLocked(pendingKey{userID, id}, now) {
			n++
		}
	}
	return n, nil
}

// Take closes the window of (userID, eventID), reporting whether it was
// open.
func (m *MemoryPending) Take(ctx context.Context, userID, eventID string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := checkPending(userID, eventID); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.takeLocked(pendingKey{userID, eventID}, time.Now()), nil
}

// takeLocked deletes k and reports whether it was open. m.mu must be held.
func (m *MemoryPending) takeLocked(k pendingKey, now time.Time) bool {
	exp, ok := m.open[k]
	if !ok {
		return false
	}
	delete(m.open, k)
	return exp.After(now)
}

// sweepLocked drops expired marks, at most every memorySweepEvery, so the
// map holds about the windows of the last ttl. m.mu must be held.
func (m *MemoryPending) sweepLocked(now time.Time) {
	if now.Before(m.nextSweep) {
		return
	}
	m.nextSweep = now.Add(memorySweepEvery)
	for k, exp := range m.open {
		if !exp.After(now) {
			delete(m.open, k)
		}
	}
}
