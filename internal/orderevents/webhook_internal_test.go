package orderevents

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{
		{"", -1},
		{"0", 0},
		{"3", 3 * time.Second},
		{"-1", -1},
		{"3600", maxBackoff},
		{"99999999999999999999", -1},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{now.Add(time.Hour).Format(http.TimeFormat), maxBackoff},
		{"soon", -1},
	} {
		if got := parseRetryAfter(tc.v, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

func TestBackoff_DoublesWithJitterUpToCeiling(t *testing.T) {
	for attempt, full := range map[int]time.Duration{
		1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 9: 256 * time.Second,
		10: maxBackoff, 64: maxBackoff, 1000: maxBackoff,
	} {
		for range 100 {
			d := backoff(time.Second, maxBackoff, attempt)
			if d < full/2 || d > full {
				t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, full/2, full)
			}
		}
	}
	if d := backoff(time.Hour, maxBackoff, 1); d > maxBackoff {
		t.Errorf("base above the ceiling: %v", d)
	}
}
