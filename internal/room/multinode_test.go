package room_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/livehub/livehub/hub/redisengine"
	"github.com/livehub/livehub/internal/protoclient"
	"github.com/livehub/livehub/internal/redistest"
	"github.com/livehub/livehub/internal/room"
)

// redisNodes starts n hub nodes, each with its own Redis engine and its own
// client for a RedisState, on one Redis; they share the commerce store.
func redisNodes(t *testing.T, n int, tweak func(*room.Config)) []*env {
	t.Helper()
	srv := redistest.Start(t)
	prefix := keyPrefix()
	store := newStore(t)
	clk := &clock{}
	out := make([]*env, n)
	for i := range out {
		eng, err := redisengine.New(redisengine.Options{URL: srv.URL, Prefix: prefix, Logger: quietLogger(), Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		// Registered first, so it runs after the node's shutdown.
		t.Cleanup(func() {
			if err := eng.Close(); err != nil {
				t.Errorf("engine close: %v", err)
			}
		})
		state := room.NewRedisState(newRedisClient(t, srv.URL), room.RedisStateOptions{Prefix: prefix})
		out[i] = newEnv(t, envOptions{
			state: state, broker: eng, presence: eng, registry: eng,
			store: store, clock: clk, room: tweak,
		})
	}
	return out
}

func TestRoom_MuteOnOneNodeIsRefusedOnTheOther(t *testing.T) {
	nodes := redisNodes(t, 2, nil)
	n1, n2 := nodes[0], nodes[1]
	v := n2.join(t, viewerID)
	watcher := n1.join(t, "")
	if err := say(t, v, "halo dari node 2"); err != nil {
		t.Fatal(err)
	}
	if m := decode[room.ChatMessage](t, nextEvent(t, watcher, "live:s1", room.EventChatMessage)); m.Text != "halo dari node 2" {
		t.Fatalf("message across nodes %+v", m)
	}

	n1.must(t, http.StatusOK, hostID, "POST", "/v1/streams/s1/moderation/mutes", `{"user_id":"v1","duration_seconds":120}`)
	wantCode(t, say(t, v, "masih bisa?"), 103, "muted in this chat for 2m0s more")

	// And the other way round, with a ban and slow mode.
	n2.must(t, http.StatusNoContent, hostID, "DELETE", "/v1/streams/s1/moderation/mutes/v1", "")
	n2.must(t, http.StatusOK, hostID, "POST", "/v1/streams/s1/moderation/bans", `{"user_id":"v2"}`)
	wantCode(t, say(t, n1.join(t, "v2"), "halo"), 103, "banned")

	n1.must(t, http.StatusOK, hostID, "PUT", "/v1/streams/s1/moderation/slow-mode", `{"seconds":20}`)
	v1On1 := n1.join(t, viewerID)
	if err := say(t, v1On1, "satu"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, say(t, v, "dua"), 111, "wait 20 seconds")

	// A moderator appointed on one node moderates through the other.
	n1.appoint(t, modID)
	n2.must(t, http.StatusOK, modID, "PUT", "/v1/streams/s1/moderation/pinned-message", `{"text":"dari moderator"}`)
	if pm := decode[room.PinnedMessage](t, nextEvent(t, watcher, "live:s1", room.EventMessagePinned)); pm.Text != "dari moderator" {
		t.Fatalf("pinned %+v", pm)
	}
}

// Taps on two nodes add up in Redis; one node announces each interval.
func TestLikes_TwoNodesAddUpAndAnnounceAtMostOncePerInterval(t *testing.T) {
	const (
		perNode  = 5
		viewers  = 20
		taps     = 20
		interval = 200 * time.Millisecond
		want     = 2 * perNode * viewers * taps
	)
	nodes := redisNodes(t, 2, func(c *room.Config) {
		c.LikesInterval = interval
		c.ViewersInterval = 100 * time.Millisecond
	})
	watcher := nodes[0].join(t, "")
	var conns []*protoclient.Conn
	for _, n := range nodes {
		for range perNode {
			conns = append(conns, n.join(t, ""))
		}
	}
	// Presence is cluster-wide: 11 sockets on two nodes.
	waitViewers(t, watcher, 2*perNode+1, 2*perNode+1)

	w := watchLikes(t, watcher, want)
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range conns {
		tap(t, c, viewers, taps, &wg)
	}
	wg.Wait()
	w.wait(t, 10*time.Second)
	w.checkRate(t, start, interval, want)
	s, err := nodes[1].room.Summary(ctxT(t), streamID)
	if err != nil || s.Likes != want || s.PeakViewers != 2*perNode+1 {
		t.Fatalf("summary %+v %v", s, err)
	}
}
