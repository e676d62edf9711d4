package redisutil_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/redisutil"
)

func TestTag(t *testing.T) {
	if got := redisutil.Tag("o", "ord_1"); got != "{o:ord_1}" {
		t.Errorf("Tag(o, ord_1) = %q", got)
	}
	for _, id := range []string{"", "a{b", "a}b"} {
		got := redisutil.Tag("o", id)
		if !strings.HasPrefix(got, "{o#") || strings.Count(got, "{") != 1+strings.Count(id, "{") || !strings.HasSuffix(got, id) {
			t.Errorf("Tag(o, %q) = %q, want {o#hash}id", id, got)
		}
		// The tag, the part Cluster hashes, has no brace of the id's.
		if tag := got[:strings.Index(got, "}")+1]; strings.ContainsAny(tag[1:len(tag)-1], "{}") {
			t.Errorf("Tag(o, %q): tag %q holds a brace", id, tag)
		}
	}
	if redisutil.Tag("o", "a{b") == redisutil.Tag("o", "a}b") {
		t.Error("two ids with braces got the same tag")
	}
}

func TestCheckPrefix(t *testing.T) {
	redisutil.CheckPrefix("x", "livehub")
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), `x: prefix "a{b"`) {
			t.Errorf("recovered %v, want a panic naming the prefix", r)
		}
	}()
	redisutil.CheckPrefix("x", "a{b")
}

// replyError is an error reply of Redis, as go-redis returns them.
type replyError string

func (e replyError) Error() string { return string(e) }
func (replyError) RedisError()     {}

func TestFail(t *testing.T) {
	domain := commerce.Errorf(commerce.ESOLDOUT, "sold out")
	for _, tc := range []struct {
		err  error
		code commerce.Code
		msg  string
	}{
		{replyError("LOADING Redis is loading the dataset in memory"), commerce.EUNAVAILABLE, "the store is busy; try again"},
		{replyError("MOVED 3999 127.0.0.1:6381"), commerce.EUNAVAILABLE, "the store is busy; try again"},
		{replyError("ERR wrong number of arguments"), commerce.EINTERNAL, "the store failed"},
		{io.EOF, commerce.EUNAVAILABLE, "the store is not answering; try again"},
	} {
		err := redisutil.Fail("pkg", "the store", "op", tc.err)
		var ce *commerce.Error
		if !errors.As(err, &ce) || ce.Code != tc.code || ce.Message != tc.msg || !errors.Is(err, tc.err) {
			t.Errorf("Fail(%v) = %v, want %s %q wrapping it", tc.err, err, tc.code, tc.msg)
		}
		if !strings.Contains(err.Error(), "pkg: op: ") {
			t.Errorf("Fail(%v) = %q, want the cause as pkg: op: ...", tc.err, err)
		}
	}
	if err := redisutil.Fail("pkg", "the store", "op", domain); err != domain {
		t.Errorf("a domain error became %v", err)
	}
	if err := redisutil.Fail("pkg", "the store", "op", nil); err != nil {
		t.Errorf("nil became %v", err)
	}
}
