// Package hubauth lets the hub check LiveHub's JWTs: it adapts the
// internal/auth verifier to hub.TokenVerifier.
package hubauth

import (
	"context"
	"errors"
	"fmt"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/internal/auth"
)

// Verifier implements hub.TokenVerifier.
type Verifier struct{ v *auth.Verifier }

var _ hub.TokenVerifier = Verifier{}

// New wraps v.
func New(v *auth.Verifier) Verifier { return Verifier{v: v} }

// Credentials turns token claims into the hub's credentials.
func Credentials(c auth.Claims) hub.Credentials {
	roles := make([]string, len(c.Roles))
	for i, r := range c.Roles {
		roles[i] = string(r)
	}
	return hub.Credentials{UserID: c.Subject, Name: c.Name, Roles: roles, ExpireAt: c.ExpiresAt, Info: c.Info}
}

func mapErr(err error) error {
	if errors.Is(err, auth.ErrTokenExpired) {
		return fmt.Errorf("%w: %w", hub.ErrTokenExpired, err)
	}
	if errors.Is(err, auth.ErrKeysUnavailable) {
		return fmt.Errorf("%w: %w", hub.ErrVerifierUnavailable, err)
	}
	return err
}

// VerifyConnectToken checks a connection token.
func (v Verifier) VerifyConnectToken(_ context.Context, token string) (hub.Credentials, error) {
	c, err := v.v.VerifyConnect(token)
	if err != nil {
		return hub.Credentials{}, mapErr(err)
	}
	return Credentials(c), nil
}

// VerifySubscribeToken checks a subscription token and returns its channel.
func (v Verifier) VerifySubscribeToken(_ context.Context, token string) (string, hub.Credentials, error) {
	c, err := v.v.Verify(token)
	if err != nil {
		return "", hub.Credentials{}, mapErr(err)
	}
	if c.Channel == "" {
		return "", hub.Credentials{}, errors.New("not a subscription token")
	}
	return c.Channel, Credentials(c), nil
}
