package hub_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/livehub/livehub/hub"
)

// BenchmarkDeliveryOverSockets measures the whole broadcast path over real
// loopback sockets: a publication fanned out, queued, batched and written
// to every subscriber's WebSocket, and read by bare clients that only count
// what arrives. Time per op is one publication delivered to every
// subscriber; the client side shares the process and its cost is counted
// too.
//
// In "burst" the publications follow each other without pause, so frames
// queue up and go out batched; in "lockstep" each publication is read by
// every subscriber before the next one is made, so every delivery is a
// WebSocket message and a write of its own, as at a steady rate of events.
func BenchmarkDeliveryOverSockets(b *testing.B) {
	for _, mode := range []string{"burst", "lockstep"} {
		for _, subs := range []int{100, 500} {
			b.Run(fmt.Sprintf("%s/subscribers=%d", mode, subs), func(b *testing.B) {
				benchDelivery(b, subs, mode == "lockstep")
			})
		}
	}
}

func benchDelivery(b *testing.B, subs int, lockstep bool) {
	h := newTestHub(b, func(c *hub.Config) { c.MaxQueueBytes = 64 << 20 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var received atomic.Int64
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := range subs {
		conn := dialBare(b, h, fmt.Sprintf("u%d", i))
		wg.Go(func() {
			for {
				_, msg, err := conn.Read(ctx)
				if err != nil {
					return
				}
				received.Add(int64(bytes.Count(msg, []byte{'\n'}) + 1))
			}
		})
	}
	data := []byte(`{"type":"flash_sale.stock","v":1,"data":{"sale":"s1","stock_left":42,"pad":"` + strings.Repeat("x", 120) + `"}}`)
	b.ResetTimer()
	for i := range b.N {
		if _, err := h.node.Publish(ctx, "live:bench", data, hub.PublishRequest{}); err != nil {
			b.Fatal(err)
		}
		for lockstep && received.Load() < int64(i+1)*int64(subs) {
			runtime.Gosched()
		}
	}
	want := int64(b.N) * int64(subs)
	for received.Load() < want {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(want)/b.Elapsed().Seconds(), "deliveries/s")
}

// dialBare connects and subscribes to live:bench with hand-written
// commands, so the reading side costs no more than a socket read.
func dialBare(b *testing.B, h *testHub, user string) *websocket.Conn {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, h.url, nil)
	if err != nil {
		b.Fatal(err)
	}
	conn.SetReadLimit(-1)
	b.Cleanup(func() { conn.CloseNow() })
	for _, cmd := range []string{
		fmt.Sprintf(`{"id":1,"connect":{"token":%q}}`, token(b, user, time.Hour)),
		`{"id":2,"subscribe":{"channel":"live:bench"}}`,
	} {
		if err := conn.Write(ctx, websocket.MessageText, []byte(cmd)); err != nil {
			b.Fatal(err)
		}
		if _, reply, err := conn.Read(ctx); err != nil || bytes.Contains(reply, []byte(`"error"`)) {
			b.Fatalf("%s: %s %v", cmd, reply, err)
		}
	}
	return conn
}
