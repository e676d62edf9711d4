package push

import (
	"container/heap"
	"context"
	"slices"
	"strconv"
	"sync"
	"time"
)

var _ Queue = (*MemoryQueue)(nil)

// MemoryQueueOptions configure a MemoryQueue.
type MemoryQueueOptions struct {
	// ClaimIdle is how long a delivery stays pending on its consumer before
	// a Read may hand it out again. Zero means one minute.
	ClaimIdle time.Duration
	// MaxLen caps the jobs held, ready, delayed and pending together.
	// Zero means 1000000.
	MaxLen int
}

// MemoryQueue is a Queue in the process's memory, for one node and tests. It
// is durable only as long as the process lives.
type MemoryQueue struct {
	claimIdle time.Duration
	maxLen    int

	mu      sync.Mutex
	seq     uint64
	ready   []memJob // oldest first
	delayed memDelayed
	pending map[string]*memPending
	// wake is closed, and replaced, when a job is enqueued.
	wake chan struct{}
}

type memJob struct {
	seq uint64
	job Job
}

type memPending struct {
	memJob
	deliveredAt time.Time
}

// NewMemoryQueue returns an empty MemoryQueue.
func NewMemoryQueue(o MemoryQueueOptions) *MemoryQueue {
	if o.ClaimIdle <= 0 {
		o.ClaimIdle = defaultClaimIdle
	}
	if o.MaxLen <= 0 {
		o.MaxLen = defaultQueueLen
	}
	return &MemoryQueue{
		claimIdle: o.ClaimIdle,
		maxLen:    o.MaxLen,
		pending:   make(map[string]*memPending),
		wake:      make(chan struct{}),
	}
}

// Enqueue adds j.
func (q *MemoryQueue) Enqueue(ctx context.Context, j Job) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now()
	j, err := prepareJob(j, now)
	if err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.ready)+len(q.delayed)+len(q.pending) >= q.maxLen {
		return ErrQueueFull
	}
	q.seq++
	mj := memJob{seq: q.seq, job: j}
	if j.NotBefore.After(now) {
		heap.Push(&q.delayed, mj)
	} else {
		q.ready = append(q.ready, mj)
	}
	close(q.wake)
	q.wake = make(chan struct{})
	return nil
}

// Read returns up to count jobs, waiting up to block when there are none.
func (q *MemoryQueue) Read(ctx context.Context, consumer string, count int, block time.Duration) ([]Delivery, error) {
	count = max(count, 1)
	deadline := time.Now().Add(block)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		now := time.Now()
		q.mu.Lock()
		out := q.takeLocked(now, count)
		wake := q.wake
		wait := time.Until(deadline)
		if len(q.delayed) > 0 {
			wait = min(wait, q.delayed[0].job.NotBefore.Sub(now))
		}
		q.mu.Unlock()
		if len(out) > 0 || time.Until(deadline) <= 0 {
			return out, nil
		}
		t := time.NewTimer(max(wait, time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// takeLocked claims idle pending jobs, then ready ones. q.mu must be held.
func (q *MemoryQueue) takeLocked(now time.Time, count int) []Delivery {
	for len(q.delayed) > 0 && !q.delayed[0].job.NotBefore.After(now) {
		q.ready = append(q.ready, heap.Pop(&q.delayed).(memJob))
	}
	var out []Delivery
	var idle []*memPending
	for _, p := range q.pending {
		if now.Sub(p.deliveredAt) >= q.claimIdle {
			idle = append(idle, p)
		}
	}
	slices.SortFunc(idle, func(a, b *memPending) int { return compareSeq(a.seq, b.seq) })
	for _, p := range idle {
		if len(out) == count {
			return out
		}
		p.deliveredAt = now
		out = append(out, Delivery{ID: seqID(p.seq), Job: p.job})
	}
	for len(out) < count && len(q.ready) > 0 {
		mj := q.ready[0]
		q.ready[0] = memJob{}
		q.ready = q.ready[1:]
		q.pending[seqID(mj.seq)] = &memPending{memJob: mj, deliveredAt: now}
		out = append(out, Delivery{ID: seqID(mj.seq), Job: mj.job})
	}
	return out
}

// Ack removes the deliveries with ids.
func (q *MemoryQueue) Ack(ctx context.Context, ids ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, id := range ids {
		delete(q.pending, id)
	}
	return nil
}

func seqID(seq uint64) string { return strconv.FormatUint(seq, 10) }

func compareSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// memDelayed is a min-heap of jobs by NotBefore, then by sequence.
type memDelayed []memJob

func (h memDelayed) Len() int { return len(h) }
func (h memDelayed) Less(i, j int) bool {
	a, b := h[i].job.NotBefore, h[j].job.NotBefore
	if a.Equal(b) {
		return h[i].seq < h[j].seq
	}
	return a.Before(b)
}
func (h memDelayed) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *memDelayed) Push(x any)   { *h = append(*h, x.(memJob)) }
func (h *memDelayed) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
