package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// SignerConfig configures a Signer.
type SignerConfig struct {
	// Secret is the HS256 key; it must be non-empty. While rotating, sign
	// with the new secret and list both in VerifierConfig.Secrets.
	Secret []byte
	// Audience, when non-empty, is written to the "aud" claim.
	Audience string
	// Issuer, when non-empty, is written to the "iss" claim.
	Issuer string
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Signer mints tokens that a Verifier with the same secret, audience and
// issuer accepts. It is safe for concurrent use.
type Signer struct {
	secret   []byte
	audience string
	issuer   string
	now      func() time.Time
}

// NewSigner returns a Signer for cfg. The secret is copied.
func NewSigner(cfg SignerConfig) (*Signer, error) {
	if len(cfg.Secret) == 0 {
		return nil, errors.New("auth: empty secret")
	}
	s := &Signer{
		secret:   append([]byte(nil), cfg.Secret...),
		audience: cfg.Audience,
		issuer:   cfg.Issuer,
		now:      cfg.Now,
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Mint returns an HS256 token carrying c, issued now. When ttl is positive
// the token expires ttl from now; when ttl is zero it expires at
// c.ExpiresAt, or never if that is zero. Times are whole seconds.
// It refuses claims that Verify would refuse: an empty Subject, an unknown
// role, Info that is not JSON, or a token longer than MaxTokenSize.
func (s *Signer) Mint(c Claims, ttl time.Duration) (string, error) {
	switch {
	case c.Subject == "":
		return "", errors.New("auth: mint: empty subject")
	case ttl < 0:
		return "", fmt.Errorf("auth: mint: negative ttl %s", ttl)
	case ttl > 0 && !c.ExpiresAt.IsZero():
		return "", errors.New("auth: mint: both ttl and ExpiresAt set")
	case len(c.Info) > 0 && !json.Valid(c.Info):
		return "", errors.New("auth: mint: info is not valid JSON")
	}
	for _, r := range c.Roles {
		if _, err := ParseRole(string(r)); err != nil {
			return "", fmt.Errorf("auth: mint: %w", err)
		}
	}
	now := s.now()
	w := wireClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:  c.Subject,
			Issuer:   s.issuer,
			IssuedAt: jwt.NewNumericDate(now),
		},
		Name:    c.Name,
		Roles:   c.Roles,
		Info:    c.Info,
		Channel: c.Channel,
	}
	if s.audience != "" {
		w.Audience = jwt.ClaimStrings{s.audience}
	}
	switch {
	case ttl > 0:
		w.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	case !c.ExpiresAt.IsZero():
		w.ExpiresAt = jwt.NewNumericDate(c.ExpiresAt)
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, &w).SignedString(s.secret)
	if err != nil {
		return "", fmt.Errorf("auth: mint: %w", err)
	}
	if len(token) > MaxTokenSize {
		return "", fmt.Errorf("auth: mint: token of %d bytes exceeds %d", len(token), MaxTokenSize)
	}
	return token, nil
}

// Mint is a shorthand for a Signer with secret and no audience or issuer.
func Mint(secret []byte, c Claims, ttl time.Duration) (string, error) {
	s, err := NewSigner(SignerConfig{Secret: secret})
	if err != nil {
		return "", err
	}
	return s.Mint(c, ttl)
}
