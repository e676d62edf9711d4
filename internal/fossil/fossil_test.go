package fossil

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestDelta_RoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	}
	big := random(5000)
	edited := append(append(append([]byte{}, big[:1200]...), []byte("inserted in the middle")...), big[1300:]...)
	tests := []struct {
		name           string
		source, target []byte
	}{
		{"both empty", nil, nil},
		{"empty target", []byte("something long enough to index it"), nil},
		{"empty source", nil, []byte("hello")},
		{"short source", []byte("abc"), []byte("abcabcabc")},
		{"identical", big, big},
		{"edited", big, edited},
		{"prefix removed", big, big[777:]},
		{"suffix appended", big[:4000], big},
		{"unrelated", big, random(3000)},
		{"repetitive", bytes.Repeat([]byte("a"), 10000), bytes.Repeat([]byte("a"), 10001)},
		{"stock json", []byte(`{"product_id":"p-1","stock":41,"reserved":3,"updated_at":"2025-01-01T00:00:00Z"}`),
			[]byte(`{"product_id":"p-1","stock":40,"reserved":4,"updated_at":"2025-01-01T00:00:01Z"}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Delta(tt.source, tt.target)
			got, err := Apply(tt.source, d)
			if err != nil {
				t.Fatalf("Apply: %v (delta %q)", err, d)
			}
			if !bytes.Equal(got, tt.target) {
				t.Fatalf("Apply(Delta) = %q, want %q", got, tt.target)
			}
		})
	}
}

func TestDelta_CompressesSimilarInputs(t *testing.T) {
	var src strings.Builder
	for i := range 200 {
		fmt.Fprintf(&src, `{"sku":"sku-%d","stock":%d},`, i, i*3)
	}
	target := strings.Replace(src.String(), `"stock":150`, `"stock":149`, 1)
	d := Delta([]byte(src.String()), []byte(target))
	if len(d) > 64 {
		t.Fatalf("delta of a one-byte change is %d bytes: %q", len(d), d)
	}
}

// TestApply_KnownDelta pins the wire format with a delta written by hand:
// 0x1e = 30 bytes of output, copy 10 from offset 0, insert "XYZ", copy 17
// from offset 13, then the checksum.
func TestApply_KnownDelta(t *testing.T) {
	source := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	want := []byte("0123456789XYZdefghijklmnopqrst")
	delta := []byte("U\nA@0,3:XYZH@D,")
	delta = appendInt(delta, checksum(want))
	delta = append(delta, ';')
	got, err := Apply(source, delta)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestChecksum_MatchesReference(t *testing.T) {
	// Values computed by hand from the definition: big-endian words summed
	// modulo 2^32, the tail padded with zeros.
	tests := []struct {
		in   string
		want uint32
	}{
		{"", 0},
		{"a", 0x61000000},
		{"abcd", 0x61626364},
		{"abcde", 0x61626364 + 0x65000000},
		{"\xff\xff\xff\xff\x00\x00\x00\x02", 1},
	}
	for _, tt := range tests {
		if got := checksum([]byte(tt.in)); got != tt.want {
			t.Errorf("checksum(%q) = %#x, want %#x", tt.in, got, tt.want)
		}
	}
}

func TestAppendInt(t *testing.T) {
	tests := map[uint32]string{0: "0", 9: "9", 10: "A", 36: "_", 63: "~", 64: "10", 4095: "~~", 0xffffffff: "3~~~~~"}
	for v, want := range tests {
		if got := string(appendInt(nil, v)); got != want {
			t.Errorf("appendInt(%d) = %q, want %q", v, got, want)
		}
		r := reader{b: []byte(want)}
		if got, err := r.int(); err != nil || got != v {
			t.Errorf("read %q = %d, %v; want %d", want, got, err, v)
		}
	}
}

func TestApply_RejectsCorruptDeltas(t *testing.T) {
	source := []byte("the quick brown fox jumps over the lazy dog")
	target := []byte("the quick brown cat jumps over the lazy dog!")
	good := Delta(source, target)
	tests := []struct {
		name   string
		source []byte
		delta  []byte
	}{
		{"empty", source, nil},
		{"no newline", source, []byte("5")},
		{"no length", source, []byte("\n0;")},
		{"truncated", source, good[:len(good)-1]},
		{"no checksum", source, good[:bytes.LastIndexByte(good[:len(good)-1], ',')+1]},
		{"bad checksum", source, []byte("3\n3:abc0;")},
		{"length mismatch", source, append([]byte("4\n3:abc"), append(appendInt(nil, checksum([]byte("abc"))), ';')...)},
		{"copy past source", source, []byte("1~\n1~@0,0;")},
		{"insert past delta", source, []byte("9\n9:abc")},
		{"insert over length", source, []byte("2\n3:abc0;")},
		{"copy without comma", source, []byte("3\n3@0")},
		{"unknown operator", source, []byte("3\n3!abc0;")},
		{"overflowing int", source, []byte("zzzzzzzzzz\n")},
		{"trailing bytes", []byte{}, []byte("0\n0;x")},
		{"other source", []byte("THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG"), good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Apply(tt.source, tt.delta)
			if err == nil {
				t.Fatalf("Apply accepted %q and produced %q", tt.delta, got)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
		})
	}
}

func FuzzDeltaRoundTrip(f *testing.F) {
	f.Add([]byte("hello world, hello world, hello world"), []byte("hello there, hello world, hello world!"))
	f.Add([]byte(`{"stock":10,"reserved":1,"sku":"abcdefghijklmnop"}`), []byte(`{"stock":9,"reserved":2,"sku":"abcdefghijklmnop"}`))
	f.Add([]byte{}, []byte{0, 1, 2})
	f.Fuzz(func(t *testing.T, source, target []byte) {
		d := Delta(source, target)
		got, err := Apply(source, d)
		if err != nil {
			t.Fatalf("Apply(Delta): %v", err)
		}
		if !bytes.Equal(got, target) {
			t.Fatalf("round trip mismatch")
		}
	})
}

// FuzzApply feeds arbitrary deltas to Apply: it must never panic, and
// whatever it accepts must honour the length and checksum it declared.
func FuzzApply(f *testing.F) {
	src := []byte("the quick brown fox jumps over the lazy dog")
	f.Add(src, Delta(src, []byte("the quick brown cat jumps over the lazy dog")))
	f.Add(src, []byte("3\n3:abc0;"))
	f.Add([]byte{}, []byte("0\n0;"))
	f.Fuzz(func(t *testing.T, source, delta []byte) {
		out, err := Apply(source, delta)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		r := reader{b: delta}
		n, _ := r.int()
		if uint64(len(out)) != uint64(n) {
			t.Fatalf("accepted output of %d bytes, delta declared %d", len(out), n)
		}
	})
}
