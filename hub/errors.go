package hub

import (
	"errors"
	"fmt"

	"github.com/centrifugal/protocol"
)

// Error is a protocol error sent in reply to a command. Codes and messages
// follow the Centrifugo client protocol so the official SDKs understand them.
type Error struct {
	Code    uint32
	Message string
	// Temporary tells the client a retry may succeed.
	Temporary bool
}

func (e *Error) Error() string { return fmt.Sprintf("%d: %s", e.Code, e.Message) }

// WithMessage returns a copy of e with a more precise message, for example the
// reason a chat line was refused. The code stays, so clients can branch on it.
func (e *Error) WithMessage(msg string) *Error {
	return &Error{Code: e.Code, Message: msg, Temporary: e.Temporary}
}

func (e *Error) toProto() *protocol.Error {
	return &protocol.Error{Code: e.Code, Message: e.Message, Temporary: e.Temporary}
}

// Protocol errors.
var (
	ErrorInternal              = &Error{Code: 100, Message: "internal server error", Temporary: true}
	ErrorUnauthorized          = &Error{Code: 101, Message: "unauthorized"}
	ErrorUnknownChannel        = &Error{Code: 102, Message: "unknown channel"}
	ErrorPermissionDenied      = &Error{Code: 103, Message: "permission denied"}
	ErrorMethodNotFound        = &Error{Code: 104, Message: "method not found"}
	ErrorAlreadySubscribed     = &Error{Code: 105, Message: "already subscribed"}
	ErrorLimitExceeded         = &Error{Code: 106, Message: "limit exceeded"}
	ErrorBadRequest            = &Error{Code: 107, Message: "bad request"}
	ErrorNotAvailable          = &Error{Code: 108, Message: "not available"}
	ErrorTokenExpired          = &Error{Code: 109, Message: "token expired"}
	ErrorExpired               = &Error{Code: 110, Message: "expired"}
	ErrorTooManyRequests       = &Error{Code: 111, Message: "too many requests", Temporary: true}
	ErrorUnrecoverablePosition = &Error{Code: 112, Message: "unrecoverable position"}
)

// toError turns any error into a protocol error, hiding internals: an engine
// that cannot be reached is a temporary error, anything unknown is internal.
func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, ErrUnavailable) {
		return ErrorInternal
	}
	return ErrorInternal
}

// Disconnect is the reason a connection is closed, sent as the WebSocket close
// code and reason. Codes 3000-3499 and 4000-4499 tell the SDKs to reconnect;
// 3500-3999 and 4500-4999 tell them not to.
type Disconnect struct {
	Code   uint32
	Reason string
}

// Reconnect reports whether a client should reconnect after d.
func (d Disconnect) Reconnect() bool {
	return (d.Code >= 3000 && d.Code < 3500) || (d.Code >= 4000 && d.Code < 4500)
}

// Disconnect reasons.
var (
	DisconnectConnectionClosed  = Disconnect{3000, "connection closed"}
	DisconnectShutdown          = Disconnect{3001, "shutdown"}
	DisconnectServerError       = Disconnect{3004, "internal server error"}
	DisconnectExpired           = Disconnect{3005, "connection expired"}
	DisconnectSubExpired        = Disconnect{3006, "subscription expired"}
	DisconnectSlow              = Disconnect{3008, "slow"}
	DisconnectWriteError        = Disconnect{3009, "write error"}
	DisconnectInsufficientState = Disconnect{3010, "insufficient state"}
	DisconnectForceReconnect    = Disconnect{3011, "force reconnect"}
	DisconnectNoPong            = Disconnect{3012, "no pong"}
	DisconnectTooManyRequests   = Disconnect{3013, "too many requests"}
	DisconnectInvalidToken      = Disconnect{3500, "invalid token"}
	DisconnectBadRequest        = Disconnect{3501, "bad request"}
	DisconnectStale             = Disconnect{3502, "stale"}
	DisconnectForceNoReconnect  = Disconnect{3503, "force disconnect"}
	DisconnectConnectionLimit   = Disconnect{3504, "connection limit"}
	DisconnectChannelLimit      = Disconnect{3505, "channel limit"}
	DisconnectPermissionDenied  = Disconnect{3507, "permission denied"}
	DisconnectTooManyErrors     = Disconnect{3509, "too many errors"}
)
