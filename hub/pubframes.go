package hub

import (
	"errors"
	"sync"
	"unicode/utf8"

	"github.com/centrifugal/protocol"
	"github.com/livehub/livehub/internal/fossil"
)

// DeltaFossil is the only delta type: fossil-scm's delta format, which the
// Centrifugo SDKs apply.
const DeltaFossil = "fossil"

// pubFrames is one publication's push in every form a subscriber may need,
// each encoded at most once, on first use, and shared by every subscriber
// that needs it: a node with only JSON subscribers never encodes Protobuf,
// and the delta is computed once per publication, not per subscriber.
//
// The forms are used from the fan-out goroutine and, for subscriptions
// still pending, later from the subscriber's goroutine, hence the Onces.
type pubFrames struct {
	channel string
	pub     *Publication
	// prev is the data of the channel's previous publication when it
	// immediately precedes pub in the stream (same epoch, offset-1); nil
	// when no delta can be made.
	prev []byte

	json      lazyFrame // the plain push, JSON
	jsonStr   lazyFrame // full data as a JSON string, for delta subscriptions
	jsonDelta lazyFrame // delta as a JSON string
	pb        lazyFrame // the plain push, Protobuf (also full for delta subscriptions)
	pbDelta   lazyFrame // delta as bytes

	deltaOnce sync.Once
	delta     []byte // nil when no delta is available or it would not save bytes
}

type lazyFrame struct {
	once sync.Once
	b    []byte
}

func (l *lazyFrame) get(encode func() ([]byte, error)) []byte {
	l.once.Do(func() {
		b, err := encode()
		if err == nil {
			l.b = b
		}
	})
	return l.b
}

func newPubFrames(channel string, pub *Publication, prev []byte) *pubFrames {
	return &pubFrames{channel: channel, pub: pub, prev: prev}
}

// full returns the push for a subscription without delta. Nil means the
// publication cannot be encoded (data that is not JSON, for a JSON client).
func (f *pubFrames) full(enc encoding) []byte {
	if enc == encodingProtobuf {
		return f.pb.get(func() ([]byte, error) { return f.encode(enc, f.pub.Data, false) })
	}
	return f.json.get(func() ([]byte, error) { return f.encode(enc, f.pub.Data, false) })
}

// fullForDelta returns the push that starts (or restarts) a delta chain:
// the whole data, not flagged as a delta.
func (f *pubFrames) fullForDelta(enc encoding) []byte {
	if enc == encodingProtobuf {
		return f.full(enc)
	}
	return f.jsonStr.get(func() ([]byte, error) { return f.encode(enc, jsonString(f.pub.Data), false) })
}

// deltaFrame returns the push carrying a fossil delta against the previous
// publication, or nil when there is none worth sending (then the caller
// sends fullForDelta).
func (f *pubFrames) deltaFrame(enc encoding) []byte {
	d := f.computeDelta()
	if d == nil {
		return nil
	}
	if enc == encodingProtobuf {
		return f.pbDelta.get(func() ([]byte, error) { return f.encode(enc, d, true) })
	}
	return f.jsonDelta.get(func() ([]byte, error) {
		// A delta goes in a JSON string, so it must be valid UTF-8: the
		// client turns the string back into bytes with TextEncoder. Copy
		// boundaries can split a multi-byte character of the data; such a
		// delta is not sent (the caller falls back to full data).
		if !utf8.Valid(d) {
			return nil, errNoDelta
		}
		return f.encode(enc, jsonString(d), true)
	})
}

func (f *pubFrames) computeDelta() []byte {
	f.deltaOnce.Do(func() {
		if f.prev == nil {
			return
		}
		d := fossil.Delta(f.prev, f.pub.Data)
		if len(d) < len(f.pub.Data) {
			f.delta = d
		}
	})
	return f.delta
}

func (f *pubFrames) encode(enc encoding, data []byte, delta bool) ([]byte, error) {
	p := f.pub.toProto()
	p.Data = data
	p.Delta = delta
	return enc.encodeReply(&protocol.Reply{Push: &protocol.Push{Channel: f.channel, Pub: p}})
}

// errNoDelta marks a delta that cannot travel in this encoding.
var errNoDelta = errors.New("hub: delta not representable")
