// Package commerce is LiveHub's commerce domain: streams, flash sales,
// reservations, orders and payments, with the interfaces that the memory and
// Redis stores implement. It depends on the standard library only.
package commerce

import (
	"errors"
	"fmt"
)

// Code classifies an Error. Codes are stable: the REST layer maps them to
// HTTP statuses and clients branch on them.
type Code string

// Error codes.
const (
	EINVALID      Code = "invalid"              // the request is malformed or a field is out of range
	EUNAUTHORIZED Code = "unauthorized"         // no or bad credentials
	EFORBIDDEN    Code = "forbidden"            // the caller may not do this
	ENOTFOUND     Code = "not_found"            // no such stream, sale or order
	ECONFLICT     Code = "conflict"             // the state does not allow it (ended stream, paid order)
	ESOLDOUT      Code = "sold_out"             // no stock left for the quantity asked
	ELIMIT        Code = "per_user_limit"       // the buyer would exceed the sale's per-user limit
	ENOTSTARTED   Code = "sale_not_started"     // the sale's countdown is still running
	EENDED        Code = "sale_ended"           // the sale is over
	EIDEMPOTENCY  Code = "idempotency_mismatch" // an Idempotency-Key reused with another request
	ESIGNATURE    Code = "bad_signature"        // a gateway notification failed verification
	ERATELIMIT    Code = "rate_limited"         // too many requests
	EUNAVAILABLE  Code = "unavailable"          // a dependency is down; retry later
	EINTERNAL     Code = "internal"             // a bug or an unexpected failure
)

// Error is the domain error. Message is safe to show to the caller; Field,
// when set, names the request field at fault.
type Error struct {
	Code    Code
	Message string
	Field   string
	// Err is the underlying cause, logged but never shown to callers.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns an EINVALID error naming the field at fault.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err: its own when it is an *Error,
// EINTERNAL otherwise, "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}
