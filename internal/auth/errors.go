package auth

import (
	"errors"
	"fmt"
)

// Verification errors. Every error returned by Verifier wraps exactly one
// of them, with a short reason that names no key material.
var (
	// ErrTokenExpired means the token was genuine but its "exp" has passed
	// (beyond the leeway). The client protocol reports it with its own
	// "token expired" code so that the client fetches a fresh token and
	// retries instead of giving up.
	ErrTokenExpired = errors.New("token expired")

	// ErrTokenInvalid means the token must not be retried as is: it is
	// malformed, too large, signed with another key or algorithm, not yet
	// valid, meant for another audience or issuer, or its claims are wrong.
	ErrTokenInvalid = errors.New("token invalid")

	// ErrKeysUnavailable means the token could not be checked yet: it
	// names a key set that has never been fetched successfully (the
	// identity provider is down or unreachable). The token may well be
	// good; the client should retry later rather than give up.
	ErrKeysUnavailable = errors.New("signing keys unavailable")
)

func invalid(reason string) error {
	return fmt.Errorf("%w: %s", ErrTokenInvalid, reason)
}
