package pushtest

import (
	"slices"
	"testing"
	"time"

	"github.com/livehub/livehub/push"
)

// RunDedupeTests runs the suite every push.Dedupe passes. newDedupe returns
// an empty Dedupe private to the (sub)test, with the given options.
func RunDedupeTests(t *testing.T, newDedupe func(t *testing.T, o push.DedupeOptions) push.Dedupe) {
	t.Run("ClaimConfirmRelease", func(t *testing.T) {
		d := newDedupe(t, push.DedupeOptions{TTL: time.Hour, ClaimTTL: time.Minute})
		claim := func(event string, tokens ...string) []push.ClaimState {
			t.Helper()
			s, err := d.Claim(t.Context(), event, tokens)
			mustNoErr(t, err)
			return s
		}
		want := func(got []push.ClaimState, want ...push.ClaimState) {
			t.Helper()
			if !slices.Equal(got, want) {
				t.Fatalf("claim states %v, want %v", got, want)
			}
		}
		want(claim("ev1", "a", "b", "c"), push.Claimed, push.Claimed, push.Claimed)
		want(claim("ev1", "a", "d"), push.InFlight, push.Claimed)
		want(claim("ev2", "a"), push.Claimed)
		mustNoErr(t, d.Confirm(t.Context(), "ev1", []string{"a"}))
		mustNoErr(t, d.Release(t.Context(), "ev1", []string{"b"}))
		want(claim("ev1", "a", "b", "c"), push.AlreadySent, push.Claimed, push.InFlight)
	})
	t.Run("ClaimExpires", func(t *testing.T) {
		d := newDedupe(t, push.DedupeOptions{TTL: 400 * time.Millisecond, ClaimTTL: 200 * time.Millisecond})
		if s, err := d.Claim(t.Context(), "ev1", []string{"a", "b"}); err != nil || !slices.Equal(s, []push.ClaimState{push.Claimed, push.Claimed}) {
			t.Fatalf("claim = %v, %v", s, err)
		}
		mustNoErr(t, d.Confirm(t.Context(), "ev1", []string{"b"}))
		time.Sleep(300 * time.Millisecond)
		s, err := d.Claim(t.Context(), "ev1", []string{"a", "b"})
		mustNoErr(t, err)
		if !slices.Equal(s, []push.ClaimState{push.Claimed, push.AlreadySent}) {
			t.Fatalf("after the claim TTL: %v, want [Claimed AlreadySent]", s)
		}
		time.Sleep(300 * time.Millisecond)
		s, err = d.Claim(t.Context(), "ev1", []string{"b"})
		mustNoErr(t, err)
		if !slices.Equal(s, []push.ClaimState{push.Claimed}) {
			t.Fatalf("after the TTL: %v, want [Claimed]", s)
		}
	})
}
