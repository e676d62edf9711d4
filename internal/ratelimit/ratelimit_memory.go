package ratelimit

import (
	"context"
	"sync"
	"time"
)

var _ Limiter = (*Memory)(nil)

const (
	memoryShards = 64
	// minSweep is the shard size at which passed keys are first swept.
	minSweep = 64
)

// Memory is a Limiter for one node. Keys whose schedule has passed hold no
// information and are swept as the map grows, so memory stays proportional
// to the keys active within their burst window.
type Memory struct {
	now    func() time.Time
	shards [memoryShards]memoryShard
}

type memoryShard struct {
	mu sync.Mutex
	// tat is each key's theoretical arrival time of the next request.
	tat map[string]time.Time
	// sweepAt is the size at which the next sweep runs.
	sweepAt int
}

// NewMemory returns an empty Memory limiter.
func NewMemory() *Memory {
	m := &Memory{now: time.Now}
	for i := range m.shards {
		m.shards[i].tat = make(map[string]time.Time)
		m.shards[i].sweepAt = minSweep
	}
	return m
}

// Allow implements Limiter.
func (m *Memory) Allow(_ context.Context, key string, l Limit) (Decision, error) {
	if !l.Enabled() {
		return Decision{Allowed: true}, nil
	}
	s := &m.shards[fnv32(key)%memoryShards]
	now := m.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	d, tat := gcra(now, s.tat[key], l)
	if d.Allowed {
		s.tat[key] = tat
		if len(s.tat) >= s.sweepAt {
			s.sweepLocked(now)
		}
	}
	return d, nil
}

// sweepLocked drops keys whose schedule is in the past: for them a stored
// time and no entry decide alike. s.mu must be held.
func (s *memoryShard) sweepLocked(now time.Time) {
	for k, t := range s.tat {
		if !t.After(now) {
			delete(s.tat, k)
		}
	}
	s.sweepAt = max(minSweep, 2*len(s.tat))
}

// len is the number of keys held, for tests.
func (m *Memory) len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.tat)
		s.mu.Unlock()
	}
	return n
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}
