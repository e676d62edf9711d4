package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/livehub/livehub/internal/redistest"
)

// runLimiterTests is the suite both limiters pass. newLimiter returns
// limiters that share state (two nodes on one Redis, or one memory limiter
// twice).
func runLimiterTests(t *testing.T, newLimiter func(t *testing.T) (Limiter, Limiter)) {
	ctx := context.Background()
	t.Run("BurstThenRefusedWithRetryAfter", func(t *testing.T) {
		a, _ := newLimiter(t)
		l := Limit{Rate: 0.01, Burst: 3} // one request per 100 s
		for i := range 3 {
			d, err := a.Allow(ctx, "k", l)
			if err != nil || !d.Allowed {
				t.Fatalf("request %d of the burst: %+v, %v", i+1, d, err)
			}
		}
		d, err := a.Allow(ctx, "k", l)
		if err != nil || d.Allowed {
			t.Fatalf("request past the burst: %+v, %v", d, err)
		}
		if d.RetryAfter <= 0 || d.RetryAfter > 100*time.Second {
			t.Fatalf("RetryAfter = %v, want within one interval (100 s)", d.RetryAfter)
		}
		if d, _ := a.Allow(ctx, "other", l); !d.Allowed {
			t.Fatal("another key shares the first key's budget")
		}
	})
	t.Run("DisabledAllowsAll", func(t *testing.T) {
		a, _ := newLimiter(t)
		for range 100 {
			if d, err := a.Allow(ctx, "k", Limit{}); err != nil || !d.Allowed {
				t.Fatalf("disabled limit refused: %+v, %v", d, err)
			}
		}
	})
	t.Run("RefillsAfterRetryAfter", func(t *testing.T) {
		a, _ := newLimiter(t)
		l := Limit{Rate: 20, Burst: 1}
		if d, _ := a.Allow(ctx, "k", l); !d.Allowed {
			t.Fatal("first request refused")
		}
		d, _ := a.Allow(ctx, "k", l)
		if d.Allowed {
			t.Fatal("second request within the interval allowed")
		}
		time.Sleep(d.RetryAfter + 5*time.Millisecond)
		if d, _ := a.Allow(ctx, "k", l); !d.Allowed {
			t.Fatalf("refused after waiting RetryAfter: %+v", d)
		}
	})
	t.Run("ConcurrentAcrossNodesAllowsExactlyBurst", func(t *testing.T) {
		a, b := newLimiter(t)
		l := Limit{Rate: 0.001, Burst: 10}
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for i := range 100 {
			lim := a
			if i%2 == 1 {
				lim = b
			}
			wg.Go(func() {
				d, err := lim.Allow(ctx, "shared", l)
				if err != nil {
					t.Error(err)
				}
				if d.Allowed {
					allowed.Add(1)
				}
			})
		}
		wg.Wait()
		if got := allowed.Load(); got != 10 {
			t.Fatalf("%d of 100 concurrent requests allowed, want the burst of 10", got)
		}
	})
}

func TestLimiter_Memory(t *testing.T) {
	runLimiterTests(t, func(*testing.T) (Limiter, Limiter) {
		m := NewMemory()
		return m, m
	})
}

func TestLimiter_Redis(t *testing.T) {
	srv := redistest.Start(t)
	n := 0
	runLimiterTests(t, func(t *testing.T) (Limiter, Limiter) {
		n++
		prefix := fmt.Sprintf("t%d:", n)
		return NewRedis(newClient(t, srv.URL), prefix), NewRedis(newClient(t, srv.URL), prefix)
	})
}

func newClient(t *testing.T, url string) redis.UniversalClient {
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestMemory_SweepsPassedKeys(t *testing.T) {
	m := NewMemory()
	now := time.Unix(1000, 0)
	m.now = func() time.Time { return now }
	l := Limit{Rate: 1, Burst: 1}
	for i := range 5000 {
		if d, _ := m.Allow(context.Background(), fmt.Sprint("ip", i), l); !d.Allowed {
			t.Fatalf("first request of key %d refused", i)
		}
	}
	now = now.Add(2 * time.Second) // every schedule has passed
	for i := range 5000 {
		_, _ = m.Allow(context.Background(), fmt.Sprint("new", i), l)
	}
	if got := m.len(); got >= 10000 {
		t.Fatalf("memory holds %d keys, passed ones were not swept", got)
	}
}

func TestGCRA_SteadyRate(t *testing.T) {
	l := Limit{Rate: 10, Burst: 2}
	now := time.Unix(0, 0)
	var tat time.Time
	allowed := 0
	// 10 s of requests every 10 ms: the burst plus 10 per second.
	for range 1000 {
		d, next := gcra(now, tat, l)
		if d.Allowed {
			allowed++
			tat = next
		}
		now = now.Add(10 * time.Millisecond)
	}
	if allowed < 100 || allowed > 102 {
		t.Fatalf("allowed %d in 10 s at 10/s burst 2, want 100..102", allowed)
	}
}
