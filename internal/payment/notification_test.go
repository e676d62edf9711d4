package payment_test

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/payment"
)

// sign computes Midtrans' signature_key independently of the package.
func sign(orderID, statusCode, grossAmount, key string) string {
	sum := sha512.Sum512([]byte(orderID + statusCode + grossAmount + key))
	return hex.EncodeToString(sum[:])
}

// notification returns a notification body shaped like Midtrans', signed
// with testServerKey, with fields overridden by kv pairs (a nil value
// removes the member).
func notification(t testing.TB, kv ...any) []byte {
	t.Helper()
	m := map[string]any{
		"transaction_time":   "2026-03-01 17:01:02",
		"transaction_status": "settlement",
		"transaction_id":     "513f1f01-c9da-474c-9fc9-d5c64364b709",
		"status_message":     "midtrans payment notification",
		"status_code":        "200",
		"payment_type":       "gopay",
		"order_id":           "ord_0123456789abcdef01234567",
		"merchant_id":        "G141532850",
		"gross_amount":       "98000.00",
		"fraud_status":       "accept",
		"currency":           "IDR",
	}
	signed := false
	for i := 0; i < len(kv); i += 2 {
		signed = signed || kv[i] == "signature_key"
		if kv[i+1] == nil {
			delete(m, kv[i].(string))
		} else {
			m[kv[i].(string)] = kv[i+1]
		}
	}
	if !signed {
		s := func(k string) string { v, _ := m[k].(string); return v }
		m["signature_key"] = sign(s("order_id"), s("status_code"), s("gross_amount"), testServerKey)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parser(t testing.TB) *payment.Midtrans {
	t.Helper()
	m, err := payment.NewMidtrans(payment.MidtransOptions{ServerKey: testServerKey})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseNotification_OutcomeForEveryStatusAndFraudStatus(t *testing.T) {
	const (
		none     = payment.OutcomeNone
		paid     = payment.OutcomePaid
		released = payment.OutcomeReleased
		reversed = payment.OutcomeReversed
	)
	frauds := []string{"", "accept", "challenge", "deny"}
	for _, tc := range []struct {
		status string
		code   string
		want   [4]payment.Outcome // by fraud status, in the order of frauds
	}{
		{"settlement", "200", [4]payment.Outcome{paid, paid, none, released}},
		{"capture", "200", [4]payment.Outcome{none, paid, none, released}},
		{"capture", "201", [4]payment.Outcome{none, none, none, released}},
		{"settlement", "201", [4]payment.Outcome{none, none, none, released}},
		{"pending", "201", [4]payment.Outcome{none, none, none, none}},
		{"authorize", "200", [4]payment.Outcome{none, none, none, none}},
		{"deny", "202", [4]payment.Outcome{released, released, released, released}},
		{"cancel", "200", [4]payment.Outcome{released, released, released, released}},
		{"expire", "202", [4]payment.Outcome{released, released, released, released}},
		{"failure", "202", [4]payment.Outcome{released, released, released, released}},
		{"refund", "200", [4]payment.Outcome{reversed, reversed, reversed, reversed}},
		{"partial_refund", "200", [4]payment.Outcome{reversed, reversed, reversed, reversed}},
		{"chargeback", "200", [4]payment.Outcome{reversed, reversed, reversed, reversed}},
		{"partial_chargeback", "200", [4]payment.Outcome{reversed, reversed, reversed, reversed}},
		{"some_future_status", "200", [4]payment.Outcome{none, none, none, none}},
	} {
		for i, fraud := range frauds {
			var fraudVal any = fraud
			if fraud == "" {
				fraudVal = nil // Midtrans leaves the member out
			}
			body := notification(t, "transaction_status", tc.status, "status_code", tc.code, "fraud_status", fraudVal)
			n, err := parser(t).ParseNotification(body)
			if err != nil {
				t.Errorf("%s/%s/%q: %v", tc.status, tc.code, fraud, err)
				continue
			}
			if n.Outcome != tc.want[i] {
				t.Errorf("%s/%s/%q: outcome %v, want %v", tc.status, tc.code, fraud, n.Outcome, tc.want[i])
			}
			if n.Status != tc.status || n.FraudStatus != fraud {
				t.Errorf("%s/%q: Status %q FraudStatus %q", tc.status, fraud, n.Status, n.FraudStatus)
			}
		}
	}
}

func TestParseNotification_ReadsFields(t *testing.T) {
	body := notification(t)
	n, err := parser(t).ParseNotification(body)
	if err != nil {
		t.Fatal(err)
	}
	if n.OrderID != "ord_0123456789abcdef01234567" || n.GrossAmount != 98000 || n.Method != "gopay" ||
		n.Reference != "513f1f01-c9da-474c-9fc9-d5c64364b709" || n.Outcome != payment.OutcomePaid || !bytes.Equal(n.Raw, body) {
		t.Errorf("notification = %+v", n)
	}
	p := n.Payment("midtrans")
	if p.Gateway != "midtrans" || p.Reference != n.Reference || p.Status != "settlement" || p.Method != "gopay" {
		t.Errorf("payment = %+v", p)
	}
	// Raw is a copy: the caller's buffer may be reused.
	body[0] = 'x'
	if n.Raw[0] != '{' {
		t.Error("Raw aliases the body")
	}
}

func TestParseNotification_GrossAmount(t *testing.T) {
	for _, tc := range []struct {
		amount string
		want   int64
		ok     bool
	}{
		{"49000.00", 49000, true},
		{"49000", 49000, true},
		{"49000.0", 49000, true},
		{"0.00", 0, true},
		{"9223372036854775807.00", 9223372036854775807, true},
		{"49000.50", 0, false},
		{"49000.", 0, false},
		{".00", 0, false},
		{"-49000.00", 0, false},
		{"+49000.00", 0, false},
		{"4.9e4", 0, false},
		{" 49000.00", 0, false},
		{"49,000.00", 0, false},
		{"9223372036854775808.00", 0, false},
	} {
		n, err := parser(t).ParseNotification(notification(t, "gross_amount", tc.amount))
		switch {
		case tc.ok && (err != nil || n.GrossAmount != tc.want):
			t.Errorf("%q: %d, %v; want %d", tc.amount, n.GrossAmount, err, tc.want)
		case !tc.ok && commerce.ErrorCode(err) != commerce.EINVALID:
			t.Errorf("%q: %v, want EINVALID", tc.amount, err)
		}
	}
}

func TestParseNotification_BadSignatureIsRefused(t *testing.T) {
	good := sign("ord_0123456789abcdef01234567", "200", "98000.00", testServerKey)
	tamper := func(body []byte, from, to string) []byte {
		if !bytes.Contains(body, []byte(from)) {
			t.Fatalf("%s not in %s", from, body)
		}
		return bytes.Replace(body, []byte(from), []byte(to), 1)
	}
	for name, body := range map[string][]byte{
		"other key":          notification(t, "signature_key", sign("ord_0123456789abcdef01234567", "200", "98000.00", "another-key")),
		"no key":             notification(t, "signature_key", sign("ord_0123456789abcdef01234567", "200", "98000.00", "")),
		"tampered amount":    tamper(notification(t), `"98000.00"`, `"1000.00"`),
		"amount respelt":     tamper(notification(t), `"98000.00"`, `"98000"`),
		"tampered order":     tamper(notification(t), `"ord_0123456789abcdef01234567"`, `"ord_other"`),
		"tampered code":      tamper(notification(t, "transaction_status", "pending", "status_code", "201"), `"201"`, `"200"`),
		"truncated":          notification(t, "signature_key", good[:64]),
		"extended":           notification(t, "signature_key", good+"00"),
		"not hex":            notification(t, "signature_key", strings.Repeat("zz", 64)),
		"one bit off":        notification(t, "signature_key", flipLastHex(good)),
		"sha256 of the same": notification(t, "signature_key", good[:64]),
	} {
		n, err := parser(t).ParseNotification(body)
		var ce *commerce.Error
		if !errors.As(err, &ce) || ce.Code != commerce.ESIGNATURE {
			t.Errorf("%s: err %v, want ESIGNATURE", name, err)
		}
		if n.OrderID != "" || n.Outcome != payment.OutcomeNone || n.Raw != nil {
			t.Errorf("%s: returned %+v with a bad signature", name, n)
		}
	}
	// Upper-case hex is the same signature.
	if _, err := parser(t).ParseNotification(notification(t, "signature_key", strings.ToUpper(good))); err != nil {
		t.Errorf("upper-case signature: %v", err)
	}
}

func flipLastHex(s string) string {
	last := s[len(s)-1]
	if last == '0' {
		return s[:len(s)-1] + "1"
	}
	return s[:len(s)-1] + "0"
}

func TestParseNotification_MalformedBodiesAreInvalid(t *testing.T) {
	good := string(notification(t))
	for name, body := range map[string]string{
		"empty":             "",
		"not json":          "order_id=1",
		"array":             "[" + good + "]",
		"null":              "null",
		"string":            `"x"`,
		"unterminated":      good[:len(good)-1],
		"trailing object":   good + "{}",
		"trailing garbage":  good + "x",
		"number member":     strings.Replace(good, `"gross_amount":"98000.00"`, `"gross_amount":98000`, 1),
		"object member":     strings.Replace(good, `"order_id":"`, `"order_id":{},"x":"`, 1),
		"duplicate member":  `{"transaction_status":"pending",` + good[1:],
		"case-variant twin": `{"Transaction_Status":"pending",` + good[1:],
		"too large":         `{"pad":"` + strings.Repeat("a", 70<<10) + `",` + good[1:],
	} {
		n, err := parser(t).ParseNotification([]byte(body))
		if commerce.ErrorCode(err) != commerce.EINVALID {
			t.Errorf("%s: err %v, want EINVALID", name, err)
		}
		if n.Outcome != payment.OutcomeNone || n.OrderID != "" {
			t.Errorf("%s: returned %+v", name, n)
		}
	}
}

func TestParseNotification_MissingRequiredFieldsAreInvalid(t *testing.T) {
	for _, field := range []string{"order_id", "status_code", "gross_amount", "signature_key", "transaction_status"} {
		for name, value := range map[string]any{"absent": nil, "empty": "", "null": json.RawMessage("null")} {
			body := notification(t, field, value)
			_, err := parser(t).ParseNotification(body)
			var ce *commerce.Error
			if !errors.As(err, &ce) || ce.Code != commerce.EINVALID || ce.Field != field {
				t.Errorf("%s %s: err %v, want EINVALID on field %s", field, name, err, field)
			}
		}
	}
	// Optional members may be absent.
	body := notification(t, "fraud_status", nil, "transaction_id", nil, "payment_type", nil)
	if _, err := parser(t).ParseNotification(body); err != nil {
		t.Errorf("without optional members: %v", err)
	}
}

func TestParseNotification_ToleratesUnknownMembers(t *testing.T) {
	body := notification(t,
		"va_numbers", []map[string]string{{"bank": "bca", "va_number": "12345"}},
		"payment_amounts", []any{},
		"expiry_time", "2026-03-01 17:15:00",
		"custom_field1", 42,
		"metadata", map[string]any{"nested": map[string]any{"deep": true}},
		"ORDER_ID_EXTRA", "x",
	)
	n, err := parser(t).ParseNotification(body)
	if err != nil || n.Outcome != payment.OutcomePaid {
		t.Fatalf("%+v, %v", n, err)
	}
}

func TestVerifyAmount(t *testing.T) {
	o := testOrder()
	n, err := parser(t).ParseNotification(notification(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := payment.VerifyAmount(n, o); err != nil {
		t.Errorf("matching notification: %v", err)
	}
	o.Amount = 98001
	if err := payment.VerifyAmount(n, o); commerce.ErrorCode(err) != commerce.ESIGNATURE {
		t.Errorf("amount differs: %v, want ESIGNATURE", err)
	}
	o = testOrder()
	o.ID = "ord_other"
	if err := payment.VerifyAmount(n, o); commerce.ErrorCode(err) != commerce.ESIGNATURE {
		t.Errorf("order differs: %v, want ESIGNATURE", err)
	}
}

func TestOutcome_String(t *testing.T) {
	for o, want := range map[payment.Outcome]string{
		payment.OutcomeNone: "none", payment.OutcomePaid: "paid", payment.OutcomeReleased: "released",
		payment.OutcomeReversed: "reversed", payment.Outcome(9): "Outcome(9)",
	} {
		if got := o.String(); got != want {
			t.Errorf("%d: %q, want %q", int(o), got, want)
		}
	}
}
