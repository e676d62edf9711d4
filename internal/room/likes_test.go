package room_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/protoclient"
	"github.com/livehub/livehub/internal/room"
)

func like(t testing.TB, c *protoclient.Conn, stream string, n int) error {
	t.Helper()
	_, err := c.RPC(ctxT(t), room.LikesMethod, []byte(fmt.Sprintf(`{"stream_id":%q,"count":%d}`, stream, n)))
	return err
}

func TestLikes_RefusesBadCalls(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.connect(t, "")
	cases := []struct {
		data, reason string
		code         uint32
	}{
		{`{"stream_id":"s1","count":0}`, "between 1 and 50", 107},
		{`{"stream_id":"s1","count":51}`, "between 1 and 50", 107},
		{`{"stream_id":"s1"}`, "between 1 and 50", 107},
		{`{"count":1}`, `{"stream_id"`, 107},
		{`{"stream_id":"s1","count":1,"x":1}`, `{"stream_id"`, 107},
		{`{"stream_id":"nope","count":1}`, "no such stream", 102},
	}
	for _, tc := range cases {
		_, err := c.RPC(ctxT(t), room.LikesMethod, []byte(tc.data))
		wantCode(t, err, tc.code, tc.reason)
	}
	out, err := c.RPC(ctxT(t), room.LikesMethod, []byte(`{"stream_id":"s1","count":50}`))
	if err != nil || string(out) != `{"accepted":50}` {
		t.Fatalf("%s %v", out, err)
	}
	if _, err := e.store.EndStream(ctxT(t), streamID, time.Now()); err != nil {
		t.Fatal(err)
	}
	wantCode(t, like(t, c, streamID, 1), 108, "ended")
}

// likesWatch collects the likes.count events a socket receives, and counts
// every publication on the room.
type likesWatch struct {
	mu     sync.Mutex
	events []event
	counts []room.LikesCount
	pubs   int
	done   chan struct{}
}

// watchLikes reads c's pushes until the likes total reaches want.
func watchLikes(t *testing.T, c *protoclient.Conn, want int64) *likesWatch {
	w := &likesWatch{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for p := range c.Pushes() {
			if p.Channel != "live:s1" || p.Pub == nil {
				continue
			}
			w.mu.Lock()
			w.pubs++
			var ev event
			if err := json.Unmarshal(p.Pub.Data, &ev.Event); err != nil {
				w.mu.Unlock()
				t.Errorf("not an event: %s", p.Pub.Data)
				return
			}
			if ev.Type == room.EventLikesCount {
				ev.Time = time.Now()
				var lc room.LikesCount
				_ = json.Unmarshal(ev.Data, &lc)
				w.events = append(w.events, ev)
				w.counts = append(w.counts, lc)
			}
			reached := len(w.counts) > 0 && w.counts[len(w.counts)-1].Total >= want
			w.mu.Unlock()
			if reached {
				return
			}
		}
	}()
	return w
}

func (w *likesWatch) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-w.done:
	case <-time.After(d):
		w.mu.Lock()
		defer w.mu.Unlock()
		t.Fatalf("the total did not arrive; counts seen: %+v", w.counts)
	}
}

// checkRate asserts the events came at most once per interval and the
// totals only grew, ending at want.
func (w *likesWatch) checkRate(t *testing.T, start time.Time, interval time.Duration, want int64) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(w.events)
	if n == 0 {
		t.Fatal("no likes.count event")
	}
	if last := w.counts[n-1].Total; last != want {
		t.Fatalf("final total %d, want %d", last, want)
	}
	for i := 1; i < n; i++ {
		if w.counts[i].Total <= w.counts[i-1].Total {
			t.Fatalf("total went from %d to %d: an unchanged or older total was announced", w.counts[i-1].Total, w.counts[i].Total)
		}
	}
	elapsed := w.events[n-1].Time.Sub(start)
	if maxEvents := int(elapsed/interval) + 2; n > maxEvents {
		t.Fatalf("%d likes.count events in %v, more than one per %v (at most %d)", n, elapsed, interval, maxEvents)
	}
	t.Logf("%d likes.count events in %v, rates %v", n, elapsed.Round(time.Millisecond), rates(w.counts))
}

func rates(cs []room.LikesCount) []float64 {
	out := make([]float64, len(cs))
	for i, c := range cs {
		out[i] = c.RatePerSecond
	}
	return out
}

// tap makes viewers logical viewers on c each tap once every 100ms, taps
// times; each tap is one likes.add call.
func tap(t *testing.T, c *protoclient.Conn, viewers, taps int, wg *sync.WaitGroup) {
	for range viewers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for range taps {
				<-tick.C
				if err := like(t, c, streamID, 1); err != nil {
					t.Errorf("tap: %v", err)
					return
				}
			}
		}()
	}
}

// A thousand viewers tap ten times a second for two seconds: the room gets
// a few likes.count events, never faster than the interval, with the exact
// total, and no frame per tap.
func TestLikes_ThousandViewersTappingMakeFewEventsWithTheExactTotal(t *testing.T) {
	const (
		sockets        = 20
		viewersPerConn = 50
		taps           = 20 // 10 a second for 2 seconds
		interval       = 250 * time.Millisecond
		want           = sockets * viewersPerConn * taps
	)
	e := newEnv(t, envOptions{room: func(c *room.Config) { c.LikesInterval = interval; c.ViewersInterval = time.Hour }})
	watcher := e.join(t, "")
	conns := make([]*protoclient.Conn, sockets)
	for i := range conns {
		conns[i] = e.join(t, fmt.Sprintf("viewer%d", i))
	}
	w := watchLikes(t, watcher, want)
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range conns {
		tap(t, c, viewersPerConn, taps, &wg)
	}
	wg.Wait()
	t.Logf("%d taps sent in %v", want, time.Since(start).Round(time.Millisecond))
	w.wait(t, 10*time.Second)
	w.checkRate(t, start, interval, want)

	w.mu.Lock()
	pubs, events := w.pubs, len(w.events)
	w.mu.Unlock()
	if pubs != events {
		t.Fatalf("the room got %d publications besides %d likes.count", pubs-events, events)
	}
	// Every frame the watcher received: the connect and subscribe replies,
	// the likes.count pushes, perhaps a ping. Nothing per tap.
	if frames := watcher.Frames.Load(); frames > int64(events)+5 {
		t.Fatalf("the watcher received %d frames for %d events", frames, events)
	}
	// The tappers received their replies and the counts, nothing per tap of others.
	for i, c := range conns {
		if frames := c.Frames.Load(); frames > int64(viewersPerConn*taps+events+5) {
			t.Fatalf("socket %d received %d frames", i, frames)
		}
	}
	if s, err := e.room.Summary(ctxT(t), streamID); err != nil || s.Likes != want {
		t.Fatalf("summary %+v %v", s, err)
	}
	if n := e.metric(t, "livehub_room_likes_total", nil); n != want {
		t.Fatalf("likes metric %v, want %d", n, want)
	}
	if n := e.metric(t, "livehub_room_announcements_total", map[string]string{"topic": "likes"}); int(n) != events {
		t.Fatalf("announcements metric %v, want %d", n, events)
	}
}

func TestViewers_CountAndPeak(t *testing.T) {
	e := newEnv(t, envOptions{room: func(c *room.Config) { c.ViewersInterval = 50 * time.Millisecond }})
	watcher := e.join(t, "")
	waitViewers(t, watcher, 1, 1)
	a, b := e.join(t, "v1"), e.join(t, "")
	_ = a
	waitViewers(t, watcher, 3, 3)
	b.CloseNow()
	waitViewers(t, watcher, 2, 3)
	if s, err := e.room.Summary(ctxT(t), streamID); err != nil || s.PeakViewers != 3 {
		t.Fatalf("summary %+v %v", s, err)
	}
}

// waitViewers waits for viewers.count {count, peak}.
func waitViewers(t *testing.T, c *protoclient.Conn, count, peak int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		v := decode[room.ViewersCount](t, nextEvent(t, c, "live:s1", room.EventViewersCount))
		if v.Count == count && v.Peak == peak {
			return
		}
	}
	t.Fatalf("no viewers.count {%d, %d}", count, peak)
}

func TestSummary_CountsTapsNotYetFlushed(t *testing.T) {
	e := newEnv(t, envOptions{room: func(c *room.Config) { c.LikesInterval = time.Hour }})
	c := e.connect(t, viewerID)
	for range 7 {
		if err := like(t, c, streamID, 3); err != nil {
			t.Fatal(err)
		}
	}
	s, err := e.room.Summary(ctxT(t), streamID)
	if err != nil || s.Likes != 21 {
		t.Fatalf("summary %+v %v, want 21 likes", s, err)
	}
	if s, _ := e.room.Summary(ctxT(t), streamID); s.Likes != 21 {
		t.Fatalf("second summary %+v", s)
	}
}
