package pushtest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/push"
)

// QueueConfig is what the queue suite asks of a new queue.
type QueueConfig struct {
	// ClaimIdle is the queue's claim idle time.
	ClaimIdle time.Duration
	// MaxLen is the queue's MaxLen; zero means its default.
	MaxLen int
}

// RunQueueTests runs the suite every push.Queue passes. newQueue returns an
// empty queue private to the (sub)test it is given.
func RunQueueTests(t *testing.T, newQueue func(t *testing.T, c QueueConfig) push.Queue) {
	long := QueueConfig{ClaimIdle: time.Minute}
	t.Run("RoundTrip", func(t *testing.T) { testQueueRoundTrip(t, newQueue(t, long)) })
	t.Run("FIFO", func(t *testing.T) { testQueueFIFO(t, newQueue(t, long)) })
	t.Run("RedeliveredAfterClaimIdle", func(t *testing.T) {
		testQueueRedelivery(t, newQueue(t, QueueConfig{ClaimIdle: 300 * time.Millisecond}))
	})
	t.Run("NotBefore", func(t *testing.T) { testQueueNotBefore(t, newQueue(t, long)) })
	t.Run("BlockWakesOnEnqueue", func(t *testing.T) { testQueueBlock(t, newQueue(t, long)) })
	t.Run("MaxLen", func(t *testing.T) { testQueueMaxLen(t, newQueue(t, QueueConfig{ClaimIdle: time.Minute, MaxLen: 3})) })
	t.Run("Invalid", func(t *testing.T) { testQueueInvalid(t, newQueue(t, long)) })
	t.Run("ConcurrentConsumers", func(t *testing.T) { testQueueConcurrent(t, newQueue(t, long)) })
}

func job(n int) push.Job {
	return push.Job{Notification: push.Notification{ID: fmt.Sprintf("ev%d", n), UserID: "u1", Body: fmt.Sprintf("body %d", n)}}
}

func read(t *testing.T, q push.Queue, consumer string, count int, block time.Duration) []push.Delivery {
	t.Helper()
	ds, err := q.Read(t.Context(), consumer, count, block)
	mustNoErr(t, err)
	return ds
}

func ack(t *testing.T, q push.Queue, ds ...push.Delivery) {
	t.Helper()
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	mustNoErr(t, q.Ack(t.Context(), ids...))
}

func eventIDs(ds []push.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Job.Notification.ID
	}
	return out
}

func testQueueRoundTrip(t *testing.T, q push.Queue) {
	if ds := read(t, q, "c1", 10, 0); len(ds) != 0 {
		t.Fatalf("empty queue read %d jobs", len(ds))
	}
	n := push.Notification{
		ID: "ev1", UserID: "u1",
		TitleKey: "order_paid_title", TitleArgs: []string{"A-42"},
		BodyKey: "order_paid_body", BodyArgs: []string{"Rp 15.000", "2"},
		Title: "Paid", Body: "Order A-42 is paid",
		Data:       map[string]string{"order_id": "A-42", "type": "order.paid"},
		CollapseID: "order-A-42", Priority: push.PriorityNormal,
		Expiry:   time.Now().Add(time.Hour).Truncate(time.Millisecond),
		Category: "ORDER",
	}
	before := time.Now()
	mustNoErr(t, q.Enqueue(t.Context(), push.Job{Notification: n, Attempt: 2, Tokens: []string{"a", "b"}}))
	ds := read(t, q, "c1", 10, time.Second)
	if len(ds) != 1 {
		t.Fatalf("read %d jobs, want 1", len(ds))
	}
	got := ds[0].Job
	if ds[0].ID == "" {
		t.Fatal("delivery without an id")
	}
	if !got.Notification.Expiry.Equal(n.Expiry) {
		t.Fatalf("Expiry = %v, want %v", got.Notification.Expiry, n.Expiry)
	}
	got.Notification.Expiry = n.Expiry
	if fmt.Sprintf("%#v", got.Notification) != fmt.Sprintf("%#v", n) {
		t.Fatalf("notification = %+v\nwant %+v", got.Notification, n)
	}
	if got.Attempt != 2 || !slices.Equal(got.Tokens, []string{"a", "b"}) {
		t.Fatalf("attempt %d tokens %q, want 2 [a b]", got.Attempt, got.Tokens)
	}
	if got.EnqueuedAt.Before(before.Add(-time.Second)) || got.EnqueuedAt.After(time.Now()) {
		t.Fatalf("EnqueuedAt = %v, want about %v", got.EnqueuedAt, before)
	}
	ack(t, q, ds...)
	mustNoErr(t, q.Ack(t.Context(), ds[0].ID)) // twice is harmless
	if ds := read(t, q, "c1", 10, 0); len(ds) != 0 {
		t.Fatalf("read %d jobs after ack", len(ds))
	}
}

func testQueueFIFO(t *testing.T, q push.Queue) {
	for i := range 5 {
		mustNoErr(t, q.Enqueue(t.Context(), job(i)))
	}
	first := read(t, q, "c1", 3, time.Second)
	if got := eventIDs(first); !slices.Equal(got, []string{"ev0", "ev1", "ev2"}) {
		t.Fatalf("first read %q", got)
	}
	rest := read(t, q, "c1", 10, time.Second)
	if got := eventIDs(rest); !slices.Equal(got, []string{"ev3", "ev4"}) {
		t.Fatalf("second read %q", got)
	}
	ack(t, q, append(first, rest...)...)
}

func testQueueRedelivery(t *testing.T, q push.Queue) {
	mustNoErr(t, q.Enqueue(t.Context(), job(1)))
	mustNoErr(t, q.Enqueue(t.Context(), job(2)))
	ds := read(t, q, "dies", 10, time.Second)
	if len(ds) != 2 {
		t.Fatalf("read %d jobs, want 2", len(ds))
	}
	ack(t, q, ds[1])
	if again := read(t, q, "other", 10, 0); len(again) != 0 {
		t.Fatalf("pending job handed out before its claim idle time: %q", eventIDs(again))
	}
	time.Sleep(400 * time.Millisecond)
	again := read(t, q, "other", 10, 0)
	if got := eventIDs(again); !slices.Equal(got, []string{"ev1"}) {
		t.Fatalf("after the claim idle time read %q, want [ev1]", got)
	}
	if again[0].ID != ds[0].ID {
		t.Fatalf("redelivered with id %s, first delivered as %s", again[0].ID, ds[0].ID)
	}
	ack(t, q, again...)
	time.Sleep(400 * time.Millisecond)
	if left := read(t, q, "third", 10, 0); len(left) != 0 {
		t.Fatalf("acknowledged job came back: %q", eventIDs(left))
	}
}

func testQueueNotBefore(t *testing.T, q push.Queue) {
	j := job(1)
	j.NotBefore = time.Now().Add(400 * time.Millisecond)
	mustNoErr(t, q.Enqueue(t.Context(), j))
	mustNoErr(t, q.Enqueue(t.Context(), job(2)))
	if got := eventIDs(read(t, q, "c1", 10, 0)); !slices.Equal(got, []string{"ev2"}) {
		t.Fatalf("read %q before the delayed job was due, want [ev2]", got)
	}
	start := time.Now()
	ds := read(t, q, "c1", 10, 5*time.Second)
	if got := eventIDs(ds); !slices.Equal(got, []string{"ev1"}) {
		t.Fatalf("read %q, want the delayed ev1", got)
	}
	if now := time.Now(); now.Before(j.NotBefore) {
		t.Fatalf("delayed job read %v before it was due", j.NotBefore.Sub(now))
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("a read blocking 5s returned the due job after %v", waited)
	}
	if !ds[0].Job.NotBefore.Equal(j.NotBefore.Truncate(time.Nanosecond)) {
		t.Fatalf("NotBefore = %v, want %v", ds[0].Job.NotBefore, j.NotBefore)
	}
	ack(t, q, ds...)
}

func testQueueBlock(t *testing.T, q push.Queue) {
	start := time.Now()
	if ds := read(t, q, "c1", 10, 200*time.Millisecond); len(ds) != 0 {
		t.Fatalf("read %d jobs from an empty queue", len(ds))
	}
	if waited := time.Since(start); waited < 150*time.Millisecond {
		t.Fatalf("a read blocking 200ms returned after %v", waited)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		time.Sleep(200 * time.Millisecond)
		if err := q.Enqueue(t.Context(), job(1)); err != nil {
			t.Error(err)
		}
	})
	start = time.Now()
	ds := read(t, q, "c1", 10, 5*time.Second)
	if len(ds) != 1 {
		t.Fatalf("read %d jobs, want the one enqueued while blocked", len(ds))
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("blocked read woke %v after the enqueue", waited)
	}
	ack(t, q, ds...)
}

func testQueueMaxLen(t *testing.T, q push.Queue) {
	for i := range 3 {
		mustNoErr(t, q.Enqueue(t.Context(), job(i)))
	}
	err := q.Enqueue(t.Context(), job(3))
	if !errors.Is(err, push.ErrQueueFull) || commerce.ErrorCode(err) != commerce.EUNAVAILABLE {
		t.Fatalf("enqueue past MaxLen = %v, want ErrQueueFull", err)
	}
	ds := read(t, q, "c1", 1, time.Second)
	if err := q.Enqueue(t.Context(), job(3)); !errors.Is(err, push.ErrQueueFull) {
		t.Fatalf("a pending job freed room: %v", err)
	}
	ack(t, q, ds...)
	mustNoErr(t, q.Enqueue(t.Context(), job(3)))
}

func testQueueInvalid(t *testing.T, q push.Queue) {
	err := q.Enqueue(t.Context(), push.Job{Notification: push.Notification{ID: "ev1", Body: "x"}})
	if commerce.ErrorCode(err) != commerce.EINVALID {
		t.Fatalf("enqueue without a user = %v, want EINVALID", err)
	}
	err = q.Enqueue(t.Context(), push.Job{Notification: push.Notification{ID: "ev1", UserID: "u1"}})
	if commerce.ErrorCode(err) != commerce.EINVALID {
		t.Fatalf("enqueue without text = %v, want EINVALID", err)
	}
}

func testQueueConcurrent(t *testing.T, q push.Queue) {
	const jobs = 60
	for i := range jobs {
		mustNoErr(t, q.Enqueue(t.Context(), job(i)))
	}
	var mu sync.Mutex
	seen := make(map[string]int)
	var wg sync.WaitGroup
	for c := range 3 {
		wg.Go(func() {
			for {
				ds, err := q.Read(t.Context(), fmt.Sprintf("c%d", c), 7, 0)
				if err != nil {
					t.Error(err)
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					seen[d.Job.Notification.ID]++
				}
				mu.Unlock()
				ids := make([]string, len(ds))
				for i, d := range ds {
					ids[i] = d.ID
				}
				if err := q.Ack(t.Context(), ids...); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != jobs {
		t.Fatalf("%d distinct jobs read, want %d", len(seen), jobs)
	}
	for id, n := range maps.All(seen) {
		if n != 1 {
			t.Fatalf("job %s read %d times", id, n)
		}
	}
}
