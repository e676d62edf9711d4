// Package auth verifies and mints the JWTs that clients present when they
// connect and when they subscribe to a channel.
//
// The claims follow the Centrifugo client protocol: "sub" is the user ID,
// "info" is connection info handed to presence and join/leave, "channel" is
// set only in subscription tokens, and "exp" is the Unix time at which the
// token stops being accepted. LiveHub adds "name" (a display name) and
// "roles". HS256 is accepted with one or two secrets (two while a secret is
// rotated, so nobody is logged out), and RS256 and ES256 with the keys of a
// JSON Web Key Set fetched from an identity provider's URL and cached
// (jwks.go). Each algorithm only ever meets its own kind of key, so "none",
// other algorithms and a public key posing as an HMAC secret are refused.
// "exp", "nbf" and "iat" are checked with a configurable leeway, and "aud"
// and "iss" when an audience or issuer is configured.
package auth
