package push

import "context"

// DeviceStore keeps the devices users registered for pushes.
//
// A token identifies a device: Register with a token already known replaces
// that entry, moving it to the new user if another user had it (a phone
// changing hands, a logout followed by another login).
type DeviceStore interface {
	// Register adds or replaces d. A zero UpdatedAt is set to now. An
	// invalid device is an EINVALID commerce error.
	Register(ctx context.Context, d Device) error
	// Unregister forgets token if userID owns it, and does nothing
	// otherwise.
	Unregister(ctx context.Context, userID, token string) error
	// List returns userID's devices ordered by token, empty for an unknown
	// user.
	List(ctx context.Context, userID string) ([]Device, error)
	// Remove forgets token whoever owns it: the platform reported it dead.
	Remove(ctx context.Context, token string) error
}
