// Package push delivers notifications to phones that have no foreground
// connection: a durable queue of jobs, the devices each user registered, and
// a Worker that expands a job to the user's devices and hands them to one
// Sender per platform (APNs, FCM), retrying with backoff and pruning tokens
// the platform reports dead.
//
// The memory implementations serve one node and tests; the Redis ones share
// devices, the queue and the dedupe marks between nodes. Both pass the suites
// in package pushtest.
package push

import (
	"time"

	"github.com/livehub/livehub/internal/commerce"
)

// Platforms a Device can be on. A Sender's Platform is one of them.
const (
	PlatformIOS     = "ios"
	PlatformAndroid = "android"
)

// Priority tells the platform how urgently to wake the device.
type Priority string

// Priorities. An empty Priority is PriorityHigh.
const (
	PriorityHigh   Priority = "high"
	PriorityNormal Priority = "normal"
)

// Notification is one event for one user, to be shown on every device the
// user registered.
type Notification struct {
	// ID is the event's id. A notification with an ID reaches each device
	// at most once however often it is enqueued or redelivered; see Dedupe.
	ID     string `json:"id,omitempty"`
	UserID string `json:"user_id"`
	// TitleKey and BodyKey name strings in the app's localization tables,
	// formatted with TitleArgs and BodyArgs on the device in its language.
	TitleKey  string   `json:"title_key,omitempty"`
	TitleArgs []string `json:"title_args,omitempty"`
	BodyKey   string   `json:"body_key,omitempty"`
	BodyArgs  []string `json:"body_args,omitempty"`
	// Title and Body are shown when the app has no string for the keys.
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
	// Data reaches the app with the notification.
	Data map[string]string `json:"data,omitempty"`
	// CollapseID makes a newer notification replace an older one with the
	// same id on the device (apns-collapse-id, FCM collapse_key and tag).
	CollapseID string   `json:"collapse_id,omitempty"`
	Priority   Priority `json:"priority,omitempty"`
	// Expiry is when the notification stops being worth showing: it is
	// not sent after, and the platforms drop it if the device stays
	// offline until then. Zero means no expiry.
	Expiry time.Time `json:"expiry,omitzero"`
	// Category selects the app's actions for the notification (APNs
	// category, FCM click_action).
	Category string `json:"category,omitempty"`
}

// Expired reports whether n has an Expiry that is not after now.
func (n *Notification) Expired(now time.Time) bool {
	return !n.Expiry.IsZero() && !n.Expiry.After(now)
}

// Validate returns an EINVALID commerce error naming the first field at
// fault.
func (n *Notification) Validate() error {
	switch {
	case n.UserID == "":
		return commerce.FieldError("user_id", "user_id is required")
	case n.TitleKey == "" && n.BodyKey == "" && n.Title == "" && n.Body == "":
		return commerce.FieldError("body", "a notification needs a title or body, as text or as a key")
	case n.TitleKey == "" && len(n.TitleArgs) > 0:
		return commerce.FieldError("title_args", "title_args need a title_key")
	case n.BodyKey == "" && len(n.BodyArgs) > 0:
		return commerce.FieldError("body_args", "body_args need a body_key")
	case n.Priority != "" && n.Priority != PriorityHigh && n.Priority != PriorityNormal:
		return commerce.FieldError("priority", "priority must be high or normal")
	}
	return nil
}

// Device is one app install that can receive pushes.
type Device struct {
	UserID string `json:"user_id"`
	// Platform is PlatformIOS or PlatformAndroid.
	Platform string `json:"platform"`
	// Token is the APNs device token or the FCM registration token. It
	// identifies the device: registering it again replaces the old entry,
	// whoever owned it.
	Token string `json:"token"`
	// AppID is the iOS bundle id or the Android package name.
	AppID      string `json:"app_id,omitempty"`
	Locale     string `json:"locale,omitempty"`
	AppVersion string `json:"app_version,omitempty"`
	// UpdatedAt is when the device was last registered.
	UpdatedAt time.Time `json:"updated_at"`
}

// Validate returns an EINVALID commerce error naming the first field at
// fault.
func (d *Device) Validate() error {
	switch {
	case d.UserID == "":
		return commerce.FieldError("user_id", "user_id is required")
	case d.Token == "":
		return commerce.FieldError("token", "token is required")
	case len(d.Token) > maxTokenLen:
		return commerce.FieldError("token", "token is longer than %d bytes", maxTokenLen)
	case d.Platform != PlatformIOS && d.Platform != PlatformAndroid:
		return commerce.FieldError("platform", "platform must be %s or %s", PlatformIOS, PlatformAndroid)
	}
	return nil
}

// maxTokenLen bounds a device token. APNs tokens are 64 hex digits and FCM
// registration tokens are around 160 characters.
const maxTokenLen = 4096
