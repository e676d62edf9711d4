// Package room runs a live stream's room, the channel live:{streamID}: chat
// checked and stamped by the server, moderation by the host and the
// moderators it appoints, likes counted per node and announced a few times a
// second, the viewer count, and the pinned message and product.
//
// The room plugs into the hub through hub.Hooks (Hooks): the OnPublish hook
// turns a viewer's {"text": "..."} into a chat.message event or refuses it
// with a precise protocol error, and the RPC "likes.add" counts taps. Its
// state lives behind State: MemoryState for one node, RedisState for many.
//
// A room's events travel in commerce.Event envelopes. On live:{streamID}:
// chat.message, chat.deleted, chat.slow_mode, message.pinned,
// message.unpinned, product.pinned, product.unpinned, likes.count and
// viewers.count. On studio:{streamID}, every moderation action as
// moderation.* (moderator_added, moderator_removed, user_muted,
// user_unmuted, user_banned, user_unbanned, message_deleted, slow_mode,
// muted_words, message_pinned, message_unpinned, product_pinned,
// product_unpinned).
package room

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/internal/commerce"
)

// Event types of the room.
const (
	EventChatMessage     = "chat.message"
	EventChatDeleted     = "chat.deleted"
	EventChatSlowMode    = "chat.slow_mode"
	EventMessagePinned   = "message.pinned"
	EventMessageUnpinned = "message.unpinned"
	EventProductPinned   = "product.pinned"
	EventProductUnpinned = "product.unpinned"
	EventLikesCount      = "likes.count"
	EventViewersCount    = "viewers.count"

	EventModeratorAdded     = "moderation.moderator_added"
	EventModeratorRemoved   = "moderation.moderator_removed"
	EventUserMuted          = "moderation.user_muted"
	EventUserUnmuted        = "moderation.user_unmuted"
	EventUserBanned         = "moderation.user_banned"
	EventUserUnbanned       = "moderation.user_unbanned"
	EventMessageDeleted     = "moderation.message_deleted"
	EventSlowModeSet        = "moderation.slow_mode"
	EventMutedWordsSet      = "moderation.muted_words"
	EventModMessagePinned   = "moderation.message_pinned"
	EventModMessageUnpinned = "moderation.message_unpinned"
	EventModProductPinned   = "moderation.product_pinned"
	EventModProductUnpinned = "moderation.product_unpinned"
)

// LikesMethod is the RPC a viewer's app calls with {"stream_id": "...",
// "count": n}: the taps since its last call.
const LikesMethod = "likes.add"

var _ Hub = (*hub.Node)(nil)

// Hub is what the room needs of the hub node: *hub.Node provides it.
type Hub interface {
	Publish(ctx context.Context, channel string, data []byte, req hub.PublishRequest) (hub.StreamPosition, error)
	PresenceStats(ctx context.Context, channel string) (hub.PresenceStats, error)
	// Channels returns the channels with a prefix that have subscribers,
	// with this node's number of subscribers in each.
	Channels(ctx context.Context, prefix string) (map[string]int, error)
}

// Streams finds streams: commerce.Store and the shop provide it.
type Streams interface {
	GetStream(ctx context.Context, id string) (commerce.Stream, error)
}

// Config configures a Room. Zero values take the defaults given per field.
type Config struct {
	// Hub is the node the room publishes through. The node is built with
	// the room's hooks, so it usually does not exist yet: leave Hub nil and
	// call Bind once it does.
	Hub Hub
	// Streams tells whether a stream exists, who hosts it and whether it is live.
	Streams Streams
	// State keeps the rooms. Nil means a new MemoryState (one node only).
	State State
	// MaxMessageRunes bounds a chat message, after trimming. Zero means 300.
	MaxMessageRunes int
	// MaxLikesPerCall bounds the count of one likes.add call. Zero means 50.
	MaxLikesPerCall int
	// MaxMute bounds a mute's duration. Zero means 7 days.
	MaxMute time.Duration
	// MaxSlowMode bounds slow mode's interval. Zero means 1 hour.
	MaxSlowMode time.Duration
	// LikesInterval is how often the node's tap counts are added to the
	// state, and the least time between two likes.count events of a stream,
	// across every node. Zero means 500ms.
	LikesInterval time.Duration
	// ViewersInterval is how often the viewer count of the streams watched
	// through this node is read, and the least time between two
	// viewers.count events of a stream. Zero means 500ms.
	ViewersInterval time.Duration
	// StreamCacheTTL is how long a stream read for chat and likes is reused,
	// so a burst of taps does not become a burst of store reads; a stream
	// that ends is seen within it. Zero means 1s; negative turns caching off.
	StreamCacheTTL time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Logger receives what went wrong in the background. Nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives the room's metrics. Nil means none registered.
	Registerer prometheus.Registerer
}

// Room runs the rooms of every stream on this node. Build it with New, give
// the hub its Hooks, Bind it to the node once the node exists, and Run it.
type Room struct {
	cfg     Config
	state   State
	streams *streamCache
	log     *slog.Logger
	metrics *metrics
	// hub is set once by Bind, before the node serves connections.
	hub Hub

	// likesMu guards pending: taps counted on this node and not yet added
	// to the state.
	likesMu sync.Mutex
	pending map[string]int64

	// flushMu serialises likes flushes (the ticker, Summary) and guards
	// unannounced.
	flushMu sync.Mutex
	// unannounced are streams whose likes total changed while another node
	// held the announcement; the next tick tries again.
	unannounced map[string]struct{}
}

// New returns a Room.
func New(cfg Config) (*Room, error) {
	if cfg.Streams == nil {
		return nil, errors.New("room: Streams is required")
	}
	if cfg.State == nil {
		cfg.State = NewMemoryState()
	}
	if cfg.MaxMessageRunes <= 0 {
		cfg.MaxMessageRunes = 300
	}
	if cfg.MaxLikesPerCall <= 0 {
		cfg.MaxLikesPerCall = 50
	}
	if cfg.MaxMute <= 0 {
		cfg.MaxMute = 7 * 24 * time.Hour
	}
	if cfg.MaxSlowMode <= 0 {
		cfg.MaxSlowMode = time.Hour
	}
	if cfg.LikesInterval <= 0 {
		cfg.LikesInterval = 500 * time.Millisecond
	}
	if cfg.ViewersInterval <= 0 {
		cfg.ViewersInterval = 500 * time.Millisecond
	}
	if cfg.StreamCacheTTL == 0 {
		cfg.StreamCacheTTL = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Room{
		cfg:         cfg,
		state:       cfg.State,
		streams:     newStreamCache(cfg.Streams, cfg.StreamCacheTTL, cfg.Now),
		log:         cfg.Logger,
		hub:         cfg.Hub,
		metrics:     newMetrics(cfg.Registerer),
		pending:     make(map[string]int64),
		unannounced: make(map[string]struct{}),
	}, nil
}

// Bind gives the room the hub node it publishes through. The hub's hooks
// must exist before the node does, and the room needs the node to publish,
// so the node is given here: call Bind before the node serves connections
// and before Run.
func (r *Room) Bind(h Hub) { r.hub = h }

// Hooks returns next with the room's hooks added: OnPublish for live:
// channels (publications on other channels go to next.OnPublish, or through
// as sent), and the likes.add RPC.
func (r *Room) Hooks(next hub.Hooks) hub.Hooks {
	out := next
	nextPublish := next.OnPublish
	out.OnPublish = func(ctx context.Context, c *hub.Client, channel string, data []byte) ([]byte, error) {
		if _, ok := liveStream(channel); ok || nextPublish == nil {
			return r.OnPublish(ctx, c, channel, data)
		}
		return nextPublish(ctx, c, channel, data)
	}
	nextGrant := next.Grant
	out.Grant = func(ctx context.Context, c *hub.Client, channel string) (bool, error) {
		if stream, ok := strings.CutPrefix(channel, "studio:"); ok {
			return r.GrantStudio(ctx, c.UserID(), stream)
		}
		if nextGrant == nil {
			return false, nil
		}
		return nextGrant(ctx, c, channel)
	}
	nextPresence := next.Presence
	out.Presence = func(ctx context.Context, c *hub.Client, channel string) (bool, error) {
		if stream, ok := liveStream(channel); ok {
			// The viewer list carries user ids: the stream's own host and
			// moderators and admins see it, not every host.
			if cred := c.Credentials(); cred.HasRole("admin") {
				return true, nil
			}
			return r.GrantStudio(ctx, c.UserID(), stream)
		}
		if nextPresence == nil {
			return true, nil
		}
		return nextPresence(ctx, c, channel)
	}
	out.RPC = make(map[string]hub.RPCHandler, len(next.RPC)+1)
	for k, v := range next.RPC {
		out.RPC[k] = v
	}
	out.RPC[LikesMethod] = r.AddLikes
	return out
}

// GrantStudio opens studio:{stream} to the stream's host and the moderators
// the host appointed; admins pass by their role. Other hosts do not see a
// stream's orders and revenue.
func (r *Room) GrantStudio(ctx context.Context, user, stream string) (bool, error) {
	if user == "" {
		return false, nil
	}
	st, err := r.streams.get(ctx, stream)
	if err != nil {
		if commerce.ErrorCode(err) == commerce.ENOTFOUND {
			return false, nil
		}
		return false, err
	}
	if st.HostID == user {
		return true, nil
	}
	return r.state.IsModerator(ctx, stream, user)
}

// Run counts viewers and flushes likes until ctx is done; then it adds the
// taps still counted on this node to the state, so a shutdown loses none.
func (r *Room) Run(ctx context.Context) {
	likes := time.NewTicker(r.cfg.LikesInterval)
	defer likes.Stop()
	viewers := time.NewTicker(r.cfg.ViewersInterval)
	defer viewers.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			r.flushLikes(fctx, false)
			cancel()
			return
		case <-likes.C:
			r.flushLikes(ctx, true)
		case <-viewers.C:
			r.countViewers(ctx)
		}
	}
}

func liveChannel(stream string) string   { return "live:" + stream }
func studioChannel(stream string) string { return "studio:" + stream }

func liveStream(channel string) (string, bool) {
	stream, ok := strings.CutPrefix(channel, "live:")
	return stream, ok && stream != ""
}

// event encodes an envelope.
func (r *Room) event(typ string, data any) ([]byte, error) {
	ev, err := commerce.NewEvent(typ, r.cfg.Now(), data)
	if err != nil {
		return nil, err
	}
	return json.Marshal(ev)
}

// emit publishes an event into channels. The state already changed, so a
// failed publish is logged and does not undo it.
func (r *Room) emit(ctx context.Context, typ string, data any, channels ...string) {
	b, err := r.event(typ, data)
	if err != nil {
		r.log.Error("room: encode event", "type", typ, "err", err)
		return
	}
	if strings.HasPrefix(typ, "moderation.") {
		r.metrics.moderation.WithLabelValues(typ).Inc()
	}
	// Counters are superseded by the next one: they stay out of history.
	counter := typ == EventLikesCount || typ == EventViewersCount
	req := hub.PublishRequest{Ephemeral: counter}
	if counter {
		// Congested phones drop counters before stock and orders.
		req.Priority = hub.PriorityLow
	}
	for _, ch := range channels {
		if _, err := r.hub.Publish(ctx, ch, b, req); err != nil {
			r.log.Warn("room: publish event", "type", typ, "channel", ch, "err", err)
		}
	}
}
