package orderevents

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/livehub/livehub/internal/commerce"
)

// Webhook request headers.
const (
	HeaderEvent     = "X-LiveHub-Event"     // the event type
	HeaderDelivery  = "X-LiveHub-Delivery"  // the event id, the same on every redelivery
	HeaderTimestamp = "X-LiveHub-Timestamp" // Unix seconds when the request was signed
	HeaderSignature = "X-LiveHub-Signature" // "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + body)
)

// signaturePrefix names the scheme, so another can be added beside it.
const signaturePrefix = "sha256="

// defaultMaxAge is the signature age Verify accepts when given none.
const defaultMaxAge = 5 * time.Minute

// Sign returns the X-LiveHub-Signature value for body sent at timestamp.
func Sign(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return signaturePrefix + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a webhook request as a receiver should: signature is the
// X-LiveHub-Signature header, timestamp the X-LiveHub-Timestamp header and
// body the raw request body. A timestamp further than maxAge from now, in
// either direction, is refused, so a captured request cannot be replayed
// later; zero maxAge means 5 minutes. The error is an ESIGNATURE
// *commerce.Error.
func Verify(secret, timestamp, body, signature string, maxAge time.Duration, now time.Time) error {
	if maxAge <= 0 {
		maxAge = defaultMaxAge
	}
	secs, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return commerce.Errorf(commerce.ESIGNATURE, "the webhook timestamp is not Unix seconds")
	}
	age := now.Sub(time.Unix(secs, 0))
	if age > maxAge || age < -maxAge {
		return commerce.Errorf(commerce.ESIGNATURE, "the webhook timestamp is outside the accepted %v", maxAge)
	}
	hexSum, ok := strings.CutPrefix(signature, signaturePrefix)
	if !ok {
		return commerce.Errorf(commerce.ESIGNATURE, "the webhook signature is not %s...", signaturePrefix)
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return commerce.Errorf(commerce.ESIGNATURE, "the webhook signature is not hex")
	}
	want, _ := hex.DecodeString(strings.TrimPrefix(Sign(secret, timestamp, []byte(body)), signaturePrefix))
	if !hmac.Equal(got, want) {
		return commerce.Errorf(commerce.ESIGNATURE, "the webhook signature does not match")
	}
	return nil
}
