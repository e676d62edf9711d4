package room

import (
	"context"
	"time"

	"github.com/livehub/livehub/internal/commerce"
)

// State keeps the moderation and counters of every stream's room: who
// moderates, who is muted or banned, slow mode, muted words, the pinned
// message and product, the likes total and the viewer peak. MemoryState
// serves one node; RedisState shares the rooms between nodes. Both pass the
// same test suite.
//
// Times are passed in by the caller (Room uses its clock), so every node
// decides against the same instants the state stores. Writes of one call are
// atomic: a chat check sees a ban or a mute completely or not at all.
type State interface {
	// AddModerator appoints user as a moderator of the stream's room.
	AddModerator(ctx context.Context, stream, user string) error
	// RemoveModerator removes user from the room's moderators; removing a
	// user who is not one is not an error.
	RemoveModerator(ctx context.Context, stream, user string) error
	// IsModerator reports whether user moderates the room.
	IsModerator(ctx context.Context, stream, user string) (bool, error)

	// Mute keeps user from chatting until until.
	Mute(ctx context.Context, stream, user string, until time.Time) error
	// Unmute lifts a mute; lifting none is not an error.
	Unmute(ctx context.Context, stream, user string) error
	// Ban keeps user from chatting for the rest of the stream.
	Ban(ctx context.Context, stream, user string) error
	// Unban lifts a ban; lifting none is not an error.
	Unban(ctx context.Context, stream, user string) error

	// SetSlowMode makes viewers wait seconds between two messages; zero
	// turns slow mode off.
	SetSlowMode(ctx context.Context, stream string, seconds int) error
	// SetMutedWords replaces the room's muted words, already normalised
	// (lowercase, distinct), and what happens to a message holding one.
	SetMutedWords(ctx context.Context, stream string, words []string, mode WordMode) error
	// SetPinnedMessage pins m; nil unpins.
	SetPinnedMessage(ctx context.Context, stream string, m *PinnedMessage) error
	// SetPinnedProduct pins p; nil unpins.
	SetPinnedProduct(ctx context.Context, stream string, p *PinnedProduct) error

	// CheckChat decides whether a user may send a message, as one atomic
	// step: not banned, not muted at c.Now, slow mode (unless exempt), and
	// the message's words against the muted words. When the message may go
	// (possibly masked), the user's slow-mode interval starts at c.Now; a
	// refused message does not start it.
	CheckChat(ctx context.Context, c ChatCheck) (ChatVerdict, error)

	// AddLikes adds n to the stream's likes total and returns the new
	// total; n may be zero to read it.
	AddLikes(ctx context.Context, stream string, n int64) (int64, error)
	// RecordViewers raises the stream's viewer peak to count if higher and
	// returns the peak.
	RecordViewers(ctx context.Context, stream string, count int) (int, error)
	// ClaimAnnouncement decides whether the caller publishes value as the
	// stream's latest figure for topic ("likes", "viewers"). It is claimed
	// when value differs from the last value announced for the topic and no
	// node claimed the topic within every; the claim records value as
	// announced at now. With many nodes, only one of them wins each interval.
	ClaimAnnouncement(ctx context.Context, stream, topic string, value int64, every time.Duration, now time.Time) (Announcement, error)

	// Snapshot returns the room's state at now (expired mutes left out).
	Snapshot(ctx context.Context, stream string, now time.Time) (Snapshot, error)
}

// WordMode is what happens to a chat message holding a muted word.
type WordMode string

// Word modes.
const (
	// WordsReject refuses the message with a reason (the default).
	WordsReject WordMode = "reject"
	// WordsMask publishes the message with each muted word shown as ****.
	WordsMask WordMode = "mask"
)

// ChatCheck is one message's question to CheckChat.
type ChatCheck struct {
	Stream string
	User   string
	Now    time.Time
	// Exempt skips slow mode for users the room knows as staff (the host,
	// admins); the room's moderators are exempt by the state's own record.
	Exempt bool
	// Words are the message's distinct words, lowercased.
	Words []string
}

// ChatVerdict is CheckChat's answer. The message may go when Allowed.
type ChatVerdict struct {
	Banned bool
	// MutedUntil is set while the user is muted.
	MutedUntil time.Time
	// Wait is what slow mode still asks the user to wait.
	Wait time.Duration
	// Moderator reports whether the user moderates the room.
	Moderator bool
	// Matched are the message's words that are muted, and Mode what to do
	// with them.
	Matched []string
	Mode    WordMode
}

// Allowed reports whether the message may be published (masked when Matched
// is not empty).
func (v ChatVerdict) Allowed() bool {
	return !v.Banned && v.MutedUntil.IsZero() && v.Wait <= 0 && (len(v.Matched) == 0 || v.Mode == WordsMask)
}

// Announcement is ClaimAnnouncement's answer.
type Announcement struct {
	// Claimed means the caller publishes the value now.
	Claimed bool
	// Changed means the value differs from the last announced one; changed
	// but not claimed means another node announced within the interval, so
	// the caller tries again on its next tick.
	Changed bool
	// Previous is the last announced value and PreviousAt when it was
	// announced (zero if never).
	Previous   int64
	PreviousAt time.Time
}

// PinnedMessage is the message shown above a room's chat.
type PinnedMessage struct {
	Text     string    `json:"text"`
	PinnedBy string    `json:"pinned_by"`
	PinnedAt time.Time `json:"pinned_at"`
}

// PinnedProduct is the product card shown over a stream.
type PinnedProduct struct {
	Product commerce.Product `json:"product"`
	// Price in integer rupiah.
	Price int64 `json:"price"`
	// Stock, when the host gave it.
	Stock    *int      `json:"stock,omitempty"`
	PinnedBy string    `json:"pinned_by"`
	PinnedAt time.Time `json:"pinned_at"`
}

// Mute is a user kept from chatting until a time.
type Mute struct {
	UserID string    `json:"user_id"`
	Until  time.Time `json:"until"`
}

// Snapshot is a room's whole state, for the host's console.
type Snapshot struct {
	Moderators      []string       `json:"moderators"`
	Mutes           []Mute         `json:"mutes"`
	Bans            []string       `json:"bans"`
	SlowModeSeconds int            `json:"slow_mode_seconds"`
	MutedWords      []string       `json:"muted_words"`
	WordMode        WordMode       `json:"muted_words_mode"`
	PinnedMessage   *PinnedMessage `json:"pinned_message"`
	PinnedProduct   *PinnedProduct `json:"pinned_product"`
	Likes           int64          `json:"likes"`
	ViewerPeak      int            `json:"viewer_peak"`
}
