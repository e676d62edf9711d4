package room

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/internal/commerce"
)

// Chat roles shown with a message.
const (
	RoleHost      = "host"
	RoleModerator = "moderator"
	RoleViewer    = "viewer"
)

// ChatMessage is the data of a chat.message event.
type ChatMessage struct {
	// ID is the message's id, made by the server; chat.deleted names it.
	ID     string `json:"id"`
	Text   string `json:"text"`
	UserID string `json:"user_id"`
	// Name is the display name of the sender's token.
	Name string `json:"name"`
	// Role is host, moderator (the room's moderators and admins) or viewer.
	Role string `json:"role"`
}

// OnPublish is the hub's publish hook for rooms: it checks a chat message a
// client publishes into live:{stream} and returns the chat.message event to
// publish instead. Publications into other channels pass as sent. Refusals
// are *hub.Error: 103 banned or muted, 111 slow mode, 107 a malformed, too
// long or muted-word message, 102 no such stream, 108 the stream has ended.
//
// Checks that need no state (the sender is signed in, the message is well
// formed and short enough) run first; the rest (ban, mute, slow mode, muted
// words) is one atomic State.CheckChat.
func (r *Room) OnPublish(ctx context.Context, c *hub.Client, channel string, data []byte) ([]byte, error) {
	stream, ok := liveStream(channel)
	if !ok {
		return data, nil
	}
	out, outcome, err := r.chat(ctx, c, stream, data)
	r.metrics.chat.WithLabelValues(outcome).Inc()
	return out, err
}

func (r *Room) chat(ctx context.Context, c *hub.Client, stream string, data []byte) ([]byte, string, error) {
	cred := c.Credentials()
	if cred.UserID == "" {
		return nil, outcomeInvalid, hub.ErrorPermissionDenied.WithMessage("sign in to chat")
	}
	text, err := parseChat(data, r.cfg.MaxMessageRunes)
	if err != nil {
		return nil, outcomeInvalid, err
	}
	st, err := r.streams.get(ctx, stream)
	if err != nil {
		if commerce.ErrorCode(err) == commerce.ENOTFOUND {
			return nil, outcomeClosed, hub.ErrorUnknownChannel.WithMessage("no such stream")
		}
		r.log.Warn("room: read stream", "stream", stream, "err", err)
		return nil, outcomeError, hub.ErrorInternal
	}
	if st.State != commerce.StreamLive {
		return nil, outcomeClosed, hub.ErrorNotAvailable.WithMessage("the stream has ended; chat is closed")
	}
	isHost := st.HostID == cred.UserID
	isAdmin := cred.HasRole("admin")
	now := r.cfg.Now()
	v, err := r.state.CheckChat(ctx, ChatCheck{
		Stream: stream, User: cred.UserID, Now: now,
		Exempt: isHost || isAdmin,
		Words:  messageWords(text),
	})
	if err != nil {
		r.log.Warn("room: chat check", "stream", stream, "err", err)
		return nil, outcomeError, hub.ErrorInternal
	}
	outcome := outcomePublished
	switch {
	case v.Banned:
		return nil, outcomeBanned, hub.ErrorPermissionDenied.WithMessage("you are banned from this chat")
	case !v.MutedUntil.IsZero():
		return nil, outcomeMuted, hub.ErrorPermissionDenied.WithMessage(fmt.Sprintf("you are muted in this chat for %s more", remaining(v.MutedUntil.Sub(now))))
	case v.Wait > 0:
		secs := int(math.Ceil(v.Wait.Seconds()))
		return nil, outcomeSlow, hub.ErrorTooManyRequests.WithMessage(fmt.Sprintf("slow mode is on: wait %d %s before your next message", secs, plural(secs, "second")))
	case len(v.Matched) > 0 && v.Mode != WordsMask:
		return nil, outcomeWord, hub.ErrorBadRequest.WithMessage(fmt.Sprintf("the word %q is not allowed in this chat", v.Matched[0]))
	case len(v.Matched) > 0:
		text = maskWords(text, v.Matched)
		outcome = outcomeMasked
	}
	role := RoleViewer
	switch {
	case isHost:
		role = RoleHost
	case v.Moderator || isAdmin:
		role = RoleModerator
	}
	out, err := r.event(EventChatMessage, ChatMessage{
		ID: commerce.NewID("msg"), Text: text,
		UserID: cred.UserID, Name: cred.Name, Role: role,
	})
	if err != nil {
		return nil, outcomeError, err
	}
	return out, outcome, nil
}

// chatInput is the only shape a client may publish into a room.
type chatInput struct {
	Text *string `json:"text"`
}

// parseChat reads {"text": "..."} strictly and returns the cleaned text.
func parseChat(data []byte, maxRunes int) (string, error) {
	const shape = `send {"text": "..."}`
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var in chatInput
	if err := dec.Decode(&in); err != nil || in.Text == nil || len(bytes.TrimSpace(data[dec.InputOffset():])) > 0 {
		return "", hub.ErrorBadRequest.WithMessage(shape)
	}
	text, reason := cleanText(*in.Text, maxRunes)
	if reason != "" {
		return "", hub.ErrorBadRequest.WithMessage(reason)
	}
	return text, nil
}

// remaining formats a wait for people: "45s", "4m30s", "2h0m".
func remaining(d time.Duration) string {
	d = d.Round(time.Second)
	if d < time.Second {
		d = time.Second
	}
	if d >= time.Hour {
		d = d.Round(time.Minute)
		s := d.String()
		return strings.TrimSuffix(s, "0s")
	}
	return d.String()
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
