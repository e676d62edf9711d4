package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testKeys are generated once: RSA key generation is slow under -race.
var testKeys = sync.OnceValue(func() (k struct {
	rsa1, rsa2, rsaOther *rsa.PrivateKey
	ec1, ecOther         *ecdsa.PrivateKey
	ec384                *ecdsa.PrivateKey
	rsaShort             *rsa.PrivateKey
}) {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	var err error
	k.rsa1, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsaOther, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsaShort, err = rsa.GenerateKey(rand.Reader, 1024)
	must(err)
	k.ec1, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.ecOther, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	return k
})

func rsaJWK(kid string, pub *rsa.PublicKey) map[string]any {
	return map[string]any{
		"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}
}

func ecJWK(kid string, pub *ecdsa.PublicKey) map[string]any {
	b, err := pub.Bytes()
	if err != nil {
		panic(err)
	}
	size := (len(b) - 1) / 2
	crv := map[int]string{32: "P-256", 48: "P-384"}[size]
	return map[string]any{
		"kty": "EC", "kid": kid, "crv": crv,
		"x": base64.RawURLEncoding.EncodeToString(b[1 : 1+size]),
		"y": base64.RawURLEncoding.EncodeToString(b[1+size:]),
	}
}

// jwksServer serves a key set the test may replace, and counts requests.
type jwksServer struct {
	*httptest.Server
	mu     sync.Mutex
	body   []byte
	status int
	hits   atomic.Int64
}

func newJWKSServer(t *testing.T, keys ...map[string]any) *jwksServer {
	t.Helper()
	s := &jwksServer{status: http.StatusOK}
	s.set(keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		body, status := s.body, s.status
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(keys ...map[string]any) {
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		panic(err)
	}
	s.setRaw(http.StatusOK, b)
}

func (s *jwksServer) setRaw(status int, body []byte) {
	s.mu.Lock()
	s.body, s.status = body, status
	s.mu.Unlock()
}

// clock is a test clock the test moves by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func jwksVerifier(t *testing.T, url string, cfg VerifierConfig) (*Verifier, *clock) {
	t.Helper()
	clk := &clock{now: testNow}
	cfg.JWKSURL = url
	if cfg.Now == nil {
		cfg.Now = clk.Now
	}
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v, clk
}

// signKid signs claims with method and key, with a "kid" header unless kid is empty.
func signKid(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

func TestJWKS_VerifiesRS256AndES256ByKeyID(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t, rsaJWK("r1", &k.rsa1.PublicKey), ecJWK("e1", &k.ec1.PublicKey), rsaJWK("r2", &k.rsa2.PublicKey))
	v, _ := jwksVerifier(t, srv.URL, VerifierConfig{})
	tests := []struct {
		name   string
		method jwt.SigningMethod
		key    any
		kid    string
	}{
		{"RS256 first key", jwt.SigningMethodRS256, k.rsa1, "r1"},
		{"RS256 second key", jwt.SigningMethodRS256, k.rsa2, "r2"},
		{"ES256", jwt.SigningMethodES256, k.ec1, "e1"},
		{"RS256 without kid tries the set's RSA keys", jwt.SigningMethodRS256, k.rsa2, ""},
		{"ES256 without kid", jwt.SigningMethodES256, k.ec1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.VerifyConnect(signKid(t, tt.method, tt.key, tt.kid, baseClaims()))
			if err != nil {
				t.Fatalf("VerifyConnect: %v", err)
			}
			if c.Subject != "u42" || !c.HasRole(RoleCustomer) {
				t.Errorf("claims = %+v", c)
			}
		})
	}
	if got := srv.hits.Load(); got != 1 {
		t.Errorf("key set fetched %d times, want once for all tokens", got)
	}
}

func TestJWKS_UnknownKeyIDRefetchesAtMostOncePerInterval(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t, rsaJWK("r1", &k.rsa1.PublicKey))
	v, clk := jwksVerifier(t, srv.URL, VerifierConfig{JWKSMinRefresh: time.Minute, JWKSMaxAge: time.Hour})
	if _, err := v.Verify(signKid(t, jwt.SigningMethodRS256, k.rsa1, "r1", baseClaims())); err != nil {
		t.Fatalf("r1: %v", err)
	}
	// The provider rotates to r2; a token signed by it arrives at once.
	srv.set(rsaJWK("r1", &k.rsa1.PublicKey), rsaJWK("r2", &k.rsa2.PublicKey))
	r2 := signKid(t, jwt.SigningMethodRS256, k.rsa2, "r2", baseClaims())
	_, err := v.Verify(r2)
	if !errors.Is(err, ErrTokenInvalid) || !strings.Contains(err.Error(), "unknown key id") {
		t.Fatalf("r2 within the refresh interval: %v, want unknown key id", err)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("fetches = %d, want 1: an unknown kid within the interval must not fetch", got)
	}
	clk.advance(time.Minute)
	if _, err := v.Verify(r2); err != nil {
		t.Fatalf("r2 after the interval: %v", err)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("fetches = %d, want 2", got)
	}
	// Made-up key IDs, many of them: no request until the interval passed,
	// then exactly one.
	for i := range 20 {
		tok := signKid(t, jwt.SigningMethodRS256, k.rsaOther, "forged-"+string(rune('a'+i)), baseClaims())
		if _, err := v.Verify(tok); !errors.Is(err, ErrTokenInvalid) {
			t.Fatalf("forged kid: %v, want ErrTokenInvalid", err)
		}
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("fetches after forged kids = %d, want still 2", got)
	}
	clk.advance(time.Minute)
	for range 20 {
		_, _ = v.Verify(signKid(t, jwt.SigningMethodRS256, k.rsaOther, "forged", baseClaims()))
	}
	if got := srv.hits.Load(); got != 3 {
		t.Fatalf("fetches = %d, want 3 (one per interval)", got)
	}
	if got := v.jwks.attempts(); got != 3 {
		t.Errorf("attempts = %d, want 3", got)
	}
}

func TestJWKS_ConcurrentNewKeyIDCausesOneFetch(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t, rsaJWK("r1", &k.rsa1.PublicKey))
	v, _ := jwksVerifier(t, srv.URL, VerifierConfig{})
	tok := signKid(t, jwt.SigningMethodRS256, k.rsa1, "r1", baseClaims())
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if _, err := v.Verify(tok); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("32 concurrent verifications fetched %d times, want 1", got)
	}
}

func TestJWKS_OldSetIsFetchedAgainAndRemovedKeysStopWorking(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t, rsaJWK("r1", &k.rsa1.PublicKey), ecJWK("e1", &k.ec1.PublicKey))
	v, clk := jwksVerifier(t, srv.URL, VerifierConfig{JWKSMinRefresh: time.Second, JWKSMaxAge: 10 * time.Minute})
	r1 := func() string {
		return signKid(t, jwt.SigningMethodRS256, k.rsa1, "r1", with(baseClaims(), "iat", nil, "exp", nil))
	}
	if _, err := v.Verify(r1()); err != nil {
		t.Fatal(err)
	}
	srv.set(ecJWK("e1", &k.ec1.PublicKey)) // r1 revoked
	clk.advance(5 * time.Minute)
	if _, err := v.Verify(r1()); err != nil {
		t.Fatalf("r1 while the cached set is young: %v", err)
	}
	clk.advance(5 * time.Minute)
	if _, err := v.Verify(r1()); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("r1 after the set was fetched again without it: %v, want ErrTokenInvalid", err)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Errorf("fetches = %d, want 2", got)
	}
}

func TestJWKS_ProviderDownKeepsTheLastGoodSet(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t, rsaJWK("r1", &k.rsa1.PublicKey))
	v, clk := jwksVerifier(t, srv.URL, VerifierConfig{JWKSMinRefresh: time.Second, JWKSMaxAge: time.Minute})
	tok := signKid(t, jwt.SigningMethodRS256, k.rsa1, "r1", with(baseClaims(), "iat", nil, "exp", nil))
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	for _, broken := range []struct {
		status int
		body   string
	}{
		{http.StatusInternalServerError, "oops"},
		{http.StatusOK, "<html>not json</html>"},
		{http.StatusOK, `{"keys":[]}`},
	} {
		srv.setRaw(broken.status, []byte(broken.body))
		clk.advance(2 * time.Minute)
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("provider answering %d %q: %v, want the cached key to still verify", broken.status, broken.body, err)
		}
	}
	if got := srv.hits.Load(); got != 4 {
		t.Errorf("fetches = %d, want 4", got)
	}
}

func TestJWKS_UnreachableProviderRefusesWithoutHanging(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t)
	url := srv.URL
	srv.Close()
	v, _ := jwksVerifier(t, url, VerifierConfig{})
	_, err := v.Verify(signKid(t, jwt.SigningMethodRS256, k.rsa1, "r1", baseClaims()))
	// Never fetched: the token cannot be judged, which is not the same as
	// a bad token; the client is told to retry.
	if !errors.Is(err, ErrKeysUnavailable) || errors.Is(err, ErrTokenInvalid) || !strings.Contains(err.Error(), "not reachable") {
		t.Fatalf("Verify = %v, want ErrKeysUnavailable (key set not reachable)", err)
	}
	if strings.Contains(err.Error(), url) {
		t.Errorf("error %q names the URL", err)
	}
}

// TestVerify_AlgorithmConfusionIsRefused covers the classic attacks on
// verifiers that take the algorithm from the token: none, an HMAC keyed
// with the public key, a key of one type offered for another algorithm.
func TestVerify_AlgorithmConfusionIsRefused(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t, rsaJWK("r1", &k.rsa1.PublicKey), ecJWK("e1", &k.ec1.PublicKey))
	der, err := x509.MarshalPKIXPublicKey(&k.rsa1.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	nBytes := k.rsa1.PublicKey.N.Bytes()

	jwksOnly := VerifierConfig{}
	both := VerifierConfig{Secrets: [][]byte{secretA}}
	tests := []struct {
		name   string
		cfg    VerifierConfig
		token  string
		reason string
	}{
		{"HS256 keyed with the RSA public key (PEM), JWKS only", jwksOnly,
			signKid(t, jwt.SigningMethodHS256, pubPEM, "r1", baseClaims()), `"HS256" not accepted`},
		{"HS256 keyed with the RSA public key (DER), JWKS only", jwksOnly,
			signKid(t, jwt.SigningMethodHS256, der, "r1", baseClaims()), `"HS256" not accepted`},
		{"HS256 keyed with the RSA modulus, JWKS only", jwksOnly,
			signKid(t, jwt.SigningMethodHS256, nBytes, "r1", baseClaims()), `"HS256" not accepted`},
		{"HS256 keyed with the RSA public key, secrets and JWKS", both,
			signKid(t, jwt.SigningMethodHS256, pubPEM, "r1", baseClaims()), "signature"},
		{"HS256 with the shared secret, JWKS only", jwksOnly,
			signKid(t, jwt.SigningMethodHS256, secretA, "", baseClaims()), `"HS256" not accepted`},
		{"alg none, JWKS only", jwksOnly,
			sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, baseClaims()), `"none"`},
		{"alg none with a kid, secrets and JWKS", both,
			signKid(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "r1", baseClaims()), `"none"`},
		{"RS256 signed by a key outside the set, with the set's kid", jwksOnly,
			signKid(t, jwt.SigningMethodRS256, k.rsaOther, "r1", baseClaims()), "signature"},
		{"ES256 signed by a key outside the set, with the set's kid", jwksOnly,
			signKid(t, jwt.SigningMethodES256, k.ecOther, "e1", baseClaims()), "signature"},
		{"ES256 naming the RSA key's kid", jwksOnly,
			signKid(t, jwt.SigningMethodES256, k.ec1, "r1", baseClaims()), "unknown key id"},
		{"RS256 naming the EC key's kid", jwksOnly,
			signKid(t, jwt.SigningMethodRS256, k.rsa1, "e1", baseClaims()), "unknown key id"},
		{"RS384 with a key of the set", jwksOnly,
			signKid(t, jwt.SigningMethodRS384, k.rsa1, "r1", baseClaims()), `"RS384"`},
		{"PS256 with a key of the set", jwksOnly,
			signKid(t, jwt.SigningMethodPS256, k.rsa1, "r1", baseClaims()), `"PS256"`},
		{"ES384", jwksOnly,
			signKid(t, jwt.SigningMethodES384, k.ec384, "", baseClaims()), `"ES384"`},
		{"kid not a string", jwksOnly,
			signKid(t, jwt.SigningMethodRS256, k.rsa1, "", with(baseClaims())), ""},
	}
	// The last case needs a numeric kid header.
	numKid := jwt.NewWithClaims(jwt.SigningMethodRS256, baseClaims())
	numKid.Header["kid"] = 7
	if s, err := numKid.SignedString(k.rsa1); err == nil {
		tests[len(tests)-1].token, tests[len(tests)-1].reason = s, "kid"
	} else {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _ := jwksVerifier(t, srv.URL, tt.cfg)
			c, err := v.Verify(tt.token)
			if !errors.Is(err, ErrTokenInvalid) {
				t.Fatalf("Verify = %+v, %v; want ErrTokenInvalid", c, err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("Verify error = %q, want it to mention %q", err, tt.reason)
			}
		})
	}
}

func TestVerify_SecretsOnlyRefusesAsymmetricTokens(t *testing.T) {
	k := testKeys()
	v := newTestVerifier(t, VerifierConfig{})
	for _, tok := range []string{
		signKid(t, jwt.SigningMethodRS256, k.rsa1, "r1", baseClaims()),
		signKid(t, jwt.SigningMethodES256, k.ec1, "e1", baseClaims()),
	} {
		if _, err := v.Verify(tok); !errors.Is(err, ErrTokenInvalid) || !strings.Contains(err.Error(), "not accepted") {
			t.Errorf("Verify = %v, want the algorithm refused", err)
		}
	}
}

// TestVerify_RegisteredClaimsAreCheckedForEveryAlgorithm runs each
// rejection of the registered claims with an HS256, an RS256 and an ES256
// token, audience and issuer configured, a 10-second leeway.
func TestVerify_RegisteredClaimsAreCheckedForEveryAlgorithm(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t, rsaJWK("r1", &k.rsa1.PublicKey), ecJWK("e1", &k.ec1.PublicKey))
	const leeway = 10 * time.Second
	cfg := VerifierConfig{Secrets: [][]byte{secretA}, Audience: "livehub", Issuer: "https://id.example", Leeway: leeway}
	v, _ := jwksVerifier(t, srv.URL, cfg)
	good := func() jwt.MapClaims {
		return with(baseClaims(), "aud", "livehub", "iss", "https://id.example")
	}
	beyond := leeway + time.Second
	signers := []struct {
		name   string
		method jwt.SigningMethod
		key    any
		kid    string
	}{
		{"HS256", jwt.SigningMethodHS256, secretA, ""},
		{"RS256", jwt.SigningMethodRS256, k.rsa1, "r1"},
		{"ES256", jwt.SigningMethodES256, k.ec1, "e1"},
	}
	tests := []struct {
		name   string
		claims jwt.MapClaims
		want   error
		reason string
	}{
		{"valid", good(), nil, ""},
		{"wrong audience", with(good(), "aud", "another-app"), ErrTokenInvalid, "audience"},
		{"no audience", with(good(), "aud", nil), ErrTokenInvalid, "aud"},
		{"wrong issuer", with(good(), "iss", "https://evil.example"), ErrTokenInvalid, "issuer"},
		{"no issuer", with(good(), "iss", nil), ErrTokenInvalid, "iss"},
		{"nbf in the future beyond the leeway", with(good(), "nbf", testNow.Add(beyond).Unix()), ErrTokenInvalid, "nbf"},
		{"nbf in the future within the leeway", with(good(), "nbf", testNow.Add(leeway-time.Second).Unix()), nil, ""},
		{"exp past beyond the leeway", with(good(), "exp", testNow.Add(-beyond).Unix()), ErrTokenExpired, "expired"},
		{"exp past within the leeway", with(good(), "exp", testNow.Add(-leeway+time.Second).Unix()), nil, ""},
		{"iat in the future beyond the leeway", with(good(), "iat", testNow.Add(beyond).Unix()), ErrTokenInvalid, "iat"},
		{"iat in the future within the leeway", with(good(), "iat", testNow.Add(leeway-time.Second).Unix()), nil, ""},
	}
	for _, s := range signers {
		for _, tt := range tests {
			t.Run(s.name+"/"+tt.name, func(t *testing.T) {
				_, err := v.Verify(signKid(t, s.method, s.key, s.kid, tt.claims))
				if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
					t.Fatalf("Verify error = %v, want %v", err, tt.want)
				}
				if err != nil && !strings.Contains(err.Error(), tt.reason) {
					t.Errorf("Verify error = %q, want it to mention %q", err, tt.reason)
				}
			})
		}
	}
}

func TestParseJWKS_KeepsOnlyUsableKeysWithinBounds(t *testing.T) {
	k := testKeys()
	offCurve := ecJWK("bad", &k.ec1.PublicKey)
	offCurve["y"] = base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	enc := rsaJWK("enc", &k.rsa2.PublicKey)
	enc["use"] = "enc"
	wrongAlg := rsaJWK("ps", &k.rsa2.PublicKey)
	wrongAlg["alg"] = "PS256"
	doc := func(keys ...map[string]any) []byte {
		b, _ := json.Marshal(map[string]any{"keys": keys})
		return b
	}
	got, err := parseJWKS(doc(
		rsaJWK("short", &k.rsaShort.PublicKey),
		offCurve,
		ecJWK("p384", &k.ec384.PublicKey),
		enc,
		wrongAlg,
		map[string]any{"kty": "oct", "k": "c2VjcmV0"},
		map[string]any{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"},
		rsaJWK("r1", &k.rsa1.PublicKey),
		ecJWK("e1", &k.ec1.PublicKey),
	))
	if err != nil {
		t.Fatalf("parseJWKS: %v", err)
	}
	if len(got) != 2 || got[0].kid != "r1" || got[0].alg != "RS256" || got[1].kid != "e1" || got[1].alg != "ES256" {
		t.Fatalf("usable keys = %+v, want r1 (RS256) and e1 (ES256) only", got)
	}
	many := make([]map[string]any, MaxJWKSKeys+1)
	for i := range many {
		many[i] = ecJWK("e", &k.ec1.PublicKey)
	}
	for name, data := range map[string][]byte{
		"too many keys":    doc(many...),
		"no usable key":    doc(rsaJWK("short", &k.rsaShort.PublicKey)),
		"empty set":        doc(),
		"not JSON":         []byte("keys"),
		"keys not a list":  []byte(`{"keys":{}}`),
		"a symmetric only": doc(map[string]any{"kty": "oct", "k": "c2VjcmV0"}),
	} {
		if keys, err := parseJWKS(data); err == nil {
			t.Errorf("%s: parseJWKS = %d keys, nil; want an error", name, len(keys))
		}
	}
}

func TestJWKS_OversizedDocumentIsRefused(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t)
	pad := strings.Repeat(" ", MaxJWKSBytes)
	b, _ := json.Marshal(map[string]any{"keys": []any{rsaJWK("r1", &k.rsa1.PublicKey)}})
	srv.setRaw(http.StatusOK, append([]byte(pad), b...))
	v, _ := jwksVerifier(t, srv.URL, VerifierConfig{})
	_, err := v.Verify(signKid(t, jwt.SigningMethodRS256, k.rsa1, "r1", baseClaims()))
	// The document is refused, so there are no keys yet: the token cannot
	// be judged until the provider serves a usable set.
	if !errors.Is(err, ErrKeysUnavailable) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("Verify = %v, want the oversized key set refused", err)
	}
}

func TestNewVerifier_JWKSSettings(t *testing.T) {
	for _, bad := range []VerifierConfig{
		{JWKSURL: "ftp://id.example/jwks.json"},
		{JWKSURL: "https://"},
		{JWKSURL: "/jwks.json"},
		{JWKSURL: "https://id.example/jwks.json", JWKSMinRefresh: -time.Second},
	} {
		if v, err := NewVerifier(bad); err == nil {
			t.Errorf("NewVerifier(%+v) = %v, nil; want an error", bad, v)
		}
	}
	v, err := NewVerifier(VerifierConfig{JWKSURL: "https://id.example/.well-known/jwks.json"})
	if err != nil {
		t.Fatalf("JWKS without secrets: %v", err)
	}
	// Nothing is fetched until a token needs it.
	if v.jwks.attempts() != 0 {
		t.Errorf("attempts = %d at construction, want 0", v.jwks.attempts())
	}
}
