package push

import (
	"context"
	"time"
)

// Sender delivers notifications through one platform's push service.
type Sender interface {
	// Platform is the Device.Platform the sender serves.
	Platform() string
	// Send delivers each target and returns one Result per target, in the
	// same order. It does not return early when ctx is done: targets not
	// attempted come back as Retry.
	Send(ctx context.Context, targets []Target) []Result
}

// Target is one notification for one device.
type Target struct {
	Device       Device
	Notification Notification
}

// Outcome says what became of one Target.
type Outcome int

// Outcomes.
const (
	// Sent means the push service accepted the notification.
	Sent Outcome = iota + 1
	// Retry means the service could not take it now; try again after
	// RetryAfter when that is set, after a backoff otherwise.
	Retry
	// DeadToken means the token will never work again (the app was
	// uninstalled, the token belongs to another app): forget the device.
	DeadToken
	// Failed means this notification cannot be sent to this device.
	Failed
)

func (o Outcome) String() string {
	switch o {
	case Sent:
		return "sent"
	case Retry:
		return "retry"
	case DeadToken:
		return "dead_token"
	case Failed:
		return "failed"
	}
	return "unknown"
}

// Result is the Outcome of one Target.
type Result struct {
	Outcome Outcome
	// RetryAfter is the delay the service asked for (Retry-After), zero
	// when it asked for none.
	RetryAfter time.Duration
	// Reason is the service's short error code (Unregistered, UNAVAILABLE,
	// ...), empty when Sent. It labels the failure metrics, so senders
	// keep it to a small set of words.
	Reason string
}
