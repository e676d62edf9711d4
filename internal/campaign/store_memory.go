package campaign

import (
	"context"
	"sync"
	"time"
)

var _ Store = (*MemoryStore)(nil)

// MemoryStore is a Store in the process's memory, for one node and tests.
// It keeps every campaign for the life of the process.
type MemoryStore struct {
	mu        sync.Mutex
	campaigns map[string]Campaign
	// windows holds, per stream, when its current window ends.
	windows map[string]time.Time
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{campaigns: make(map[string]Campaign), windows: make(map[string]time.Time)}
}

// Claim reserves the stream's next campaign for window.
func (s *MemoryStore) Claim(ctx context.Context, streamID string, window time.Duration, now time.Time) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if end, ok := s.windows[streamID]; ok && end.After(now) {
		return end.Sub(now), nil
	}
	for id, end := range s.windows {
		// Ended windows go, so the map holds only streams notified lately.
		if !end.After(now) {
			delete(s.windows, id)
		}
	}
	s.windows[streamID] = now.Add(window)
	return 0, nil
}

// Release gives back the stream's claim.
func (s *MemoryStore) Release(ctx context.Context, streamID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.windows, streamID)
	return nil
}

// Create stores a new campaign.
func (s *MemoryStore) Create(ctx context.Context, c Campaign) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.campaigns[c.ID] = c
	return nil
}

// Get returns a campaign.
func (s *MemoryStore) Get(ctx context.Context, id string) (Campaign, error) {
	if err := ctx.Err(); err != nil {
		return Campaign{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.campaigns[id]
	if !ok {
		return Campaign{}, ErrNotFound
	}
	return c, nil
}

// Progress records a campaign's progress.
func (s *MemoryStore) Progress(ctx context.Context, id string, queued, total int64, state State, updatedAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.campaigns[id]
	if !ok {
		return ErrNotFound
	}
	c.Queued, c.Total, c.State, c.UpdatedAt = queued, total, state, updatedAt.UTC()
	s.campaigns[id] = c
	return nil
}
