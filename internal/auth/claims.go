package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims is what a verified token says about its bearer.
type Claims struct {
	// Subject is the user ID ("sub"). Verify never returns an empty one.
	Subject string
	// Name is the display name shown in chat and presence ("name").
	Name string
	// Roles are the bearer's roles ("roles").
	Roles []Role
	// ExpiresAt is when the token stops being accepted ("exp"); zero if the
	// token does not expire.
	ExpiresAt time.Time
	// Info is optional connection info ("info"), any JSON value, passed on
	// untouched to presence and join/leave messages.
	Info json.RawMessage
	// Channel is the channel a subscription token grants ("channel"); empty
	// in a connection token.
	Channel string
}

// HasRole reports whether c lists r. It is literal on purpose: RoleAdmin
// does not imply any other role.
func (c Claims) HasRole(r Role) bool {
	return slices.Contains(c.Roles, r)
}

// wireClaims is the JSON payload of a token.
type wireClaims struct {
	jwt.RegisteredClaims
	Name    string          `json:"name,omitempty"`
	Roles   []Role          `json:"roles,omitempty"`
	Info    json.RawMessage `json:"info,omitempty"`
	Channel string          `json:"channel,omitempty"`
}

// check validates the claims this package defines, once the signature is
// known to be genuine.
func (w *wireClaims) check() error {
	if w.Subject == "" {
		return invalid("missing sub claim")
	}
	for _, r := range w.Roles {
		if _, err := ParseRole(string(r)); err != nil {
			return fmt.Errorf("%w: %w", ErrTokenInvalid, err)
		}
	}
	return nil
}

// claims converts a payload that passed Validate.
func (w *wireClaims) claims() Claims {
	c := Claims{
		Subject: w.Subject,
		Name:    w.Name,
		Roles:   w.Roles,
		Channel: w.Channel,
	}
	if w.ExpiresAt != nil {
		c.ExpiresAt = w.ExpiresAt.UTC()
	}
	// A JSON null is how many encoders spell "no info".
	if len(w.Info) > 0 && !bytes.Equal(w.Info, []byte("null")) {
		c.Info = w.Info
	}
	return c
}
