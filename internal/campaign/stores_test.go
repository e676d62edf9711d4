package campaign_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/livehub/livehub/internal/campaign"
	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/redistest"
)

// impl builds fresh Follows and Store of one kind for each test.
type impl struct {
	name    string
	follows func(t *testing.T) campaign.Follows
	store   func(t *testing.T) campaign.Store
}

// keyPrefix returns a key prefix of its own, so tests may share a server.
func keyPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

func newRedisClient(t testing.TB, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func impls(t *testing.T) []impl {
	srv := redistest.Start(t)
	client := newRedisClient(t, srv.URL)
	return []impl{
		{
			name:    "memory",
			follows: func(*testing.T) campaign.Follows { return campaign.NewMemoryFollows() },
			store:   func(*testing.T) campaign.Store { return campaign.NewMemoryStore() },
		},
		{
			name: "redis",
			follows: func(t *testing.T) campaign.Follows {
				f, err := campaign.NewRedisFollows(campaign.RedisOptions{Client: client, Prefix: keyPrefix()})
				if err != nil {
					t.Fatal(err)
				}
				return f
			},
			store: func(t *testing.T) campaign.Store {
				s, err := campaign.NewRedisStore(campaign.RedisOptions{Client: client, Prefix: keyPrefix()})
				if err != nil {
					t.Fatal(err)
				}
				return s
			},
		},
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestFollows(t *testing.T) {
	for _, im := range impls(t) {
		t.Run(im.name, func(t *testing.T) { runFollowsTests(t, im.follows) })
	}
}

func TestStore(t *testing.T) {
	for _, im := range impls(t) {
		t.Run(im.name, func(t *testing.T) { runStoreTests(t, im.store) })
	}
}

// On Redis Cluster every command must stay in one slot.
func TestStores_RedisCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs})
	t.Cleanup(func() { _ = c.Close() })
	o := func() campaign.RedisOptions { return campaign.RedisOptions{Client: c, Prefix: keyPrefix()} }
	t.Run("follows", func(t *testing.T) {
		runFollowsTests(t, func(t *testing.T) campaign.Follows {
			f, err := campaign.NewRedisFollows(o())
			if err != nil {
				t.Fatal(err)
			}
			return f
		})
	})
	t.Run("store", func(t *testing.T) {
		runStoreTests(t, func(t *testing.T) campaign.Store {
			s, err := campaign.NewRedisStore(o())
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
}

// runFollowsTests is the suite every Follows passes.
func runFollowsTests(t *testing.T, newFollows func(t *testing.T) campaign.Follows) {
	t.Run("FollowIsIdempotentAndCounted", func(t *testing.T) {
		f, ctx := newFollows(t), ctxT(t)
		for range 3 {
			if err := f.Follow(ctx, "h1", "u1"); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Follow(ctx, "h1", "u2"); err != nil {
			t.Fatal(err)
		}
		if err := f.Follow(ctx, "h2", "u1"); err != nil {
			t.Fatal(err)
		}
		wantCount(t, f, "h1", 2)
		wantCount(t, f, "h2", 1)
		wantCount(t, f, "nobody", 0)
		wantFollowing(t, f, "h1", "u1", true)
		wantFollowing(t, f, "h1", "u3", false)
	})
	t.Run("UnfollowIsIdempotent", func(t *testing.T) {
		f, ctx := newFollows(t), ctxT(t)
		if err := f.Follow(ctx, "h1", "u1"); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := f.Unfollow(ctx, "h1", "u1"); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Unfollow(ctx, "never", "u9"); err != nil {
			t.Fatal(err)
		}
		wantCount(t, f, "h1", 0)
		wantFollowing(t, f, "h1", "u1", false)
	})
	t.Run("InvalidIDsRefused", func(t *testing.T) {
		f, ctx := newFollows(t), ctxT(t)
		for _, c := range []struct{ host, user, field string }{
			{"", "u1", "host_id"},
			{"h1", "", "user_id"},
			{"h 1", "u1", "host_id"},
			{"h1", string(make([]byte, 200)), "user_id"},
		} {
			err := f.Follow(ctx, c.host, c.user)
			var ce *commerce.Error
			if !errors.As(err, &ce) || ce.Code != commerce.EINVALID || ce.Field != c.field {
				t.Errorf("Follow(%q, %q) = %v, want EINVALID on %s", c.host, c.user, err, c.field)
			}
		}
	})
	t.Run("PagesVisitEveryFollowerOnce", func(t *testing.T) {
		f, ctx := newFollows(t), ctxT(t)
		var want []string
		for i := range 1234 {
			u := fmt.Sprintf("user-%05d", i)
			want = append(want, u)
			if err := f.Follow(ctx, "h1", u); err != nil {
				t.Fatal(err)
			}
		}
		for _, n := range []int{1, 100, 617, 1234, 5000} {
			got := walk(t, f, "h1", n)
			if !slices.Equal(got, want) {
				t.Fatalf("pages of %d: got %d followers, want %d in id order", n, len(got), len(want))
			}
		}
		if got := walk(t, f, "empty", 10); len(got) != 0 {
			t.Fatalf("a host with no followers has pages: %v", got)
		}
	})
	t.Run("PagingSurvivesChangesBehindAndAhead", func(t *testing.T) {
		f, ctx := newFollows(t), ctxT(t)
		for _, u := range []string{"a", "b", "c", "d", "e", "f"} {
			if err := f.Follow(ctx, "h1", u); err != nil {
				t.Fatal(err)
			}
		}
		page, next, err := f.Page(ctx, "h1", "", 2)
		if err != nil || !slices.Equal(page, []string{"a", "b"}) || next != "b" {
			t.Fatalf("first page = %v, %q, %v", page, next, err)
		}
		// a and b leave behind the cursor; g joins ahead of it.
		for _, u := range []string{"a", "b"} {
			if err := f.Unfollow(ctx, "h1", u); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Follow(ctx, "h1", "g"); err != nil {
			t.Fatal(err)
		}
		rest := walkFrom(t, f, "h1", next, 2)
		if !slices.Equal(rest, []string{"c", "d", "e", "f", "g"}) {
			t.Fatalf("rest of the walk = %v", rest)
		}
	})
}

func walk(t *testing.T, f campaign.Follows, host string, n int) []string {
	return walkFrom(t, f, host, "", n)
}

func walkFrom(t *testing.T, f campaign.Follows, host, cursor string, n int) []string {
	t.Helper()
	var out []string
	for {
		page, next, err := f.Page(ctxT(t), host, cursor, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > n {
			t.Fatalf("page of %d holds %d", n, len(page))
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		cursor = next
	}
}

func wantCount(t *testing.T, f campaign.Follows, host string, want int64) {
	t.Helper()
	n, err := f.Count(ctxT(t), host)
	if err != nil || n != want {
		t.Fatalf("Count(%s) = %d, %v; want %d", host, n, err, want)
	}
}

func wantFollowing(t *testing.T, f campaign.Follows, host, user string, want bool) {
	t.Helper()
	ok, err := f.IsFollowing(ctxT(t), host, user)
	if err != nil || ok != want {
		t.Fatalf("IsFollowing(%s, %s) = %v, %v; want %v", host, user, ok, err, want)
	}
}

// runStoreTests is the suite every Store passes.
func runStoreTests(t *testing.T, newStore func(t *testing.T) campaign.Store) {
	t.Run("CreateGetProgress", func(t *testing.T) {
		s, ctx := newStore(t), ctxT(t)
		at := time.Now().UTC().Truncate(time.Millisecond)
		c := campaign.Campaign{ID: "cmp_1", StreamID: "s1", HostID: "h1", Total: 10, State: campaign.StateRunning, CreatedAt: at, UpdatedAt: at}
		if err := s.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, "cmp_1")
		if err != nil || got != c {
			t.Fatalf("Get = %+v, %v; want %+v", got, err, c)
		}
		later := at.Add(time.Second)
		if err := s.Progress(ctx, "cmp_1", 10, 10, campaign.StateDone, later); err != nil {
			t.Fatal(err)
		}
		got, err = s.Get(ctx, "cmp_1")
		c.Queued, c.State, c.UpdatedAt = 10, campaign.StateDone, later
		if err != nil || got != c {
			t.Fatalf("after progress Get = %+v, %v; want %+v", got, err, c)
		}
	})
	t.Run("UnknownIsNotFound", func(t *testing.T) {
		s, ctx := newStore(t), ctxT(t)
		if _, err := s.Get(ctx, "cmp_none"); commerce.ErrorCode(err) != commerce.ENOTFOUND {
			t.Fatalf("Get unknown = %v", err)
		}
		if err := s.Progress(ctx, "cmp_none", 1, 1, campaign.StateDone, time.Now()); commerce.ErrorCode(err) != commerce.ENOTFOUND {
			t.Fatalf("Progress unknown = %v", err)
		}
	})
	t.Run("ClaimOncePerWindow", func(t *testing.T) {
		s, ctx := newStore(t), ctxT(t)
		const window = 300 * time.Millisecond
		if wait, err := s.Claim(ctx, "s1", window, time.Now()); err != nil || wait != 0 {
			t.Fatalf("first claim = %v, %v", wait, err)
		}
		wait, err := s.Claim(ctx, "s1", window, time.Now())
		if err != nil || wait <= 0 || wait > window {
			t.Fatalf("second claim = %v, %v; want a wait within %v", wait, err, window)
		}
		if wait, err := s.Claim(ctx, "s2", window, time.Now()); err != nil || wait != 0 {
			t.Fatalf("another stream's claim = %v, %v", wait, err)
		}
		time.Sleep(window + 50*time.Millisecond)
		if wait, err := s.Claim(ctx, "s1", window, time.Now()); err != nil || wait != 0 {
			t.Fatalf("claim after the window = %v, %v", wait, err)
		}
	})
	t.Run("ReleaseReopensTheWindow", func(t *testing.T) {
		s, ctx := newStore(t), ctxT(t)
		if _, err := s.Claim(ctx, "s1", time.Minute, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := s.Release(ctx, "s1"); err != nil {
			t.Fatal(err)
		}
		if wait, err := s.Claim(ctx, "s1", time.Minute, time.Now()); err != nil || wait != 0 {
			t.Fatalf("claim after release = %v, %v", wait, err)
		}
	})
}
