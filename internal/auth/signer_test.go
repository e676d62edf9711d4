package auth

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func newTestSigner(t *testing.T, cfg SignerConfig) *Signer {
	t.Helper()
	if cfg.Secret == nil {
		cfg.Secret = secretA
	}
	if cfg.Now == nil {
		cfg.Now = testClock
	}
	s, err := NewSigner(cfg)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	return s
}

func TestMint_RoundTripsThroughVerify(t *testing.T) {
	s := newTestSigner(t, SignerConfig{Audience: "livehub", Issuer: "https://shop.example"})
	v := newTestVerifier(t, VerifierConfig{Audience: "livehub", Issuer: "https://shop.example"})
	in := Claims{
		Subject: "u42",
		Name:    "Ada",
		Roles:   []Role{RoleHost, RoleAdmin},
		Info:    json.RawMessage(`{"avatar":"a.png"}`),
		Channel: "show:1",
	}
	tok, err := s.Mint(in, time.Hour)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	got, err := v.VerifySubscribe(tok, "u42", "show:1")
	if err != nil {
		t.Fatalf("VerifySubscribe: %v", err)
	}
	in.ExpiresAt = testNow.Add(time.Hour)
	if got.Subject != in.Subject || got.Name != in.Name || got.Channel != in.Channel ||
		string(got.Info) != string(in.Info) || !got.ExpiresAt.Equal(in.ExpiresAt) ||
		len(got.Roles) != 2 || got.Roles[0] != RoleHost || got.Roles[1] != RoleAdmin {
		t.Errorf("Verify(Mint(c)) = %+v, want %+v", got, in)
	}
}

func TestMint_ExpiryFromTTLOrClaimsOrNever(t *testing.T) {
	s := newTestSigner(t, SignerConfig{})
	v := newTestVerifier(t, VerifierConfig{})
	at := testNow.Add(30 * time.Minute)
	tests := []struct {
		name string
		c    Claims
		ttl  time.Duration
		want time.Time
	}{
		{"ttl", Claims{Subject: "u"}, time.Minute, testNow.Add(time.Minute)},
		{"ExpiresAt", Claims{Subject: "u", ExpiresAt: at}, 0, at},
		{"never", Claims{Subject: "u"}, 0, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := s.Mint(tt.c, tt.ttl)
			if err != nil {
				t.Fatalf("Mint: %v", err)
			}
			c, err := v.Verify(tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !c.ExpiresAt.Equal(tt.want) {
				t.Errorf("ExpiresAt = %v, want %v", c.ExpiresAt, tt.want)
			}
		})
	}
}

func TestMint_TokenExpiresAfterTTL(t *testing.T) {
	tok, err := newTestSigner(t, SignerConfig{}).Mint(Claims{Subject: "u"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	later := func() time.Time { return testNow.Add(time.Hour) }
	if _, err := newTestVerifier(t, VerifierConfig{Now: later}).Verify(tok); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("Verify an hour later: %v, want ErrTokenExpired", err)
	}
}

func TestMint_PackageFunctionUsesTheGivenSecret(t *testing.T) {
	tok, err := Mint(secretB, Claims{Subject: "u", Roles: []Role{RoleCourier}}, time.Hour)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	v, err := NewVerifier(VerifierConfig{Secrets: [][]byte{secretB}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(tok)
	if err != nil || !c.HasRole(RoleCourier) {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
	if _, err := newTestVerifier(t, VerifierConfig{Now: time.Now}).Verify(tok); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("Verify with another secret: %v, want ErrTokenInvalid", err)
	}
}

func TestMint_RefusesClaimsVerifyWouldRefuse(t *testing.T) {
	s := newTestSigner(t, SignerConfig{})
	tests := []struct {
		name string
		c    Claims
		ttl  time.Duration
	}{
		{"empty subject", Claims{}, time.Hour},
		{"unknown role", Claims{Subject: "u", Roles: []Role{"root"}}, time.Hour},
		{"info not JSON", Claims{Subject: "u", Info: json.RawMessage(`{`)}, time.Hour},
		{"negative ttl", Claims{Subject: "u"}, -time.Second},
		{"ttl and ExpiresAt", Claims{Subject: "u", ExpiresAt: testNow.Add(time.Hour)}, time.Hour},
		{"too large", Claims{Subject: "u", Name: strings.Repeat("n", MaxTokenSize)}, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tok, err := s.Mint(tt.c, tt.ttl); err == nil {
				t.Fatalf("Mint = %q, nil; want an error", tok)
			}
		})
	}
	if _, err := NewSigner(SignerConfig{}); err == nil {
		t.Error("NewSigner with no secret: nil error")
	}
	if _, err := Mint(nil, Claims{Subject: "u"}, 0); err == nil {
		t.Error("Mint with no secret: nil error")
	}
}
