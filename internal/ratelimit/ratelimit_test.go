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
	t.Run("AllowAllTakesEveryKeyOrNone", func(t *testing.T) {
		a, b := newLimiter(t)
		user, ip := Limit{Rate: 0.001, Burst: 1}, Limit{Rate: 0.001, Burst: 5}
		both := []Request{{Key: "u", Limit: user}, {Key: "ip", Limit: ip}}
		if d, i, err := a.AllowAll(ctx, both); err != nil || !d.Allowed || i != -1 {
			t.Fatalf("first request: %+v, index %d, %v", d, i, err)
		}
		// The user's limit refuses: the address's is not used up.
		d, i, err := b.AllowAll(ctx, both)
		if err != nil || d.Allowed || i != 0 || d.RetryAfter <= 0 {
			t.Fatalf("second request: %+v, index %d, %v; want refused by request 0 with RetryAfter", d, i, err)
		}
		for n := range 4 {
			if d, _ := a.Allow(ctx, "ip", ip); !d.Allowed {
				t.Fatalf("the address's request %d of the 4 left refused: the refusal used it up", n+1)
			}
		}
		// Now the address refuses: another user's limit is not used up.
		other := []Request{{Key: "u2", Limit: user}, {Key: "ip", Limit: ip}}
		if d, i, err := b.AllowAll(ctx, other); err != nil || d.Allowed || i != 1 {
			t.Fatalf("over the address's limit: %+v, index %d, %v; want refused by request 1", d, i, err)
		}
		if d, _ := a.Allow(ctx, "u2", user); !d.Allowed {
			t.Fatal("the refused request used up the other user's limit")
		}
		// Disabled limits take no part.
		if d, i, err := a.AllowAll(ctx, []Request{{Key: "u3", Limit: Limit{}}, {Key: "u3b", Limit: user}}); err != nil || !d.Allowed || i != -1 {
			t.Fatalf("one disabled limit: %+v, %d, %v", d, i, err)
		}
		if d, i, err := a.AllowAll(ctx, []Request{{Key: "u4", Limit: Limit{}}}); err != nil || !d.Allowed || i != -1 {
			t.Fatalf("only disabled limits: %+v, %d, %v", d, i, err)
		}
	})
	t.Run("AllowAllConcurrentAcrossNodesAllowsExactlyBurst", func(t *testing.T) {
		a, b := newLimiter(t)
		shared, own := Limit{Rate: 0.001, Burst: 10}, Limit{Rate: 0.001, Burst: 100}
		got := countAllowed(t, a, b, func(lim Limiter, i int) (Decision, error) {
			d, _, err := lim.AllowAll(ctx, []Request{{Key: fmt.Sprint("own", i), Limit: own}, {Key: "shared", Limit: shared}})
			return d, err
		})
		if got != 10 {
			t.Fatalf("%d of 100 concurrent requests allowed, want the shared burst of 10", got)
		}
	})
	t.Run("ConcurrentAcrossNodesAllowsExactlyBurst", func(t *testing.T) {
		a, b := newLimiter(t)
		l := Limit{Rate: 0.001, Burst: 10}
		got := countAllowed(t, a, b, func(lim Limiter, _ int) (Decision, error) { return lim.Allow(ctx, "shared", l) })
		if got != 10 {
			t.Fatalf("%d of 100 concurrent requests allowed, want the burst of 10", got)
		}
	})
}

// countAllowed makes 100 requests at once, alternately through a and b,
// and returns how many were allowed.
func countAllowed(t *testing.T, a, b Limiter, take func(lim Limiter, i int) (Decision, error)) int64 {
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for i := range 100 {
		lim := a
		if i%2 == 1 {
			lim = b
		}
		wg.Go(func() {
			d, err := take(lim, i)
			if err != nil {
				t.Error(err)
			}
			if d.Allowed {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	return allowed.Load()
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

// On Redis Cluster the keys of one request sit in different slots: they
// are decided one after the other, and the refusing index is still right.
func TestRedis_AllowAllOnCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs})
	t.Cleanup(func() { _ = c.Close() })
	l := NewRedis(c, "t:")
	ctx := context.Background()
	one := Limit{Rate: 0.001, Burst: 1}
	reqs := []Request{{Key: "a", Limit: Limit{Rate: 0.001, Burst: 5}}, {Key: "b", Limit: one}}
	if d, i, err := l.AllowAll(ctx, reqs); err != nil || !d.Allowed || i != -1 {
		t.Fatalf("first: %+v, %d, %v", d, i, err)
	}
	if d, i, err := l.AllowAll(ctx, reqs); err != nil || d.Allowed || i != 1 || d.RetryAfter <= 0 {
		t.Fatalf("second: %+v, %d, %v; want refused by request 1", d, i, err)
	}
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
