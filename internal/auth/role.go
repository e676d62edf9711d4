package auth

import (
	"errors"
	"fmt"
)

// Role is what a user may do in a live show. Roles are literal: RoleAdmin
// grants nothing on its own that RoleHost or RoleModerator grant, so every
// check names exactly the roles it accepts.
type Role string

// The roles a token may carry in its "roles" claim.
const (
	RoleCustomer  Role = "customer"
	RoleHost      Role = "host"
	RoleModerator Role = "moderator"
	RoleCourier   Role = "courier"
	RoleAdmin     Role = "admin"
)

// ErrUnknownRole is returned, wrapped, by ParseRole for a name that is not
// one of the Role constants.
var ErrUnknownRole = errors.New("unknown role")

// ParseRole returns the Role named s. Names are case-sensitive, so "Admin"
// is refused rather than quietly promoted.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleCustomer, RoleHost, RoleModerator, RoleCourier, RoleAdmin:
		return r, nil
	}
	return "", fmt.Errorf("%w %s", ErrUnknownRole, quoteShort(s))
}

// quoteShort quotes a value taken from a token for an error message,
// cut short so that a hostile token cannot flood the logs.
func quoteShort(s string) string {
	const max = 32
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
