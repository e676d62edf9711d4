package hub

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"
)

// newDetachedClient is a signed-in client without a socket: its queue is
// inspected directly. Used by the fan-out tests, the benchmark and the fuzzer.
func newDetachedClient(n *Node, user string) *Client {
	c := n.newClient(nil, encodingJSON)
	c.mu.Lock()
	c.authenticated = true
	c.cred = Credentials{UserID: user}
	c.staleTimer = time.AfterFunc(time.Hour, func() {})
	c.mu.Unlock()
	c.staleTimer.Stop()
	return c
}

func newBareNode(tb testing.TB, mutate func(*Config)) *Node {
	tb.Helper()
	cfg := Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AllowAnonymous: true}
	if mutate != nil {
		mutate(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := n.Run(); err != nil {
		tb.Fatal(err)
	}
	// Let the memory engine register the node as its handler.
	deadline := time.Now().Add(5 * time.Second)
	for n.cfg.Broker.(*MemoryEngine).eventHandler() == nil {
		if time.Now().After(deadline) {
			tb.Fatal("engine never started")
		}
		time.Sleep(time.Millisecond)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
	})
	return n
}

func subscribeDetached(tb testing.TB, n *Node, c *Client, channel string) {
	tb.Helper()
	ns, perr := n.namespace(channel)
	if perr != nil {
		tb.Fatal(perr)
	}
	if _, err := c.subscribe(context.Background(), channel, ns, subscribeRequest(channel)); err != nil {
		tb.Fatal(err)
	}
	c.activate(channel)
}

// The broadcast path encodes a publication once: every subscriber's queue
// holds the very same bytes.
func TestFanout_SharesOneEncodingAcrossSubscribers(t *testing.T) {
	n := newBareNode(t, nil)
	clients := make([]*Client, 50)
	for i := range clients {
		clients[i] = newDetachedClient(n, fmt.Sprintf("u%d", i))
		subscribeDetached(t, n, clients[i], "live:shared")
	}
	if _, err := n.Publish(context.Background(), "live:shared", []byte(`{"stock":7}`), PublishRequest{}); err != nil {
		t.Fatal(err)
	}
	var first *byte
	for i, c := range clients {
		frames := c.queue.take(nil, 1<<20)
		if len(frames) != 1 {
			t.Fatalf("client %d has %d frames queued, want 1", i, len(frames))
		}
		if i == 0 {
			first = &frames[0][0]
			continue
		}
		if &frames[0][0] != first {
			t.Fatalf("client %d got its own copy of the publication", i)
		}
	}
}

// BenchmarkBroadcast measures one publication fanned out to a channel's
// local subscribers: time per publication and allocations per delivered
// message (which must stay far below one: nothing is allocated per subscriber
// but a slot in its queue).
func BenchmarkBroadcast(b *testing.B) {
	for _, subs := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			n := newBareNode(b, func(c *Config) { c.MaxQueueBytes = 1 << 30 })
			clients := make([]*Client, subs)
			for i := range clients {
				clients[i] = newDetachedClient(n, fmt.Sprintf("u%d", i))
				subscribeDetached(b, n, clients[i], "live:bench")
			}
			pub := &Publication{Data: []byte(`{"type":"flash_sale.stock","v":1,"data":{"sale":"s1","stock_left":42}}`), Offset: 0}
			drain := func() {
				for _, c := range clients {
					c.queue.take(nil, 1<<30)
				}
			}
			var ms0, ms1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms0)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_ = n.HandlePublication("live:bench", pub, StreamPosition{})
				if i%64 == 63 {
					b.StopTimer()
					drain()
					b.StartTimer()
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&ms1)
			deliveries := float64(b.N) * float64(subs)
			b.ReportMetric(deliveries/b.Elapsed().Seconds(), "deliveries/s")
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/deliveries, "allocs/delivery")
			drain()
		})
	}
}

func TestChannelHash_IsFNV1a(t *testing.T) {
	for _, ch := range []string{"", "live:1", "user:#42", "studio:str_abc"} {
		h := fnv.New32a()
		_, _ = h.Write([]byte(ch))
		if got, want := channelHash(ch), h.Sum32(); got != want {
			t.Fatalf("channelHash(%q) = %d, want %d", ch, got, want)
		}
	}
}

// A join (or leave) that comes while the watcher's own subscribe is still
// being answered is held with the publications of that window and queued
// after the reply, instead of being lost.
func TestJoinLeave_WhileSubscribePendingIsKept(t *testing.T) {
	n := newBareNode(t, func(c *Config) {
		ns := DefaultNamespaces()
		for i := range ns {
			if ns[i].Name == "live" {
				ns[i].JoinLeave = true
			}
		}
		c.Namespaces = ns
	})
	c := newDetachedClient(n, "watcher")
	const channel = "live:pending"
	ns, perr := n.namespace(channel)
	if perr != nil {
		t.Fatal(perr)
	}
	req := subscribeRequest(channel)
	req.JoinLeave = true
	if _, err := c.subscribe(context.Background(), channel, ns, req); err != nil {
		t.Fatal(err)
	}
	c.queue.take(nil, 1<<20) // whatever subscribing queued so far
	if err := n.HandleJoin(channel, &ClientInfo{UserID: "newcomer", ClientID: "c2"}); err != nil {
		t.Fatal(err)
	}
	if got := c.queue.take(nil, 1<<20); len(got) != 0 {
		t.Fatalf("%d frames queued before the subscription was active", len(got))
	}
	c.activate(channel)
	frames := c.queue.take(nil, 1<<20)
	found := false
	for _, f := range frames {
		found = found || strings.Contains(string(f), `"join":{"info":{"user":"newcomer"`)
	}
	if !found {
		t.Fatalf("after activation queued %q, want the join of newcomer", frames)
	}
}
