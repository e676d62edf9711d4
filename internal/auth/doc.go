// Package auth verifies and mints the JWTs that clients present when they
// connect and when they subscribe to a channel.
//
// The claims follow the Centrifugo client protocol: "sub" is the user ID,
// "info" is connection info handed to presence and join/leave, "channel" is
// set only in subscription tokens, and "exp" is the Unix time at which the
// token stops being accepted. LiveHub adds "name" (a display name) and
// "roles". Only HS256 is accepted; one or two secrets may be configured at
// once so a secret can be rotated without logging everybody out.
package auth
