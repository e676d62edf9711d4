package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// checkOutcome holds for any input: exactly one sentinel on failure, and
// on success claims that satisfy what Verify promises.
func checkOutcome(t *testing.T, c Claims, err error) {
	t.Helper()
	if err != nil {
		if errors.Is(err, ErrTokenExpired) == errors.Is(err, ErrTokenInvalid) {
			t.Fatalf("error %q wraps neither or both sentinels", err)
		}
		if strings.Contains(err.Error(), string(secretA)) || strings.Contains(err.Error(), string(secretB)) {
			t.Fatalf("error %q contains a secret", err)
		}
		return
	}
	if c.Subject == "" {
		t.Fatal("accepted a token with an empty subject")
	}
	for _, r := range c.Roles {
		if _, err := ParseRole(string(r)); err != nil {
			t.Fatalf("accepted unknown role %q", r)
		}
	}
}

func FuzzVerify(f *testing.F) {
	base := baseClaims()
	f.Add(sign(f, jwt.SigningMethodHS256, secretA, base))
	f.Add(sign(f, jwt.SigningMethodHS256, secretB, with(baseClaims(), "channel", "show:1", "info", map[string]any{"a": 1})))
	f.Add(sign(f, jwt.SigningMethodHS256, secretA, with(baseClaims(), "exp", 1)))
	f.Add(sign(f, jwt.SigningMethodHS512, secretA, base))
	f.Add(sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, base))
	f.Add("")
	f.Add("..")
	f.Add("a.b.c")
	f.Add(b64(`{"alg":"HS256"}`) + "." + b64(`{"sub":"u","exp":1e400}`) + ".")

	v, err := NewVerifier(VerifierConfig{Secrets: [][]byte{secretA, secretB}, Now: testClock})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Verify(token)
		checkOutcome(t, c, err)
		c, err = v.VerifyConnect(token)
		checkOutcome(t, c, err)
		c, err = v.VerifySubscribe(token, "u42", "show:1")
		checkOutcome(t, c, err)
	})
}

// FuzzVerifySignedPayload signs whatever payload the fuzzer makes up, so
// that the claims decoding and validation behind the signature check get
// explored too.
func FuzzVerifySignedPayload(f *testing.F) {
	f.Add(`{"alg":"HS256"}`, `{"sub":"u42","roles":["host"],"exp":1700003600,"iat":1700000000}`)
	f.Add(`{"alg":"HS256","typ":"JWT"}`, `{"sub":"u42","roles":"admin","nbf":1800000000}`)
	f.Add(`{"alg":"HS256","crit":["x"]}`, `{"sub":"u42","aud":["livehub"],"iss":"shop","info":null}`)
	f.Add(`{"alg":"HS256"}`, `{"sub":"","exp":-1e308,"iat":"x","channel":"show:1"}`)

	v, err := NewVerifier(VerifierConfig{Secrets: [][]byte{secretA}, Audience: "livehub", Now: testClock, Leeway: time.Second})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header, payload string) {
		token := rawToken(t, header, payload, secretA)
		c, err := v.Verify(token)
		checkOutcome(t, c, err)
	})
}
