package room

import (
	"context"
	"slices"
	"sync"
	"time"
)

var _ State = (*MemoryState)(nil)

// slowPruneAt is the number of remembered senders of one room above which a
// chat check drops those whose slow-mode interval is over, so the map stays
// about the size of the room's active chatters.
const slowPruneAt = 4096

// MemoryState is a State in memory for a single node. Every call is one
// critical section. Nothing survives a restart.
type MemoryState struct {
	// mu guards rooms and everything in them.
	mu    sync.Mutex
	rooms map[string]*memRoom
}

type memRoom struct {
	mods          map[string]struct{}
	mutes         map[string]time.Time
	bans          map[string]struct{}
	slow          int
	words         map[string]struct{}
	mode          WordMode
	pinnedMessage *PinnedMessage
	pinnedProduct *PinnedProduct
	likes         int64
	peak          int
	// lastChat is when each sender's slow-mode interval started.
	lastChat  map[string]time.Time
	announced map[string]announced
}

type announced struct {
	value int64
	at    time.Time
}

// NewMemoryState returns an empty MemoryState.
func NewMemoryState() *MemoryState {
	return &MemoryState{rooms: make(map[string]*memRoom)}
}

// roomLocked returns the stream's room, creating it. s.mu must be held.
func (s *MemoryState) roomLocked(stream string) *memRoom {
	r, ok := s.rooms[stream]
	if !ok {
		r = &memRoom{
			mods:      make(map[string]struct{}),
			mutes:     make(map[string]time.Time),
			bans:      make(map[string]struct{}),
			words:     make(map[string]struct{}),
			mode:      WordsReject,
			lastChat:  make(map[string]time.Time),
			announced: make(map[string]announced),
		}
		s.rooms[stream] = r
	}
	return r
}

func (s *MemoryState) with(stream string, f func(r *memRoom)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s.roomLocked(stream))
	return nil
}

// AddModerator implements State.
func (s *MemoryState) AddModerator(_ context.Context, stream, user string) error {
	return s.with(stream, func(r *memRoom) { r.mods[user] = struct{}{} })
}

// RemoveModerator implements State.
func (s *MemoryState) RemoveModerator(_ context.Context, stream, user string) error {
	return s.with(stream, func(r *memRoom) { delete(r.mods, user) })
}

// IsModerator implements State.
func (s *MemoryState) IsModerator(_ context.Context, stream, user string) (bool, error) {
	var ok bool
	err := s.with(stream, func(r *memRoom) { _, ok = r.mods[user] })
	return ok, err
}

// Mute implements State.
func (s *MemoryState) Mute(_ context.Context, stream, user string, until time.Time) error {
	return s.with(stream, func(r *memRoom) { r.mutes[user] = until })
}

// Unmute implements State.
func (s *MemoryState) Unmute(_ context.Context, stream, user string) error {
	return s.with(stream, func(r *memRoom) { delete(r.mutes, user) })
}

// Ban implements State.
func (s *MemoryState) Ban(_ context.Context, stream, user string) error {
	return s.with(stream, func(r *memRoom) { r.bans[user] = struct{}{} })
}

// Unban implements State.
func (s *MemoryState) Unban(_ context.Context, stream, user string) error {
	return s.with(stream, func(r *memRoom) { delete(r.bans, user) })
}

// SetSlowMode implements State.
func (s *MemoryState) SetSlowMode(_ context.Context, stream string, seconds int) error {
	return s.with(stream, func(r *memRoom) { r.slow = seconds })
}

// SetMutedWords implements State.
func (s *MemoryState) SetMutedWords(_ context.Context, stream string, words []string, mode WordMode) error {
	return s.with(stream, func(r *memRoom) {
		r.words = make(map[string]struct{}, len(words))
		for _, w := range words {
			r.words[w] = struct{}{}
		}
		r.mode = mode
	})
}

// SetPinnedMessage implements State.
func (s *MemoryState) SetPinnedMessage(_ context.Context, stream string, m *PinnedMessage) error {
	return s.with(stream, func(r *memRoom) {
		if m != nil {
			c := *m
			m = &c
		}
		r.pinnedMessage = m
	})
}

// SetPinnedProduct implements State.
func (s *MemoryState) SetPinnedProduct(_ context.Context, stream string, p *PinnedProduct) error {
	return s.with(stream, func(r *memRoom) { r.pinnedProduct = copyProduct(p) })
}

func copyProduct(p *PinnedProduct) *PinnedProduct {
	if p == nil {
		return nil
	}
	c := *p
	if p.Stock != nil {
		n := *p.Stock
		c.Stock = &n
	}
	return &c
}

// CheckChat implements State.
func (s *MemoryState) CheckChat(_ context.Context, c ChatCheck) (ChatVerdict, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.roomLocked(c.Stream)
	var v ChatVerdict
	if _, ok := r.bans[c.User]; ok {
		v.Banned = true
		return v, nil
	}
	if until, ok := r.mutes[c.User]; ok {
		if until.After(c.Now) {
			v.MutedUntil = until
			return v, nil
		}
		delete(r.mutes, c.User)
	}
	_, v.Moderator = r.mods[c.User]
	slow := time.Duration(r.slow) * time.Second
	limited := slow > 0 && !c.Exempt && !v.Moderator
	if limited {
		if last, ok := r.lastChat[c.User]; ok {
			if wait := last.Add(slow).Sub(c.Now); wait > 0 {
				v.Wait = wait
				return v, nil
			}
		}
	}
	v.Mode = r.mode
	for _, w := range c.Words {
		if _, ok := r.words[w]; ok {
			v.Matched = append(v.Matched, w)
		}
	}
	if !v.Allowed() {
		return v, nil
	}
	if limited {
		if len(r.lastChat) >= slowPruneAt {
			for u, t := range r.lastChat {
				if !t.Add(slow).After(c.Now) {
					delete(r.lastChat, u)
				}
			}
		}
		r.lastChat[c.User] = c.Now
	}
	return v, nil
}

// AddLikes implements State.
func (s *MemoryState) AddLikes(_ context.Context, stream string, n int64) (int64, error) {
	var total int64
	err := s.with(stream, func(r *memRoom) {
		r.likes += n
		total = r.likes
	})
	return total, err
}

// RecordViewers implements State.
func (s *MemoryState) RecordViewers(_ context.Context, stream string, count int) (int, error) {
	var peak int
	err := s.with(stream, func(r *memRoom) {
		r.peak = max(r.peak, count)
		peak = r.peak
	})
	return peak, err
}

// ClaimAnnouncement implements State. One node needs no lock between nodes:
// a changed value is always claimed.
func (s *MemoryState) ClaimAnnouncement(_ context.Context, stream, topic string, value int64, _ time.Duration, now time.Time) (Announcement, error) {
	var a Announcement
	err := s.with(stream, func(r *memRoom) {
		prev, ok := r.announced[topic]
		a.Previous, a.PreviousAt = prev.value, prev.at
		if ok && prev.value == value {
			return
		}
		a.Changed, a.Claimed = true, true
		r.announced[topic] = announced{value: value, at: now}
	})
	return a, err
}

// Snapshot implements State.
func (s *MemoryState) Snapshot(_ context.Context, stream string, now time.Time) (Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.roomLocked(stream)
	snap := Snapshot{
		Moderators:      sortedKeys(r.mods),
		Bans:            sortedKeys(r.bans),
		MutedWords:      sortedKeys(r.words),
		SlowModeSeconds: r.slow,
		WordMode:        r.mode,
		Likes:           r.likes,
		ViewerPeak:      r.peak,
		Mutes:           []Mute{},
	}
	for u, until := range r.mutes {
		if until.After(now) {
			snap.Mutes = append(snap.Mutes, Mute{UserID: u, Until: until})
		}
	}
	sortMutes(snap.Mutes)
	if r.pinnedMessage != nil {
		m := *r.pinnedMessage
		snap.PinnedMessage = &m
	}
	snap.PinnedProduct = copyProduct(r.pinnedProduct)
	return snap, nil
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sortMutes(ms []Mute) {
	slices.SortFunc(ms, func(a, b Mute) int {
		switch {
		case a.UserID < b.UserID:
			return -1
		case a.UserID > b.UserID:
			return 1
		}
		return 0
	})
}
