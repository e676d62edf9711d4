package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	testNow     = time.Unix(1_700_000_000, 0).UTC()
	secretA     = []byte("secret-A-0123456789-0123456789-0123456789")
	secretB     = []byte("secret-B-0123456789-0123456789-0123456789")
	secretC     = []byte("secret-C-0123456789-0123456789-0123456789")
	testSecrets = [][]byte{secretA, secretB, secretC}
)

func testClock() time.Time { return testNow }

func newTestVerifier(t *testing.T, cfg VerifierConfig) *Verifier {
	t.Helper()
	if cfg.Secrets == nil {
		cfg.Secrets = [][]byte{secretA}
	}
	if cfg.Now == nil {
		cfg.Now = testClock
	}
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// sign builds a token by hand so tests can send what Mint never produces.
func sign(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// baseClaims is a valid payload at testNow.
func baseClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"sub":   "u42",
		"name":  "Ada",
		"roles": []string{"customer"},
		"iat":   testNow.Unix(),
		"exp":   testNow.Add(time.Hour).Unix(),
	}
}

func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(c, k)
			continue
		}
		c[k] = kv[i+1]
	}
	return c
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// rawToken joins header and payload JSON and signs them with HS256 and key.
func rawToken(t testing.TB, header, payload string, key []byte) string {
	t.Helper()
	signing := b64(header) + "." + b64(payload)
	sig, err := jwt.SigningMethodHS256.Sign(signing, key)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestVerify_ValidTokenYieldsItsClaims(t *testing.T) {
	v := newTestVerifier(t, VerifierConfig{})
	tok := sign(t, jwt.SigningMethodHS256, secretA, with(baseClaims(),
		"roles", []string{"host", "moderator"},
		"info", map[string]any{"avatar": "a.png"},
	))
	c, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.Subject != "u42" || c.Name != "Ada" || c.Channel != "" {
		t.Errorf("claims = %+v", c)
	}
	if len(c.Roles) != 2 || c.Roles[0] != RoleHost || c.Roles[1] != RoleModerator {
		t.Errorf("Roles = %v", c.Roles)
	}
	if !c.ExpiresAt.Equal(testNow.Add(time.Hour)) {
		t.Errorf("ExpiresAt = %v, want %v", c.ExpiresAt, testNow.Add(time.Hour))
	}
	if string(c.Info) != `{"avatar":"a.png"}` {
		t.Errorf("Info = %s", c.Info)
	}
}

func TestVerify_TokenWithoutExpNeverExpires(t *testing.T) {
	v := newTestVerifier(t, VerifierConfig{})
	c, err := v.Verify(sign(t, jwt.SigningMethodHS256, secretA, with(baseClaims(), "exp", nil, "info", nil)))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !c.ExpiresAt.IsZero() {
		t.Errorf("ExpiresAt = %v, want zero", c.ExpiresAt)
	}
	c, err = v.Verify(sign(t, jwt.SigningMethodHS256, secretA, with(baseClaims(), "info", json.RawMessage("null"))))
	if err != nil || c.Info != nil {
		t.Errorf("info null: Info = %q, err = %v; want nil, nil", c.Info, err)
	}
}

func TestVerify_EachRoleIsParsed(t *testing.T) {
	v := newTestVerifier(t, VerifierConfig{})
	all := []Role{RoleCustomer, RoleHost, RoleModerator, RoleCourier, RoleAdmin}
	for _, role := range all {
		t.Run(string(role), func(t *testing.T) {
			c, err := v.Verify(sign(t, jwt.SigningMethodHS256, secretA, with(baseClaims(), "roles", []string{string(role)})))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			for _, other := range all {
				if got := c.HasRole(other); got != (other == role) {
					t.Errorf("HasRole(%s) = %v", other, got)
				}
			}
		})
	}
}

func TestVerify_RejectsBadTokens(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, secretA, c) }
	past := testNow.Add(-time.Minute).Unix()
	future := testNow.Add(time.Minute).Unix()
	validPayload := `{"sub":"u42","iat":1700000000}`

	tests := []struct {
		name    string
		cfg     VerifierConfig
		token   string
		want    error
		another error // a second sentinel the error must also wrap
		reason  string
	}{
		{name: "expired", token: hs(with(baseClaims(), "exp", past)), want: ErrTokenExpired},
		{name: "expired long ago and for another audience",
			cfg:   VerifierConfig{Audience: "livehub"},
			token: hs(with(baseClaims(), "exp", past, "aud", "other")), want: ErrTokenInvalid, reason: "audience"},
		{name: "expired and signed with another secret",
			token: sign(t, jwt.SigningMethodHS256, secretC, with(baseClaims(), "exp", past)), want: ErrTokenInvalid, reason: "signature"},
		{name: "unknown role", token: hs(with(baseClaims(), "roles", []string{"customer", "root"})),
			want: ErrTokenInvalid, another: ErrUnknownRole, reason: `"root"`},
		{name: "role with wrong case", token: hs(with(baseClaims(), "roles", []string{"Admin"})), want: ErrTokenInvalid},
		{name: "roles not an array", token: hs(with(baseClaims(), "roles", "admin")), want: ErrTokenInvalid},
		{name: "nbf in the future", token: hs(with(baseClaims(), "nbf", future)), want: ErrTokenInvalid, reason: "nbf"},
		{name: "iat in the future", token: hs(with(baseClaims(), "iat", future)), want: ErrTokenInvalid, reason: "iat"},
		{name: "wrong secret", token: sign(t, jwt.SigningMethodHS256, secretB, baseClaims()), want: ErrTokenInvalid, reason: "signature"},
		{name: "signed by a third secret during rotation",
			cfg:   VerifierConfig{Secrets: [][]byte{secretA, secretB}},
			token: sign(t, jwt.SigningMethodHS256, secretC, baseClaims()), want: ErrTokenInvalid, reason: "signature"},
		{name: "alg none", token: sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, baseClaims()),
			want: ErrTokenInvalid, reason: `"none"`},
		{name: "alg none with a made-up signature",
			token: b64(`{"alg":"none","typ":"JWT"}`) + "." + b64(validPayload) + "." + b64("sig"), want: ErrTokenInvalid},
		{name: "alg HS384 with the right secret", token: sign(t, jwt.SigningMethodHS384, secretA, baseClaims()),
			want: ErrTokenInvalid, reason: `"HS384"`},
		{name: "alg HS512 with the right secret", token: sign(t, jwt.SigningMethodHS512, secretA, baseClaims()),
			want: ErrTokenInvalid, reason: `"HS512"`},
		{name: "alg RS256", token: sign(t, jwt.SigningMethodRS256, rsaKey, baseClaims()), want: ErrTokenInvalid, reason: `"RS256"`},
		{name: "alg unknown", token: b64(`{"alg":"XX999"}`) + "." + b64(validPayload) + ".c2ln", want: ErrTokenInvalid},
		{name: "alg missing", token: b64(`{"typ":"JWT"}`) + "." + b64(validPayload) + ".c2ln", want: ErrTokenInvalid},
		{name: "alg HS256 spelled lower case", token: rawToken(t, `{"alg":"hs256"}`, validPayload, secretA), want: ErrTokenInvalid},
		{name: "critical header extension", token: rawToken(t, `{"alg":"HS256","crit":["b64"],"b64":false}`, validPayload, secretA),
			want: ErrTokenInvalid, reason: "critical"},
		{name: "audience mismatch", cfg: VerifierConfig{Audience: "livehub"},
			token: hs(with(baseClaims(), "aud", []string{"shop", "admin-panel"})), want: ErrTokenInvalid, reason: "audience"},
		{name: "audience missing", cfg: VerifierConfig{Audience: "livehub"}, token: hs(baseClaims()), want: ErrTokenInvalid, reason: "aud"},
		{name: "issuer mismatch", cfg: VerifierConfig{Issuer: "https://shop.example"},
			token: hs(with(baseClaims(), "iss", "https://evil.example")), want: ErrTokenInvalid, reason: "issuer"},
		{name: "issuer missing", cfg: VerifierConfig{Issuer: "https://shop.example"}, token: hs(baseClaims()), want: ErrTokenInvalid, reason: "iss"},
		{name: "sub missing", token: hs(with(baseClaims(), "sub", nil)), want: ErrTokenInvalid, reason: "sub"},
		{name: "sub empty", token: hs(with(baseClaims(), "sub", "")), want: ErrTokenInvalid, reason: "sub"},
		{name: "sub not a string", token: hs(with(baseClaims(), "sub", 42)), want: ErrTokenInvalid},
		{name: "exp not a number", token: hs(with(baseClaims(), "exp", "tomorrow")), want: ErrTokenInvalid},
		{name: "oversized", token: hs(with(baseClaims(), "info", strings.Repeat("x", MaxTokenSize))), want: ErrTokenInvalid, reason: "8 KiB"},
		{name: "oversized garbage", token: strings.Repeat("a", MaxTokenSize+1), want: ErrTokenInvalid, reason: "8 KiB"},
		{name: "empty", token: "", want: ErrTokenInvalid},
		{name: "one segment", token: "abc", want: ErrTokenInvalid},
		{name: "two segments", token: "abc.def", want: ErrTokenInvalid},
		{name: "four segments", token: hs(baseClaims()) + ".x", want: ErrTokenInvalid},
		{name: "only dots", token: "..", want: ErrTokenInvalid},
		{name: "not base64", token: "###.$$$.%%%", want: ErrTokenInvalid},
		{name: "header not JSON", token: b64("alg") + "." + b64(validPayload) + ".c2ln", want: ErrTokenInvalid},
		{name: "header a JSON array", token: b64(`["HS256"]`) + "." + b64(validPayload) + ".c2ln", want: ErrTokenInvalid},
		{name: "payload not JSON", token: rawToken(t, `{"alg":"HS256"}`, "sub=u42", secretA), want: ErrTokenInvalid},
		{name: "payload a JSON string", token: rawToken(t, `{"alg":"HS256"}`, `"u42"`, secretA), want: ErrTokenInvalid},
		{name: "signature not base64", token: strings.TrimRight(hs(baseClaims()), "=") + "!", want: ErrTokenInvalid},
		{name: "signature stripped", token: hs(baseClaims())[:strings.LastIndex(hs(baseClaims()), ".")+1], want: ErrTokenInvalid},
		{name: "bearer prefix", token: "Bearer " + hs(baseClaims()), want: ErrTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestVerifier(t, tt.cfg)
			c, err := v.Verify(tt.token)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
			other := ErrTokenInvalid
			if tt.want == ErrTokenInvalid {
				other = ErrTokenExpired
			}
			if errors.Is(err, other) {
				t.Errorf("Verify error = %v wraps both sentinels", err)
			}
			if tt.another != nil && !errors.Is(err, tt.another) {
				t.Errorf("Verify error = %v, want it to wrap %v", err, tt.another)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("Verify error = %q, want reason containing %q", err, tt.reason)
			}
			if len(err.Error()) > 100 {
				t.Errorf("Verify error is %d bytes long: %q", len(err.Error()), err)
			}
			for _, s := range testSecrets {
				if strings.Contains(err.Error(), string(s)) {
					t.Errorf("Verify error %q contains a secret", err)
				}
			}
			if c.Subject != "" || c.Roles != nil || c.Info != nil {
				t.Errorf("Verify returned claims %+v with an error", c)
			}
		})
	}
}

func TestVerify_LeewayAbsorbsClockSkew(t *testing.T) {
	skew := 3 * time.Second // inside the default 5s
	tests := []struct {
		name   string
		leeway time.Duration
		claims jwt.MapClaims
		want   error
	}{
		{"exp just passed", 0, with(baseClaims(), "exp", testNow.Add(-skew).Unix()), nil},
		{"nbf just ahead", 0, with(baseClaims(), "nbf", testNow.Add(skew).Unix()), nil},
		{"iat just ahead", 0, with(baseClaims(), "iat", testNow.Add(skew).Unix()), nil},
		{"exp just past a 1s leeway", time.Second, with(baseClaims(), "exp", testNow.Add(-skew).Unix()), ErrTokenExpired},
		{"nbf just ahead of a 1s leeway", time.Second, with(baseClaims(), "nbf", testNow.Add(skew).Unix()), ErrTokenInvalid},
		{"iat just ahead of a 1s leeway", time.Second, with(baseClaims(), "iat", testNow.Add(skew).Unix()), ErrTokenInvalid},
		{"exp 10m passed with 15m leeway", 15 * time.Minute, with(baseClaims(), "exp", testNow.Add(-10*time.Minute).Unix()), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestVerifier(t, VerifierConfig{Leeway: tt.leeway})
			_, err := v.Verify(sign(t, jwt.SigningMethodHS256, secretA, tt.claims))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerify_RotationAcceptsBothConfiguredSecrets(t *testing.T) {
	v := newTestVerifier(t, VerifierConfig{Secrets: [][]byte{secretA, secretB}})
	for _, s := range [][]byte{secretA, secretB} {
		if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, s, baseClaims())); err != nil {
			t.Errorf("Verify token signed by %.8s: %v", s, err)
		}
	}
	if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, secretC, baseClaims())); !errors.Is(err, ErrTokenInvalid) {
		t.Errorf("Verify token signed by a third secret: %v, want ErrTokenInvalid", err)
	}
}

func TestVerify_AudienceAndIssuerMatch(t *testing.T) {
	v := newTestVerifier(t, VerifierConfig{Audience: "livehub", Issuer: "https://shop.example"})
	for _, aud := range []any{"livehub", []string{"shop", "livehub"}} {
		tok := sign(t, jwt.SigningMethodHS256, secretA, with(baseClaims(), "aud", aud, "iss", "https://shop.example"))
		if _, err := v.Verify(tok); err != nil {
			t.Errorf("aud %v: %v", aud, err)
		}
	}
}

func TestVerify_UnconfiguredAudienceAndIssuerAreIgnored(t *testing.T) {
	v := newTestVerifier(t, VerifierConfig{})
	tok := sign(t, jwt.SigningMethodHS256, secretA, with(baseClaims(), "aud", "elsewhere", "iss", "someone"))
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestVerify_SecretChangedByCallerAfterConstructionHasNoEffect(t *testing.T) {
	secret := append([]byte(nil), secretA...)
	v := newTestVerifier(t, VerifierConfig{Secrets: [][]byte{secret}})
	tok := sign(t, jwt.SigningMethodHS256, secretA, baseClaims())
	secret[0] ^= 0xff
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestVerifyConnect_RefusesSubscriptionTokens(t *testing.T) {
	v := newTestVerifier(t, VerifierConfig{})
	if _, err := v.VerifyConnect(sign(t, jwt.SigningMethodHS256, secretA, baseClaims())); err != nil {
		t.Fatalf("VerifyConnect connection token: %v", err)
	}
	_, err := v.VerifyConnect(sign(t, jwt.SigningMethodHS256, secretA, with(baseClaims(), "channel", "show:1")))
	if !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("VerifyConnect subscription token: %v, want ErrTokenInvalid", err)
	}
}

func TestVerifySubscribe_RequiresMatchingChannelAndUser(t *testing.T) {
	v := newTestVerifier(t, VerifierConfig{})
	sub := sign(t, jwt.SigningMethodHS256, secretA, with(baseClaims(), "channel", "show:1"))
	tests := []struct {
		name          string
		token         string
		user, channel string
		want          error
	}{
		{"matching", sub, "u42", "show:1", nil},
		{"other channel", sub, "u42", "show:2", ErrTokenInvalid},
		{"other user", sub, "u43", "show:1", ErrTokenInvalid},
		{"connection token", sign(t, jwt.SigningMethodHS256, secretA, baseClaims()), "u42", "", ErrTokenInvalid},
		{"expired", sign(t, jwt.SigningMethodHS256, secretA, with(baseClaims(), "channel", "show:1", "exp", testNow.Add(-time.Hour).Unix())),
			"u42", "show:1", ErrTokenExpired},
		{"expired and for another channel", sign(t, jwt.SigningMethodHS256, secretA, with(baseClaims(), "channel", "show:1", "exp", testNow.Add(-time.Hour).Unix())),
			"u42", "show:2", ErrTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.VerifySubscribe(tt.token, tt.user, tt.channel)
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifySubscribe error = %v, want %v", err, tt.want)
			}
			if err == nil && c.Channel != tt.channel {
				t.Errorf("Channel = %q, want %q", c.Channel, tt.channel)
			}
		})
	}
}

func TestVerify_ConcurrentCallsAreSafe(t *testing.T) {
	v := newTestVerifier(t, VerifierConfig{Secrets: [][]byte{secretA, secretB}})
	good := sign(t, jwt.SigningMethodHS256, secretB, baseClaims())
	bad := sign(t, jwt.SigningMethodHS256, secretC, baseClaims())
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if _, err := v.Verify(good); err != nil {
					t.Error(err)
					return
				}
				if _, err := v.Verify(bad); err == nil {
					t.Error("bad token accepted")
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestNewVerifier_RefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  VerifierConfig
	}{
		{"no secret", VerifierConfig{}},
		{"three secrets", VerifierConfig{Secrets: [][]byte{secretA, secretB, secretC}}},
		{"empty secret", VerifierConfig{Secrets: [][]byte{secretA, {}}}},
		{"negative leeway", VerifierConfig{Secrets: [][]byte{secretA}, Leeway: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if v, err := NewVerifier(tt.cfg); err == nil {
				t.Fatalf("NewVerifier = %v, nil; want an error", v)
			}
		})
	}
}
