package protoclient

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/centrifugal/protocol"
	"github.com/coder/websocket"
)

// fakeServer speaks just enough of the protocol for the client's read
// path: it answers every command with an empty result of its kind and
// sends what the test puts in frames, one WebSocket message each, already
// framed in the connection's encoding.
type fakeServer struct {
	srv    *httptest.Server
	frames chan []byte
	// closeWith, when non-zero, ends the connection with this code after
	// the frames channel is closed.
	closeWith websocket.StatusCode
	// pongs counts the empty commands (answers to pings) received.
	pongs atomic.Int64
}

func newFakeServer(t testing.TB) *fakeServer {
	t.Helper()
	f := &fakeServer{frames: make(chan []byte, 64)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeServer) url() string { return "ws" + strings.TrimPrefix(f.srv.URL, "http") }

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"centrifuge-protobuf"}})
	if err != nil {
		return
	}
	defer ws.CloseNow()
	pb := ws.Subprotocol() == "centrifuge-protobuf"
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var wmu sync.Mutex
	write := func(b []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		typ := websocket.MessageText
		if pb {
			typ = websocket.MessageBinary
		}
		return ws.Write(ctx, typ, b)
	}
	go func() {
		defer cancel()
		for {
			_, data, err := ws.Read(ctx)
			if err != nil {
				return
			}
			var dec protocol.CommandDecoder = protocol.NewJSONCommandDecoder(data)
			if pb {
				dec = protocol.NewProtobufCommandDecoder(data)
			}
			for {
				cmd, err := dec.Decode()
				if cmd != nil && cmd.Id == 0 {
					f.pongs.Add(1)
				}
				if cmd != nil && cmd.Id > 0 {
					rep := &protocol.Reply{Id: cmd.Id}
					switch {
					case cmd.Connect != nil:
						rep.Connect = &protocol.ConnectResult{Client: "c1", Version: "test"}
					case cmd.Subscribe != nil:
						rep.Subscribe = &protocol.SubscribeResult{Epoch: "e1", Offset: 7}
					default:
						rep.Error = &protocol.Error{Code: 108, Message: "not available"}
					}
					if err := write(encodeReply(pb, rep)); err != nil {
						return
					}
				}
				if err != nil {
					break
				}
			}
		}
	}()
	for {
		select {
		case b, ok := <-f.frames:
			if !ok {
				if f.closeWith != 0 {
					_ = ws.Close(f.closeWith, "bye")
				}
				<-ctx.Done()
				return
			}
			if err := write(b); err != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// encodeReply frames one reply: a JSON line or a length-prefixed message.
func encodeReply(pb bool, r *protocol.Reply) []byte {
	if !pb {
		b, err := protocol.NewJSONReplyEncoder().Encode(r)
		if err != nil {
			panic(err)
		}
		return b
	}
	b, err := protocol.NewProtobufReplyEncoder().Encode(r)
	if err != nil {
		panic(err)
	}
	return append(binary.AppendUvarint(nil, uint64(len(b))), b...)
}

// pubFrame is a WebSocket message holding the publication pushes of seqs,
// in order.
func pubFrame(pb bool, channel string, seqs ...int) []byte {
	var out []byte
	for i, seq := range seqs {
		r := &protocol.Reply{Push: &protocol.Push{Channel: channel, Pub: &protocol.Publication{
			Offset: uint64(seq), Data: []byte(fmt.Sprintf(`{"seq":%d,"pad":"%s"}`, seq, strings.Repeat("x", seq%50))),
		}}}
		if i > 0 && !pb {
			out = append(out, '\n')
		}
		out = append(out, encodeReply(pb, r)...)
	}
	return out
}

func dialTest(t *testing.T, f *fakeServer, o Options) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, f.url(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseNow)
	if _, err := c.Connect(ctx, ""); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOnPush_GetsEveryPushInOrderOnTheReadGoroutine(t *testing.T) {
	for _, pb := range []bool{false, true} {
		t.Run(fmt.Sprintf("protobuf=%v", pb), func(t *testing.T) {
			f := newFakeServer(t)
			var mu sync.Mutex
			var got []string
			var offsets []uint64
			done := make(chan struct{})
			c := dialTest(t, f, Options{Protobuf: pb, OnPush: func(p *protocol.Push) {
				mu.Lock()
				defer mu.Unlock()
				// The push is reused after the call: keep copies only.
				got = append(got, p.Channel+" "+string(p.Pub.Data))
				offsets = append(offsets, p.Pub.Offset)
				if len(got) == 30 {
					close(done)
				}
			}})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// Calls are answered while the callback takes the pushes.
			res, err := c.Subscribe(ctx, &protocol.SubscribeRequest{Channel: "live:a"})
			if err != nil || res.Epoch != "e1" || res.Offset != 7 {
				t.Fatalf("subscribe: %+v, %v", res, err)
			}
			// One push a message, then several in one message, with long
			// and short data alternating so a reused buffer would show.
			for seq := 1; seq <= 10; seq++ {
				f.frames <- pubFrame(pb, "live:a", seq*7)
			}
			for seq := 11; seq <= 30; seq += 5 {
				f.frames <- pubFrame(pb, "live:b", seq*7, (seq+1)*7, (seq+2)*7, (seq+3)*7, (seq+4)*7)
			}
			select {
			case <-done:
			case <-ctx.Done():
				t.Fatalf("got %d of 30 pushes", len(got))
			}
			mu.Lock()
			defer mu.Unlock()
			for i := range 30 {
				seq := (i + 1) * 7
				ch := "live:a"
				if i >= 10 {
					ch = "live:b"
				}
				want := fmt.Sprintf(`%s {"seq":%d,"pad":"%s"}`, ch, seq, strings.Repeat("x", seq%50))
				if got[i] != want || offsets[i] != uint64(seq) {
					t.Fatalf("push %d = %q offset %d, want %q offset %d", i, got[i], offsets[i], want, seq)
				}
			}
			select {
			case p, ok := <-c.Pushes():
				t.Errorf("the channel got a push (%v, %v) while OnPush takes them", p, ok)
			default:
			}
		})
	}
}

func TestPushes_ChannelStillDeliversOwnedPushes(t *testing.T) {
	f := newFakeServer(t)
	c := dialTest(t, f, Options{})
	for seq := 1; seq <= 20; seq++ {
		f.frames <- pubFrame(false, "live:a", seq)
	}
	var held []*protocol.Push
	timeout := time.After(10 * time.Second)
	for len(held) < 20 {
		select {
		case p := <-c.Pushes():
			held = append(held, p)
		case <-timeout:
			t.Fatalf("got %d of 20 pushes", len(held))
		}
	}
	// Pushes handed over the channel are the receiver's: none is reused.
	for i, p := range held {
		want := fmt.Sprintf(`{"seq":%d,"pad":"%s"}`, i+1, strings.Repeat("x", (i+1)%50))
		if p.Channel != "live:a" || string(p.Pub.Data) != want || p.Pub.Offset != uint64(i+1) {
			t.Fatalf("push %d = %s %s %d, want %s", i, p.Channel, p.Pub.Data, p.Pub.Offset, want)
		}
	}
}

func TestOnClose_ReportsTheServersCloseCode(t *testing.T) {
	f := newFakeServer(t)
	f.closeWith = 4001
	type closed struct {
		code   websocket.StatusCode
		reason string
	}
	got := make(chan closed, 2)
	c := dialTest(t, f, Options{OnPush: func(*protocol.Push) {}, OnClose: func(code websocket.StatusCode, reason string) {
		got <- closed{code, reason}
	}})
	close(f.frames)
	select {
	case g := <-got:
		if g.code != 4001 || g.reason != "bye" {
			t.Errorf("OnClose(%d, %q), want 4001, bye", g.code, g.reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnClose not called")
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after OnClose")
	}
	if len(got) != 0 {
		t.Error("OnClose called twice")
	}
}

func TestResetReply_KeepsNothingOfThePreviousReply(t *testing.T) {
	r := &protocol.Reply{Id: 3, Error: &protocol.Error{Code: 1}, Push: &protocol.Push{
		Channel: "a", Id: 9, Join: &protocol.Join{},
		Pub: &protocol.Publication{Data: []byte("data"), Offset: 4, Tags: map[string]string{"k": "v"}, Delta: true},
	}}
	push, pub := r.Push, r.Push.Pub
	resetReply(r)
	if r.Id != 0 || r.Error != nil || r.Push != push || push.Channel != "" || push.Id != 0 || push.Join != nil || push.Pub != pub {
		t.Errorf("reply not reset: %+v, push %+v", r, push)
	}
	if len(pub.Data) != 0 || cap(pub.Data) < 4 || pub.Offset != 0 || pub.Tags != nil || pub.Delta {
		t.Errorf("publication not reset (or its data capacity dropped): %+v", pub)
	}
}

// BenchmarkReadPath is the client's cost per delivered push: a server
// writes publication pushes as fast as the client reads them, to a client
// taking them with OnPush or from the Pushes channel.
func BenchmarkReadPath(b *testing.B) {
	for _, mode := range []string{"onpush", "channel"} {
		for _, pb := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/protobuf=%v", mode, pb), func(b *testing.B) {
				benchReadPath(b, mode == "onpush", pb)
			})
		}
	}
}

func benchReadPath(b *testing.B, onPush, pb bool) {
	// One 200-byte payload as the load tool sends it.
	data := []byte(fmt.Sprintf(`{"seq":123456,"ts":1712345678901234567,"pad":"%s"}`, strings.Repeat("x", 150)))
	frame := encodeReply(pb, &protocol.Reply{Push: &protocol.Push{Channel: "live:bench", Pub: &protocol.Publication{Offset: 123456, Data: data}}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"centrifuge-protobuf"}})
		if err != nil {
			return
		}
		defer ws.CloseNow()
		typ := websocket.MessageText
		if pb {
			typ = websocket.MessageBinary
		}
		ctx := ws.CloseRead(r.Context())
		for {
			if err := ws.Write(ctx, typ, frame); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	var n int
	var sum uint64
	done := make(chan struct{})
	o := Options{Protobuf: pb}
	count := func(p *protocol.Push) bool {
		sum += uint64(len(p.Pub.Data)) + p.Pub.Offset
		n++
		if n == b.N {
			close(done)
			return false
		}
		return n < b.N
	}
	if onPush {
		o.OnPush = func(p *protocol.Push) {
			if n < b.N {
				count(p)
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	c, err := Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), o)
	if err != nil {
		b.Fatal(err)
	}
	if !onPush {
		go func() {
			for p := range c.Pushes() {
				if !count(p) {
					break
				}
			}
			for range c.Pushes() {
			}
		}()
	}
	<-done
	b.StopTimer()
	c.CloseNow()
	if sum == 0 {
		b.Fatal("nothing counted")
	}
}

// Pings are answered in callback mode too, also after pushes were decoded
// into the reused reply.
func TestOnPush_PingsAreAnsweredAfterPushes(t *testing.T) {
	for _, pb := range []bool{false, true} {
		t.Run(fmt.Sprintf("protobuf=%v", pb), func(t *testing.T) {
			f := newFakeServer(t)
			var pushes atomic.Int64
			dialTest(t, f, Options{Protobuf: pb, OnPush: func(p *protocol.Push) { pushes.Add(1) }})
			ping := encodeReply(pb, &protocol.Reply{})
			f.frames <- ping
			f.frames <- pubFrame(pb, "live:a", 1)
			f.frames <- ping
			f.frames <- pubFrame(pb, "live:a", 2, 3)
			f.frames <- ping
			deadline := time.Now().Add(10 * time.Second)
			for f.pongs.Load() < 3 || pushes.Load() < 3 {
				if time.Now().After(deadline) {
					t.Fatalf("%d pongs for 3 pings, %d pushes of 3", f.pongs.Load(), pushes.Load())
				}
				time.Sleep(5 * time.Millisecond)
			}
			if n := pushes.Load(); n != 3 {
				t.Fatalf("%d pushes, want 3 (a ping taken for a push?)", n)
			}
		})
	}
}
