package push

import (
	"testing"
	"time"
)

func TestBackoff_DoublesWithEqualJitterUpToTheCap(t *testing.T) {
	base, limit := 100*time.Millisecond, time.Second
	for attempt, full := range []time.Duration{100, 200, 400, 800, 1000, 1000, 1000} {
		full *= time.Millisecond
		for range 200 {
			d := backoff(attempt, base, limit)
			if d < full/2 || d > full {
				t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, full/2, full)
			}
		}
	}
	if d := backoff(1000, base, limit); d > limit {
		t.Fatalf("a large attempt gave %v", d)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2030, 5, 17, 19, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"":                              0,
		"7":                             7 * time.Second,
		" 120 ":                         2 * time.Minute,
		"-3":                            0,
		"soon":                          0,
		"Fri, 17 May 2030 19:00:30 GMT": 30 * time.Second,
		"Fri, 17 May 2030 18:59:00 GMT": 0,
		"999999999":                     24 * time.Hour,
	} {
		if got := ParseRetryAfter(h, now); got != want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestUserLimiter_BurstThenRefill(t *testing.T) {
	l := newUserLimiter(60, 3) // one a second
	now := time.Now()
	for i := range 3 {
		if !l.allow("u1", now) {
			t.Fatalf("call %d of the burst refused", i)
		}
	}
	if l.allow("u1", now) {
		t.Fatal("a fourth call in the same instant allowed")
	}
	if !l.allow("u2", now) {
		t.Fatal("another user shares the bucket")
	}
	if l.allow("u1", now.Add(500*time.Millisecond)) {
		t.Fatal("allowed before a token came back")
	}
	if !l.allow("u1", now.Add(1100*time.Millisecond)) {
		t.Fatal("refused after a token came back")
	}
	// A sweep drops buckets that have refilled.
	l.allow("u3", now.Add(time.Hour))
	if len(l.buckets) != 1 {
		t.Fatalf("%d buckets after an hour, want 1", len(l.buckets))
	}
}

func TestReasonLabel(t *testing.T) {
	for in, want := range map[string]string{
		"Unregistered": "Unregistered", "QUOTA_EXCEEDED": "QUOTA_EXCEEDED", "": "other",
		"has space": "other", "status_500": "status_500",
		"a_very_long_reason_that_goes_on_and_on_and_on": "other",
	} {
		if got := reasonLabel(in); got != want {
			t.Errorf("reasonLabel(%q) = %q, want %q", in, got, want)
		}
	}
}
