package hubtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/livehub/livehub/hub"
)

// Engine is what the suite tests: the three engine interfaces in one value,
// as both the memory and the Redis engine provide them.
type Engine interface {
	hub.Broker
	hub.PresenceManager
	hub.NodeRegistry
}

// RunEngineTests runs the behaviour every engine must share. newEngine
// returns a fresh engine that sees nothing of the engines of other subtests
// (a new memory engine, or a Redis engine with its own prefix) and closes it
// with t.Cleanup. Subtests run in parallel.
func RunEngineTests(t *testing.T, newEngine func(t *testing.T) Engine) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e Engine)
	}{
		{"Publish_WithoutHistoryHasNoPosition", testPublishWithoutHistory},
		{"Publish_HistorySizeWithoutTTLKeepsNoHistory", testPublishSizeWithoutTTL},
		{"Publish_AssignsConsecutiveOffsetsInOneEpoch", testPublishOffsets},
		{"Publish_KeepsDataInfoTagsAndTime", testPublishRoundTrip},
		{"Publish_IdempotencyKeyPublishesOnce", testIdempotentPublish},
		{"Publish_IdempotencyKeyExpires", testIdempotencyExpires},
		{"Publish_CanceledContextPublishesNothing", testCanceledContext},
		{"History_UnknownChannelHasStablePosition", testHistoryUnknownChannel},
		{"History_CappedAtHistorySize", testHistoryCapped},
		{"History_ExpiresAfterTTLKeepingPosition", testHistoryTTL},
		{"History_SinceLimitReverse", testHistoryFilters},
		{"History_SinceBeforeKeptWindowReturnsAllKept", testHistorySinceBeforeWindow},
		{"History_ChannelsAreSeparate", testHistoryChannelsSeparate},
		{"RemoveHistory_KeepsPosition", testRemoveHistory},
		{"Run_DeliversPublicationsInOrder", testOrderedDelivery},
		{"Run_DeliversConcurrentPublicationsInOffsetOrder", testConcurrentOrderedDelivery},
		{"Run_DeliversJoinAndLeaveInOrderWithPublications", testJoinLeave},
		{"Run_DeliversControlToItself", testControl},
		{"Run_StopsDeliveryWhenDone", testRunStops},
		{"Presence_TracksClientsAndUsers", testPresence},
		{"Presence_RefreshReplacesInfo", testPresenceRefresh},
		{"Presence_ClientChangingUserIsCountedOnce", testPresenceUserChange},
		{"Presence_ChannelsAreSeparate", testPresenceChannels},
		{"Nodes_ListsLiveNodesSortedAndDropsExpired", testNodes},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newEngine(t))
		})
	}
}

// historyOpts keeps history for an hour unless a test wants otherwise.
func historyOpts(size int) hub.PublishOptions {
	return hub.PublishOptions{HistorySize: size, HistoryTTL: time.Hour}
}

func channel(suffix string) string { return "test:" + suffix + "-" + RandomName() }

func mustPublish(t *testing.T, e Engine, ch string, data string, opts hub.PublishOptions) hub.StreamPosition {
	t.Helper()
	sp, cached, err := e.Publish(context.Background(), ch, []byte(data), opts)
	if err != nil {
		t.Fatalf("Publish(%q): %v", ch, err)
	}
	if cached {
		t.Fatalf("Publish(%q) without idempotency key reported an earlier result", ch)
	}
	return sp
}

func mustHistory(t *testing.T, e Engine, ch string, opts hub.HistoryOptions) ([]*hub.Publication, hub.StreamPosition) {
	t.Helper()
	pubs, sp, err := e.History(context.Background(), ch, opts)
	if err != nil {
		t.Fatalf("History(%q, %+v): %v", ch, opts, err)
	}
	return pubs, sp
}

func offsets(pubs []*hub.Publication) []uint64 {
	out := make([]uint64, len(pubs))
	for i, p := range pubs {
		out[i] = p.Offset
	}
	return out
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	if from <= to {
		for o := from; o <= to; o++ {
			out = append(out, o)
		}
		return out
	}
	for o := from; o >= to; o-- {
		out = append(out, o)
	}
	return out
}

func equalOffsets(a, b []uint64) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

func testPublishWithoutHistory(t *testing.T, e Engine) {
	ch := channel("nohistory")
	sp := mustPublish(t, e, ch, `{"a":1}`, hub.PublishOptions{})
	if sp != (hub.StreamPosition{}) {
		t.Fatalf("position of a publication without history = %+v, want zero", sp)
	}
	pubs, hsp := mustHistory(t, e, ch, hub.HistoryOptions{Limit: -1})
	if len(pubs) != 0 || hsp.Offset != 0 {
		t.Fatalf("History after publishing without history = %d pubs at %+v, want none at offset 0", len(pubs), hsp)
	}
}

func testPublishSizeWithoutTTL(t *testing.T, e Engine) {
	ch := channel("nottl")
	sp := mustPublish(t, e, ch, `1`, hub.PublishOptions{HistorySize: 10})
	if sp != (hub.StreamPosition{}) {
		t.Fatalf("position with HistorySize but no HistoryTTL = %+v, want zero", sp)
	}
	if pubs, _ := mustHistory(t, e, ch, hub.HistoryOptions{Limit: -1}); len(pubs) != 0 {
		t.Fatalf("History kept %d publications without HistoryTTL", len(pubs))
	}
}

func testPublishOffsets(t *testing.T, e Engine) {
	ch := channel("offsets")
	var epoch string
	for i := 1; i <= 5; i++ {
		sp := mustPublish(t, e, ch, strconv.Itoa(i), historyOpts(10))
		if sp.Offset != uint64(i) {
			t.Fatalf("publication %d got offset %d", i, sp.Offset)
		}
		if sp.Epoch == "" {
			t.Fatalf("publication %d got an empty epoch", i)
		}
		if i == 1 {
			epoch = sp.Epoch
		} else if sp.Epoch != epoch {
			t.Fatalf("epoch changed from %q to %q at publication %d", epoch, sp.Epoch, i)
		}
	}
	pubs, sp := mustHistory(t, e, ch, hub.HistoryOptions{Limit: -1})
	if sp != (hub.StreamPosition{Offset: 5, Epoch: epoch}) {
		t.Fatalf("History position = %+v, want {5 %s}", sp, epoch)
	}
	if got := offsets(pubs); !equalOffsets(got, seq(1, 5)) {
		t.Fatalf("History offsets = %v, want 1..5", got)
	}
	for i, p := range pubs {
		if string(p.Data) != strconv.Itoa(i+1) {
			t.Fatalf("publication %d data = %q", i+1, p.Data)
		}
	}
}

func testPublishRoundTrip(t *testing.T, e Engine) {
	ch := channel("roundtrip")
	rec := StartRun(t, e)
	if err := e.Subscribe(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 0, 256+64<<10)
	for i := 0; i < 256; i++ {
		data = append(data, byte(i))
	}
	data = append(data, bytes.Repeat([]byte("x"), 64<<10)...)
	info := &hub.ClientInfo{ClientID: "c1", UserID: "u1", ConnInfo: []byte(`{"n":"ann"}`), ChanInfo: []byte{0, 1, 2}}
	tags := map[string]string{"k": "v", "empty": "", "ünï": "cödé"}
	opts := historyOpts(10)
	opts.ClientInfo, opts.Tags = info, tags

	before := time.Now().UnixMilli()
	sp, _, err := e.Publish(context.Background(), ch, data, opts)
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now().UnixMilli()

	check := func(where string, p *hub.Publication) {
		t.Helper()
		if p.Offset != sp.Offset {
			t.Errorf("%s: offset %d, want %d", where, p.Offset, sp.Offset)
		}
		if !bytes.Equal(p.Data, data) {
			t.Errorf("%s: data differs (%d bytes, want %d)", where, len(p.Data), len(data))
		}
		if !reflect.DeepEqual(p.Info, info) {
			t.Errorf("%s: info %+v, want %+v", where, p.Info, info)
		}
		if !reflect.DeepEqual(p.Tags, tags) {
			t.Errorf("%s: tags %v, want %v", where, p.Tags, tags)
		}
		if p.Time < before || p.Time > after {
			t.Errorf("%s: time %d outside [%d, %d]", where, p.Time, before, after)
		}
	}
	pubs, _ := mustHistory(t, e, ch, hub.HistoryOptions{Limit: -1})
	if len(pubs) != 1 {
		t.Fatalf("History has %d publications, want 1", len(pubs))
	}
	check("history", pubs[0])
	got := rec.WaitPublications(t, ch, 1)
	check("delivered", got[0].Pub)
	if got[0].SP != sp {
		t.Errorf("delivered position %+v, want %+v", got[0].SP, sp)
	}
}

func testIdempotentPublish(t *testing.T, e Engine) {
	ctx := context.Background()
	ch := channel("idem")
	rec := StartRun(t, e)
	if err := e.Subscribe(ctx, ch); err != nil {
		t.Fatal(err)
	}
	opts := historyOpts(10)
	opts.IdempotencyKey = "order-1"
	sp1, cached, err := e.Publish(ctx, ch, []byte("first"), opts)
	if err != nil || cached {
		t.Fatalf("first Publish = %+v, cached %v, %v", sp1, cached, err)
	}
	sp2, cached, err := e.Publish(ctx, ch, []byte("second"), opts)
	if err != nil || !cached || sp2 != sp1 {
		t.Fatalf("repeated Publish = %+v, cached %v, %v; want %+v, cached", sp2, cached, err, sp1)
	}
	// A publication without key after the repeat: once it arrives, the
	// repeat would have arrived before it.
	marker := mustPublish(t, e, ch, "marker", historyOpts(10))
	if marker.Offset != sp1.Offset+1 {
		t.Fatalf("publication after the repeat got offset %d, want %d", marker.Offset, sp1.Offset+1)
	}
	got := rec.WaitPublications(t, ch, 2)
	if len(got) != 2 || string(got[0].Pub.Data) != "first" || string(got[1].Pub.Data) != "marker" {
		t.Fatalf("delivered %d publications, want first and marker only", len(got))
	}
	pubs, _ := mustHistory(t, e, ch, hub.HistoryOptions{Limit: -1})
	if len(pubs) != 2 {
		t.Fatalf("history has %d publications, want 2", len(pubs))
	}

	// The key belongs to its channel.
	other := channel("idem-other")
	if _, cached, err := e.Publish(ctx, other, []byte("x"), opts); err != nil || cached {
		t.Fatalf("same key in another channel: cached %v, %v", cached, err)
	}
	// Without history the result is a zero position, remembered all the same.
	noHist := hub.PublishOptions{IdempotencyKey: "k"}
	nh := channel("idem-nohistory")
	if sp, cached, err := e.Publish(ctx, nh, []byte("x"), noHist); err != nil || cached || sp != (hub.StreamPosition{}) {
		t.Fatalf("first publish without history = %+v, cached %v, %v", sp, cached, err)
	}
	if sp, cached, err := e.Publish(ctx, nh, []byte("x"), noHist); err != nil || !cached || sp != (hub.StreamPosition{}) {
		t.Fatalf("repeat without history = %+v, cached %v, %v; want zero, cached", sp, cached, err)
	}
}

func testIdempotencyExpires(t *testing.T, e Engine) {
	ctx := context.Background()
	ch := channel("idem-ttl")
	opts := historyOpts(10)
	opts.IdempotencyKey = "k"
	opts.IdempotentResultTTL = 200 * time.Millisecond
	first, _, err := e.Publish(ctx, ch, []byte("1"), opts)
	if err != nil {
		t.Fatal(err)
	}
	var sp hub.StreamPosition
	WaitFor(t, func() bool {
		var cached bool
		sp, cached, err = e.Publish(ctx, ch, []byte("again"), opts)
		if err != nil {
			t.Fatal(err)
		}
		return !cached
	}, "the idempotency key to expire")
	if sp.Offset != first.Offset+1 {
		t.Fatalf("publish after the key expired got offset %d, want %d", sp.Offset, first.Offset+1)
	}
}

func testCanceledContext(t *testing.T, e Engine) {
	ch := channel("canceled")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := e.Publish(ctx, ch, []byte("x"), historyOpts(10)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish with a canceled context: %v, want context.Canceled", err)
	}
	if _, _, err := e.History(ctx, ch, hub.HistoryOptions{Limit: -1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("History with a canceled context: %v, want context.Canceled", err)
	}
	pubs, sp := mustHistory(t, e, ch, hub.HistoryOptions{Limit: -1})
	if len(pubs) != 0 || sp.Offset != 0 {
		t.Fatalf("a canceled Publish left %d publications at offset %d", len(pubs), sp.Offset)
	}
}

func testHistoryUnknownChannel(t *testing.T, e Engine) {
	ch := channel("unknown")
	pubs, sp1 := mustHistory(t, e, ch, hub.HistoryOptions{Limit: -1})
	if len(pubs) != 0 || sp1.Offset != 0 || sp1.Epoch == "" {
		t.Fatalf("History of an unknown channel = %d pubs at %+v, want none at offset 0 with an epoch", len(pubs), sp1)
	}
	_, sp2 := mustHistory(t, e, ch, hub.HistoryOptions{})
	if sp2 != sp1 {
		t.Fatalf("second History position %+v, want %+v", sp2, sp1)
	}
	sp := mustPublish(t, e, ch, "1", historyOpts(10))
	if sp != (hub.StreamPosition{Offset: 1, Epoch: sp1.Epoch}) {
		t.Fatalf("first publication at %+v, want {1 %s}: a client that saw offset 0 must be able to recover", sp, sp1.Epoch)
	}
}

func testHistoryCapped(t *testing.T, e Engine) {
	ch := channel("capped")
	for i := 1; i <= 10; i++ {
		mustPublish(t, e, ch, strconv.Itoa(i), historyOpts(3))
	}
	pubs, sp := mustHistory(t, e, ch, hub.HistoryOptions{Limit: -1})
	if got := offsets(pubs); !equalOffsets(got, seq(8, 10)) || sp.Offset != 10 {
		t.Fatalf("capped history = %v at offset %d, want [8 9 10] at 10", got, sp.Offset)
	}
}

func testHistoryTTL(t *testing.T, e Engine) {
	ch := channel("ttl")
	opts := hub.PublishOptions{HistorySize: 10, HistoryTTL: 300 * time.Millisecond}
	var epoch string
	for i := 1; i <= 3; i++ {
		epoch = mustPublish(t, e, ch, strconv.Itoa(i), opts).Epoch
	}
	var sp hub.StreamPosition
	WaitFor(t, func() bool {
		var pubs []*hub.Publication
		pubs, sp = mustHistory(t, e, ch, hub.HistoryOptions{Limit: -1})
		return len(pubs) == 0
	}, "history to expire")
	if sp != (hub.StreamPosition{Offset: 3, Epoch: epoch}) {
		t.Fatalf("position after history expired = %+v, want {3 %s}", sp, epoch)
	}
	next := mustPublish(t, e, ch, "4", opts)
	if next != (hub.StreamPosition{Offset: 4, Epoch: epoch}) {
		t.Fatalf("publication after expiry at %+v, want {4 %s}", next, epoch)
	}
	pubs, _ := mustHistory(t, e, ch, hub.HistoryOptions{Limit: -1})
	if got := offsets(pubs); !equalOffsets(got, []uint64{4}) {
		t.Fatalf("history after expiry = %v, want [4]", got)
	}
}

func testHistoryFilters(t *testing.T, e Engine) {
	ch := channel("filters")
	var epoch string
	for i := 1; i <= 10; i++ {
		epoch = mustPublish(t, e, ch, strconv.Itoa(i), historyOpts(100)).Epoch
	}
	since := func(o uint64) *hub.StreamPosition { return &hub.StreamPosition{Offset: o, Epoch: epoch} }
	for _, tc := range []struct {
		name    string
		since   *hub.StreamPosition
		limit   int
		reverse bool
		want    []uint64
	}{
		{"limit zero gives position only", nil, 0, false, nil},
		{"limit zero with since", since(3), 0, false, nil},
		{"all", nil, -1, false, seq(1, 10)},
		{"all reversed", nil, -1, true, seq(10, 1)},
		{"oldest three", nil, 3, false, seq(1, 3)},
		{"newest three", nil, 3, true, seq(10, 8)},
		{"limit above kept", nil, 100, false, seq(1, 10)},
		{"after 4", since(4), -1, false, seq(5, 10)},
		{"after 4, two", since(4), 2, false, seq(5, 6)},
		{"after 4, newest two", since(4), 2, true, seq(10, 9)},
		{"after 4 reversed", since(4), -1, true, seq(10, 5)},
		{"after 0", since(0), -1, false, seq(1, 10)},
		{"after 9", since(9), -1, false, []uint64{10}},
		{"after the last", since(10), -1, false, nil},
		{"after the last reversed", since(10), -1, true, nil},
		{"beyond the last", since(15), 5, false, nil},
		{"after the largest offset", since(math.MaxUint64), -1, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pubs, sp := mustHistory(t, e, ch, hub.HistoryOptions{Since: tc.since, Limit: tc.limit, Reverse: tc.reverse})
			if got := offsets(pubs); !equalOffsets(got, tc.want) {
				t.Errorf("offsets %v, want %v", got, tc.want)
			}
			if sp != (hub.StreamPosition{Offset: 10, Epoch: epoch}) {
				t.Errorf("position %+v, want {10 %s}", sp, epoch)
			}
		})
	}
}

func testHistorySinceBeforeWindow(t *testing.T, e Engine) {
	ch := channel("window")
	for i := 1; i <= 10; i++ {
		mustPublish(t, e, ch, strconv.Itoa(i), historyOpts(5))
	}
	pubs, _ := mustHistory(t, e, ch, hub.HistoryOptions{Since: &hub.StreamPosition{Offset: 2}, Limit: -1})
	if got := offsets(pubs); !equalOffsets(got, seq(6, 10)) {
		t.Fatalf("history after an offset no longer kept = %v, want what is kept, 6..10", got)
	}
}

func testHistoryChannelsSeparate(t *testing.T, e Engine) {
	a, b := channel("sep-a"), channel("sep-b")
	mustPublish(t, e, a, "a1", historyOpts(10))
	mustPublish(t, e, a, "a2", historyOpts(10))
	spb := mustPublish(t, e, b, "b1", historyOpts(10))
	if spb.Offset != 1 {
		t.Fatalf("first publication of another channel got offset %d", spb.Offset)
	}
	pubs, _ := mustHistory(t, e, b, hub.HistoryOptions{Limit: -1})
	if len(pubs) != 1 || string(pubs[0].Data) != "b1" {
		t.Fatalf("history of b has %d publications", len(pubs))
	}
}

func testRemoveHistory(t *testing.T, e Engine) {
	ch := channel("remove")
	var epoch string
	for i := 1; i <= 3; i++ {
		epoch = mustPublish(t, e, ch, strconv.Itoa(i), historyOpts(10)).Epoch
	}
	if err := e.RemoveHistory(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	pubs, sp := mustHistory(t, e, ch, hub.HistoryOptions{Limit: -1})
	if len(pubs) != 0 || sp != (hub.StreamPosition{Offset: 3, Epoch: epoch}) {
		t.Fatalf("after RemoveHistory: %d pubs at %+v, want none at {3 %s}", len(pubs), sp, epoch)
	}
	if sp := mustPublish(t, e, ch, "4", historyOpts(10)); sp != (hub.StreamPosition{Offset: 4, Epoch: epoch}) {
		t.Fatalf("publication after RemoveHistory at %+v, want {4 %s}", sp, epoch)
	}
	pubs, _ = mustHistory(t, e, ch, hub.HistoryOptions{Limit: -1})
	if got := offsets(pubs); !equalOffsets(got, []uint64{4}) {
		t.Fatalf("history after RemoveHistory and a publish = %v, want [4]", got)
	}
	// Removing the history of a channel that has none is not an error.
	if err := e.RemoveHistory(context.Background(), channel("never")); err != nil {
		t.Fatal(err)
	}
}

func testOrderedDelivery(t *testing.T, e Engine) {
	ctx := context.Background()
	withHistory, without := channel("ordered"), channel("ordered-nohistory")
	rec := StartRun(t, e)
	for _, ch := range []string{withHistory, without} {
		if err := e.Subscribe(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	const n = 1000
	for i := 1; i <= n; i++ {
		mustPublish(t, e, withHistory, strconv.Itoa(i), historyOpts(10))
		mustPublish(t, e, without, strconv.Itoa(i), hub.PublishOptions{})
	}
	got := rec.WaitPublications(t, withHistory, n)
	var epoch string
	for i, r := range got {
		if string(r.Pub.Data) != strconv.Itoa(i+1) || r.Pub.Offset != uint64(i+1) || r.SP.Offset != uint64(i+1) {
			t.Fatalf("publication %d arrived as data %q, offset %d, position %+v", i+1, r.Pub.Data, r.Pub.Offset, r.SP)
		}
		if i == 0 {
			epoch = r.SP.Epoch
		} else if r.SP.Epoch != epoch {
			t.Fatalf("epoch changed at publication %d", i+1)
		}
	}
	got = rec.WaitPublications(t, without, n)
	for i, r := range got {
		if string(r.Pub.Data) != strconv.Itoa(i+1) || r.SP != (hub.StreamPosition{}) {
			t.Fatalf("publication %d without history arrived as %q at %+v", i+1, r.Pub.Data, r.SP)
		}
	}
	if len(got) != n {
		t.Fatalf("%d publications arrived, want %d", len(got), n)
	}
}

func testConcurrentOrderedDelivery(t *testing.T, e Engine) {
	ctx := context.Background()
	rec := StartRun(t, e)
	const channels, publishers, each = 4, 4, 100
	chans := make([]string, channels)
	for i := range chans {
		chans[i] = channel(fmt.Sprintf("concurrent%d", i))
		if err := e.Subscribe(ctx, chans[i]); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, channels*publishers)
	for _, ch := range chans {
		for p := 0; p < publishers; p++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					if _, _, err := e.Publish(ctx, ch, []byte(fmt.Sprintf("%d-%d", p, i)), historyOpts(1000)); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, ch := range chans {
		got := rec.WaitPublications(t, ch, publishers*each)
		if len(got) != publishers*each {
			t.Fatalf("%s: %d publications, want %d", ch, len(got), publishers*each)
		}
		for i, r := range got {
			if r.Pub.Offset != uint64(i+1) || r.SP.Offset != r.Pub.Offset {
				t.Fatalf("%s: publication %d arrived with offset %d (position %d): not in offset order", ch, i+1, r.Pub.Offset, r.SP.Offset)
			}
		}
	}
}

func testJoinLeave(t *testing.T, e Engine) {
	ctx := context.Background()
	ch := channel("joinleave")
	rec := StartRun(t, e)
	if err := e.Subscribe(ctx, ch); err != nil {
		t.Fatal(err)
	}
	info := &hub.ClientInfo{ClientID: "c1", UserID: "u1", ConnInfo: []byte(`{"a":1}`), ChanInfo: []byte(`{"b":2}`)}
	if err := e.PublishJoin(ctx, ch, info); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, e, ch, "hello", historyOpts(10))
	if err := e.PublishLeave(ctx, ch, info); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, func() bool { return len(rec.Leaves(ch)) == 1 }, "the leave")
	if joins := rec.Joins(ch); len(joins) != 1 || !reflect.DeepEqual(joins[0], info) {
		t.Fatalf("joins %+v, want one %+v", joins, info)
	}
	if leaves := rec.Leaves(ch); !reflect.DeepEqual(leaves[0], info) {
		t.Fatalf("leave %+v, want %+v", leaves[0], info)
	}
	if order := rec.Order(ch); !reflect.DeepEqual(order, []string{"join", "pub", "leave"}) {
		t.Fatalf("events arrived as %v, want [join pub leave]", order)
	}
}

func testControl(t *testing.T, e Engine) {
	rec := StartRun(t, e)
	msg := "control-" + RandomName()
	if err := e.PublishControl(context.Background(), []byte(msg)); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, func() bool { return rec.CountControl(msg) > 0 }, "the control message")
	// A second, distinct message shows the first was not duplicated.
	next := msg + "-next"
	if err := e.PublishControl(context.Background(), []byte(next)); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, func() bool { return rec.CountControl(next) > 0 }, "the second control message")
	if n := rec.CountControl(msg); n != 1 {
		t.Fatalf("control message delivered %d times, want 1", n)
	}
}

func testRunStops(t *testing.T, e Engine) {
	ctx := context.Background()
	ch := channel("stops")
	rec := NewRecorder()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx, rec) }()
	WaitFor(t, func() bool {
		_ = e.PublishControl(ctx, []byte("ready"))
		time.Sleep(10 * time.Millisecond)
		return rec.CountControl("ready") > 0
	}, "Run to deliver")
	if err := e.Subscribe(ctx, ch); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, e, ch, "during", historyOpts(10))
	rec.WaitPublications(t, ch, 1)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(WaitTimeout):
		t.Fatal("Run did not return after its context was canceled")
	}
	// Publishing still works (it needs no Run), but nothing reaches the
	// handler of a Run that returned: the node may be shutting down.
	mustPublish(t, e, ch, "after", historyOpts(10))
	_ = e.PublishControl(ctx, []byte("after"))
	if n := len(rec.Publications(ch)); n != 1 {
		t.Fatalf("handler got %d publications, want 1: delivery went on after Run returned", n)
	}
	if n := rec.CountControl("after"); n != 0 {
		t.Fatal("handler got a control message after Run returned")
	}
}

func testPresence(t *testing.T, e Engine) {
	ctx := context.Background()
	ch := channel("presence")
	infos := map[string]*hub.ClientInfo{
		"c1": {ClientID: "c1", UserID: "u1", ConnInfo: []byte(`{"name":"ann"}`)},
		"c2": {ClientID: "c2", UserID: "u1"},
		"c3": {ClientID: "c3", UserID: "u2", ChanInfo: []byte(`{"role":"host"}`)},
	}
	stats := func(clients, users int) {
		t.Helper()
		got, err := e.PresenceStats(ctx, ch)
		if err != nil {
			t.Fatal(err)
		}
		if got != (hub.PresenceStats{NumClients: clients, NumUsers: users}) {
			t.Fatalf("PresenceStats = %+v, want %d clients, %d users", got, clients, users)
		}
	}
	stats(0, 0)
	for _, id := range []string{"c1", "c2", "c3"} {
		if err := e.AddPresence(ctx, ch, id, infos[id]); err != nil {
			t.Fatal(err)
		}
	}
	got, err := e.Presence(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, infos) {
		t.Fatalf("Presence = %+v, want %+v", got, infos)
	}
	stats(3, 2)
	// Anonymous connections are clients, not users.
	if err := e.AddPresence(ctx, ch, "anon", &hub.ClientInfo{ClientID: "anon"}); err != nil {
		t.Fatal(err)
	}
	stats(4, 2)
	if err := e.RemovePresence(ctx, ch, "anon", ""); err != nil {
		t.Fatal(err)
	}
	stats(3, 2)
	// Refreshing an entry counts it once.
	if err := e.AddPresence(ctx, ch, "c1", infos["c1"]); err != nil {
		t.Fatal(err)
	}
	stats(3, 2)
	steps := []struct {
		id, user       string
		clients, users int
	}{
		{"c1", "u1", 2, 2},
		{"c1", "u1", 2, 2}, // removing twice is harmless
		{"c2", "u1", 1, 1},
		{"c3", "u2", 0, 0},
	}
	for _, s := range steps {
		if err := e.RemovePresence(ctx, ch, s.id, s.user); err != nil {
			t.Fatal(err)
		}
		stats(s.clients, s.users)
	}
	got, err = e.Presence(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("Presence after removing everyone = %+v", got)
	}
}

func testPresenceRefresh(t *testing.T, e Engine) {
	ctx := context.Background()
	ch := channel("presence-refresh")
	if err := e.AddPresence(ctx, ch, "c1", &hub.ClientInfo{ClientID: "c1", UserID: "u1", ChanInfo: []byte(`{"v":1}`)}); err != nil {
		t.Fatal(err)
	}
	updated := &hub.ClientInfo{ClientID: "c1", UserID: "u1", ChanInfo: []byte(`{"v":2}`)}
	if err := e.AddPresence(ctx, ch, "c1", updated); err != nil {
		t.Fatal(err)
	}
	got, err := e.Presence(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !reflect.DeepEqual(got["c1"], updated) {
		t.Fatalf("Presence after refresh = %+v, want c1 as %+v", got, updated)
	}
}

func testPresenceUserChange(t *testing.T, e Engine) {
	ctx := context.Background()
	ch := channel("presence-user")
	if err := e.AddPresence(ctx, ch, "c1", &hub.ClientInfo{ClientID: "c1", UserID: "u1"}); err != nil {
		t.Fatal(err)
	}
	if err := e.AddPresence(ctx, ch, "c1", &hub.ClientInfo{ClientID: "c1", UserID: "u2"}); err != nil {
		t.Fatal(err)
	}
	if st, err := e.PresenceStats(ctx, ch); err != nil || st != (hub.PresenceStats{NumClients: 1, NumUsers: 1}) {
		t.Fatalf("PresenceStats = %+v, %v; want 1 client, 1 user", st, err)
	}
	if err := e.RemovePresence(ctx, ch, "c1", "u2"); err != nil {
		t.Fatal(err)
	}
	if st, err := e.PresenceStats(ctx, ch); err != nil || st != (hub.PresenceStats{}) {
		t.Fatalf("PresenceStats after removal = %+v, %v; want zero", st, err)
	}
}

func testPresenceChannels(t *testing.T, e Engine) {
	ctx := context.Background()
	a, b := channel("presence-a"), channel("presence-b")
	if err := e.AddPresence(ctx, a, "c1", &hub.ClientInfo{ClientID: "c1", UserID: "u1"}); err != nil {
		t.Fatal(err)
	}
	if st, err := e.PresenceStats(ctx, b); err != nil || st != (hub.PresenceStats{}) {
		t.Fatalf("PresenceStats of another channel = %+v, %v", st, err)
	}
	if got, err := e.Presence(ctx, b); err != nil || len(got) != 0 {
		t.Fatalf("Presence of another channel = %+v, %v", got, err)
	}
}

func testNodes(t *testing.T, e Engine) {
	ctx := context.Background()
	list := func() []hub.NodeInfo {
		t.Helper()
		nodes, err := e.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return nodes
	}
	if nodes := list(); len(nodes) != 0 {
		t.Fatalf("Nodes of an empty registry = %+v", nodes)
	}
	a := hub.NodeInfo{ID: "a", Name: "node-a", Version: "1", NumClients: 3, NumUsers: 2, NumSubs: 5, NumChannels: 4, Uptime: 10, UpdatedAt: 1700000000}
	b := hub.NodeInfo{ID: "b", Name: "node-b", Version: "1"}
	for _, n := range []hub.NodeInfo{b, a} {
		if err := e.UpdateNode(ctx, n, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if nodes := list(); !reflect.DeepEqual(nodes, []hub.NodeInfo{a, b}) {
		t.Fatalf("Nodes = %+v, want a then b", nodes)
	}
	a.NumClients, a.Uptime = 7, 20
	if err := e.UpdateNode(ctx, a, time.Hour); err != nil {
		t.Fatal(err)
	}
	if nodes := list(); !reflect.DeepEqual(nodes, []hub.NodeInfo{a, b}) {
		t.Fatalf("Nodes after an update = %+v", nodes)
	}
	if err := e.RemoveNode(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if nodes := list(); !reflect.DeepEqual(nodes, []hub.NodeInfo{a}) {
		t.Fatalf("Nodes after removing b = %+v", nodes)
	}
	// A node that stops reporting drops out after its TTL, and takes no
	// other node with it.
	c := hub.NodeInfo{ID: "c", Name: "node-c"}
	if err := e.UpdateNode(ctx, c, time.Second); err != nil {
		t.Fatal(err)
	}
	if nodes := list(); len(nodes) != 2 {
		t.Fatalf("Nodes right after adding c = %+v", nodes)
	}
	WaitFor(t, func() bool { return len(list()) == 1 }, "node c to expire")
	if nodes := list(); !reflect.DeepEqual(nodes, []hub.NodeInfo{a}) {
		t.Fatalf("Nodes after c expired = %+v, want a", nodes)
	}
}
