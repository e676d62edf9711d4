package hub

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/centrifugal/protocol"
	"github.com/livehub/livehub/internal/fossil"
)

func TestPubFrames_EncodedOncePerFormAndLazily(t *testing.T) {
	prev := []byte(`{"stock_left":10,"flash_sale_id":"fs_0123456789abcdef"}`)
	pub := &Publication{Offset: 2, Data: []byte(`{"stock_left":9,"flash_sale_id":"fs_0123456789abcdef"}`)}
	f := newPubFrames("live:1", pub, prev)
	a, b := f.full(encodingJSON), f.full(encodingJSON)
	if &a[0] != &b[0] {
		t.Fatal("JSON push encoded twice")
	}
	if f.pb.b != nil {
		t.Fatal("Protobuf encoded without a Protobuf subscriber")
	}
	d1, d2 := f.deltaFrame(encodingProtobuf), f.deltaFrame(encodingJSON)
	if d1 == nil || d2 == nil {
		t.Fatal("no delta for a small change")
	}
	r, err := protocol.NewProtobufReplyDecoder(encodingProtobuf.appendFrame(nil, true, d1)).Decode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := fossil.Apply(prev, r.Push.Pub.Data)
	if err != nil || !bytes.Equal(got, pub.Data) || !r.Push.Pub.Delta {
		t.Fatalf("protobuf delta rebuilt %q, %v", got, err)
	}
}

// A JSON delta travels in a string; when copy boundaries split a UTF-8
// character the delta is not valid text and the JSON subscriber gets whole
// data instead, while a Protobuf subscriber still gets the delta.
func TestPubFrames_JSONFallsBackWhenDeltaIsNotText(t *testing.T) {
	base := strings.Repeat("é", 40)
	prev := []byte(`{"t":"` + base + `"}`)
	// Change the second byte of one character: é (C3 A9) -> è (C3 A8).
	next := []byte(`{"t":"` + base[:40] + "è" + base[42:] + `"}`)
	f := newPubFrames("live:1", &Publication{Offset: 2, Data: next}, prev)
	if f.deltaFrame(encodingProtobuf) == nil {
		t.Fatal("no protobuf delta")
	}
	if f.deltaFrame(encodingJSON) != nil {
		// Only acceptable if the delta happens to be valid UTF-8.
		r, _ := protocol.NewJSONReplyDecoder(f.deltaFrame(encodingJSON)).Decode()
		var s string
		if err := json.Unmarshal(r.Push.Pub.Data, &s); err != nil {
			t.Fatal(err)
		}
		got, err := fossil.Apply(prev, []byte(s))
		if err != nil || !bytes.Equal(got, next) {
			t.Fatalf("JSON delta does not rebuild the data: %v", err)
		}
	}
	full := f.fullForDelta(encodingJSON)
	r, err := protocol.NewJSONReplyDecoder(full).Decode()
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := json.Unmarshal(r.Push.Pub.Data, &s); err != nil || s != string(next) || r.Push.Pub.Delta {
		t.Fatalf("full data for a delta subscription = %s (%v)", r.Push.Pub.Data, err)
	}
}

func TestSubShard_PrevOnlyForContiguousPublications(t *testing.T) {
	s := &subShard{prev: map[string]prevPub{}}
	if p := s.swapPrev("c", &Publication{Offset: 1, Data: []byte("a")}, "e"); p != nil {
		t.Fatal("delta base before any publication")
	}
	if p := s.swapPrev("c", &Publication{Offset: 2, Data: []byte("b")}, "e"); string(p) != "a" {
		t.Fatalf("base %q, want a", p)
	}
	if p := s.swapPrev("c", &Publication{Offset: 4, Data: []byte("d")}, "e"); p != nil {
		t.Fatal("delta base across a gap")
	}
	if p := s.swapPrev("c", &Publication{Offset: 5, Data: []byte("e")}, "other"); p != nil {
		t.Fatal("delta base across epochs")
	}
}
