package redisengine

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/hub/hubtest"
	"github.com/livehub/livehub/internal/redistest"
)

func testEngine(t *testing.T, url string, opts Options) *Engine {
	t.Helper()
	opts.URL = url
	if opts.Prefix == "" {
		opts.Prefix = "t" + hubtest.RandomName()
	}
	opts.Logger = slog.New(slog.NewTextHandler(logWriter{t}, nil))
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// logWriter sends the engine's log lines to the test log.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func (e *Engine) groupCount() int {
	e.subMu.Lock()
	defer e.subMu.Unlock()
	return len(e.groups)
}

func numsub(t *testing.T, srv *redistest.Server, channel string) string {
	t.Helper()
	reply, err := srv.Do("PUBSUB", "NUMSUB", channel)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(reply, channel+"\n")
}

func TestSubscribe_OneRedisSubscriptionPerChannelAndUnsubscribeStopsDelivery(t *testing.T) {
	srv := redistest.Start(t)
	e := testEngine(t, srv.URL, Options{})
	rec := hubtest.StartRun(t, e)
	ctx := context.Background()
	a, b := "a-"+hubtest.RandomName(), "b-"+hubtest.RandomName()
	for _, ch := range []string{a, b, a} { // the second Subscribe of a is a no-op
		if err := e.Subscribe(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	if n := numsub(t, srv, e.keys.pubsub(a)); n != "1" {
		t.Fatalf("Redis counts %s subscriptions to a, want 1", n)
	}
	if err := e.Unsubscribe(ctx, a); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitFor(t, func() bool { return numsub(t, srv, e.keys.pubsub(a)) == "0" }, "Redis to drop the subscription")
	if n := numsub(t, srv, e.keys.pubsub(b)); n != "1" {
		t.Fatalf("b lost its subscription: %s", n)
	}
	// Both channels share the one connection (PubSubShards 1), so once b's
	// publication is in, a's, published first, would have been too.
	if _, _, err := e.Publish(ctx, a, []byte("a"), hub.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Publish(ctx, b, []byte("b"), hub.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	rec.WaitPublications(t, b, 1)
	if got := rec.Publications(a); len(got) != 0 {
		t.Fatalf("an unsubscribed channel got %d publications", len(got))
	}
	// Unsubscribing a channel not subscribed is harmless.
	if err := e.Unsubscribe(ctx, "never"); err != nil {
		t.Fatal(err)
	}
}

func TestSubscribe_ClusterGroupsBySlotAndClosesEmptyGroups(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	url := "redis+cluster://" + strings.Join(cluster.Addrs, ",")
	for _, tc := range []struct {
		name       string
		partitions int
		maxGroups  int
	}{
		{"channel tags", 0, 40},
		{"four partitions", 4, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := testEngine(t, url, Options{ClusterPartitions: tc.partitions})
			rec := hubtest.StartRun(t, e)
			ctx := context.Background()
			channels := make([]string, 40)
			for i := range channels {
				channels[i] = fmt.Sprintf("c%d-%s", i, hubtest.RandomName())
				if err := e.Subscribe(ctx, channels[i]); err != nil {
					t.Fatal(err)
				}
			}
			slots := make(map[int]bool)
			for _, ch := range channels {
				slots[keySlot(e.keys.pubsub(ch))] = true
			}
			if n := e.groupCount(); n != len(slots) || n > tc.maxGroups {
				t.Fatalf("%d pub/sub connections for %d slots (at most %d)", n, len(slots), tc.maxGroups)
			}
			for _, ch := range channels {
				if _, _, err := e.Publish(ctx, ch, []byte(ch), hub.PublishOptions{HistorySize: 5, HistoryTTL: time.Minute}); err != nil {
					t.Fatal(err)
				}
			}
			for _, ch := range channels {
				got := rec.WaitPublications(t, ch, 1)
				if string(got[0].Pub.Data) != ch || got[0].SP.Offset != 1 {
					t.Fatalf("%s received %q at %+v", ch, got[0].Pub.Data, got[0].SP)
				}
			}
			for _, ch := range channels {
				if err := e.Unsubscribe(ctx, ch); err != nil {
					t.Fatal(err)
				}
			}
			if n := e.groupCount(); n != 0 {
				t.Fatalf("%d pub/sub connections left after unsubscribing everything", n)
			}
		})
	}
}

// migrateSlot moves a hash slot and its keys from one master to another, as
// redis-cli --cluster reshard does.
func migrateSlot(t *testing.T, cluster *redistest.Cluster, slot int, from, to *redistest.Server) {
	t.Helper()
	do := func(s *redistest.Server, args ...string) string {
		t.Helper()
		reply, err := s.Do(args...)
		if err != nil {
			t.Fatalf("%s: %v", strings.Join(args, " "), err)
		}
		return reply
	}
	fromID, toID := do(from, "CLUSTER", "MYID"), do(to, "CLUSTER", "MYID")
	s := fmt.Sprint(slot)
	do(to, "CLUSTER", "SETSLOT", s, "IMPORTING", fromID)
	do(from, "CLUSTER", "SETSLOT", s, "MIGRATING", toID)
	host, port, _ := strings.Cut(to.Addr, ":")
	for {
		keys := do(from, "CLUSTER", "GETKEYSINSLOT", s, "100")
		if keys == "" {
			break
		}
		args := append([]string{"MIGRATE", host, port, "", "0", "5000", "KEYS"}, strings.Split(keys, "\n")...)
		do(from, args...)
	}
	for _, srv := range cluster.Servers {
		do(srv, "CLUSTER", "SETSLOT", s, "NODE", toID)
	}
}

func TestSubscribe_ClusterSlotMigrationMovesSubscription(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	url := "redis+cluster://" + strings.Join(cluster.Addrs, ",")
	resubscribed := make(chan []string, 10)
	e := testEngine(t, url, Options{OnResubscribe: func(chs []string) { resubscribed <- chs }})
	rec := hubtest.StartRun(t, e)
	ctx := context.Background()
	ch := "moving-" + hubtest.RandomName()
	if err := e.Subscribe(ctx, ch); err != nil {
		t.Fatal(err)
	}
	opts := hub.PublishOptions{HistorySize: 10, HistoryTTL: time.Minute}
	first, _, err := e.Publish(ctx, ch, []byte("before"), opts)
	if err != nil {
		t.Fatal(err)
	}
	rec.WaitPublications(t, ch, 1)

	slot := keySlot(e.keys.pubsub(ch))
	var owner, target *redistest.Server
	for i, s := range cluster.Servers {
		if n, err := s.Do("CLUSTER", "COUNTKEYSINSLOT", fmt.Sprint(slot)); err == nil && n != "0" {
			owner, target = s, cluster.Servers[(i+1)%len(cluster.Servers)]
		}
	}
	if owner == nil {
		t.Fatal("no master holds the channel's keys")
	}
	migrateSlot(t, cluster, slot, owner, target)

	select {
	case chs := <-resubscribed:
		if len(chs) != 1 || chs[0] != ch {
			t.Fatalf("OnResubscribe(%v), want [%s]", chs, ch)
		}
	case <-time.After(hubtest.WaitTimeout):
		t.Fatal("the subscription did not follow its slot")
	}
	if n, err := target.Do("PUBSUB", "SHARDNUMSUB", e.keys.pubsub(ch)); err != nil || !strings.HasSuffix(n, "\n1") {
		t.Fatalf("PUBSUB SHARDNUMSUB on the new owner = %q, %v", n, err)
	}
	// History moved with the keys; publications go on in the same epoch.
	next, _, err := e.Publish(ctx, ch, []byte("after"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if next != (hub.StreamPosition{Offset: 2, Epoch: first.Epoch}) {
		t.Fatalf("publication after the move at %+v, want {2 %s}", next, first.Epoch)
	}
	got := rec.WaitPublications(t, ch, 2)
	if got[1].SP != next {
		t.Fatalf("delivered %+v, want %+v", got[1].SP, next)
	}
}
