package payment

import (
	"bytes"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/livehub/livehub/internal/commerce"
)

// maxNotification bounds the notification body ParseNotification reads;
// Midtrans' are a few hundred bytes.
const maxNotification = 64 << 10

// notificationFields are the members of a Midtrans notification that LiveHub
// reads, each a JSON string; the others are tolerated and ignored, since
// Midtrans adds members per payment channel and over time. The first
// requiredFields of them must be present.
var notificationFields = []string{
	"order_id", "status_code", "gross_amount", "signature_key", "transaction_status",
	"fraud_status", "transaction_id", "payment_type",
}

const requiredFields = 5

func knownField(name string) bool {
	for _, f := range notificationFields {
		if f == name {
			return true
		}
	}
	return false
}

// ParseNotification verifies and reads the body of a Midtrans HTTP
// notification.
//
// The body must be one JSON object holding order_id, status_code,
// gross_amount, signature_key and transaction_status as strings. Its
// signature_key must be the hex SHA-512 of order_id + status_code +
// gross_amount + server key; when it is not, the error is ESIGNATURE and
// nothing of the body is returned. A body that is not such an object, or
// names a member twice, is EINVALID.
//
// Midtrans signs order_id, status_code and gross_amount only, not
// transaction_status. A signed body replayed with another status would still
// verify, so a paid outcome also needs status_code "200", which Midtrans gives
// only to successful transactions: a captured pending notification (201)
// cannot be turned into a payment. A caller that wants more can confirm the
// status with Midtrans' status API before acting.
func (m *Midtrans) ParseNotification(body []byte) (Notification, error) {
	if len(body) > maxNotification {
		return Notification{}, commerce.Errorf(commerce.EINVALID, "the notification is larger than %d bytes", maxNotification)
	}
	f, err := decodeNotification(body)
	if err != nil {
		return Notification{}, err
	}
	for _, name := range notificationFields[:requiredFields] {
		if f[name] == "" {
			return Notification{}, commerce.FieldError(name, "the notification has no %s", name)
		}
	}
	if !m.validSignature(f["order_id"], f["status_code"], f["gross_amount"], f["signature_key"]) {
		return Notification{}, commerce.Errorf(commerce.ESIGNATURE, "the notification's signature is not valid")
	}
	amount, err := parseRupiah(f["gross_amount"])
	if err != nil {
		return Notification{}, &commerce.Error{Code: commerce.EINVALID, Field: "gross_amount",
			Message: "the notification's gross_amount is not whole rupiah", Err: err}
	}
	return Notification{
		OrderID:     f["order_id"],
		Status:      f["transaction_status"],
		FraudStatus: f["fraud_status"],
		Outcome:     midtransOutcome(f["transaction_status"], f["fraud_status"], f["status_code"]),
		Reference:   f["transaction_id"],
		Method:      f["payment_type"],
		GrossAmount: amount,
		Raw:         bytes.Clone(body),
	}, nil
}

// Signature returns the signature_key Midtrans puts on a notification:
// hex(SHA-512(orderID + statusCode + grossAmount + server key)).
func (m *Midtrans) Signature(orderID, statusCode, grossAmount string) string {
	sum := m.signature(orderID, statusCode, grossAmount)
	return hex.EncodeToString(sum[:])
}

func (m *Midtrans) signature(orderID, statusCode, grossAmount string) [sha512.Size]byte {
	return sha512.Sum512([]byte(orderID + statusCode + grossAmount + m.serverKey))
}

func (m *Midtrans) validSignature(orderID, statusCode, grossAmount, got string) bool {
	want := m.signature(orderID, statusCode, grossAmount)
	gotSum, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	// ConstantTimeCompare returns 0 at once for a length mismatch, which
	// reveals only the length, and that is public.
	return subtle.ConstantTimeCompare(want[:], gotSum) == 1
}

// decodeNotification reads body as one JSON object and returns the string
// members LiveHub knows. Members are matched by exact name (encoding/json
// alone would also take "ORDER_ID"), and a member named twice in any letter
// case is refused, so no two readers of the same body can disagree on what
// it says.
func decodeNotification(body []byte) (map[string]string, error) {
	invalid := func(format string, args ...any) error {
		return commerce.Errorf(commerce.EINVALID, "the notification is not valid JSON: "+format, args...)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return nil, invalid("%v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, invalid("not an object")
	}
	seen := make(map[string]bool)
	fields := make(map[string]string, len(notificationFields))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, invalid("%v", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, invalid("member name expected")
		}
		folded := strings.ToLower(name)
		if seen[folded] {
			return nil, invalid("member %q appears twice", name)
		}
		seen[folded] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, invalid("%v", err)
		}
		if !knownField(name) {
			continue
		}
		if string(raw) == "null" {
			continue
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, commerce.FieldError(name, "the notification's %s is not a string", name)
		}
		fields[name] = s
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, invalid("%v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, invalid("data after the object")
	}
	return fields, nil
}

// midtransOutcome maps a transaction_status and fraud_status to an Outcome.
// A fraud_status of deny never pays; challenge waits for the merchant's
// decision in the Midtrans dashboard, which comes as another notification.
func midtransOutcome(status, fraud, statusCode string) Outcome {
	switch status {
	case "settlement", "capture":
		switch {
		case fraud == "deny":
			return OutcomeReleased
		case statusCode != "200":
			return OutcomeNone
		case fraud == "accept":
			return OutcomePaid
		case fraud == "" && status == "settlement":
			// Channels without fraud detection (e-wallets, QRIS, transfers)
			// settle with no fraud_status. A capture always has one.
			return OutcomePaid
		}
		return OutcomeNone
	case "deny", "cancel", "expire", "failure":
		return OutcomeReleased
	case "refund", "partial_refund", "chargeback", "partial_chargeback":
		return OutcomeReversed
	}
	// pending, authorize, and statuses Midtrans may add later.
	return OutcomeNone
}

// parseRupiah reads a gross_amount like "49000.00" or "49000". Rupiah has no
// minor unit in use, so a non-zero fraction is refused rather than rounded.
func parseRupiah(s string) (int64, error) {
	whole, frac, hasFrac := strings.Cut(s, ".")
	if whole == "" || !allDigits(whole) || (hasFrac && (frac == "" || !allDigits(frac))) {
		return 0, fmt.Errorf("amount %q is not a decimal number", s)
	}
	if strings.Trim(frac, "0") != "" {
		return 0, fmt.Errorf("amount %q has a fraction of a rupiah", s)
	}
	n, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", s, err)
	}
	return n, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
