package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Bounds of a key set fetched from a JWKS URL. A set beyond them is refused
// as a whole, so a misbehaving identity provider cannot make the node hold
// or check an unbounded number of keys.
const (
	// MaxJWKSBytes is the largest JWKS document read.
	MaxJWKSBytes = 256 << 10
	// MaxJWKSKeys is the most usable keys kept from one document.
	MaxJWKSKeys = 32
	// DefaultJWKSMinRefresh is the least time between two fetches caused by
	// tokens naming an unknown key ID.
	DefaultJWKSMinRefresh = 30 * time.Second
	// DefaultJWKSMaxAge is how long a fetched set is used before it is
	// fetched again on the next verification.
	DefaultJWKSMaxAge = time.Hour
	// DefaultJWKSTimeout bounds one fetch.
	DefaultJWKSTimeout = 5 * time.Second
	// minRSABits refuses RSA keys too short to be safe.
	minRSABits = 2048
)

// Asymmetric algorithms a key set may verify. HS256 never uses a key from a
// set: a public key can never become an HMAC secret.
var jwksAlgs = []string{jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg()}

// jwks is the cache of a JWKS URL: the keys of the last good fetch, fetched
// again when they are older than maxAge, or when a token names a key ID the
// set does not hold and the last fetch is older than minRefresh.
type jwks struct {
	url        string
	client     *http.Client
	now        func() time.Time
	minRefresh time.Duration
	maxAge     time.Duration
	timeout    time.Duration

	// fetchMu serialises fetches: a burst of tokens with a new key ID
	// causes one request, and the others wait for its result.
	fetchMu sync.Mutex

	mu        sync.RWMutex
	keys      []jwk
	fetchedAt time.Time // last successful fetch
	triedAt   time.Time // last attempt, successful or not
	fetches   int       // attempts, for tests and metrics
}

// jwk is one usable key of a set.
type jwk struct {
	kid string
	alg string // the JWT algorithm the key verifies
	key any    // *rsa.PublicKey or *ecdsa.PublicKey
}

func newJWKS(rawURL string, client *http.Client, now func() time.Time, minRefresh, maxAge time.Duration) (*jwks, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("auth: JWKS URL %q is not an http(s) URL", rawURL)
	}
	if client == nil {
		client = &http.Client{Timeout: DefaultJWKSTimeout}
	}
	if minRefresh <= 0 {
		minRefresh = DefaultJWKSMinRefresh
	}
	if maxAge <= 0 {
		maxAge = DefaultJWKSMaxAge
	}
	return &jwks{url: rawURL, client: client, now: now, minRefresh: minRefresh, maxAge: maxAge, timeout: DefaultJWKSTimeout}, nil
}

// lookup returns the keys that may verify a token of alg with kid (every
// key of alg when kid is empty), fetching the set when it is missing, too
// old, or lacks kid and may be refreshed.
func (s *jwks) lookup(alg, kid string) ([]any, error) {
	if keys, fresh := s.find(alg, kid); len(keys) > 0 && fresh {
		return keys, nil
	}
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	// Another caller may have fetched while this one waited.
	keys, fresh := s.find(alg, kid)
	if len(keys) > 0 && fresh {
		return keys, nil
	}
	if s.mayFetch() {
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		err := s.fetch(ctx)
		cancel()
		if err != nil && len(keys) == 0 {
			if !s.everFetched() {
				return nil, &unavailableError{err}
			}
			return nil, err
		}
		if err == nil {
			keys, _ = s.find(alg, kid)
		}
	}
	if len(keys) == 0 {
		if !s.everFetched() {
			// Refetching is held back and no set was ever fetched.
			return nil, &unavailableError{errors.New("key set not fetched yet")}
		}
		if kid == "" {
			return nil, errors.New("no key in the key set for this algorithm")
		}
		return nil, fmt.Errorf("unknown key id %s", quoteShort(kid))
	}
	// A stale set whose refresh failed still verifies: the identity
	// provider being down must not log everybody out.
	return keys, nil
}

// unavailableError is a lookup that failed because no key set was ever
// fetched: the token cannot be judged yet.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }

// everFetched reports whether a key set was fetched successfully once.
func (s *jwks) everFetched() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return !s.fetchedAt.IsZero()
}

// find returns the matching keys and whether the set is younger than maxAge.
func (s *jwks) find(alg, kid string) ([]any, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []any
	for _, k := range s.keys {
		if k.alg == alg && (kid == "" || k.kid == kid) {
			out = append(out, k.key)
		}
	}
	fresh := !s.fetchedAt.IsZero() && s.now().Sub(s.fetchedAt) < s.maxAge
	return out, fresh
}

// mayFetch reports whether a fetch is allowed now: the first time, and
// then at most once per minRefresh, whether the set is too old or lacks a
// key ID. Tokens with made-up key IDs therefore cost at most one request
// to the identity provider per minRefresh.
func (s *jwks) mayFetch() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.triedAt.IsZero() || s.now().Sub(s.triedAt) >= s.minRefresh
}

// attempts reports how many times the set was requested.
func (s *jwks) attempts() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.fetches
}

func (s *jwks) fetch(ctx context.Context) error {
	s.mu.Lock()
	s.triedAt = s.now()
	s.fetches++
	s.mu.Unlock()
	keys, err := s.get(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.keys, s.fetchedAt = keys, s.now()
	s.mu.Unlock()
	return nil
}

func (s *jwks) get(ctx context.Context) ([]jwk, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, errors.New("key set not reachable")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("key set answered HTTP %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSBytes+1))
	if err != nil {
		return nil, errors.New("key set not readable")
	}
	if len(body) > MaxJWKSBytes {
		return nil, fmt.Errorf("key set larger than %d bytes", MaxJWKSBytes)
	}
	return parseJWKS(body)
}

// parseJWKS reads a JSON Web Key Set (RFC 7517) and returns its keys that
// can verify RS256 (RSA, at least 2048 bits) or ES256 (EC on P-256)
// signatures. Keys for encryption ("use": "enc"), of other types or curves,
// or naming another algorithm are skipped; a set with none left, or with
// more than MaxJWKSKeys usable keys, is an error.
func parseJWKS(data []byte) ([]jwk, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, errors.New("key set is not a JWKS document")
	}
	var out []jwk
	for _, raw := range doc.Keys {
		k, ok := parseJWK(raw)
		if !ok {
			continue
		}
		if len(out) == MaxJWKSKeys {
			return nil, fmt.Errorf("key set holds more than %d usable keys", MaxJWKSKeys)
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, errors.New("key set holds no usable RS256 or ES256 key")
	}
	return out, nil
}

func parseJWK(raw json.RawMessage) (jwk, bool) {
	var w struct {
		Kty string `json:"kty"`
		Kid string `json:"kid"`
		Use string `json:"use"`
		Alg string `json:"alg"`
		N   string `json:"n"`
		E   string `json:"e"`
		Crv string `json:"crv"`
		X   string `json:"x"`
		Y   string `json:"y"`
	}
	if json.Unmarshal(raw, &w) != nil || (w.Use != "" && w.Use != "sig") {
		return jwk{}, false
	}
	b64 := base64.RawURLEncoding
	switch w.Kty {
	case "RSA":
		if w.Alg != "" && w.Alg != "RS256" {
			return jwk{}, false
		}
		n, err1 := b64.DecodeString(w.N)
		e, err2 := b64.DecodeString(w.E)
		if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
			return jwk{}, false
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < minRSABits || pub.E < 3 || pub.E%2 == 0 {
			return jwk{}, false
		}
		return jwk{kid: w.Kid, alg: "RS256", key: pub}, true
	case "EC":
		if w.Crv != "P-256" || (w.Alg != "" && w.Alg != "ES256") {
			return jwk{}, false
		}
		x, err1 := b64.DecodeString(w.X)
		y, err2 := b64.DecodeString(w.Y)
		if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
			return jwk{}, false
		}
		point := append(append([]byte{4}, x...), y...)
		// Refuses a point off the curve, which invalid-curve attacks need.
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
		if err != nil {
			return jwk{}, false
		}
		return jwk{kid: w.Kid, alg: "ES256", key: pub}, true
	}
	return jwk{}, false
}
