package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/centrifugal/protocol"
	"github.com/coder/websocket"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/internal/fossil"
	"github.com/livehub/livehub/internal/protoclient"
)

// mode is one way a client speaks to the node.
type mode struct {
	name     string
	protobuf bool
	deflate  bool
}

var modes = []mode{
	{"json", false, false},
	{"json+deflate", false, true},
	{"protobuf", true, false},
	{"protobuf+deflate", true, true},
}

func (m mode) options() protoclient.Options {
	o := protoclient.Options{Protobuf: m.protobuf}
	if m.deflate {
		o.Compression = websocket.CompressionNoContextTakeover
	}
	return o
}

func (h *testHub) connectMode(t testing.TB, m mode, sub string) *protoclient.Conn {
	t.Helper()
	c := h.dial(t, m.options())
	if _, err := c.Connect(ctxT(t), token(t, sub, time.Hour)); err != nil {
		t.Fatalf("connect: %v", err)
	}
	return c
}

// TestEncodings_ConnectSubscribePublishRecover runs the core of the protocol
// in every encoding, with and without compression.
func TestEncodings_ConnectSubscribePublishRecover(t *testing.T) {
	h := newTestHub(t, func(c *hub.Config) { c.CompressionThreshold = 64 })
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ch := "live:enc-" + m.name
			c := h.connectMode(t, m, "u-"+m.name)
			res, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: ch})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Recoverable || res.Epoch == "" {
				t.Fatalf("subscribe result %+v, want recoverable with an epoch", res)
			}
			// Big enough to cross the compression threshold.
			pad := strings.Repeat("x", 200)
			var last *protocol.Publication
			for i := 1; i <= 5; i++ {
				h.publish(t, ch, fmt.Sprintf(`{"n":%d,"pad":%q}`, i, pad))
			}
			for i := 1; i <= 5; i++ {
				last = nextPub(t, c, ch)
				if want := fmt.Sprintf(`{"n":%d,"pad":%q}`, i, pad); string(last.Data) != want {
					t.Fatalf("publication %d = %s, want %s", i, last.Data, want)
				}
			}
			// A client publication travels through the encoding both ways.
			if err := c.Publish(ctxT(t), ch, []byte(`{"text":"hi"}`)); err != nil {
				t.Fatal(err)
			}
			if p := nextPub(t, c, ch); string(p.Data) != `{"text":"hi"}` {
				t.Fatalf("own publication = %s", p.Data)
			}
			last.Offset++
			c.CloseNow()
			for i := 6; i <= 8; i++ {
				h.publish(t, ch, fmt.Sprintf(`{"n":%d}`, i))
			}
			c2 := h.connectMode(t, m, "u-"+m.name)
			rec, err := c2.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: ch, Recover: true, Offset: last.Offset, Epoch: res.Epoch})
			if err != nil {
				t.Fatal(err)
			}
			if !rec.Recovered || len(rec.Publications) != 3 {
				t.Fatalf("recovered=%v with %d publications, want 3", rec.Recovered, len(rec.Publications))
			}
			for i, p := range rec.Publications {
				if want := fmt.Sprintf(`{"n":%d}`, i+6); string(p.Data) != want {
					t.Fatalf("recovered[%d] = %s, want %s", i, p.Data, want)
				}
			}
			h.publish(t, ch, `{"n":9}`)
			if p := nextPub(t, c2, ch); string(p.Data) != `{"n":9}` || p.Offset != rec.Offset+1 {
				t.Fatalf("after recovery got %s at %d", p.Data, p.Offset)
			}
		})
	}
}

func TestEncodings_PingPongAndDeadClient(t *testing.T) {
	h := newTestHub(t, func(c *hub.Config) {
		c.PingInterval = 50 * time.Millisecond
		c.PongTimeout = 100 * time.Millisecond
	})
	live := h.connectMode(t, mode{protobuf: true}, "alive")
	dead := h.dial(t, protoclient.Options{Protobuf: true, NoPong: true})
	if _, err := dead.Connect(ctxT(t), token(t, "dead", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if code, _ := waitClosed(t, dead, 5*time.Second); code != 3012 {
		t.Fatalf("close code %d, want 3012 no pong", code)
	}
	time.Sleep(400 * time.Millisecond) // several ping periods
	if _, err := live.Call(ctxT(t), &protocol.Command{Ping: &protocol.PingRequest{}}); err != nil {
		code, reason := live.CloseStatus()
		t.Fatalf("protobuf client answering pings was closed: %v (%d %s)", err, code, reason)
	}
}

func TestProtobuf_QueryParameterAndFraming(t *testing.T) {
	h := newTestHub(t, nil)
	ws, _, err := websocket.Dial(ctxT(t), h.url+"?cf_protocol=protobuf", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	// Two commands in one binary message, each length-prefixed.
	enc := protocol.NewProtobufCommandEncoder()
	var msg []byte
	for _, cmd := range []*protocol.Command{
		{Id: 1, Connect: &protocol.ConnectRequest{}},
		{Id: 2, Subscribe: &protocol.SubscribeRequest{Channel: "live:q"}},
	} {
		b, err := enc.Encode(cmd)
		if err != nil {
			t.Fatal(err)
		}
		msg = append(msg, b...)
	}
	if err := ws.Write(ctxT(t), websocket.MessageBinary, msg); err != nil {
		t.Fatal(err)
	}
	got := map[uint32]*protocol.Reply{}
	for len(got) < 2 {
		typ, data, err := ws.Read(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if typ != websocket.MessageBinary {
			t.Fatalf("reply in a %v message, want binary", typ)
		}
		dec := protocol.NewProtobufReplyDecoder(data)
		for {
			r, err := dec.Decode()
			if err != nil {
				break
			}
			got[r.Id] = r
		}
	}
	if got[1].Connect == nil || got[1].Connect.Client == "" {
		t.Fatalf("connect reply %+v", got[1])
	}
	if got[2].Subscribe == nil || !got[2].Subscribe.Recoverable {
		t.Fatalf("subscribe reply %+v", got[2])
	}
}

func TestProtobuf_BadInputCloses(t *testing.T) {
	h := newTestHub(t, func(c *hub.Config) { c.MaxFrameBytes = 1024 })
	cases := map[string]struct {
		send func(c *protoclient.Conn) error
		want websocket.StatusCode
	}{
		"text message":     {func(c *protoclient.Conn) error { return c.WriteRaw(ctxT(t), []byte(`{}`)) }, 3501},
		"garbage command":  {func(c *protoclient.Conn) error { return c.WriteBinary(ctxT(t), []byte{3, 0xff, 0xff, 0xff}) }, 3501},
		"length past data": {func(c *protoclient.Conn) error { return c.WriteBinary(ctxT(t), []byte{100, 1}) }, 3501},
		"over the limit":   {func(c *protoclient.Conn) error { return c.WriteBinary(ctxT(t), bytes.Repeat([]byte{0}, 2048)) }, websocket.StatusMessageTooBig},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := h.connectMode(t, mode{protobuf: true}, "u1")
			if err := tc.send(c); err != nil {
				t.Fatal(err)
			}
			if code, _ := waitClosed(t, c, 5*time.Second); code != tc.want {
				t.Fatalf("close code %d, want %d", code, tc.want)
			}
		})
	}
}

// countingDialer counts the bytes a client reads off the wire, below the
// WebSocket library, so compression shows.
func countingDialer(n *atomic.Int64) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c, n: n}, nil
		},
	}}
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	k, err := c.Conn.Read(p)
	c.n.Add(int64(k))
	return k, err
}

func TestCompression_NegotiatedAndThresholdObserved(t *testing.T) {
	small := `{"pad":"` + strings.Repeat("a", 300) + `"}` // under the threshold
	big := `{"pad":"` + strings.Repeat("a", 3000) + `"}`
	wire := func(t *testing.T, h *testHub, offer bool, data string) int64 {
		var n atomic.Int64
		o := protoclient.Options{HTTPClient: countingDialer(&n)}
		if offer {
			o.Compression = websocket.CompressionNoContextTakeover
		}
		c := h.dial(t, o)
		if _, err := c.Connect(ctxT(t), token(t, "u1", time.Hour)); err != nil {
			t.Fatal(err)
		}
		ch := fmt.Sprintf("live:z%d", time.Now().UnixNano())
		if _, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: ch}); err != nil {
			t.Fatal(err)
		}
		before := n.Load()
		h.publish(t, ch, data)
		if p := nextPub(t, c, ch); string(p.Data) != data {
			t.Fatalf("got %d bytes, want %d", len(p.Data), len(data))
		}
		return n.Load() - before
	}
	on := newTestHub(t, func(c *hub.Config) { c.CompressionThreshold = 1024 })
	off := newTestHub(t, func(c *hub.Config) { c.Compression = hub.CompressionOff })

	if got := wire(t, on, true, big); got >= int64(len(big))/4 {
		t.Errorf("compressed: %d wire bytes for %d bytes of data, want deflate to shrink it", got, len(big))
	}
	if got := wire(t, on, true, small); got < int64(len(small)) {
		t.Errorf("under the threshold: %d wire bytes for %d bytes of data, want it sent uncompressed", got, len(small))
	}
	if got := wire(t, on, false, big); got < int64(len(big)) {
		t.Errorf("client without deflate: %d wire bytes for %d, want uncompressed", got, len(big))
	}
	if got := wire(t, off, true, big); got < int64(len(big)) {
		t.Errorf("compression off: %d wire bytes for %d, want uncompressed", got, len(big))
	}
}

// deltaReader rebuilds publication data on a delta subscription as an SDK does.
type deltaReader struct {
	protobuf bool
	prev     []byte
	deltas   int
}

func (d *deltaReader) read(t testing.TB, p *protocol.Publication) []byte {
	t.Helper()
	data := []byte(p.Data)
	if !d.protobuf {
		// JSON delta subscriptions carry data as a JSON string.
		var s string
		if err := json.Unmarshal(p.Data, &s); err != nil {
			t.Fatalf("JSON delta subscription data %s is not a string: %v", p.Data, err)
		}
		data = []byte(s)
	}
	if p.Delta {
		if d.prev == nil {
			t.Fatalf("delta at offset %d before any full publication", p.Offset)
		}
		full, err := fossil.Apply(d.prev, data)
		if err != nil {
			t.Fatalf("apply delta at offset %d: %v", p.Offset, err)
		}
		d.deltas++
		data = full
	}
	d.prev = data
	return data
}

func stockEvent(i int) string {
	return fmt.Sprintf(`{"type":"flash_sale.stock","v":1,"id":"ev_%08d","at":"2026-11-25T18:28:%02d.945Z","data":{"flash_sale_id":"fs_386a294be91bea7c6a64e450","quantity":500,"sold":%d,"stock_left":%d}}`, i, i%60, i, 500-i)
}

func TestDelta_SubscribersRebuildFullData(t *testing.T) {
	h := newTestHub(t, nil)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ch := "live:delta-" + m.name
			c := h.connectMode(t, m, "u1")
			plain := h.connectMode(t, m, "u2")
			res, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: ch, Delta: hub.DeltaFossil})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Delta {
				t.Fatal("SubscribeResult.Delta = false in a namespace that allows fossil")
			}
			if _, err := plain.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: ch}); err != nil {
				t.Fatal(err)
			}
			r := &deltaReader{protobuf: m.protobuf}
			for i := 1; i <= 10; i++ {
				h.publish(t, ch, stockEvent(i))
			}
			for i := 1; i <= 10; i++ {
				p := nextPub(t, c, ch)
				if i == 1 && p.Delta {
					t.Fatal("first publication after subscribing is a delta")
				}
				if got := r.read(t, p); string(got) != stockEvent(i) {
					t.Fatalf("publication %d rebuilt as %s, want %s", i, got, stockEvent(i))
				}
				if q := nextPub(t, plain, ch); q.Delta || string(q.Data) != stockEvent(i) {
					t.Fatalf("subscriber without delta got delta=%v %s", q.Delta, q.Data)
				}
			}
			if r.deltas != 9 {
				t.Fatalf("%d of 10 publications came as deltas, want 9", r.deltas)
			}

			// Recovery: the recovered publications and the next live one
			// come whole, then deltas resume.
			last := res.Offset + 10
			c.CloseNow()
			for i := 11; i <= 13; i++ {
				h.publish(t, ch, stockEvent(i))
			}
			c2 := h.connectMode(t, m, "u1")
			rec, err := c2.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: ch, Delta: hub.DeltaFossil, Recover: true, Offset: last, Epoch: res.Epoch})
			if err != nil {
				t.Fatal(err)
			}
			if !rec.Delta || !rec.Recovered || len(rec.Publications) != 3 {
				t.Fatalf("recovery: delta=%v recovered=%v pubs=%d", rec.Delta, rec.Recovered, len(rec.Publications))
			}
			r2 := &deltaReader{protobuf: m.protobuf}
			for i, p := range rec.Publications {
				if p.Delta {
					t.Fatal("recovered publication is a delta")
				}
				if got := r2.read(t, p); string(got) != stockEvent(11+i) {
					t.Fatalf("recovered %s", got)
				}
			}
			for i := 14; i <= 16; i++ {
				h.publish(t, ch, stockEvent(i))
				p := nextPub(t, c2, ch)
				if i == 14 && p.Delta {
					t.Fatal("first live publication after recovery is a delta")
				}
				if got := r2.read(t, p); string(got) != stockEvent(i) {
					t.Fatalf("after recovery %s, want %s", got, stockEvent(i))
				}
			}
			if r2.deltas != 2 {
				t.Fatalf("%d deltas after recovery, want 2", r2.deltas)
			}
		})
	}
}

func TestDelta_Negotiation(t *testing.T) {
	h := newTestHub(t, func(c *hub.Config) {
		c.Namespaces = append(hub.DefaultNamespaces(), hub.NamespaceOptions{Name: "plain", Anonymous: true, HistorySize: 10, ForceRecovery: true})
	})
	c := h.connectMode(t, mode{}, "u1")
	res, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "plain:1", Delta: hub.DeltaFossil})
	if err != nil {
		t.Fatal(err)
	}
	if res.Delta {
		t.Fatal("delta negotiated in a namespace without allowed_delta_types")
	}
	h.publish(t, "plain:1", `{"a":1}`)
	if p := nextPub(t, c, "plain:1"); p.Delta || string(p.Data) != `{"a":1}` {
		t.Fatalf("got delta=%v %s, want plain data", p.Delta, p.Data)
	}
	_, err = c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:1", Delta: "xdelta"})
	wantCode(t, err, 107)

	if _, err := hub.New(hub.Config{Namespaces: []hub.NamespaceOptions{{Name: "x", AllowedDeltaTypes: []string{"fossil"}}}}); err == nil {
		t.Fatal("allowed_delta_types without history accepted")
	}
}
