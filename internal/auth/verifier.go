package auth

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// MaxTokenSize is the largest token Verify will look at, in bytes.
	// Longer strings are refused before any decoding.
	MaxTokenSize = 8 << 10

	// DefaultLeeway is the clock skew tolerated when VerifierConfig.Leeway
	// is zero.
	DefaultLeeway = 5 * time.Second
)

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Secrets are the HS256 keys a token may be signed with: one, or two
	// while rotating (sign with the new one, keep accepting the old one
	// until every token it signed has expired). Each must be non-empty.
	// They may be left empty when JWKSURL is set; then HS256 is refused.
	Secrets [][]byte
	// JWKSURL, when non-empty, is a JSON Web Key Set of an identity
	// provider: tokens signed RS256 or ES256 are verified with its keys,
	// chosen by the token's "kid" (every key of the algorithm when the
	// token has none). The set is fetched at the first such token, again
	// when it is JWKSMaxAge old, and when a token names a key ID it lacks;
	// never more than once per JWKSMinRefresh. A public key of the set is
	// never used as an HMAC secret, nor a secret for RS256 or ES256.
	JWKSURL string
	// JWKSMinRefresh is the least time between two fetches of the set.
	// Zero means DefaultJWKSMinRefresh.
	JWKSMinRefresh time.Duration
	// JWKSMaxAge is how long a fetched set is used before it is fetched
	// again. Zero means DefaultJWKSMaxAge.
	JWKSMaxAge time.Duration
	// HTTPClient fetches the key set. Nil means a client with a 5-second
	// timeout.
	HTTPClient *http.Client
	// Audience, when non-empty, must appear in the token's "aud" claim.
	Audience string
	// Issuer, when non-empty, must equal the token's "iss" claim.
	Issuer string
	// Leeway is the clock skew tolerated on "exp", "nbf" and "iat".
	// Zero means DefaultLeeway (5s); negative is an error.
	Leeway time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Verifier checks tokens. It is safe for concurrent use.
type Verifier struct {
	keys     jwt.VerificationKeySet
	jwks     *jwks
	methods  []string
	audience string
	issuer   string
	parser   *jwt.Parser
}

// NewVerifier returns a Verifier for cfg. The secrets are copied.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	switch n := len(cfg.Secrets); {
	case n == 0 && cfg.JWKSURL == "":
		return nil, errors.New("auth: no secret or JWKS URL configured")
	case n > 2:
		return nil, fmt.Errorf("auth: %d secrets configured, at most 2 (current and previous)", n)
	}
	v := &Verifier{audience: cfg.Audience, issuer: cfg.Issuer}
	for i, s := range cfg.Secrets {
		if len(s) == 0 {
			return nil, fmt.Errorf("auth: secret %d is empty", i)
		}
		v.keys.Keys = append(v.keys.Keys, append([]byte(nil), s...))
	}
	leeway := cfg.Leeway
	switch {
	case leeway < 0:
		return nil, fmt.Errorf("auth: negative leeway %s", leeway)
	case leeway == 0:
		leeway = DefaultLeeway
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	if len(v.keys.Keys) > 0 {
		v.methods = append(v.methods, jwt.SigningMethodHS256.Alg())
	}
	if cfg.JWKSURL != "" {
		if cfg.JWKSMinRefresh < 0 || cfg.JWKSMaxAge < 0 {
			return nil, errors.New("auth: negative JWKS refresh interval")
		}
		set, err := newJWKS(cfg.JWKSURL, cfg.HTTPClient, now, cfg.JWKSMinRefresh, cfg.JWKSMaxAge)
		if err != nil {
			return nil, err
		}
		v.jwks = set
		v.methods = append(v.methods, jwksAlgs...)
	}
	opts := []jwt.ParserOption{
		// Pinning the algorithms is what stops "alg":"none" and the
		// RS256-public-key-as-HMAC-secret confusion: each algorithm has
		// its own keys (key below), and no other is parsed.
		jwt.WithValidMethods(v.methods),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
		jwt.WithIssuedAt(),
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// Verify checks token and returns its claims. It accepts connection and
// subscription tokens alike; a hub handling a connect or a subscribe
// command should call VerifyConnect or VerifySubscribe instead, which also
// check that the token is of the expected kind.
//
// The error wraps ErrTokenExpired when a genuine token has only expired,
// and ErrTokenInvalid for every other failure.
func (v *Verifier) Verify(token string) (Claims, error) {
	return v.verify(token, nil)
}

// VerifyConnect is Verify for the token of a connect command. It refuses a
// token carrying a "channel" claim, so that a subscription token, which is
// handed out more freely, cannot be replayed to open a connection.
func (v *Verifier) VerifyConnect(token string) (Claims, error) {
	return v.verify(token, func(w *wireClaims) error {
		if w.Channel != "" {
			return invalid("channel claim in a connection token")
		}
		return nil
	})
}

// VerifySubscribe is Verify for the token of a subscribe command sent by
// the connection of user to channel: the token's "channel" must equal
// channel and its "sub" must equal user, so that a token leaked from one
// user or channel opens nothing else.
func (v *Verifier) VerifySubscribe(token, user, channel string) (Claims, error) {
	return v.verify(token, func(w *wireClaims) error {
		switch {
		case w.Channel == "":
			return invalid("missing channel claim in a subscription token")
		case w.Channel != channel:
			return invalid("channel claim does not match the subscription")
		case w.Subject != user:
			return invalid("sub claim does not match the connection's user")
		}
		return nil
	})
}

var (
	errAlgorithm = errors.New("signing algorithm not accepted")
	errCritical  = errors.New("critical header extensions not supported")
)

// verify parses token and runs, in order: the signature, the claims this
// package defines, check, then the time, audience and issuer claims. A
// token that fails anything besides "exp" is invalid rather than expired,
// so that a client is not told to refresh a token that no refresh can fix.
func (v *Verifier) verify(token string, check func(*wireClaims) error) (Claims, error) {
	switch {
	case token == "":
		return Claims{}, invalid("empty token")
	case len(token) > MaxTokenSize:
		return Claims{}, invalid("token longer than 8 KiB")
	}
	var w wireClaims
	tok, err := v.parser.ParseWithClaims(token, &w, v.key)
	if err != nil && !errors.Is(err, jwt.ErrTokenInvalidClaims) {
		return Claims{}, v.parseError(tok, err)
	}
	// The signature is genuine from here on.
	if cerr := w.check(); cerr != nil {
		return Claims{}, cerr
	}
	if check != nil {
		if cerr := check(&w); cerr != nil {
			return Claims{}, cerr
		}
	}
	if err != nil {
		return Claims{}, v.claimsError(err, &w)
	}
	return w.claims(), nil
}

// key is the jwt.Keyfunc. The parser has already refused other algorithms;
// checking again here keeps a wrong key type from ever reaching a verifier:
// HS256 gets the secrets only, RS256 and ES256 the key set's keys of that
// algorithm only.
func (v *Verifier) key(t *jwt.Token) (any, error) {
	if t.Method == nil || !slices.Contains(v.methods, t.Method.Alg()) {
		return nil, errAlgorithm
	}
	// RFC 7515 requires refusing extensions we do not understand.
	if _, ok := t.Header["crit"]; ok {
		return nil, errCritical
	}
	alg := t.Method.Alg()
	if alg == jwt.SigningMethodHS256.Alg() {
		return v.keys, nil
	}
	if v.jwks == nil {
		return nil, errAlgorithm
	}
	kid := ""
	if raw, ok := t.Header["kid"]; ok {
		s, isString := raw.(string)
		if !isString {
			return nil, &keyError{"kid header is not a string"}
		}
		kid = s
	}
	keys, err := v.jwks.lookup(alg, kid)
	if ue := (*unavailableError)(nil); errors.As(err, &ue) {
		return nil, ue
	}
	if err != nil {
		return nil, &keyError{err.Error()}
	}
	set := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, len(keys))}
	for i, k := range keys {
		set.Keys[i] = k
	}
	return set, nil
}

// keyError explains why no key could check a token's signature.
type keyError struct{ reason string }

func (e *keyError) Error() string { return e.reason }

// parseError explains a failure found before the claims were validated.
func (v *Verifier) parseError(tok *jwt.Token, err error) error {
	var ke *keyError
	var ue *unavailableError
	switch {
	case errors.As(err, &ue):
		return fmt.Errorf("%w: %s", ErrKeysUnavailable, ue.Error())
	case errors.Is(err, jwt.ErrTokenMalformed):
		return invalid("malformed token")
	case errors.Is(err, errCritical):
		return invalid(errCritical.Error())
	case errors.As(err, &ke):
		return invalid(ke.reason)
	case tok != nil && tok.Method != nil && !slices.Contains(v.methods, tok.Method.Alg()):
		return invalid(fmt.Sprintf("signing algorithm %s not accepted", quoteShort(tok.Method.Alg())))
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return invalid("unknown or missing signing algorithm")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return invalid("signature does not match")
	}
	return invalid("unverifiable token")
}

// claimsError explains a failure of the registered claims. Expiry comes
// last: it is the only failure a fresh token can cure.
func (v *Verifier) claimsError(err error, w *wireClaims) error {
	switch {
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return invalid("not valid yet (nbf)")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return invalid("issued in the future (iat)")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return invalid("audience does not match")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return invalid("issuer does not match")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		if v.audience != "" && len(w.Audience) == 0 {
			return invalid("missing aud claim")
		}
		return invalid("missing iss claim")
	case errors.Is(err, jwt.ErrTokenExpired):
		return fmt.Errorf("%w at %s", ErrTokenExpired, w.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return invalid("bad registered claims")
}
