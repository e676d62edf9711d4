package payment_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/payment"
)

// FuzzParseNotification checks that no body makes ParseNotification panic,
// and that a body whose signature does not verify under the server key never
// yields a notification, let alone a payment.
func FuzzParseNotification(f *testing.F) {
	for _, kv := range [][]any{
		nil,
		{"transaction_status", "capture", "fraud_status", "accept"},
		{"transaction_status", "capture", "fraud_status", "challenge", "status_code", "201"},
		{"transaction_status", "pending", "status_code", "201", "fraud_status", nil},
		{"transaction_status", "expire", "status_code", "202"},
		{"transaction_status", "refund"},
		{"gross_amount", "49000"},
		{"signature_key", "00"},
	} {
		f.Add(notification(f, kv...))
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"order_id":"a","order_id":"b"}`))
	f.Add([]byte(`[1,2,3]`))
	f.Add([]byte(``))

	m, err := payment.NewMidtrans(payment.MidtransOptions{ServerKey: testServerKey})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := m.ParseNotification(body)
		if err != nil {
			if n.Outcome != payment.OutcomeNone || n.OrderID != "" || n.Raw != nil {
				t.Fatalf("error %v came with a notification %+v", err, n)
			}
			if c := commerce.ErrorCode(err); c != commerce.EINVALID && c != commerce.ESIGNATURE {
				t.Fatalf("error code %q: %v", c, err)
			}
			return
		}
		// Accepted: an independent reading of the body must find a
		// signature that verifies under the key.
		var fields map[string]any
		if err := json.Unmarshal(body, &fields); err != nil {
			t.Fatalf("accepted a body encoding/json refuses: %v", err)
		}
		str := func(k string) string { s, _ := fields[k].(string); return s }
		want := sign(str("order_id"), str("status_code"), str("gross_amount"), testServerKey)
		if !strings.EqualFold(str("signature_key"), want) {
			t.Fatalf("accepted a body whose signature does not verify: %s", body)
		}
		if n.Outcome == payment.OutcomePaid && str("status_code") != "200" {
			t.Fatalf("paid with status_code %q", str("status_code"))
		}
		if n.OrderID != str("order_id") || n.Status != str("transaction_status") {
			t.Fatalf("notification %+v disagrees with the body %s", n, body)
		}
	})
}
