package hub

import (
	"context"
	"errors"
	"time"
)

// Publication is one message in a channel as the engines store and deliver it.
// Data is the application payload (a JSON value on the JSON protocol); the
// engine assigns Offset when the channel keeps history.
type Publication struct {
	// Offset is the position of the publication in the channel's stream,
	// starting at 1. Zero means the channel keeps no history.
	Offset uint64 `json:"o,omitempty"`
	// Data is the payload, passed through untouched.
	Data []byte `json:"d"`
	// Info describes the client that published, nil for server publications.
	Info *ClientInfo `json:"i,omitempty"`
	// Tags are optional string key-values delivered with the publication.
	Tags map[string]string `json:"t,omitempty"`
	// Time is the publication time in Unix milliseconds.
	Time int64 `json:"tm,omitempty"`
	// Priority says what a congested connection may drop first.
	Priority Priority `json:"pr,omitempty"`
}

// Priority orders publications under overload. A connection whose write
// queue holds more than Config.LowPriorityQueueBytes drops low-priority
// publications (likes, viewer counts, chat, courier positions: each soon
// superseded or merely social) and keeps queueing normal ones (stock,
// orders), so a phone on a bad network falls behind on chatter before it
// falls behind on what it pays for.
type Priority uint8

const (
	// PriorityNormal publications are always queued while the queue has room.
	PriorityNormal Priority = iota
	// PriorityLow publications are dropped for congested connections.
	PriorityLow
)

// ClientInfo identifies a connection in publications and presence.
type ClientInfo struct {
	ClientID string `json:"c"`
	UserID   string `json:"u"`
	ConnInfo []byte `json:"ci,omitempty"`
	ChanInfo []byte `json:"chi,omitempty"`
}

// StreamPosition is a place in a channel's history: the offset of the last
// publication and the epoch of the stream. A new epoch means the stream was
// lost (history expired or the engine restarted without it) and offsets from
// an older epoch mean nothing.
type StreamPosition struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// PublishOptions tune one publish call.
type PublishOptions struct {
	// HistorySize keeps at most this many publications in the channel's
	// history. Zero keeps no history.
	HistorySize int
	// HistoryTTL drops the channel's history after this long without a
	// publication. Must be set when HistorySize is.
	HistoryTTL time.Duration
	// ClientInfo is attached to the publication when a client published it.
	ClientInfo *ClientInfo
	// Tags are delivered with the publication.
	Tags map[string]string
	// IdempotencyKey, when set, makes a repeated publish with the same key
	// within IdempotentResultTTL return the first result without publishing again.
	IdempotencyKey string
	// IdempotentResultTTL is how long IdempotencyKey is remembered. Zero means 5 minutes.
	IdempotentResultTTL time.Duration
	// Priority travels with the publication to every node.
	Priority Priority
}

// BatchPublisher is a Broker that publishes into several channels in one
// step: the Redis engine sends the whole batch in one round trip. Each
// publication is as atomic as Publish makes it; the batch as a whole is
// not: some may fail while others succeed.
type BatchPublisher interface {
	// PublishBatch publishes every item and returns one result per item,
	// in order.
	PublishBatch(ctx context.Context, items []BatchItem) []BatchResult
}

// BatchItem is one publication of a batch.
type BatchItem struct {
	Channel string
	Data    []byte
	Options PublishOptions
}

// BatchResult is what Publish would have returned for one item.
type BatchResult struct {
	Position StreamPosition
	Cached   bool
	Err      error
}

// HistoryOptions select publications from a channel's history.
type HistoryOptions struct {
	// Since returns publications after this position. Nil starts at the
	// beginning (or the end when Reverse is set).
	Since *StreamPosition
	// Limit caps the number of publications returned. Zero returns none (only
	// the stream position); a negative value returns all kept.
	Limit int
	// Reverse returns the newest publications first.
	Reverse bool
	// MetaTTL is how long the stream's epoch and offset outlive its last
	// publication. Zero means the engine's default.
	MetaTTL time.Duration
}

// BrokerEventHandler receives what a Broker delivers for the channels this
// node subscribed to. Calls for one channel arrive in publication order.
type BrokerEventHandler interface {
	// HandlePublication is called for every publication in a subscribed channel.
	HandlePublication(channel string, pub *Publication, sp StreamPosition) error
	// HandleJoin is called when a client joins a subscribed channel on any node.
	HandleJoin(channel string, info *ClientInfo) error
	// HandleLeave is called when a client leaves a subscribed channel on any node.
	HandleLeave(channel string, info *ClientInfo) error
	// HandleControl is called with every control message of the cluster,
	// including this node's own.
	HandleControl(data []byte) error
}

// Broker moves publications between nodes and keeps channel history. The
// memory engine implements it for one node, the Redis engine for many.
type Broker interface {
	// Run starts delivering events to h and returns when ctx is done or the
	// broker fails for good. It is called once.
	Run(ctx context.Context, h BrokerEventHandler) error
	// Subscribe makes this node receive the channel's publications. Calls are
	// counted by the node: the broker sees one Subscribe per channel per node.
	Subscribe(ctx context.Context, channel string) error
	// Unsubscribe stops the channel's publications to this node.
	Unsubscribe(ctx context.Context, channel string) error
	// Publish stores the publication in history (when opts ask for it) and
	// delivers it to every node subscribed to the channel, atomically: a
	// publication is either in history and delivered, or neither.
	// It returns the position of the new publication and whether an earlier
	// publish with the same idempotency key made it.
	Publish(ctx context.Context, channel string, data []byte, opts PublishOptions) (StreamPosition, bool, error)
	// PublishJoin announces a client joining the channel.
	PublishJoin(ctx context.Context, channel string, info *ClientInfo) error
	// PublishLeave announces a client leaving the channel.
	PublishLeave(ctx context.Context, channel string, info *ClientInfo) error
	// PublishControl sends a control message to every node.
	PublishControl(ctx context.Context, data []byte) error
	// History returns publications from the channel's history and the
	// current stream position.
	History(ctx context.Context, channel string, opts HistoryOptions) ([]*Publication, StreamPosition, error)
	// RemoveHistory drops the channel's history; the stream position stays.
	RemoveHistory(ctx context.Context, channel string) error
}

// PresenceStats counts a channel's connections and distinct users.
type PresenceStats struct {
	NumClients int `json:"num_clients"`
	NumUsers   int `json:"num_users"`
}

// PresenceManager keeps who is in a channel, across every node.
type PresenceManager interface {
	// Presence returns the channel's connections keyed by client id.
	Presence(ctx context.Context, channel string) (map[string]*ClientInfo, error)
	// PresenceStats counts the channel's connections and distinct users.
	PresenceStats(ctx context.Context, channel string) (PresenceStats, error)
	// AddPresence adds or refreshes a connection in the channel. Entries not
	// refreshed within the engine's presence TTL disappear by themselves, so a
	// node that dies without cleaning up leaves no ghosts behind.
	AddPresence(ctx context.Context, channel, clientID string, info *ClientInfo) error
	// RemovePresence removes a connection from the channel.
	RemovePresence(ctx context.Context, channel, clientID, userID string) error
}

// ErrUnavailable reports that the engine cannot be reached right now; the
// client gets a temporary error and retries.
var ErrUnavailable = errors.New("engine unavailable")
