package redisengine

import (
	"reflect"
	"testing"

	"github.com/livehub/livehub/hub"
)

func TestCodec_PublicationRoundTrip(t *testing.T) {
	for _, p := range []*hub.Publication{
		{},
		{Data: []byte{}},
		{Data: []byte(`{"a":1}`), Time: 1700000000123},
		{Data: []byte{0, 255, ':', 'p'}, Time: -1, Tags: map[string]string{}},
		{
			Data: []byte("x"),
			Info: &hub.ClientInfo{ClientID: "c", UserID: "", ConnInfo: []byte{}, ChanInfo: []byte("ci")},
			Tags: map[string]string{"a": "1", "": "", "ü": "\x00"},
		},
		{Info: &hub.ClientInfo{}},
		{Data: []byte(`{"likes":3}`), Priority: hub.PriorityLow},
		{Data: []byte("y"), Tags: map[string]string{"k": "v"}, Priority: hub.PriorityLow},
	} {
		got, err := decodePublication(encodePublication(p))
		if err != nil {
			t.Fatalf("decode(encode(%+v)): %v", p, err)
		}
		if !reflect.DeepEqual(got, p) {
			t.Fatalf("round trip of %+v gave %+v", p, got)
		}
	}
}

func TestCodec_NormalPriorityKeepsTheOlderEncoding(t *testing.T) {
	p := &hub.Publication{Data: []byte(`{"stock":3}`), Time: 5}
	low := *p
	low.Priority = hub.PriorityLow
	if a, b := encodePublication(p), encodePublication(&low); len(b) != len(a)+1 || string(b[:len(a)]) != string(a) {
		t.Fatalf("low priority should only append one byte: %q vs %q", a, b)
	}
}

func TestCodec_ClientInfoMessageRoundTrip(t *testing.T) {
	info := &hub.ClientInfo{ClientID: "c", UserID: "u", ConnInfo: []byte("x")}
	msg := encodeClientInfoMessage(kindJoin, info)
	if msg[0] != kindJoin {
		t.Fatalf("kind byte %q", msg[0])
	}
	got, err := decodeClientInfo(msg[1:])
	if err != nil || !reflect.DeepEqual(got, info) {
		t.Fatalf("decode = %+v, %v; want %+v", got, err, info)
	}
}

func TestCodec_ParsePublicationMessage(t *testing.T) {
	for _, tc := range []struct {
		in    string
		sp    hub.StreamPosition
		body  string
		valid bool
	}{
		{"12:abc:body:with:colons", hub.StreamPosition{Offset: 12, Epoch: "abc"}, "body:with:colons", true},
		{"0::", hub.StreamPosition{}, "", true},
		{"x:abc:b", hub.StreamPosition{}, "", false},
		{"12abc", hub.StreamPosition{}, "", false},
		{"12:abc", hub.StreamPosition{}, "", false},
	} {
		sp, body, err := parsePublicationMessage(tc.in)
		if (err == nil) != tc.valid || sp != tc.sp || body != tc.body {
			t.Errorf("parse(%q) = %+v, %q, %v", tc.in, sp, body, err)
		}
	}
}

func FuzzDecodePublication(f *testing.F) {
	f.Add(encodePublication(&hub.Publication{Data: []byte("x"), Tags: map[string]string{"a": "b"}, Info: &hub.ClientInfo{ClientID: "c"}}))
	f.Add([]byte{codecVersion, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePublication(b)
		if err != nil {
			return
		}
		// What decodes must encode back to something that decodes the same.
		again, err := decodePublication(encodePublication(p))
		if err != nil || !reflect.DeepEqual(again, p) {
			t.Fatalf("re-encoding %+v gave %+v, %v", p, again, err)
		}
	})
}
