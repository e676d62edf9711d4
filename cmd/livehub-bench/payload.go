package main

import (
	"bytes"
	"strconv"
)

// A bench publication's data is a JSON object with a sequence number and the
// send time in Unix nanoseconds, padded to the asked size:
//
//	{"seq":17,"ts":1712345678901234567,"pad":"xxxx"}
//
// Receivers read it without a JSON decoder: one publication is decoded by
// every subscriber, so the cost is paid clients times over.

// encodePayload returns the data of publication seq sent at ts, at least
// size bytes long (exactly size when size exceeds the fields).
func encodePayload(seq int, ts int64, size int) []byte {
	b := make([]byte, 0, max(size, 64))
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, `,"pad":"`...)
	for n := size - len(b) - 2; n > 0; n-- {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}

// parsePayload reads the sequence number and send time of a bench
// publication; ok is false for any other data.
func parsePayload(b []byte) (seq int, ts int64, ok bool) {
	s, rest, ok := intAfter(b, `"seq":`)
	if !ok {
		return 0, 0, false
	}
	// The tool writes ts after seq; data written otherwise is looked at
	// whole.
	if ts, _, ok = intAfter(rest, `"ts":`); !ok {
		if ts, _, ok = intAfter(b, `"ts":`); !ok {
			return 0, 0, false
		}
	}
	return int(s), ts, true
}

// intAfter reads the decimal digits after the first key in b and returns
// what follows them.
func intAfter(b []byte, key string) (int64, []byte, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, nil, false
	}
	b = b[i+len(key):]
	var v int64
	n := 0
	for n < len(b) && n < 19 && b[n] >= '0' && b[n] <= '9' {
		v = v*10 + int64(b[n]-'0')
		n++
	}
	return v, b[n:], n > 0
}
