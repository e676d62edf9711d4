// Package protoclient is a small client of the Centrifugo protocol v2, in
// its JSON or Protobuf encoding, for tests and the load tool: it speaks the wire, not LiveHub's code, so it
// works against any server of the protocol.
package protoclient

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/centrifugal/protocol"
	"github.com/centrifugal/protocol/cfjson"
	"github.com/coder/websocket"
)

// Conn is one client connection.
type Conn struct {
	ws       *websocket.Conn
	protobuf bool
	// AutoPong answers server pings; tests of dead connections turn it off.
	autoPong atomic.Bool

	nextID atomic.Uint32

	mu      sync.Mutex
	waiters map[uint32]chan *protocol.Reply

	pushes chan *protocol.Push
	// onPush and onClose are Options.OnPush and Options.OnClose.
	onPush  func(*protocol.Push)
	onClose func(code websocket.StatusCode, reason string)
	done    chan struct{}
	// closing stops a reader blocked on a full push buffer.
	closing   chan struct{}
	closeOnce sync.Once
	// closeErr is the read error that ended the connection.
	closeErr error
	// Frames counts WebSocket messages received; Bytes their payload bytes.
	Frames atomic.Int64
	Bytes  atomic.Int64
}

// Options tune Dial.
type Options struct {
	// PushBuffer is how many pushes may wait unread before the reader stops
	// reading (and the server sees a slow client). Zero means 4096.
	PushBuffer int
	// NoPong turns off answering pings.
	NoPong bool
	// Header is sent with the handshake (Origin, for example).
	Header http.Header
	// HTTPClient dials; nil means the default.
	HTTPClient *http.Client
	// ReadLimit bounds a received message. Zero means 16 MiB.
	ReadLimit int64
	// Protobuf speaks the Protobuf encoding, asked for with the
	// "centrifuge-protobuf" subprotocol as the SDKs' protobuf builds do.
	Protobuf bool
	// Compression offers permessage-deflate in the handshake; the zero
	// value offers none.
	Compression websocket.CompressionMode
	// CompressionThreshold is passed to the WebSocket library for the
	// messages this client sends.
	CompressionThreshold int
	// OnPush, when set, takes the pushes instead of the Pushes channel,
	// which then stays empty: it is called on the connection's read
	// goroutine, in order, with no goroutine handoff and no allocation per
	// push (load tools call it for every delivery of thousands of
	// connections). The push and what it points to are reused for the next
	// one, so OnPush must copy what it keeps. While it runs nothing is
	// read: it must not block, nor make a call on this connection (the
	// reply would wait behind it).
	OnPush func(*protocol.Push)
	// OnClose, when set, is called once on the read goroutine when the
	// connection ends, before Done is closed, with the close code and
	// reason the server sent (-1 and "" when it sent none).
	OnClose func(code websocket.StatusCode, reason string)
}

// Dial opens a WebSocket to url.
func Dial(ctx context.Context, url string, o Options) (*Conn, error) {
	dopts := &websocket.DialOptions{
		HTTPHeader: o.Header, HTTPClient: o.HTTPClient,
		CompressionMode: o.Compression, CompressionThreshold: o.CompressionThreshold,
	}
	if o.Protobuf {
		dopts.Subprotocols = []string{"centrifuge-protobuf"}
	}
	ws, _, err := websocket.Dial(ctx, url, dopts)
	if err != nil {
		return nil, err
	}
	if o.Protobuf && ws.Subprotocol() != "centrifuge-protobuf" {
		_ = ws.CloseNow()
		return nil, errors.New("protoclient: server did not accept the centrifuge-protobuf subprotocol")
	}
	if o.PushBuffer <= 0 {
		o.PushBuffer = 4096
	}
	if o.OnPush != nil {
		// The channel only closes at the end; it holds nothing.
		o.PushBuffer = 0
	}
	if o.ReadLimit <= 0 {
		o.ReadLimit = 16 << 20
	}
	ws.SetReadLimit(o.ReadLimit)
	c := &Conn{
		ws:       ws,
		protobuf: o.Protobuf,
		waiters:  make(map[uint32]chan *protocol.Reply),
		pushes:   make(chan *protocol.Push, o.PushBuffer),
		onPush:   o.OnPush,
		onClose:  o.OnClose,
		done:     make(chan struct{}),
		closing:  make(chan struct{}),
	}
	c.autoPong.Store(!o.NoPong)
	go c.readLoop()
	return c, nil
}

// SetAutoPong turns answering pings on or off.
func (c *Conn) SetAutoPong(on bool) { c.autoPong.Store(on) }

// Pushes delivers the server's asynchronous messages in order (none when
// Options.OnPush takes them); it is closed when the connection ends.
func (c *Conn) Pushes() <-chan *protocol.Push { return c.pushes }

// Done is closed when the connection is gone.
func (c *Conn) Done() <-chan struct{} { return c.done }

// CloseStatus returns the close code and reason the server sent, once Done is closed.
func (c *Conn) CloseStatus() (websocket.StatusCode, string) {
	var ce websocket.CloseError
	if errors.As(c.closeErr, &ce) {
		return ce.Code, ce.Reason
	}
	return -1, ""
}

// Close closes the connection normally.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() { close(c.closing) })
	err := c.ws.Close(websocket.StatusNormalClosure, "")
	<-c.done
	return err
}

// CloseNow drops the connection without a close handshake, as a phone
// entering a tunnel does.
func (c *Conn) CloseNow() {
	c.closeOnce.Do(func() { close(c.closing) })
	_ = c.ws.CloseNow()
	<-c.done
}

// readBufSize is the read buffer a connection starts with; maxKeptBuf is
// the largest it keeps between messages (a bigger one, grown for a large
// history reply, is dropped after use).
const (
	readBufSize = 1 << 10
	maxKeptBuf  = 64 << 10
)

// readLoop reads messages into one buffer of the connection and decodes
// their replies into one reused Reply. Both are safe to reuse: the
// decoders copy strings and payloads out of the message, and a reply handed
// to another goroutine (a call's reply, a push on the channel) is given
// away, the next decoded into a fresh one.
func (c *Conn) readLoop() {
	defer close(c.done)
	defer close(c.pushes)
	if c.onPush == nil {
		c.readLoopChannel()
		return
	}
	var buf []byte
	var scratch *protocol.Reply
	for {
		var err error
		buf, err = c.readMessage(buf[:0])
		if err != nil {
			c.readFailed(err)
			return
		}
		c.Frames.Add(1)
		c.Bytes.Add(int64(len(buf)))
		for off := 0; off < len(buf); {
			if scratch == nil {
				scratch = new(protocol.Reply)
			} else {
				resetReply(scratch)
			}
			var end int
			var empty bool
			end, empty, err = c.decodeReply(buf, off, scratch)
			if err != nil {
				c.closeErr = fmt.Errorf("protoclient: bad frame from server: %w", err)
				_ = c.ws.CloseNow()
				break
			}
			if end < 0 {
				break
			}
			off = end
			if empty {
				// The server's ping. The reused reply may still hold the
				// previous push's structs, so it is told by its bytes.
				c.ping()
				continue
			}
			if c.dispatch(scratch) {
				scratch = nil
			}
		}
		if cap(buf) > maxKeptBuf {
			buf = nil
		}
	}
}

// readLoopChannel is the read loop of a connection that hands its pushes
// over the Pushes channel: every message read whole and every reply
// decoded afresh, the plain way the tests rely on. The callback mode's
// loop above reuses its buffer and reply, for the load tool.
func (c *Conn) readLoopChannel() {
	var dec protocol.ReplyDecoder = protocol.NewJSONReplyDecoder(nil)
	if c.protobuf {
		dec = protocol.NewProtobufReplyDecoder(nil)
	}
	for {
		_, data, err := c.ws.Read(context.Background())
		if err != nil {
			c.readFailed(err)
			return
		}
		c.Frames.Add(1)
		c.Bytes.Add(int64(len(data)))
		_ = dec.Reset(data)
		for {
			r, err := dec.Decode()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					c.closeErr = fmt.Errorf("protoclient: bad frame from server: %w", err)
					_ = c.ws.CloseNow()
				}
				break
			}
			c.dispatch(r)
		}
	}
}

// readFailed ends the connection's calls once its read failed with err.
func (c *Conn) readFailed(err error) {
	c.closeErr = err
	c.mu.Lock()
	for id, w := range c.waiters {
		close(w)
		delete(c.waiters, id)
	}
	c.mu.Unlock()
	if c.onClose != nil {
		c.onClose(c.CloseStatus())
	}
}

// readMessage reads the next message into buf, growing it as needed (the
// connection's read limit bounds it).
func (c *Conn) readMessage(buf []byte) ([]byte, error) {
	_, r, err := c.ws.Reader(context.Background())
	if err != nil {
		return buf, err
	}
	if cap(buf) == 0 {
		buf = make([]byte, 0, readBufSize)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// decodeReply decodes the reply at data[off:] into r and returns where the
// next one starts, or -1 when only whitespace (JSON) or an unreadable length
// prefix (Protobuf) is left. empty reports an empty reply (the server's
// ping): {} in JSON, zero bytes in Protobuf.
func (c *Conn) decodeReply(data []byte, off int, r *protocol.Reply) (next int, empty bool, err error) {
	if c.protobuf {
		l, n := binary.Uvarint(data[off:])
		if n <= 0 {
			return -1, false, nil
		}
		from := off + n
		if l > uint64(len(data)-from) {
			return 0, false, io.ErrShortBuffer
		}
		to := from + int(l)
		if l == 0 {
			return to, true, nil
		}
		if err := r.UnmarshalCF(data[from:to]); err != nil {
			return 0, false, err
		}
		return to, false, nil
	}
	i := cfjson.SkipSpace(data, off)
	if i >= len(data) {
		return -1, false, nil
	}
	n := r.DecodeJSON(data, i, 0)
	if n < 0 {
		return 0, false, cfjson.Error(data, n)
	}
	return n, len(bytes.TrimSpace(data[i+1:n-1])) == 0, nil
}

// resetReply empties r for the next decode, keeping the push and
// publication it holds and the capacity of the publication's data.
func resetReply(r *protocol.Reply) {
	push := r.Push
	*r = protocol.Reply{}
	if push == nil {
		return
	}
	pub := push.Pub
	*push = protocol.Push{}
	r.Push = push
	if pub != nil {
		data := pub.Data[:0]
		*pub = protocol.Publication{Data: data}
		push.Pub = pub
	}
}

// dispatch routes one reply and reports whether it was handed to another
// goroutine (and so may not be reused).
func (c *Conn) dispatch(r *protocol.Reply) bool {
	switch {
	case r.Id > 0:
		c.mu.Lock()
		w, ok := c.waiters[r.Id]
		delete(c.waiters, r.Id)
		c.mu.Unlock()
		if ok {
			w <- r
		}
		return ok
	case r.Push != nil:
		if c.onPush != nil {
			c.onPush(r.Push)
			return false
		}
		select {
		case c.pushes <- r.Push:
		case <-c.closing:
		}
		return true
	default:
		c.ping()
		return false
	}
}

// ping answers the server's ping unless answering is turned off.
func (c *Conn) ping() {
	if c.autoPong.Load() {
		_ = c.WritePong(context.Background())
	}
}

// WritePong answers a ping with an empty command in the connection's encoding.
func (c *Conn) WritePong(ctx context.Context) error {
	if c.protobuf {
		return c.WriteBinary(ctx, []byte{0}) // a zero length prefix: one empty command
	}
	return c.WriteRaw(ctx, []byte("{}"))
}

// Protobuf reports whether the connection speaks the Protobuf encoding.
func (c *Conn) Protobuf() bool { return c.protobuf }

// WriteRaw sends a text frame as is.
func (c *Conn) WriteRaw(ctx context.Context, data []byte) error {
	return c.ws.Write(ctx, websocket.MessageText, data)
}

// WriteBinary sends a binary frame.
func (c *Conn) WriteBinary(ctx context.Context, data []byte) error {
	return c.ws.Write(ctx, websocket.MessageBinary, data)
}

// ReplyError is a protocol error reply.
type ReplyError struct {
	Code    uint32
	Message string
}

func (e *ReplyError) Error() string { return fmt.Sprintf("protocol error %d: %s", e.Code, e.Message) }

// ErrClosed is returned by calls on a closed connection.
var ErrClosed = errors.New("protoclient: connection closed")

// Call sends a command and waits for its reply. The command's id is set here.
func (c *Conn) Call(ctx context.Context, cmd *protocol.Command) (*protocol.Reply, error) {
	id := c.nextID.Add(1)
	cmd.Id = id
	w := make(chan *protocol.Reply, 1)
	c.mu.Lock()
	c.waiters[id] = w
	c.mu.Unlock()
	if err := c.writeCommand(ctx, cmd); err != nil {
		return nil, err
	}
	select {
	case r, ok := <-w:
		if !ok {
			return nil, ErrClosed
		}
		if r.Error != nil {
			return r, &ReplyError{Code: r.Error.Code, Message: r.Error.Message}
		}
		return r, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.waiters, id)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (c *Conn) writeCommand(ctx context.Context, cmd *protocol.Command) error {
	if c.protobuf {
		// The encoder adds the varint length prefix.
		data, err := protocol.NewProtobufCommandEncoder().Encode(cmd)
		if err != nil {
			return err
		}
		return c.WriteBinary(ctx, data)
	}
	data, err := protocol.NewJSONCommandEncoder().Encode(cmd)
	if err != nil {
		return err
	}
	return c.WriteRaw(ctx, data)
}

// Connect authenticates with token (empty for anonymous).
func (c *Conn) Connect(ctx context.Context, token string) (*protocol.ConnectResult, error) {
	return c.ConnectWith(ctx, &protocol.ConnectRequest{Token: token})
}

// ConnectWith sends a full connect request (with subs to recover, for example).
func (c *Conn) ConnectWith(ctx context.Context, req *protocol.ConnectRequest) (*protocol.ConnectResult, error) {
	r, err := c.Call(ctx, &protocol.Command{Connect: req})
	if err != nil {
		return nil, err
	}
	return r.Connect, nil
}

// Subscribe subscribes to a channel.
func (c *Conn) Subscribe(ctx context.Context, req *protocol.SubscribeRequest) (*protocol.SubscribeResult, error) {
	r, err := c.Call(ctx, &protocol.Command{Subscribe: req})
	if err != nil {
		return nil, err
	}
	return r.Subscribe, nil
}

// Unsubscribe leaves a channel.
func (c *Conn) Unsubscribe(ctx context.Context, channel string) error {
	_, err := c.Call(ctx, &protocol.Command{Unsubscribe: &protocol.UnsubscribeRequest{Channel: channel}})
	return err
}

// Publish publishes JSON data into a channel.
func (c *Conn) Publish(ctx context.Context, channel string, data []byte) error {
	_, err := c.Call(ctx, &protocol.Command{Publish: &protocol.PublishRequest{Channel: channel, Data: data}})
	return err
}

// History reads a channel's history.
func (c *Conn) History(ctx context.Context, req *protocol.HistoryRequest) (*protocol.HistoryResult, error) {
	r, err := c.Call(ctx, &protocol.Command{History: req})
	if err != nil {
		return nil, err
	}
	return r.History, nil
}

// Presence reads a channel's presence.
func (c *Conn) Presence(ctx context.Context, channel string) (*protocol.PresenceResult, error) {
	r, err := c.Call(ctx, &protocol.Command{Presence: &protocol.PresenceRequest{Channel: channel}})
	if err != nil {
		return nil, err
	}
	return r.Presence, nil
}

// PresenceStats reads a channel's presence counts.
func (c *Conn) PresenceStats(ctx context.Context, channel string) (*protocol.PresenceStatsResult, error) {
	r, err := c.Call(ctx, &protocol.Command{PresenceStats: &protocol.PresenceStatsRequest{Channel: channel}})
	if err != nil {
		return nil, err
	}
	return r.PresenceStats, nil
}

// RPC calls a server method.
func (c *Conn) RPC(ctx context.Context, method string, data []byte) ([]byte, error) {
	r, err := c.Call(ctx, &protocol.Command{Rpc: &protocol.RPCRequest{Method: method, Data: data}})
	if err != nil {
		return nil, err
	}
	return r.Rpc.Data, nil
}

// Refresh sends a new connection token.
func (c *Conn) Refresh(ctx context.Context, token string) (*protocol.RefreshResult, error) {
	r, err := c.Call(ctx, &protocol.Command{Refresh: &protocol.RefreshRequest{Token: token}})
	if err != nil {
		return nil, err
	}
	return r.Refresh, nil
}

// SubRefresh sends a new subscription token for a channel.
func (c *Conn) SubRefresh(ctx context.Context, channel, token string) (*protocol.SubRefreshResult, error) {
	r, err := c.Call(ctx, &protocol.Command{SubRefresh: &protocol.SubRefreshRequest{Channel: channel, Token: token}})
	if err != nil {
		return nil, err
	}
	return r.SubRefresh, nil
}
