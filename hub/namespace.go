package hub

import (
	"fmt"
	"strings"
	"time"
)

// NamespaceOptions are the rules of the channels of one namespace: the part
// of a channel name before ':' ("live" in "live:42"). A channel without ':'
// belongs to the namespace named "".
type NamespaceOptions struct {
	// Name of the namespace: lowercase letters, digits, '_' and '-'.
	Name string `json:"name"`
	// Anonymous lets connections without a user subscribe.
	Anonymous bool `json:"anonymous,omitempty"`
	// SubscribeRoles, when not empty, limits client subscriptions to users
	// holding one of these roles (or a subscription token for the channel).
	SubscribeRoles []string `json:"subscribe_roles,omitempty"`
	// Personal channels carry a user id after '#' ("user:#42"); only that user
	// may subscribe, and the hub subscribes each connection to its own
	// channel of this namespace when it connects.
	Personal bool `json:"personal,omitempty"`
	// SubscriptionToken accepts subscription tokens: JWTs whose `channel`
	// claim names the channel and whose `sub` is the connection's user.
	SubscriptionToken bool `json:"subscription_token,omitempty"`
	// Publish lets subscribed, authenticated clients publish into the channel.
	Publish bool `json:"publish,omitempty"`
	// PublishRoles, when not empty, limits client publishing to these roles.
	PublishRoles []string `json:"publish_roles,omitempty"`
	// Presence keeps who is subscribed and answers presence stats to subscribers.
	Presence bool `json:"presence,omitempty"`
	// PresenceRoles, when not empty, limits the full presence list (user ids
	// and connection info) to these roles; stats stay open to subscribers.
	PresenceRoles []string `json:"presence_roles,omitempty"`
	// JoinLeave sends join and leave pushes to subscribers that ask for them.
	JoinLeave bool `json:"join_leave,omitempty"`
	// HistorySize keeps this many recent publications per channel for
	// history and recovery. Zero keeps none.
	HistorySize int `json:"history_size,omitempty"`
	// HistoryTTL keeps a channel's history this long after its last
	// publication. Zero, with HistorySize set, means 10 minutes.
	HistoryTTL Duration `json:"history_ttl,omitempty"`
	// ForceRecovery makes every subscription recoverable, whether or not the
	// client asked; needs HistorySize.
	ForceRecovery bool `json:"force_recovery,omitempty"`
	// History lets subscribers call history.
	History bool `json:"history,omitempty"`
	// AllowedDeltaTypes lists the delta encodings subscribers may ask for
	// (subscribe with delta: "fossil"); only "fossil" exists. A delta
	// subscription gets each publication as a fossil delta against the
	// previous one, so it needs a recoverable subscription: HistorySize,
	// and ForceRecovery or the client asking for recovery. Empty sends
	// every subscriber full data.
	AllowedDeltaTypes []string `json:"allowed_delta_types,omitempty"`
	// LowPriorityClientPublications marks what clients publish here (chat
	// lines, courier positions) as low priority: congested connections drop
	// it before server publications such as stock and order events.
	LowPriorityClientPublications bool `json:"low_priority_client_publications,omitempty"`
}

// Duration is a time.Duration that reads and writes as "90s" in JSON.
type Duration time.Duration

// MarshalText writes the duration as Go does ("1m30s").
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func (o *NamespaceOptions) historyTTL() time.Duration {
	if o.HistoryTTL <= 0 {
		return 10 * time.Minute
	}
	return time.Duration(o.HistoryTTL)
}

func (o *NamespaceOptions) keepsHistory() bool { return o.HistorySize > 0 }

func (o *NamespaceOptions) allowsDelta(typ string) bool {
	for _, t := range o.AllowedDeltaTypes {
		if t == typ {
			return true
		}
	}
	return false
}

func (o *NamespaceOptions) validate() error {
	if !validNamespaceName(o.Name) {
		return fmt.Errorf("namespace %q: name must be lowercase letters, digits, '_' or '-'", o.Name)
	}
	if o.HistorySize < 0 {
		return fmt.Errorf("namespace %q: history_size must not be negative", o.Name)
	}
	if o.ForceRecovery && o.HistorySize == 0 {
		return fmt.Errorf("namespace %q: force_recovery needs history_size", o.Name)
	}
	for _, t := range o.AllowedDeltaTypes {
		if t != DeltaFossil {
			return fmt.Errorf("namespace %q: unknown delta type %q (only %q)", o.Name, t, DeltaFossil)
		}
	}
	if len(o.AllowedDeltaTypes) > 0 && o.HistorySize == 0 {
		return fmt.Errorf("namespace %q: allowed_delta_types needs history_size", o.Name)
	}
	return nil
}

func validNamespaceName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return len(s) <= 64
}

// DefaultNamespaces are the channels of LiveHub as docs/protocol.md describes them.
func DefaultNamespaces() []NamespaceOptions {
	return []NamespaceOptions{
		{
			// live:{streamID}: the room. Anyone may watch; signed-in viewers chat.
			Name: "live", Anonymous: true, Publish: true, Presence: true,
			PresenceRoles: []string{"host", "moderator", "admin"},
			HistorySize:   100, HistoryTTL: Duration(10 * time.Minute),
			ForceRecovery: true, History: true,
			// Stock and viewer counts repeat most of the previous event.
			AllowedDeltaTypes: []string{DeltaFossil},
			// Chat gives way to stock when a phone falls behind.
			LowPriorityClientPublications: true,
		},
		{
			// order:{orderID}: order timeline and courier location. Access is
			// granted by a subscription token or the commerce authorizer.
			Name: "order", SubscriptionToken: true, Publish: true,
			SubscribeRoles: []string{"admin"}, PublishRoles: []string{"courier"},
			HistorySize: 50, HistoryTTL: Duration(24 * time.Hour),
			ForceRecovery: true, History: true,
			// A courier position is superseded by the next one.
			LowPriorityClientPublications: true,
		},
		{
			// user:#{userID}: the personal channel, subscribed by the server.
			Name: "user", Personal: true,
			HistorySize: 50, HistoryTTL: Duration(24 * time.Hour),
			ForceRecovery: true, History: true,
		},
		{
			// studio:{streamID}: the host's back office. Admins by role; the
			// stream's host and its moderators through the application's
			// Grant hook or a subscription token.
			Name: "studio", SubscriptionToken: true,
			SubscribeRoles: []string{"admin"},
			Presence:       true, HistorySize: 100, HistoryTTL: Duration(time.Hour),
			ForceRecovery: true, History: true,
			AllowedDeltaTypes: []string{DeltaFossil},
		},
	}
}

// maxChannelLength bounds channel names; longer names are a bad request.
const maxChannelLength = 255

// splitChannel returns the namespace of a channel and checks the name.
func splitChannel(channel string) (ns string, ok bool) {
	if channel == "" || len(channel) > maxChannelLength {
		return "", false
	}
	for i := 0; i < len(channel); i++ {
		b := channel[i]
		// Printable ASCII without space: names travel in logs, URLs and Redis keys.
		if b <= ' ' || b > '~' {
			return "", false
		}
	}
	if i := strings.IndexByte(channel, ':'); i >= 0 {
		return channel[:i], i < len(channel)-1
	}
	return "", true
}

// personalUser returns the user a personal channel belongs to ("42" for
// "user:#42"), or "" when the channel has no '#'.
func personalUser(channel string) string {
	if i := strings.IndexByte(channel, '#'); i >= 0 {
		return channel[i+1:]
	}
	return ""
}

func hasAnyRole(have []string, want []string) bool {
	for _, w := range want {
		for _, h := range have {
			if h == w {
				return true
			}
		}
	}
	return false
}
