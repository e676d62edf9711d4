package ratelimit

import (
	"context"
	"slices"
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

// AllowAll implements Limiter. The shards of the keys are locked in order,
// so the decision is one step for every key.
func (m *Memory) AllowAll(_ context.Context, reqs []Request) (Decision, int, error) {
	shard := make([]int, len(reqs)) // -1 for a disabled limit
	var locked []int
	for i, r := range reqs {
		shard[i] = -1
		if r.Limit.Enabled() {
			shard[i] = int(fnv32(r.Key) % memoryShards)
			locked = append(locked, shard[i])
		}
	}
	slices.Sort(locked)
	locked = slices.Compact(locked)
	for _, i := range locked {
		m.shards[i].mu.Lock()
	}
	defer func() {
		for _, i := range locked {
			m.shards[i].mu.Unlock()
		}
	}()
	now := m.now()
	tats := make([]time.Time, len(reqs))
	for i, r := range reqs {
		if shard[i] < 0 {
			continue
		}
		d, tat := gcra(now, m.shards[shard[i]].tat[r.Key], r.Limit)
		if !d.Allowed {
			return d, i, nil
		}
		tats[i] = tat
	}
	for i, r := range reqs {
		if shard[i] < 0 {
			continue
		}
		s := &m.shards[shard[i]]
		s.tat[r.Key] = tats[i]
		if len(s.tat) >= s.sweepAt {
			s.sweepLocked(now)
		}
	}
	return Decision{Allowed: true}, -1, nil
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
