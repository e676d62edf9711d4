package room_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/redistest"
	"github.com/livehub/livehub/internal/room"
)

// stateImpl is a State under test. shared states make announcements
// exclusive between nodes: newPeer returns another node's view of the same
// rooms.
type stateImpl struct {
	name string
	new  func(t *testing.T) (state room.State, newPeer func() room.State)
	// exclusive: a second claim within the interval is refused.
	exclusive bool
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
	opts.PoolSize = 64
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestState(t *testing.T) {
	srv := redistest.Start(t)
	impls := []stateImpl{
		{name: "memory", new: func(t *testing.T) (room.State, func() room.State) {
			s := room.NewMemoryState()
			return s, func() room.State { return s }
		}},
		{name: "redis", exclusive: true, new: func(t *testing.T) (room.State, func() room.State) {
			p := keyPrefix()
			peer := func() room.State {
				return room.NewRedisState(newRedisClient(t, srv.URL), room.RedisStateOptions{Prefix: p})
			}
			return peer(), peer
		}},
	}
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) { runStateTests(t, impl) })
	}
}

// On Redis Cluster every script and MULTI of a room must stay in one slot.
func TestState_RedisCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs, PoolSize: 64, PoolTimeout: 30 * time.Second})
	t.Cleanup(func() { _ = c.Close() })
	runStateTests(t, stateImpl{name: "cluster", exclusive: true, new: func(t *testing.T) (room.State, func() room.State) {
		p := keyPrefix()
		peer := func() room.State { return room.NewRedisState(c, room.RedisStateOptions{Prefix: p}) }
		return peer(), peer
	}})
}

// runStateTests is the suite every State passes.
func runStateTests(t *testing.T, impl stateImpl) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s room.State, peer func() room.State, impl stateImpl)
	}{
		{"Moderators_AddRemoveIdempotentPerRoom", testModerators},
		{"Mute_RefusesUntilItExpires", testMuteExpires},
		{"Unmute_LetsTheUserChat", testUnmute},
		{"Ban_RefusesUntilUnbanned", testBan},
		{"SlowMode_MakesViewersWaitButNotModeratorsOrStaff", testSlowMode},
		{"SlowMode_OneMessagePerIntervalUnderConcurrency", testSlowModeConcurrent},
		{"MutedWords_RejectDoesNotStartSlowModeMaskDoes", testMutedWords},
		{"Likes_SumAcrossCallersAndNodes", testLikes},
		{"Viewers_KeepThePeak", testPeak},
		{"Announcement_OnlyChangesAndOncePerInterval", testAnnouncement},
		{"Snapshot_RoundTripsEverything", testSnapshot},
		{"Rooms_AreSeparateEvenWithBracesInIDs", testRoomsSeparate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, peer := impl.new(t)
			tc.fn(t, s, peer, impl)
		})
	}
}

func bg() context.Context { return context.Background() }

func check(t *testing.T, s room.State, user string, now time.Time, words ...string) room.ChatVerdict {
	t.Helper()
	v, err := s.CheckChat(bg(), room.ChatCheck{Stream: "st", User: user, Now: now, Words: words})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testModerators(t *testing.T, s room.State, _ func() room.State, _ stateImpl) {
	ok(t, s.AddModerator(bg(), "st", "m1"))
	ok(t, s.AddModerator(bg(), "st", "m1"))
	ok(t, s.AddModerator(bg(), "st", "m2"))
	if yes, err := s.IsModerator(bg(), "st", "m1"); err != nil || !yes {
		t.Fatalf("m1 moderates: %v %v", yes, err)
	}
	if yes, _ := s.IsModerator(bg(), "other", "m1"); yes {
		t.Fatal("a moderator of one room moderates another")
	}
	ok(t, s.RemoveModerator(bg(), "st", "m1"))
	ok(t, s.RemoveModerator(bg(), "st", "nobody"))
	if yes, _ := s.IsModerator(bg(), "st", "m1"); yes {
		t.Fatal("m1 still moderates after removal")
	}
	snap, err := s.Snapshot(bg(), "st", time.Now())
	ok(t, err)
	if !slices.Equal(snap.Moderators, []string{"m2"}) {
		t.Fatalf("moderators %v, want [m2]", snap.Moderators)
	}
	if v := check(t, s, "m2", time.Now()); !v.Moderator || !v.Allowed() {
		t.Fatalf("moderator's verdict %+v", v)
	}
}

func testMuteExpires(t *testing.T, s room.State, _ func() room.State, _ stateImpl) {
	now := time.Now().Truncate(time.Millisecond)
	until := now.Add(10 * time.Second)
	ok(t, s.Mute(bg(), "st", "u1", until))
	v := check(t, s, "u1", now)
	if v.Allowed() || !v.MutedUntil.Equal(until) {
		t.Fatalf("muted user's verdict %+v, want muted until %v", v, until)
	}
	if v := check(t, s, "u2", now); !v.Allowed() {
		t.Fatalf("another user is refused: %+v", v)
	}
	snap, err := s.Snapshot(bg(), "st", now)
	ok(t, err)
	if len(snap.Mutes) != 1 || snap.Mutes[0].UserID != "u1" || !snap.Mutes[0].Until.Equal(until) {
		t.Fatalf("mutes %+v", snap.Mutes)
	}
	if v := check(t, s, "u1", until); !v.Allowed() {
		t.Fatalf("mute outlived its end: %+v", v)
	}
	snap, err = s.Snapshot(bg(), "st", until)
	ok(t, err)
	if len(snap.Mutes) != 0 {
		t.Fatalf("an expired mute is listed: %+v", snap.Mutes)
	}
}

func testUnmute(t *testing.T, s room.State, _ func() room.State, _ stateImpl) {
	now := time.Now()
	ok(t, s.Mute(bg(), "st", "u1", now.Add(time.Hour)))
	ok(t, s.Unmute(bg(), "st", "u1"))
	ok(t, s.Unmute(bg(), "st", "never-muted"))
	if v := check(t, s, "u1", now); !v.Allowed() {
		t.Fatalf("unmuted user refused: %+v", v)
	}
}

func testBan(t *testing.T, s room.State, _ func() room.State, _ stateImpl) {
	ok(t, s.Ban(bg(), "st", "u1"))
	if v := check(t, s, "u1", time.Now()); !v.Banned || v.Allowed() {
		t.Fatalf("banned user's verdict %+v", v)
	}
	ok(t, s.Unban(bg(), "st", "u1"))
	ok(t, s.Unban(bg(), "st", "u1"))
	if v := check(t, s, "u1", time.Now()); !v.Allowed() {
		t.Fatalf("unbanned user refused: %+v", v)
	}
}

func testSlowMode(t *testing.T, s room.State, _ func() room.State, _ stateImpl) {
	ok(t, s.SetSlowMode(bg(), "st", 10))
	ok(t, s.AddModerator(bg(), "st", "mod"))
	t0 := time.Now().Truncate(time.Millisecond)
	if v := check(t, s, "u1", t0); !v.Allowed() {
		t.Fatalf("first message refused: %+v", v)
	}
	v := check(t, s, "u1", t0.Add(3*time.Second))
	if v.Allowed() || v.Wait != 7*time.Second {
		t.Fatalf("second message after 3s: %+v, want a wait of 7s", v)
	}
	if v := check(t, s, "u2", t0.Add(3*time.Second)); !v.Allowed() {
		t.Fatalf("another viewer waits for u1: %+v", v)
	}
	if v := check(t, s, "u1", t0.Add(10*time.Second)); !v.Allowed() {
		t.Fatalf("message after the interval refused: %+v", v)
	}
	for i := range 3 {
		if v := check(t, s, "mod", t0.Add(time.Duration(i)*time.Millisecond)); !v.Allowed() {
			t.Fatalf("moderator slowed: %+v", v)
		}
		v, err := s.CheckChat(bg(), room.ChatCheck{Stream: "st", User: "host", Now: t0.Add(time.Duration(i) * time.Millisecond), Exempt: true})
		ok(t, err)
		if !v.Allowed() {
			t.Fatalf("exempt user slowed: %+v", v)
		}
	}
	ok(t, s.SetSlowMode(bg(), "st", 0))
	if v := check(t, s, "u2", t0.Add(3*time.Second+time.Millisecond)); !v.Allowed() {
		t.Fatalf("slow mode off still slows: %+v", v)
	}
}

// Many nodes checking the same user at once let exactly one message through.
func testSlowModeConcurrent(t *testing.T, s room.State, peer func() room.State, _ stateImpl) {
	ok(t, s.SetSlowMode(bg(), "st", 30))
	now := time.Now()
	states := []room.State{s, peer(), peer()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := states[i%len(states)].CheckChat(bg(), room.ChatCheck{Stream: "st", User: "u1", Now: now})
			if err != nil {
				t.Error(err)
				return
			}
			if v.Allowed() {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if allowed != 1 {
		t.Fatalf("%d messages passed slow mode at once, want 1", allowed)
	}
}

func testMutedWords(t *testing.T, s room.State, _ func() room.State, _ stateImpl) {
	ok(t, s.SetSlowMode(bg(), "st", 60))
	ok(t, s.SetMutedWords(bg(), "st", []string{"spam", "jelek"}, room.WordsReject))
	now := time.Now()
	v := check(t, s, "u1", now, "buy", "spam", "now")
	if v.Allowed() || v.Mode != room.WordsReject || !slices.Equal(v.Matched, []string{"spam"}) {
		t.Fatalf("rejected word's verdict %+v", v)
	}
	// The refused message did not start slow mode.
	if v := check(t, s, "u1", now, "hello"); !v.Allowed() || len(v.Matched) != 0 {
		t.Fatalf("clean message after a refused one: %+v", v)
	}
	ok(t, s.SetMutedWords(bg(), "st", []string{"spam"}, room.WordsMask))
	v = check(t, s, "u2", now, "spam", "jelek")
	if !v.Allowed() || v.Mode != room.WordsMask || !slices.Equal(v.Matched, []string{"spam"}) {
		t.Fatalf("masked word's verdict %+v (jelek was removed from the list)", v)
	}
	// A masked message goes out, so it starts slow mode.
	if v := check(t, s, "u2", now.Add(time.Second), "hello"); v.Allowed() {
		t.Fatalf("masked message did not start slow mode: %+v", v)
	}
	ok(t, s.SetMutedWords(bg(), "st", nil, room.WordsReject))
	if v := check(t, s, "u3", now, "spam"); !v.Allowed() || len(v.Matched) != 0 {
		t.Fatalf("cleared list still matches: %+v", v)
	}
}

func testLikes(t *testing.T, s room.State, peer func() room.State, _ stateImpl) {
	if n, err := s.AddLikes(bg(), "st", 0); err != nil || n != 0 {
		t.Fatalf("new room's likes %d %v", n, err)
	}
	states := []room.State{s, peer()}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := states[i%2].AddLikes(bg(), "st", int64(i+1)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n, err := s.AddLikes(bg(), "st", 0); err != nil || n != 820 {
		t.Fatalf("likes %d %v, want 820", n, err)
	}
	if n, _ := s.AddLikes(bg(), "st", 5); n != 825 {
		t.Fatalf("likes after 5 more: %d", n)
	}
}

func testPeak(t *testing.T, s room.State, _ func() room.State, _ stateImpl) {
	for _, tc := range []struct{ count, peak int }{{3, 3}, {10, 10}, {4, 10}, {0, 10}, {11, 11}} {
		peak, err := s.RecordViewers(bg(), "st", tc.count)
		ok(t, err)
		if peak != tc.peak {
			t.Fatalf("after %d viewers the peak is %d, want %d", tc.count, peak, tc.peak)
		}
	}
}

func testAnnouncement(t *testing.T, s room.State, peer func() room.State, impl stateImpl) {
	const every = 300 * time.Millisecond
	t0 := time.Now().Truncate(time.Millisecond)
	a, err := s.ClaimAnnouncement(bg(), "st", "likes", 5, every, t0)
	ok(t, err)
	if !a.Claimed || !a.Changed || a.Previous != 0 || !a.PreviousAt.IsZero() {
		t.Fatalf("first announcement %+v", a)
	}
	// The same value is never announced twice.
	a, err = peer().ClaimAnnouncement(bg(), "st", "likes", 5, every, t0)
	ok(t, err)
	if a.Claimed || a.Changed {
		t.Fatalf("unchanged value %+v", a)
	}
	// Topics are separate.
	a, err = peer().ClaimAnnouncement(bg(), "st", "viewers", 5, every, t0)
	ok(t, err)
	if !a.Claimed {
		t.Fatalf("another topic %+v", a)
	}
	t1 := t0.Add(10 * time.Millisecond)
	a, err = peer().ClaimAnnouncement(bg(), "st", "likes", 9, every, t1)
	ok(t, err)
	if !a.Changed {
		t.Fatalf("changed value %+v", a)
	}
	if impl.exclusive {
		if a.Claimed {
			t.Fatalf("a second node claimed within the interval: %+v", a)
		}
		time.Sleep(every + 50*time.Millisecond)
		t1 = t0.Add(every + 50*time.Millisecond)
		a, err = peer().ClaimAnnouncement(bg(), "st", "likes", 9, every, t1)
		ok(t, err)
	}
	if !a.Claimed || a.Previous != 5 || !a.PreviousAt.Equal(t0) {
		t.Fatalf("changed value after the interval %+v, want claimed with previous 5 at %v", a, t0)
	}
	a, err = s.ClaimAnnouncement(bg(), "st", "likes", 9, every, t1.Add(time.Hour))
	ok(t, err)
	if a.Claimed || a.Changed || a.Previous != 9 || !a.PreviousAt.Equal(t1) {
		t.Fatalf("announced value %+v", a)
	}
}

func testSnapshot(t *testing.T, s room.State, _ func() room.State, _ stateImpl) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	snap, err := s.Snapshot(bg(), "st", now)
	ok(t, err)
	if snap.WordMode != room.WordsReject || snap.PinnedMessage != nil || snap.PinnedProduct != nil || len(snap.Mutes) != 0 {
		t.Fatalf("empty room %+v", snap)
	}
	stock := 7
	msg := &room.PinnedMessage{Text: "Promo jam 8!", PinnedBy: "h", PinnedAt: now}
	prod := &room.PinnedProduct{Product: commerce.Product{ID: "p1", Name: "Batik", ImageURL: "https://x/y.jpg"}, Price: 150000, Stock: &stock, PinnedBy: "h", PinnedAt: now}
	ok(t, s.SetPinnedMessage(bg(), "st", msg))
	ok(t, s.SetPinnedProduct(bg(), "st", prod))
	ok(t, s.SetMutedWords(bg(), "st", []string{"zeta", "alpha"}, room.WordsMask))
	ok(t, s.SetSlowMode(bg(), "st", 15))
	ok(t, s.Ban(bg(), "st", "b2"))
	ok(t, s.Ban(bg(), "st", "b1"))
	ok(t, s.Mute(bg(), "st", "m2", now.Add(time.Minute)))
	ok(t, s.Mute(bg(), "st", "m1", now.Add(time.Hour)))
	_, err = s.AddLikes(bg(), "st", 42)
	ok(t, err)
	_, err = s.RecordViewers(bg(), "st", 12)
	ok(t, err)
	stock = 0 // the state kept its own copy
	snap, err = s.Snapshot(bg(), "st", now)
	ok(t, err)
	if m := snap.PinnedMessage; m == nil || m.Text != msg.Text || m.PinnedBy != msg.PinnedBy || !m.PinnedAt.Equal(now) {
		t.Fatalf("pinned message %+v, want %+v", snap.PinnedMessage, msg)
	}
	p := snap.PinnedProduct
	if p == nil || p.Product != prod.Product || p.Price != 150000 || p.Stock == nil || *p.Stock != 7 || !p.PinnedAt.Equal(now) {
		t.Fatalf("pinned product %+v", p)
	}
	if !slices.Equal(snap.MutedWords, []string{"alpha", "zeta"}) || snap.WordMode != room.WordsMask || snap.SlowModeSeconds != 15 {
		t.Fatalf("words %v mode %s slow %d", snap.MutedWords, snap.WordMode, snap.SlowModeSeconds)
	}
	if !slices.Equal(snap.Bans, []string{"b1", "b2"}) || len(snap.Mutes) != 2 || snap.Mutes[0].UserID != "m1" {
		t.Fatalf("bans %v mutes %+v", snap.Bans, snap.Mutes)
	}
	if snap.Likes != 42 || snap.ViewerPeak != 12 {
		t.Fatalf("likes %d peak %d", snap.Likes, snap.ViewerPeak)
	}
	ok(t, s.SetPinnedMessage(bg(), "st", nil))
	ok(t, s.SetPinnedProduct(bg(), "st", nil))
	snap, err = s.Snapshot(bg(), "st", now)
	ok(t, err)
	if snap.PinnedMessage != nil || snap.PinnedProduct != nil {
		t.Fatalf("unpinned still pinned: %+v %+v", snap.PinnedMessage, snap.PinnedProduct)
	}
}

func testRoomsSeparate(t *testing.T, s room.State, _ func() room.State, _ stateImpl) {
	ids := []string{"a", "a{b}", "{a}", "}{"}
	for i, id := range ids {
		ok(t, s.Ban(bg(), id, "u"+id))
		_, err := s.AddLikes(bg(), id, int64(i+1))
		ok(t, err)
	}
	for i, id := range ids {
		snap, err := s.Snapshot(bg(), id, time.Now())
		ok(t, err)
		if !slices.Equal(snap.Bans, []string{"u" + id}) || snap.Likes != int64(i+1) {
			t.Fatalf("room %q: bans %v likes %d", id, snap.Bans, snap.Likes)
		}
	}
}
