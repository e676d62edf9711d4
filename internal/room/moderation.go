package room

import (
	"context"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/livehub/livehub/internal/commerce"
)

// Actor is who asks for a moderation action: the user of a verified token.
type Actor struct {
	UserID string
	Name   string
	Roles  []string
}

// HasRole reports whether the actor holds role r.
func (a Actor) HasRole(r string) bool {
	for _, have := range a.Roles {
		if have == r {
			return true
		}
	}
	return false
}

// power is what an action needs.
type power int

const (
	// moderate: the stream's host, the room's moderators, admins.
	moderate power = iota
	// appoint: the stream's host and admins; moderators may not appoint
	// or remove each other.
	appoint
)

// staff reports whether a runs the stream: its host or an admin.
func staff(a Actor, st commerce.Stream) bool {
	return a.UserID == st.HostID || a.HasRole("admin")
}

// authorize reads the stream and checks that a may act on its room with
// need. The stream is read from the store, not the cache: a moderation
// decision sees the stream as it is.
func (r *Room) authorize(ctx context.Context, a Actor, stream string, need power) (commerce.Stream, error) {
	if a.UserID == "" {
		return commerce.Stream{}, commerce.Errorf(commerce.EUNAUTHORIZED, "sign in to moderate")
	}
	st, err := r.cfg.Streams.GetStream(ctx, stream)
	if err != nil {
		return st, err
	}
	if staff(a, st) {
		return st, nil
	}
	if need == appoint {
		return st, commerce.Errorf(commerce.EFORBIDDEN, "only the stream's host or an admin may appoint or remove moderators")
	}
	ok, err := r.state.IsModerator(ctx, stream, a.UserID)
	if err != nil {
		return st, err
	}
	if !ok {
		return st, commerce.Errorf(commerce.EFORBIDDEN, "only the stream's host, its moderators or an admin may moderate this room")
	}
	return st, nil
}

// act is authorize for a change: the stream must also be live.
func (r *Room) act(ctx context.Context, a Actor, stream string, need power) (commerce.Stream, error) {
	st, err := r.authorize(ctx, a, stream, need)
	if err != nil {
		return st, err
	}
	if st.State != commerce.StreamLive {
		return st, commerce.Errorf(commerce.ECONFLICT, "the stream has ended")
	}
	return st, nil
}

// checkUserID checks a user id given in a request.
func checkUserID(field, id string) error {
	if id == "" || len(id) > 128 || strings.IndexFunc(id, unicode.IsControl) >= 0 || !utf8.ValidString(id) {
		return commerce.FieldError(field, "must be a user id of 1 to 128 characters")
	}
	return nil
}

// checkTarget refuses to silence the host, and lets only staff silence a
// moderator.
func (r *Room) checkTarget(ctx context.Context, a Actor, st commerce.Stream, user, verb string) error {
	if user == st.HostID {
		return commerce.Errorf(commerce.EFORBIDDEN, "nobody may %s the stream's host", verb)
	}
	if staff(a, st) {
		return nil
	}
	mod, err := r.state.IsModerator(ctx, st.ID, user)
	if err != nil {
		return err
	}
	if mod {
		return commerce.Errorf(commerce.EFORBIDDEN, "only the stream's host or an admin may %s a moderator", verb)
	}
	return nil
}

// moderation is the data of a moderation.* event on studio:.
type moderation struct {
	By              string         `json:"by"`
	UserID          string         `json:"user_id,omitempty"`
	Until           *time.Time     `json:"until,omitempty"`
	DurationSeconds int            `json:"duration_seconds,omitempty"`
	MessageID       string         `json:"message_id,omitempty"`
	Seconds         *int           `json:"seconds,omitempty"`
	Words           []string       `json:"words,omitempty"`
	Mode            WordMode       `json:"mode,omitempty"`
	Message         *PinnedMessage `json:"message,omitempty"`
	Product         *PinnedProduct `json:"product,omitempty"`
}

// AddModerator appoints user as a moderator of the stream's room (the host
// or an admin only).
func (r *Room) AddModerator(ctx context.Context, a Actor, stream, user string) error {
	st, err := r.act(ctx, a, stream, appoint)
	if err != nil {
		return err
	}
	if err := checkUserID("user_id", user); err != nil {
		return err
	}
	if user == st.HostID {
		return commerce.FieldError("user_id", "is the stream's host, who moderates already")
	}
	if err := r.state.AddModerator(ctx, stream, user); err != nil {
		return err
	}
	r.emit(ctx, EventModeratorAdded, moderation{By: a.UserID, UserID: user}, studioChannel(stream))
	return nil
}

// RemoveModerator removes user from the room's moderators (the host or an
// admin only).
func (r *Room) RemoveModerator(ctx context.Context, a Actor, stream, user string) error {
	if _, err := r.act(ctx, a, stream, appoint); err != nil {
		return err
	}
	if err := checkUserID("user", user); err != nil {
		return err
	}
	if err := r.state.RemoveModerator(ctx, stream, user); err != nil {
		return err
	}
	r.emit(ctx, EventModeratorRemoved, moderation{By: a.UserID, UserID: user}, studioChannel(stream))
	return nil
}

// Mute keeps user from chatting for d.
func (r *Room) Mute(ctx context.Context, a Actor, stream, user string, d time.Duration) (Mute, error) {
	st, err := r.act(ctx, a, stream, moderate)
	if err != nil {
		return Mute{}, err
	}
	if err := checkUserID("user_id", user); err != nil {
		return Mute{}, err
	}
	if d < time.Second || d > r.cfg.MaxMute {
		return Mute{}, commerce.FieldError("duration_seconds", "must be between 1 and %d", int(r.cfg.MaxMute/time.Second))
	}
	if err := r.checkTarget(ctx, a, st, user, "mute"); err != nil {
		return Mute{}, err
	}
	until := r.cfg.Now().Add(d).UTC().Truncate(time.Millisecond)
	if err := r.state.Mute(ctx, stream, user, until); err != nil {
		return Mute{}, err
	}
	r.emit(ctx, EventUserMuted, moderation{By: a.UserID, UserID: user, Until: &until, DurationSeconds: int(d / time.Second)}, studioChannel(stream))
	return Mute{UserID: user, Until: until}, nil
}

// Unmute lets a muted user chat again.
func (r *Room) Unmute(ctx context.Context, a Actor, stream, user string) error {
	if _, err := r.act(ctx, a, stream, moderate); err != nil {
		return err
	}
	if err := checkUserID("user", user); err != nil {
		return err
	}
	if err := r.state.Unmute(ctx, stream, user); err != nil {
		return err
	}
	r.emit(ctx, EventUserUnmuted, moderation{By: a.UserID, UserID: user}, studioChannel(stream))
	return nil
}

// Ban keeps user from chatting for the rest of the stream. A banned user
// still watches: the room is public.
func (r *Room) Ban(ctx context.Context, a Actor, stream, user string) error {
	st, err := r.act(ctx, a, stream, moderate)
	if err != nil {
		return err
	}
	if err := checkUserID("user_id", user); err != nil {
		return err
	}
	if err := r.checkTarget(ctx, a, st, user, "ban"); err != nil {
		return err
	}
	if err := r.state.Ban(ctx, stream, user); err != nil {
		return err
	}
	r.emit(ctx, EventUserBanned, moderation{By: a.UserID, UserID: user}, studioChannel(stream))
	return nil
}

// Unban lets a banned user chat again.
func (r *Room) Unban(ctx context.Context, a Actor, stream, user string) error {
	if _, err := r.act(ctx, a, stream, moderate); err != nil {
		return err
	}
	if err := checkUserID("user", user); err != nil {
		return err
	}
	if err := r.state.Unban(ctx, stream, user); err != nil {
		return err
	}
	r.emit(ctx, EventUserUnbanned, moderation{By: a.UserID, UserID: user}, studioChannel(stream))
	return nil
}

// DeleteMessage tells every viewer to remove a chat message (chat.deleted).
// Messages live in the channel's history, not in the room, so any
// well-formed id is accepted.
func (r *Room) DeleteMessage(ctx context.Context, a Actor, stream, messageID string) error {
	if _, err := r.act(ctx, a, stream, moderate); err != nil {
		return err
	}
	if !validMessageID(messageID) {
		return commerce.FieldError("msg", "is not a message id")
	}
	r.emit(ctx, EventChatDeleted, map[string]string{"message_id": messageID}, liveChannel(stream))
	r.emit(ctx, EventMessageDeleted, moderation{By: a.UserID, MessageID: messageID}, studioChannel(stream))
	return nil
}

func validMessageID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// SetSlowMode makes viewers wait seconds between two messages; zero turns
// it off. The host, moderators and admins are never slowed.
func (r *Room) SetSlowMode(ctx context.Context, a Actor, stream string, seconds int) error {
	if _, err := r.act(ctx, a, stream, moderate); err != nil {
		return err
	}
	maxSecs := int(r.cfg.MaxSlowMode / time.Second)
	if seconds < 0 || seconds > maxSecs {
		return commerce.FieldError("seconds", "must be between 0 (off) and %d", maxSecs)
	}
	if err := r.state.SetSlowMode(ctx, stream, seconds); err != nil {
		return err
	}
	r.emit(ctx, EventChatSlowMode, map[string]int{"seconds": seconds}, liveChannel(stream))
	r.emit(ctx, EventSlowModeSet, moderation{By: a.UserID, Seconds: &seconds}, studioChannel(stream))
	return nil
}

// SetMutedWords replaces the room's muted words and returns them as kept
// (lowercase, distinct). Mode is reject (the default) or mask. The list is
// not shown to viewers.
func (r *Room) SetMutedWords(ctx context.Context, a Actor, stream string, words []string, mode WordMode) ([]string, WordMode, error) {
	if _, err := r.act(ctx, a, stream, moderate); err != nil {
		return nil, "", err
	}
	kept, err := normalizeMutedWords(words)
	if err != nil {
		return nil, "", err
	}
	switch mode {
	case "":
		mode = WordsReject
	case WordsReject, WordsMask:
	default:
		return nil, "", commerce.FieldError("mode", `must be "reject" or "mask"`)
	}
	if err := r.state.SetMutedWords(ctx, stream, kept, mode); err != nil {
		return nil, "", err
	}
	r.emit(ctx, EventMutedWordsSet, moderation{By: a.UserID, Words: kept, Mode: mode}, studioChannel(stream))
	return kept, mode, nil
}

// PinMessage pins a message above the room's chat.
func (r *Room) PinMessage(ctx context.Context, a Actor, stream, text string) (PinnedMessage, error) {
	if _, err := r.act(ctx, a, stream, moderate); err != nil {
		return PinnedMessage{}, err
	}
	text, reason := cleanText(text, r.cfg.MaxMessageRunes)
	if reason != "" {
		return PinnedMessage{}, commerce.FieldError("text", "%s", strings.TrimPrefix(reason, "the message "))
	}
	m := PinnedMessage{Text: text, PinnedBy: a.UserID, PinnedAt: r.cfg.Now().UTC().Truncate(time.Millisecond)}
	if err := r.state.SetPinnedMessage(ctx, stream, &m); err != nil {
		return PinnedMessage{}, err
	}
	r.emit(ctx, EventMessagePinned, m, liveChannel(stream))
	r.emit(ctx, EventModMessagePinned, moderation{By: a.UserID, Message: &m}, studioChannel(stream))
	return m, nil
}

// UnpinMessage removes the pinned message.
func (r *Room) UnpinMessage(ctx context.Context, a Actor, stream string) error {
	if _, err := r.act(ctx, a, stream, moderate); err != nil {
		return err
	}
	if err := r.state.SetPinnedMessage(ctx, stream, nil); err != nil {
		return err
	}
	r.emit(ctx, EventMessageUnpinned, struct{}{}, liveChannel(stream))
	r.emit(ctx, EventModMessageUnpinned, moderation{By: a.UserID}, studioChannel(stream))
	return nil
}

// ProductPin is what a host sends to pin a product over the stream.
type ProductPin struct {
	Product commerce.Product `json:"product"`
	// Price in integer rupiah.
	Price int64 `json:"price"`
	// Stock is shown when given.
	Stock *int `json:"stock,omitempty"`
}

func (p *ProductPin) validate() error {
	switch {
	case strings.TrimSpace(p.Product.ID) == "" || len(p.Product.ID) > 100:
		return commerce.FieldError("product.id", "must be 1 to 100 characters")
	case strings.TrimSpace(p.Product.Name) == "" || utf8.RuneCountInString(p.Product.Name) > 200:
		return commerce.FieldError("product.name", "must be 1 to 200 characters")
	case len(p.Product.ImageURL) > 2048 || (p.Product.ImageURL != "" && !strings.HasPrefix(p.Product.ImageURL, "https://") && !strings.HasPrefix(p.Product.ImageURL, "http://")):
		return commerce.FieldError("product.image_url", "must be an http(s) URL of at most 2048 characters")
	case p.Price <= 0 || p.Price > 1_000_000_000:
		return commerce.FieldError("price", "must be a whole number of rupiah between 1 and 1,000,000,000")
	case p.Stock != nil && (*p.Stock < 0 || *p.Stock > 1_000_000):
		return commerce.FieldError("stock", "must be between 0 and 1,000,000")
	}
	return nil
}

// PinProduct pins a product card over the stream (product.pinned, with the
// price and the stock when given).
func (r *Room) PinProduct(ctx context.Context, a Actor, stream string, in ProductPin) (PinnedProduct, error) {
	if _, err := r.act(ctx, a, stream, moderate); err != nil {
		return PinnedProduct{}, err
	}
	if err := in.validate(); err != nil {
		return PinnedProduct{}, err
	}
	p := PinnedProduct{
		Product: in.Product, Price: in.Price, Stock: in.Stock,
		PinnedBy: a.UserID, PinnedAt: r.cfg.Now().UTC().Truncate(time.Millisecond),
	}
	if err := r.state.SetPinnedProduct(ctx, stream, &p); err != nil {
		return PinnedProduct{}, err
	}
	r.emit(ctx, EventProductPinned, p, liveChannel(stream))
	r.emit(ctx, EventModProductPinned, moderation{By: a.UserID, Product: &p}, studioChannel(stream))
	return p, nil
}

// UnpinProduct removes the pinned product.
func (r *Room) UnpinProduct(ctx context.Context, a Actor, stream string) error {
	if _, err := r.act(ctx, a, stream, moderate); err != nil {
		return err
	}
	if err := r.state.SetPinnedProduct(ctx, stream, nil); err != nil {
		return err
	}
	r.emit(ctx, EventProductUnpinned, struct{}{}, liveChannel(stream))
	r.emit(ctx, EventModProductUnpinned, moderation{By: a.UserID}, studioChannel(stream))
	return nil
}

// Moderation returns the room's whole state for the host's console (the
// host, its moderators, admins), also once the stream has ended.
func (r *Room) Moderation(ctx context.Context, a Actor, stream string) (Snapshot, error) {
	if _, err := r.authorize(ctx, a, stream, moderate); err != nil {
		return Snapshot{}, err
	}
	return r.state.Snapshot(ctx, stream, r.cfg.Now())
}
