package redisengine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/hub/hubtest"
	"github.com/livehub/livehub/hub/redisengine"
	"github.com/livehub/livehub/internal/redistest"
	"go.uber.org/goleak"
)

func withPrefix(p string) func(*redisengine.Options) {
	return func(o *redisengine.Options) { o.Prefix = p }
}

func historyOpts() hub.PublishOptions {
	return hub.PublishOptions{HistorySize: 100, HistoryTTL: time.Hour}
}

// resubscribes collects OnResubscribe calls.
type resubscribes struct {
	mu    sync.Mutex
	calls [][]string
}

func (r *resubscribes) record(channels []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, append([]string(nil), channels...))
}

func (r *resubscribes) has(channel string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.calls {
		for _, ch := range c {
			if ch == channel {
				return true
			}
		}
	}
	return false
}

func checkInOrder(t *testing.T, who string, got []hubtest.Received, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%s got %d publications, want %d", who, len(got), n)
	}
	for i, r := range got {
		if r.Pub.Offset != uint64(i+1) || string(r.Pub.Data) != strconv.Itoa(i+1) {
			t.Fatalf("%s: publication %d arrived as offset %d data %q", who, i+1, r.Pub.Offset, r.Pub.Data)
		}
	}
}

func TestEngine_TwoNodesShareChannelsPresenceAndNodes(t *testing.T) {
	srv := redistest.Start(t)
	prefix := "t" + hubtest.RandomName()
	a := newEngine(t, srv.URL, withPrefix(prefix))
	b := newEngine(t, srv.URL, withPrefix(prefix), func(o *redisengine.Options) { o.PubSubShards = 3 })
	recA, recB := hubtest.StartRun(t, a), hubtest.StartRun(t, b)
	ctx := context.Background()
	ch := "live:" + hubtest.RandomName()
	for _, e := range []*redisengine.Engine{a, b} {
		if err := e.Subscribe(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	// Publish from both nodes in turn; each node gets all, in offset order.
	const n = 200
	for i := 1; i <= n; i++ {
		from := a
		if i%2 == 0 {
			from = b
		}
		sp, _, err := from.Publish(ctx, ch, []byte(strconv.Itoa(i)), historyOpts())
		if err != nil {
			t.Fatal(err)
		}
		if sp.Offset != uint64(i) {
			t.Fatalf("publication %d got offset %d", i, sp.Offset)
		}
	}
	checkInOrder(t, "node a", recA.WaitPublications(t, ch, n), n)
	checkInOrder(t, "node b", recB.WaitPublications(t, ch, n), n)

	// A control message reaches every node, its sender included.
	if err := a.PublishControl(ctx, []byte("from-a")); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitFor(t, func() bool { return recA.CountControl("from-a") == 1 && recB.CountControl("from-a") == 1 }, "the control message on both nodes")

	// A join published on one node reaches the other.
	info := &hub.ClientInfo{ClientID: "c1", UserID: "u1"}
	if err := a.PublishJoin(ctx, ch, info); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitFor(t, func() bool { return len(recB.Joins(ch)) == 1 }, "the join on node b")

	// Presence and the node registry are shared.
	if err := a.AddPresence(ctx, ch, "c1", info); err != nil {
		t.Fatal(err)
	}
	if err := b.AddPresence(ctx, ch, "c2", &hub.ClientInfo{ClientID: "c2", UserID: "u2"}); err != nil {
		t.Fatal(err)
	}
	if st, err := a.PresenceStats(ctx, ch); err != nil || st != (hub.PresenceStats{NumClients: 2, NumUsers: 2}) {
		t.Fatalf("PresenceStats on a = %+v, %v", st, err)
	}
	na, nb := hub.NodeInfo{ID: "node-a", NumClients: 1}, hub.NodeInfo{ID: "node-b", NumClients: 2}
	if err := a.UpdateNode(ctx, na, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := b.UpdateNode(ctx, nb, time.Minute); err != nil {
		t.Fatal(err)
	}
	if nodes, err := a.Nodes(ctx); err != nil || !reflect.DeepEqual(nodes, []hub.NodeInfo{na, nb}) {
		t.Fatalf("Nodes = %+v, %v", nodes, err)
	}
}

func TestEngine_PrefixesIsolateDeployments(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newEngine(t, srv.URL), newEngine(t, srv.URL)
	recB := hubtest.StartRun(t, b)
	ctx := context.Background()
	ch := "shared-name"
	if err := b.Subscribe(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Publish(ctx, ch, []byte("a"), historyOpts()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Publish(ctx, ch, []byte("b"), historyOpts()); err != nil {
		t.Fatal(err)
	}
	got := recB.WaitPublications(t, ch, 1)
	if len(got) != 1 || string(got[0].Pub.Data) != "b" || got[0].SP.Offset != 1 {
		t.Fatalf("b received %d publications, first %q: another prefix leaked in", len(got), got[0].Pub.Data)
	}
}

func TestEngine_SubscribeBeforeRunIsHonoured(t *testing.T) {
	srv := redistest.Start(t)
	e := newEngine(t, srv.URL)
	ctx := context.Background()
	ch := "early-" + hubtest.RandomName()
	if err := e.Subscribe(ctx, ch); err != nil {
		t.Fatal(err)
	}
	rec := hubtest.StartRun(t, e)
	if _, _, err := e.Publish(ctx, ch, []byte("1"), historyOpts()); err != nil {
		t.Fatal(err)
	}
	rec.WaitPublications(t, ch, 1)
}

func TestEngine_RunTwiceAndCloseStopRun(t *testing.T) {
	srv := redistest.Start(t)
	e := newEngine(t, srv.URL)
	ctx := context.Background()
	rec := hubtest.NewRecorder()
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, rec) }()
	hubtest.WaitFor(t, func() bool {
		_ = e.PublishControl(ctx, []byte("ready"))
		time.Sleep(5 * time.Millisecond)
		return rec.CountControl("ready") > 0
	}, "Run to deliver")
	if err := e.Run(ctx, hubtest.NewRecorder()); err == nil {
		t.Fatal("a second Run returned nil, want an error")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v after Close", err)
		}
	case <-time.After(hubtest.WaitTimeout):
		t.Fatal("Close did not stop Run")
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, _, err := e.Publish(ctx, "x", []byte("1"), historyOpts()); !errors.Is(err, hub.ErrUnavailable) {
		t.Fatalf("Publish after Close: %v, want ErrUnavailable", err)
	}
	if err := e.Run(ctx, hubtest.NewRecorder()); err == nil {
		t.Fatal("Run after Close returned nil, want an error")
	}
}

func TestEngine_RedisRestartResubscribesAndStartsNewEpoch(t *testing.T) {
	srv := redistest.Start(t)
	var resub resubscribes
	e := newEngine(t, srv.URL, func(o *redisengine.Options) {
		o.OnResubscribe = resub.record
		o.Timeout = 500 * time.Millisecond
	})
	rec := hubtest.StartRun(t, e)
	ctx := context.Background()
	ch := "restart-" + hubtest.RandomName()
	if err := e.Subscribe(ctx, ch); err != nil {
		t.Fatal(err)
	}
	var epoch string
	for i := 0; i < 3; i++ {
		sp, _, err := e.Publish(ctx, ch, []byte("before"), historyOpts())
		if err != nil {
			t.Fatal(err)
		}
		epoch = sp.Epoch
	}
	rec.WaitPublications(t, ch, 3)

	// Publish without pause through the restart.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var unexpected []error
	var unavailable int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, _, err := e.Publish(ctx, ch, []byte("during"), historyOpts())
			if err != nil {
				mu.Lock()
				if errors.Is(err, hub.ErrUnavailable) {
					unavailable++
				} else {
					unexpected = append(unexpected, err)
				}
				mu.Unlock()
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	srv.Restart()
	hubtest.WaitFor(t, func() bool {
		pubs := rec.Publications(ch)
		return pubs[len(pubs)-1].SP.Epoch != epoch
	}, "a publication of the new epoch to arrive")
	close(stop)
	wg.Wait()
	if len(unexpected) > 0 {
		t.Fatalf("publishes failed with errors not wrapping ErrUnavailable: %v", unexpected)
	}
	t.Logf("%d publishes failed with ErrUnavailable during the restart", unavailable)
	hubtest.WaitFor(t, func() bool { return resub.has(ch) }, "OnResubscribe with %s", ch)

	// The data went with the server: a new epoch whose offsets start over.
	pubs, sp, err := e.History(ctx, ch, hub.HistoryOptions{Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	if sp.Epoch == epoch || len(pubs) == 0 || pubs[0].Offset != 1 {
		t.Fatalf("after the restart: epoch %q (was %q), first offset of %d", sp.Epoch, epoch, len(pubs))
	}
	// In the new epoch, delivered publications are in offset order.
	var last uint64
	for _, r := range rec.Publications(ch) {
		if r.SP.Epoch != sp.Epoch {
			continue
		}
		if r.SP.Offset <= last {
			t.Fatalf("offset %d delivered after %d", r.SP.Offset, last)
		}
		last = r.SP.Offset
	}
	final, _, err := e.Publish(ctx, ch, []byte("final"), historyOpts())
	if err != nil {
		t.Fatal(err)
	}
	hubtest.WaitFor(t, func() bool {
		pubs := rec.Publications(ch)
		return pubs[len(pubs)-1].SP == final
	}, "the final publication")
}

func TestEngine_RedisDownCallsFailWithErrUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = 500 * time.Millisecond
	e := newEngine(t, srv.URL, func(o *redisengine.Options) { o.Timeout = timeout })
	hubtest.StartRun(t, e)
	ctx := context.Background()
	if err := e.AddPresence(ctx, "ch", "c1", &hub.ClientInfo{ClientID: "c1"}); err != nil {
		t.Fatal(err)
	}
	srv.Kill()

	info := &hub.ClientInfo{ClientID: "c1", UserID: "u1"}
	calls := []struct {
		name string
		call func(context.Context) error
	}{
		{"Publish", func(ctx context.Context) error {
			_, _, err := e.Publish(ctx, "ch", []byte("x"), hub.PublishOptions{})
			return err
		}},
		{"Publish with history", func(ctx context.Context) error {
			_, _, err := e.Publish(ctx, "ch", []byte("x"), historyOpts())
			return err
		}},
		{"History", func(ctx context.Context) error {
			_, _, err := e.History(ctx, "ch", hub.HistoryOptions{Limit: -1})
			return err
		}},
		{"RemoveHistory", func(ctx context.Context) error { return e.RemoveHistory(ctx, "ch") }},
		{"PublishJoin", func(ctx context.Context) error { return e.PublishJoin(ctx, "ch", info) }},
		{"PublishLeave", func(ctx context.Context) error { return e.PublishLeave(ctx, "ch", info) }},
		{"PublishControl", func(ctx context.Context) error { return e.PublishControl(ctx, []byte("x")) }},
		{"Subscribe", func(ctx context.Context) error { return e.Subscribe(ctx, "new-channel") }},
		{"Presence", func(ctx context.Context) error { _, err := e.Presence(ctx, "ch"); return err }},
		{"PresenceStats", func(ctx context.Context) error { _, err := e.PresenceStats(ctx, "ch"); return err }},
		{"AddPresence", func(ctx context.Context) error { return e.AddPresence(ctx, "ch", "c1", info) }},
		{"RemovePresence", func(ctx context.Context) error { return e.RemovePresence(ctx, "ch", "c1", "u1") }},
		{"UpdateNode", func(ctx context.Context) error { return e.UpdateNode(ctx, hub.NodeInfo{ID: "n"}, time.Minute) }},
		{"RemoveNode", func(ctx context.Context) error { return e.RemoveNode(ctx, "n") }},
		{"Nodes", func(ctx context.Context) error { _, err := e.Nodes(ctx); return err }},
		{"Ping", e.Ping},
	}
	for _, c := range calls {
		start := time.Now()
		err := c.call(ctx)
		if !errors.Is(err, hub.ErrUnavailable) {
			t.Errorf("%s with Redis down: %v, want an error wrapping hub.ErrUnavailable", c.name, err)
		}
		// An upper bound, not a measurement: the call must not hang.
		if d := time.Since(start); d > 10*timeout {
			t.Errorf("%s took %v with Redis down", c.name, d)
		}
	}

	// The same engine recovers once Redis is back, without being told.
	srv.Restart()
	hubtest.WaitFor(t, func() bool { return e.Ping(ctx) == nil }, "the engine to reach Redis again")
	if err := e.Subscribe(ctx, "new-channel"); err != nil {
		t.Fatalf("Subscribe after recovery: %v", err)
	}
	if _, _, err := e.Publish(ctx, "ch", []byte("x"), historyOpts()); err != nil {
		t.Fatalf("Publish after recovery: %v", err)
	}
}

func TestEngine_FrozenRedisConnectionIsReplaced(t *testing.T) {
	srv := redistest.Start(t)
	logs := &logRecorder{t: t}
	var resub resubscribes
	e := newEngine(t, srv.URL, func(o *redisengine.Options) {
		o.Timeout = 300 * time.Millisecond
		o.Logger = slog.New(logs)
		o.OnResubscribe = resub.record
	})
	rec := hubtest.StartRun(t, e)
	ctx := context.Background()
	ch := "frozen-" + hubtest.RandomName()
	if err := e.Subscribe(ctx, ch); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	// The connection stays open but nothing answers; only the pings tell.
	hubtest.WaitFor(t, func() bool { return logs.contains("does not answer", "control=false") }, "the engine to give up on the frozen connection")
	srv.Resume()
	hubtest.WaitFor(t, func() bool { return resub.has(ch) }, "OnResubscribe after the freeze")
	sp, _, err := e.Publish(ctx, ch, []byte("after"), historyOpts())
	if err != nil {
		t.Fatal(err)
	}
	got := rec.WaitPublications(t, ch, 1)
	if got[len(got)-1].SP != sp {
		t.Fatalf("last delivered %+v, want %+v", got[len(got)-1].SP, sp)
	}
}

func TestEngine_LostMetaStartsNewEpoch(t *testing.T) {
	srv := redistest.Start(t)
	e := newEngine(t, srv.URL)
	ctx := context.Background()
	ch := "meta-" + hubtest.RandomName()
	var before hub.StreamPosition
	for i := 0; i < 3; i++ {
		var err error
		if before, _, err = e.Publish(ctx, ch, []byte("x"), historyOpts()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srv.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	pubs, sp, err := e.History(ctx, ch, hub.HistoryOptions{Since: &before, Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	if len(pubs) != 0 || sp.Offset != 0 || sp.Epoch == before.Epoch || sp.Epoch == "" {
		t.Fatalf("after losing the data: %d pubs at %+v; want a new epoch at offset 0 (was %+v)", len(pubs), sp, before)
	}
	next, _, err := e.Publish(ctx, ch, []byte("x"), historyOpts())
	if err != nil {
		t.Fatal(err)
	}
	if next != (hub.StreamPosition{Offset: 1, Epoch: sp.Epoch}) {
		t.Fatalf("first publication after the loss at %+v, want {1 %s}", next, sp.Epoch)
	}
}

func TestEngine_PresenceOfADeadNodeExpires(t *testing.T) {
	srv := redistest.Start(t)
	prefix := "t" + hubtest.RandomName()
	ttl := func(o *redisengine.Options) { o.PresenceTTL = 500 * time.Millisecond }
	dead := newEngine(t, srv.URL, withPrefix(prefix), ttl)
	alive := newEngine(t, srv.URL, withPrefix(prefix), ttl)
	ctx := context.Background()
	ch := "presence-" + hubtest.RandomName()
	for _, id := range []string{"c1", "c2"} {
		if err := dead.AddPresence(ctx, ch, id, &hub.ClientInfo{ClientID: id, UserID: "u1"}); err != nil {
			t.Fatal(err)
		}
	}
	live := &hub.ClientInfo{ClientID: "c3", UserID: "u2"}
	// The dead node stops refreshing; the live one keeps at it.
	hubtest.WaitFor(t, func() bool {
		if err := alive.AddPresence(ctx, ch, "c3", live); err != nil {
			t.Fatal(err)
		}
		st, err := alive.PresenceStats(ctx, ch)
		if err != nil {
			t.Fatal(err)
		}
		return st == hub.PresenceStats{NumClients: 1, NumUsers: 1}
	}, "the dead node's clients to expire")
	got, err := alive.Presence(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, map[string]*hub.ClientInfo{"c3": live}) {
		t.Fatalf("Presence = %+v, want only c3", got)
	}
}

func TestEngine_ClusterSpreadsChannelsOverMasters(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	url := "redis+cluster://" + strings.Join(cluster.Addrs, ",")
	prefix := "t" + hubtest.RandomName()
	a := newEngine(t, url, withPrefix(prefix))
	b := newEngine(t, url, withPrefix(prefix))
	recB := hubtest.StartRun(t, b)
	ctx := context.Background()
	const n = 30
	channels := make([]string, n)
	for i := range channels {
		channels[i] = fmt.Sprintf("live:%d-%s", i, hubtest.RandomName())
		if err := b.Subscribe(ctx, channels[i]); err != nil {
			t.Fatal(err)
		}
	}
	for _, ch := range channels {
		for i := 1; i <= 2; i++ {
			if _, _, err := a.Publish(ctx, ch, []byte(strconv.Itoa(i)), historyOpts()); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, ch := range channels {
		checkInOrder(t, ch, recB.WaitPublications(t, ch, 2), 2)
		pubs, sp, err := b.History(ctx, ch, hub.HistoryOptions{Limit: -1})
		if err != nil || sp.Offset != 2 || len(pubs) != 2 {
			t.Fatalf("History(%s) = %d pubs at %+v, %v", ch, len(pubs), sp, err)
		}
	}
	// Each channel is a shard channel on exactly the master owning its
	// slot, and the channels spread over the masters; so do the keys.
	var total, mastersWithChannels, mastersWithKeys int
	for _, s := range cluster.Servers {
		reply, err := s.Do("PUBSUB", "SHARDCHANNELS", prefix+".ch.*")
		if err != nil {
			t.Fatal(err)
		}
		if reply != "" {
			k := len(strings.Split(reply, "\n"))
			total += k
			mastersWithChannels++
		}
		if size, err := s.Do("DBSIZE"); err != nil {
			t.Fatal(err)
		} else if size != "0" {
			mastersWithKeys++
		}
		// Nothing but the control channel uses cluster-wide pub/sub.
		if reply, err := s.Do("PUBSUB", "CHANNELS", prefix+".*"); err != nil {
			t.Fatal(err)
		} else if reply != "" && reply != prefix+".control" {
			t.Fatalf("%s has non-sharded channels %q", s.Addr, reply)
		}
	}
	if total != n {
		t.Fatalf("%d shard channel subscriptions over the masters, want %d", total, n)
	}
	if mastersWithChannels < 2 || mastersWithKeys < 2 {
		t.Fatalf("channels on %d masters, keys on %d: not spread", mastersWithChannels, mastersWithKeys)
	}
}

func TestEngine_RunStopsEveryGoroutine(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	e, err := redisengine.New(redisengine.Options{URL: srv.URL, Prefix: "t" + hubtest.RandomName(), Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	rec := hubtest.NewRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, rec) }()
	hubtest.WaitFor(t, func() bool {
		_ = e.PublishControl(ctx, []byte("ready"))
		time.Sleep(5 * time.Millisecond)
		return rec.CountControl("ready") > 0
	}, "Run to deliver")
	for i := 0; i < 20; i++ {
		ch := fmt.Sprintf("leak-%d", i)
		if err := e.Subscribe(ctx, ch); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.Publish(ctx, ch, []byte("x"), historyOpts()); err != nil {
			t.Fatal(err)
		}
	}
	rec.WaitPublications(t, "leak-19", 1)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(hubtest.WaitTimeout):
		t.Fatal("Run did not return")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}
