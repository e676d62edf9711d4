package hub

import (
	"context"
	"errors"
	"time"
)

// Credentials are who a connection is, as its connection token says.
type Credentials struct {
	// UserID is the token's subject; empty for anonymous connections.
	UserID string
	// Name is the display name shown with the user's publications.
	Name string
	// Roles the user holds, for namespace rules and hooks.
	Roles []string
	// ExpireAt is when the credentials stop being valid; zero means never.
	ExpireAt time.Time
	// Info is optional JSON attached to the connection in presence and publications.
	Info []byte
}

// HasRole reports whether the credentials hold role r.
func (c *Credentials) HasRole(r string) bool {
	for _, have := range c.Roles {
		if have == r {
			return true
		}
	}
	return false
}

// TokenVerifier checks the JWTs clients present.
type TokenVerifier interface {
	// VerifyConnectToken checks a connection token. It returns an error
	// wrapping ErrTokenExpired for an expired token.
	VerifyConnectToken(ctx context.Context, token string) (Credentials, error)
	// VerifySubscribeToken checks a subscription token and returns the
	// channel it grants and the user it was issued to.
	VerifySubscribeToken(ctx context.Context, token string) (channel string, cred Credentials, err error)
}

// ErrTokenExpired is wrapped by TokenVerifier errors for expired tokens: the
// client is asked to fetch a new token rather than being refused.
var ErrTokenExpired = errors.New("token expired")

// ErrVerifierUnavailable is wrapped by TokenVerifier errors when a token
// could not be checked at all (the identity provider's keys cannot be
// fetched): the connection is closed with 3004, which clients retry,
// instead of 3500, which they take as final.
var ErrVerifierUnavailable = errors.New("token verifier unavailable")

// Hooks let the application decide what the namespace rules cannot: who may
// see an order's channel, how a chat line is checked. Each hook may return an
// *Error to send the client a precise code and message.
type Hooks struct {
	// Grant is asked when a namespace's SubscribeRoles refuse a user: it
	// may open the channel to that user all the same (the buyer and courier
	// of an order, the moderators of a stream). Nil grants nothing.
	Grant func(ctx context.Context, c *Client, channel string) (bool, error)
	// OnSubscribe is asked after the namespace rules (or Grant) allowed a
	// client subscription; an error refuses it. Nil allows.
	OnSubscribe func(ctx context.Context, c *Client, channel string) error
	// OnPublish is asked after the namespace rules allowed a client
	// publication. It returns the data to publish, which may differ from what
	// the client sent (a message id, the sender's name). Nil publishes as sent.
	OnPublish func(ctx context.Context, c *Client, channel string, data []byte) ([]byte, error)
	// Presence is asked after a namespace's PresenceRoles allowed the full
	// presence list (user ids) of a channel; false refuses it (103). It
	// narrows a role to one channel: a host sees its own room's viewers.
	// Nil allows.
	Presence func(ctx context.Context, c *Client, channel string) (bool, error)
	// RPC handlers by method name.
	RPC map[string]RPCHandler
	// OnDisconnect is called once a connection is gone.
	OnDisconnect func(c *Client)
}

// RPCHandler answers one RPC call; the result must be JSON.
type RPCHandler func(ctx context.Context, c *Client, data []byte) ([]byte, error)
