package hubauth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/internal/auth"
)

var (
	secret = []byte("hubauth-test-secret-0123456789abcdef")
	now    = time.Unix(1_700_000_000, 0)
)

func verifier(t *testing.T) Verifier {
	t.Helper()
	v, err := auth.NewVerifier(auth.VerifierConfig{Secrets: [][]byte{secret}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return New(v)
}

func mint(t *testing.T, c auth.Claims) string {
	t.Helper()
	s, err := auth.NewSigner(auth.SignerConfig{Secret: secret, Now: func() time.Time { return now.Add(-time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Mint(c, 0)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestVerifyConnectToken_CredentialsAndExpiry(t *testing.T) {
	v := verifier(t)
	ctx := context.Background()
	exp := now.Add(time.Hour)
	cred, err := v.VerifyConnectToken(ctx, mint(t, auth.Claims{Subject: "u1", Name: "Ayu", Roles: []auth.Role{auth.RoleHost, auth.RoleAdmin}, ExpiresAt: exp}))
	if err != nil {
		t.Fatal(err)
	}
	if cred.UserID != "u1" || cred.Name != "Ayu" || len(cred.Roles) != 2 || cred.Roles[0] != "host" || cred.Roles[1] != "admin" || !cred.ExpireAt.Equal(exp) {
		t.Fatalf("credentials = %+v", cred)
	}
	// An expired token maps to the hub's sentinel, so the client is told
	// to fetch a new one (109) instead of being refused for good.
	_, err = v.VerifyConnectToken(ctx, mint(t, auth.Claims{Subject: "u1", ExpiresAt: now.Add(-time.Minute)}))
	if !errors.Is(err, hub.ErrTokenExpired) {
		t.Fatalf("expired: %v, want hub.ErrTokenExpired", err)
	}
	// Anything else is not expired: a subscription token used to connect.
	_, err = v.VerifyConnectToken(ctx, mint(t, auth.Claims{Subject: "u1", Channel: "order:1"}))
	if err == nil || errors.Is(err, hub.ErrTokenExpired) {
		t.Fatalf("subscription token at connect: %v, want a refusal that is not expiry", err)
	}
}

func TestVerifySubscribeToken_NeedsAChannel(t *testing.T) {
	v := verifier(t)
	ctx := context.Background()
	ch, cred, err := v.VerifySubscribeToken(ctx, mint(t, auth.Claims{Subject: "u1", Channel: "order:1"}))
	if err != nil || ch != "order:1" || cred.UserID != "u1" {
		t.Fatalf("VerifySubscribeToken = %q, %+v, %v", ch, cred, err)
	}
	if _, _, err := v.VerifySubscribeToken(ctx, mint(t, auth.Claims{Subject: "u1"})); err == nil {
		t.Fatal("a connection token was accepted as a subscription token")
	}
	_, _, err = v.VerifySubscribeToken(ctx, mint(t, auth.Claims{Subject: "u1", Channel: "order:1", ExpiresAt: now.Add(-time.Minute)}))
	if !errors.Is(err, hub.ErrTokenExpired) {
		t.Fatalf("expired subscription token: %v, want hub.ErrTokenExpired", err)
	}
}
