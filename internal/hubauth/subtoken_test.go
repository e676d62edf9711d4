package hubauth

import (
	"context"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/auth"
)

// The hub sets a subscription's expiry, and the ttl of subscribe and
// sub_refresh replies, from the subscription token's exp.
func TestVerifySubscribeToken_CarriesExpiry(t *testing.T) {
	v := verifier(t)
	ctx := context.Background()
	exp := now.Add(3 * time.Second)
	_, cred, err := v.VerifySubscribeToken(ctx, mint(t, auth.Claims{Subject: "u1", Channel: "order:1", ExpiresAt: exp}))
	if err != nil || !cred.ExpireAt.Equal(exp) {
		t.Fatalf("VerifySubscribeToken: expire at %v, err %v; want %v", cred.ExpireAt, err, exp)
	}
	// Without exp the subscription never expires.
	_, cred, err = v.VerifySubscribeToken(ctx, mint(t, auth.Claims{Subject: "u1", Channel: "order:1"}))
	if err != nil || !cred.ExpireAt.IsZero() {
		t.Fatalf("VerifySubscribeToken without exp: expire at %v, err %v; want zero", cred.ExpireAt, err)
	}
}
