package notify

import (
	"context"
	"errors"
	"time"
)

// PendingStore keeps the ack windows that are open: the events a user's
// foreground app received on its socket and has yet to acknowledge. The
// node that published an event opens its window and closes it when the
// window ends; the app's acknowledgement may reach any node. Ack and Take
// race for a window and exactly one of them finds it open: either the app
// acknowledged in time, or the publishing node pushes.
type PendingStore interface {
	// Add opens the window of (userID, eventID). The mark is forgotten
	// after ttl, which must outlast the window: Take after ttl finds
	// nothing. Add reports false when the window is open already.
	Add(ctx context.Context, userID, eventID string, ttl time.Duration) (bool, error)
	// Ack closes the windows of userID's eventIDs and returns how many were
	// open: the acknowledgements that came in time.
	Ack(ctx context.Context, userID string, eventIDs []string) (int, error)
	// Take closes the window at its end. It reports true when the window
	// was open, no acknowledgement having come, and the caller must push.
	Take(ctx context.Context, userID, eventID string) (bool, error)
}

// errPendingKey is returned for an empty user or event id.
var errPendingKey = errors.New("notify: pending windows need a user id and an event id")

// checkPending validates the arguments of Add and Take.
func checkPending(userID, eventID string) error {
	if userID == "" || eventID == "" {
		return errPendingKey
	}
	return nil
}
