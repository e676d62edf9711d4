package orderevents

import (
	"context"
	"sort"
	"strconv"
	"sync"
	"time"
)

var _ Log = (*MemoryLog)(nil)

// MemoryOptions configure a MemoryLog.
type MemoryOptions struct {
	// MaxLen caps the events kept; the oldest go first. Zero means 100000.
	MaxLen int
	// ClaimIdle is how long a delivery stays pending on its consumer before
	// another read may take it. Zero means one minute.
	ClaimIdle time.Duration
}

// MemoryLog is a Log in the process's memory, for one node and for tests.
type MemoryLog struct {
	maxLen    int
	claimIdle time.Duration

	mu      sync.Mutex
	seq     uint64
	entries []memEntry // oldest first, seq ascending
	groups  map[string]*memGroup
	// appended is closed, and replaced, whenever an event is appended, to
	// wake blocked reads.
	appended chan struct{}
}

type memEntry struct {
	seq uint64
	ev  Event
}

type memGroup struct {
	// next is the seq of the first entry no consumer of the group has seen.
	next    uint64
	pending map[uint64]*memPending
}

type memPending struct {
	consumer    string
	deliveredAt time.Time
	ev          Event
}

// NewMemoryLog returns an empty MemoryLog.
func NewMemoryLog(o MemoryOptions) *MemoryLog {
	if o.MaxLen <= 0 {
		o.MaxLen = defaultMaxLen
	}
	if o.ClaimIdle <= 0 {
		o.ClaimIdle = defaultClaimIdle
	}
	return &MemoryLog{
		maxLen:    o.MaxLen,
		claimIdle: o.ClaimIdle,
		groups:    make(map[string]*memGroup),
		appended:  make(chan struct{}),
	}
}

// Append adds e, dropping the oldest event past MaxLen.
func (l *MemoryLog) Append(ctx context.Context, e Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e, err := prepare(e, time.Now())
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	l.entries = append(l.entries, memEntry{seq: l.seq, ev: e})
	if over := len(l.entries) - l.maxLen; over > 0 {
		l.trimLocked(over)
	}
	close(l.appended)
	l.appended = make(chan struct{})
	return nil
}

// trimLocked drops the n oldest entries, pending or not, as XADD MAXLEN
// does; a dropped entry is never delivered again. l.mu must be held.
func (l *MemoryLog) trimLocked(n int) {
	first := l.entries[n].seq
	for _, g := range l.groups {
		for seq := range g.pending {
			if seq < first {
				delete(g.pending, seq)
			}
		}
		g.next = max(g.next, first)
	}
	l.entries = append(l.entries[:0:0], l.entries[n:]...)
}

// Read returns reclaimed and new deliveries, waiting up to block for new
// events when there are none.
func (l *MemoryLog) Read(ctx context.Context, group, consumer string, count int, block time.Duration) ([]Delivery, error) {
	count = max(count, 1)
	var deadline <-chan time.Time
	if block > 0 {
		t := time.NewTimer(block)
		defer t.Stop()
		deadline = t.C
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		l.mu.Lock()
		out := l.readLocked(group, consumer, count, time.Now())
		appended := l.appended
		l.mu.Unlock()
		if len(out) > 0 || deadline == nil {
			return out, nil
		}
		select {
		case <-appended:
		case <-deadline:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (l *MemoryLog) readLocked(group, consumer string, count int, now time.Time) []Delivery {
	g := l.groupLocked(group)
	var out []Delivery
	// Reclaim the oldest idle deliveries first, as XAUTOCLAIM does.
	var idle []uint64
	for seq, p := range g.pending {
		if now.Sub(p.deliveredAt) >= l.claimIdle {
			idle = append(idle, seq)
		}
	}
	sort.Slice(idle, func(i, j int) bool { return idle[i] < idle[j] })
	for _, seq := range idle {
		if len(out) == count {
			return out
		}
		p := g.pending[seq]
		p.consumer, p.deliveredAt = consumer, now
		out = append(out, Delivery{ID: memID(seq), Event: p.ev})
	}
	i := sort.Search(len(l.entries), func(i int) bool { return l.entries[i].seq >= g.next })
	for ; i < len(l.entries) && len(out) < count; i++ {
		e := l.entries[i]
		g.pending[e.seq] = &memPending{consumer: consumer, deliveredAt: now, ev: e.ev}
		g.next = e.seq + 1
		out = append(out, Delivery{ID: memID(e.seq), Event: e.ev})
	}
	return out
}

// groupLocked returns group, creating it at the oldest entry kept.
func (l *MemoryLog) groupLocked(group string) *memGroup {
	g, ok := l.groups[group]
	if !ok {
		g = &memGroup{pending: make(map[uint64]*memPending)}
		if len(l.entries) > 0 {
			g.next = l.entries[0].seq
		}
		l.groups[group] = g
	}
	return g
}

// Ack ends the pending state of ids.
func (l *MemoryLog) Ack(ctx context.Context, group string, ids ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	g, ok := l.groups[group]
	if !ok {
		return nil
	}
	for _, id := range ids {
		if seq, ok := parseMemID(id); ok {
			delete(g.pending, seq)
		}
	}
	return nil
}

// Touch resets the idle time of the pending ids and gives them to consumer.
func (l *MemoryLog) Touch(ctx context.Context, group, consumer string, ids ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	g, ok := l.groups[group]
	if !ok {
		return nil
	}
	now := time.Now()
	for _, id := range ids {
		seq, ok := parseMemID(id)
		if !ok {
			continue
		}
		if p, ok := g.pending[seq]; ok {
			p.consumer, p.deliveredAt = consumer, now
		}
	}
	return nil
}

// Len returns the number of events kept.
func (l *MemoryLog) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

func memID(seq uint64) string { return strconv.FormatUint(seq, 10) }

func parseMemID(id string) (uint64, bool) {
	seq, err := strconv.ParseUint(id, 10, 64)
	return seq, err == nil
}
