package push

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

var _ DeviceStore = (*MemoryDeviceStore)(nil)

// MemoryDeviceStore is a DeviceStore in the process's memory.
type MemoryDeviceStore struct {
	mu      sync.Mutex
	byToken map[string]Device
	byUser  map[string]map[string]struct{}
}

// NewMemoryDeviceStore returns an empty MemoryDeviceStore.
func NewMemoryDeviceStore() *MemoryDeviceStore {
	return &MemoryDeviceStore{
		byToken: make(map[string]Device),
		byUser:  make(map[string]map[string]struct{}),
	}
}

// Register adds or replaces d.
func (s *MemoryDeviceStore) Register(ctx context.Context, d Device) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := d.Validate(); err != nil {
		return err
	}
	d = normalizeDevice(d, time.Now())
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.byToken[d.Token]; ok && old.UserID != d.UserID {
		s.dropLocked(old.UserID, d.Token)
	}
	s.byToken[d.Token] = d
	tokens := s.byUser[d.UserID]
	if tokens == nil {
		tokens = make(map[string]struct{})
		s.byUser[d.UserID] = tokens
	}
	tokens[d.Token] = struct{}{}
	return nil
}

// Unregister forgets token if userID owns it.
func (s *MemoryDeviceStore) Unregister(ctx context.Context, userID, token string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.byToken[token]; ok && d.UserID == userID {
		delete(s.byToken, token)
		s.dropLocked(userID, token)
	}
	return nil
}

// List returns userID's devices ordered by token.
func (s *MemoryDeviceStore) List(ctx context.Context, userID string) ([]Device, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Device, 0, len(s.byUser[userID]))
	for token := range s.byUser[userID] {
		out = append(out, s.byToken[token])
	}
	slices.SortFunc(out, func(a, b Device) int { return strings.Compare(a.Token, b.Token) })
	return out, nil
}

// Remove forgets token whoever owns it.
func (s *MemoryDeviceStore) Remove(ctx context.Context, token string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.byToken[token]; ok {
		delete(s.byToken, token)
		s.dropLocked(d.UserID, token)
	}
	return nil
}

// dropLocked removes token from userID's set. s.mu must be held.
func (s *MemoryDeviceStore) dropLocked(userID, token string) {
	tokens := s.byUser[userID]
	delete(tokens, token)
	if len(tokens) == 0 {
		delete(s.byUser, userID)
	}
}

// normalizeDevice sets a zero UpdatedAt to now and keeps times in UTC at
// millisecond precision, as the Redis store does.
func normalizeDevice(d Device, now time.Time) Device {
	if d.UpdatedAt.IsZero() {
		d.UpdatedAt = now
	}
	d.UpdatedAt = d.UpdatedAt.UTC().Truncate(time.Millisecond)
	return d
}
