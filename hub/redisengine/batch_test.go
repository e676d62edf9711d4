package redisengine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/hub/hubtest"
	"github.com/livehub/livehub/hub/redisengine"
	"github.com/livehub/livehub/internal/redistest"
)

// trips counts a client's pipelines and the commands sent alone that
// name a channel of the test (its channels share mark); the engine's
// background commands do not.
type trips struct {
	mark             string
	pipelines, alone atomic.Int64
}

func (r *trips) ours(cmd redis.Cmder) bool {
	return strings.Contains(fmt.Sprint(cmd.Args()...), r.mark)
}

func (r *trips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *trips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if r.ours(cmd) {
			r.alone.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (r *trips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && r.ours(cmds[0]) {
			r.pipelines.Add(1)
		}
		return next(ctx, cmds)
	}
}

func TestPublishBatch_EachAsPublishInOneRoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	testPublishBatch(t, newEngine(t, srv.URL), true)
}

func TestPublishBatch_OnCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	testPublishBatch(t, newEngine(t, "redis+cluster://"+strings.Join(cluster.Addrs, ",")), false)
}

func testPublishBatch(t *testing.T, e *redisengine.Engine, oneTrip bool) {
	ctx := context.Background()
	rec := hubtest.StartRun(t, e)
	hist := hub.PublishOptions{HistorySize: 10, HistoryTTL: time.Hour}
	keyed := hist
	keyed.IdempotencyKey = "order.created:o1"
	mark := hubtest.RandomName()
	a, b, c := "test:a-"+mark, "test:b-"+mark, "test:c-"+mark
	for _, ch := range []string{a, b, c} {
		if err := e.Subscribe(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	items := []hub.BatchItem{
		{Channel: a, Data: []byte(`"a1"`), Options: hist},
		{Channel: b, Data: []byte(`"b1"`), Options: keyed},
		{Channel: c, Data: []byte(`"c1"`)}, // no history: a plain publish
		{Channel: a, Data: []byte(`"a2"`), Options: hist},
	}
	// Redis gets the script once, as a first publish would load it.
	warm := "test:warm-" + hubtest.RandomName()
	if _, _, err := e.Publish(ctx, warm, []byte(`"w"`), hist); err != nil {
		t.Fatal(err)
	}
	tr := &trips{mark: mark}
	e.Client().AddHook(tr)
	res := e.PublishBatch(ctx, items)
	if oneTrip && (tr.pipelines.Load() != 1 || tr.alone.Load() != 0) {
		t.Errorf("a batch of 4 sent as %d pipelines and %d publishes alone, want one pipeline", tr.pipelines.Load(), tr.alone.Load())
	}
	for i, r := range res {
		if r.Err != nil || r.Cached {
			t.Fatalf("item %d: %+v", i, r)
		}
	}
	if res[0].Position.Offset != 1 || res[3].Position.Offset != 2 || res[0].Position.Epoch == "" || res[3].Position.Epoch != res[0].Position.Epoch {
		t.Errorf("channel a got %+v then %+v, want offsets 1 and 2 in one epoch", res[0].Position, res[3].Position)
	}
	if res[1].Position.Offset != 1 || res[2].Position != (hub.StreamPosition{}) {
		t.Errorf("channel b %+v (want offset 1), channel c %+v (want none)", res[1].Position, res[2].Position)
	}
	for ch, want := range map[string][]string{a: {`"a1"`, `"a2"`}, b: {`"b1"`}, c: {`"c1"`}} {
		got := rec.WaitPublications(t, ch, len(want))
		for i, w := range want {
			if string(got[i].Pub.Data) != w {
				t.Errorf("%s delivery %d: %s, want %s", ch, i, got[i].Pub.Data, w)
			}
		}
	}

	// Redis forgets its scripts (a restart does): the batch still publishes,
	// each item once, and the idempotency key of b still holds.
	flush := func(c *redis.Client) error { return c.ScriptFlush(ctx).Err() }
	if cc, ok := e.Client().(*redis.ClusterClient); ok {
		if err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return flush(c) }); err != nil {
			t.Fatal(err)
		}
	} else if err := flush(e.Client().(*redis.Client)); err != nil {
		t.Fatal(err)
	}
	res = e.PublishBatch(ctx, []hub.BatchItem{
		{Channel: a, Data: []byte(`"a3"`), Options: hist},
		{Channel: b, Data: []byte(`"b-again"`), Options: keyed},
	})
	if res[0].Err != nil || res[0].Position.Offset != 3 {
		t.Errorf("after SCRIPT FLUSH, channel a: %+v, want offset 3", res[0])
	}
	if res[1].Err != nil || !res[1].Cached || res[1].Position.Offset != 1 {
		t.Errorf("after SCRIPT FLUSH, channel b with the same key: %+v, want the first result, cached", res[1])
	}
	pubs, _, err := e.History(ctx, a, hub.HistoryOptions{Limit: -1})
	if err != nil || len(pubs) != 3 {
		t.Fatalf("history of a: %d publications, %v; want 3", len(pubs), err)
	}
	pubs, _, err = e.History(ctx, b, hub.HistoryOptions{Limit: -1})
	if err != nil || len(pubs) != 1 {
		t.Fatalf("history of b: %d publications, %v; want 1 (the repeat is not published)", len(pubs), err)
	}

	// A canceled context publishes nothing.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	for i, r := range e.PublishBatch(cctx, []hub.BatchItem{{Channel: a, Data: []byte(`"x"`), Options: hist}, {Channel: c, Data: []byte(`"x"`)}}) {
		if r.Err == nil {
			t.Errorf("item %d published under a canceled context", i)
		}
	}
	if _, sp, err := e.History(ctx, a, hub.HistoryOptions{}); err != nil || sp.Offset != 3 {
		t.Errorf("channel a at %+v after the canceled batch, %v; want offset 3", sp, err)
	}
}

// The node's Broadcast goes to the engine as one batch: a channel the node
// refuses fails alone, the others are published with their namespace's
// history, in one pipeline.
func TestNodeBroadcast_OneBatchOnRedis(t *testing.T) {
	srv := redistest.Start(t)
	e := newEngine(t, srv.URL)
	n := hubtest.StartNode(t, hub.Config{Broker: e, Presence: e, Registry: e, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	ctx := context.Background()
	mark := hubtest.RandomName()
	if _, err := n.Publish(ctx, "live:warm-"+mark, []byte(`1`), hub.PublishRequest{}); err != nil {
		t.Fatal(err)
	}
	tr := &trips{mark: mark}
	e.Client().AddHook(tr)
	chans := []string{"live:s-" + mark, "nope:" + mark, "studio:s-" + mark, "user:#u-" + mark}
	res := n.Broadcast(ctx, chans, []byte(`{"type":"order.created"}`), hub.PublishRequest{IdempotencyKey: "order.created:" + mark})
	if tr.pipelines.Load() != 1 || tr.alone.Load() != 0 {
		t.Errorf("broadcast to 3 channels sent as %d pipelines and %d commands alone, want one pipeline", tr.pipelines.Load(), tr.alone.Load())
	}
	var he *hub.Error
	if !errors.As(res[1].Err, &he) || he.Code != hub.ErrorUnknownChannel.Code {
		t.Errorf("unknown namespace: %v, want error %d", res[1].Err, hub.ErrorUnknownChannel.Code)
	}
	for _, i := range []int{0, 2, 3} {
		if res[i].Err != nil || res[i].Position.Offset != 1 {
			t.Errorf("%s: %+v, want offset 1", chans[i], res[i])
		}
		pubs, _, err := e.History(ctx, chans[i], hub.HistoryOptions{Limit: -1})
		if err != nil || len(pubs) != 1 || string(pubs[0].Data) != `{"type":"order.created"}` {
			t.Errorf("%s history: %d publications, %v", chans[i], len(pubs), err)
		}
	}
	// Again with the same key: nothing new anywhere.
	for i, r := range n.Broadcast(ctx, chans, []byte(`{"type":"order.created"}`), hub.PublishRequest{IdempotencyKey: "order.created:" + mark}) {
		if i != 1 && (r.Err != nil || r.Position.Offset != 1) {
			t.Errorf("%s again: %+v, want offset 1 again", chans[i], r)
		}
	}
	// Data that is not JSON fails every channel and publishes nothing.
	for i, r := range n.Broadcast(ctx, chans, []byte(`{`), hub.PublishRequest{}) {
		if r.Err == nil {
			t.Errorf("%s: bad JSON published", chans[i])
		}
	}
	if _, sp, err := e.History(ctx, chans[0], hub.HistoryOptions{}); err != nil || sp.Offset != 1 {
		t.Errorf("%s at %+v after the refused broadcasts, %v", chans[0], sp, err)
	}
}
