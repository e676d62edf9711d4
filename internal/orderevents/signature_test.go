package orderevents_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/orderevents"
)

func TestVerify(t *testing.T) {
	now := time.Unix(1_772_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := `{"id":"ev_1","type":"order.paid"}`
	sig := orderevents.Sign("secret", ts, []byte(body))
	if !strings.HasPrefix(sig, "sha256=") || len(sig) != len("sha256=")+64 {
		t.Fatalf("Sign = %q", sig)
	}
	old := strconv.FormatInt(now.Add(-10*time.Minute).Unix(), 10)
	future := strconv.FormatInt(now.Add(10*time.Minute).Unix(), 10)
	for _, tc := range []struct {
		name                 string
		secret, ts, body, sg string
		maxAge               time.Duration
		ok                   bool
	}{
		{"good", "secret", ts, body, sig, time.Minute, true},
		{"good, default max age", "secret", ts, body, sig, 0, true},
		{"good, upper-case hex", "secret", ts, body, "sha256=" + strings.ToUpper(sig[7:]), time.Minute, true},
		{"other secret", "other", ts, body, sig, time.Minute, false},
		{"tampered body", "secret", ts, strings.Replace(body, "paid", "expired", 1), sig, time.Minute, false},
		{"timestamp not signed with", "secret", strconv.FormatInt(now.Unix()-1, 10), body, sig, time.Minute, false},
		{"old", "secret", old, body, orderevents.Sign("secret", old, []byte(body)), 5 * time.Minute, false},
		{"future", "secret", future, body, orderevents.Sign("secret", future, []byte(body)), 5 * time.Minute, false},
		{"old but within max age", "secret", old, body, orderevents.Sign("secret", old, []byte(body)), time.Hour, true},
		{"no prefix", "secret", ts, body, sig[7:], time.Minute, false},
		{"other scheme", "secret", ts, body, "sha1=" + sig[7:], time.Minute, false},
		{"not hex", "secret", ts, body, "sha256=zz", time.Minute, false},
		{"truncated", "secret", ts, body, sig[:len(sig)-2], time.Minute, false},
		{"empty", "secret", ts, body, "", time.Minute, false},
		{"bad timestamp", "secret", "yesterday", body, orderevents.Sign("secret", "yesterday", []byte(body)), time.Minute, false},
	} {
		err := orderevents.Verify(tc.secret, tc.ts, tc.body, tc.sg, tc.maxAge, now)
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !tc.ok && commerce.ErrorCode(err) != commerce.ESIGNATURE {
			t.Errorf("%s: %v, want ESIGNATURE", tc.name, err)
		}
	}
}
