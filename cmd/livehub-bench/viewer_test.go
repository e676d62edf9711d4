package main

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/centrifugal/protocol"
)

// testViewer is the one viewer of a fleet of the seq kind expecting count
// publications in channel live:x, never connected.
func testViewer(t *testing.T, count int) (*fleet, *viewer) {
	t.Helper()
	f, err := newFleet(fleetSpec{Kind: kindSeq, URL: "ws://127.0.0.1:1/unused", Clients: 1, Channels: []string{"live:x"}, Count: count})
	if err != nil {
		t.Fatal(err)
	}
	return f, f.viewers[0]
}

func seqPush(channel string, seq int, offset uint64, sent time.Time) *protocol.Push {
	return &protocol.Push{Channel: channel, Pub: &protocol.Publication{Offset: offset, Data: encodePayload(seq, sent.UnixNano(), 100)}}
}

func TestViewer_PushesBeforeTheSubscribeReplyCountAfterIt(t *testing.T) {
	f, v := testViewer(t, 10)
	sent := time.Now().Add(-5 * time.Millisecond)

	// Pushes the reader takes before the subscribe reply is counted wait,
	// copied: the reader reuses the push it passed.
	early := seqPush("live:x", 4, 5, sent)
	v.onPush(early)
	copy(early.Pub.Data, `{"seq":9,`)
	v.onPush(seqPush("live:other", 1, 1, sent))
	if v.stats.delivered != 0 || len(v.pending) != 1 {
		t.Fatalf("before the reply: %d delivered, %d pending; want 0 and 1", v.stats.delivered, len(v.pending))
	}

	// The reply recovers 2 and 4; the parked 4 is then a duplicate.
	v.goLive(nil, &protocol.SubscribeResult{Epoch: "e", Offset: 3, Publications: []*protocol.Publication{
		{Offset: 3, Data: encodePayload(2, sent.UnixNano(), 100)},
		{Offset: 5, Data: encodePayload(4, sent.UnixNano(), 100)},
	}})
	if !v.live.Load() || len(v.pending) != 0 {
		t.Fatalf("not live after the reply (live %v, %d pending)", v.live.Load(), len(v.pending))
	}
	for _, seq := range []int{0, 1, 3, 5, 6, 7, 8, 9, 9} {
		v.onPush(seqPush("live:x", seq, uint64(seq+1), sent))
	}
	st := v.stats
	if st.delivered != 10 || st.dups != 2 || st.recovered != 2 || st.ignored != 0 {
		t.Errorf("stats %+v, want 10 delivered, 2 duplicates (4 and 9), 2 recovered", st)
	}
	if v.offset != 10 || v.epoch != "e" {
		t.Errorf("position %s/%d, want e/10", v.epoch, v.offset)
	}
	if f.complete.Load() != 1 {
		t.Errorf("complete %d, want 1 once every publication is in", f.complete.Load())
	}
	if st.firstRecv == 0 || st.lastRecv < st.firstRecv {
		t.Errorf("receive times %d..%d", st.firstRecv, st.lastRecv)
	}

	res, err := f.finish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Recovered publications are delivered but say nothing of latency.
	if res.Delivered != 10 || res.Lost != 0 || res.Expected != 10 || res.Duplicates != 2 || res.Latency.Count != 8 || res.Reconnect != nil {
		t.Errorf("result %+v, want 10 of 10 delivered, 2 duplicates, 8 latencies", res)
	}
	if res.Latency.Min < 5000 {
		t.Errorf("latency min %d µs, want at least the 5 ms since the send", res.Latency.Min)
	}
}

func TestViewer_ServerCloseCountedOnceWhenever(t *testing.T) {
	f, v := testViewer(t, 1)
	// Closed by the server before the reply was counted: noted when the
	// viewer goes live, once.
	v.onClose(3008, "slow")
	if len(f.disconnects) != 0 {
		t.Fatalf("noted before going live: %v", f.disconnects)
	}
	v.goLive(nil, &protocol.SubscribeResult{})
	v.onClose(3001, "") // live now: noted at once
	v.dropping.Store(true)
	v.onClose(1000, "") // the fleet's own close: not the server's doing
	if f.disconnects["3008"] != 1 || f.disconnects["3001"] != 1 || len(f.disconnects) != 2 {
		t.Errorf("disconnects %v, want 3008 and 3001 once each", f.disconnects)
	}
}

func TestSampleBatch_SameHistogramAsRecordingEachValue(t *testing.T) {
	whole, batched := newHistogram(), newHistogram()
	batches := make([]sampleBatch, 7)
	for i := range 10_000 {
		// Runs of equal buckets, outliers and negative clock steps.
		d := time.Duration(rand.Int64N(50_000)) * time.Microsecond
		switch i % 97 {
		case 0:
			d = time.Duration(rand.Int64N(1<<40)) * time.Microsecond
		case 1:
			d = -time.Millisecond
		}
		whole.Record(d)
		batches[i%len(batches)].add(batched, d)
	}
	for i := range batches {
		batches[i].flush(batched)
	}
	a, b := whole.Snapshot(), batched.Snapshot()
	if a.Count != b.Count || a.Sum != b.Sum || a.Min != b.Min || a.Max != b.Max || !slices.Equal(a.Buckets, b.Buckets) {
		t.Errorf("batched %d/%d/%d/%d (%d buckets) differs from recorded %d/%d/%d/%d (%d buckets)",
			b.Count, b.Sum, b.Min, b.Max, len(b.Buckets), a.Count, a.Sum, a.Min, a.Max, len(a.Buckets))
	}
}

func TestFleetResult_MergesViewersAndWorkers(t *testing.T) {
	// Two fleets of two viewers each, as two workers would report them.
	spec := fleetSpec{Kind: kindSeq, URL: "ws://127.0.0.1:1/unused", Clients: 2, Channels: []string{"live:x"}, Count: 3}
	var results []fleetResult
	base := time.Now()
	for w := range 2 {
		spec.First = w * 2
		f, err := newFleet(spec)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range f.viewers {
			v.goLive(nil, &protocol.SubscribeResult{})
			for seq := range 3 {
				// Viewer 1 of worker 1 misses publication 2.
				if w == 1 && i == 1 && seq == 2 {
					continue
				}
				v.onPush(seqPush("live:x", seq, uint64(seq+1), base.Add(-time.Duration(w*10+i+seq+1)*time.Millisecond)))
			}
		}
		res, err := f.finish(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, res)
	}
	rep := &Report{}
	all := rep.addFleets(results)
	if all.Expected != 12 || all.Delivered != 11 || all.Lost != 1 || all.Latency.Count != 11 {
		t.Errorf("merged %d of %d delivered, %d lost, %d latencies; want 11 of 12, 1, 11", all.Delivered, all.Expected, all.Lost, all.Latency.Count)
	}
	if all.FirstRecvNS == 0 || all.LastRecvNS < all.FirstRecvNS {
		t.Errorf("receive span %d..%d", all.FirstRecvNS, all.LastRecvNS)
	}
	// The slowest delivery, in the second worker, was sent 13 ms before
	// base.
	if max := time.Duration(all.Latency.Max) * time.Microsecond; max < 13*time.Millisecond || max > time.Second {
		t.Errorf("merged max latency %v, want about 13ms", max)
	}
	if len(rep.Fleets) != 2 || rep.Fleets[1].Lost != 1 {
		t.Errorf("fleet summaries %+v", rep.Fleets)
	}
}

func TestSocketFigure_ShowsNodesLossAndServerCloses(t *testing.T) {
	r := &Report{Clients: 3000,
		Connect:     connectReport{Connected: 3000, Seconds: 2.5, ByNode: []int{1000, 1000, 1000}},
		Delivery:    &deliveryReport{Expected: 15000, Delivered: 14990, Lost: 10, Latency: latencySummary{P50: 12.5, P99: 40}},
		Disconnects: map[string]int{"3012": 1200, "3008": 3},
	}
	got := socketFigure(r)
	want := "3,000 of 3,000 connected in 2.5 s (1,000 / 1,000 / 1,000 by node); 14,990 of 15,000 delivered, lost 10; p50 12.5 / p99 40.0 ms; the server closed 1,203 (by code 3008: 3, 3012: 1,200)"
	if got != want {
		t.Errorf("socketFigure =\n%s\nwant\n%s", got, want)
	}
}
