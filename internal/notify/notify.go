// Package notify delivers the events of personal channels ("user:#42") to
// the user: on the socket when the app is in the foreground on any node,
// and as a push notification when it is not, or when the app does not
// acknowledge the event within the ack window.
//
// The Notifier sits where the shop publishes: it publishes into the hub as
// before and then decides about a push. For an event its Policy lists:
//
//   - no foreground connection on any node (hub presence; a closed socket
//     counts as background): the push is enqueued at once, and the event
//     still goes to any socket;
//   - a foreground connection: a window opens in the PendingStore, shared
//     by the nodes. The app acknowledges the ids it received with the RPC
//     "event.ack" on whichever node holds its socket; when the window ends
//     the publishing node closes it, and pushes if it was still open.
//     Exactly one of the acknowledgement and the window's end finds the
//     window open.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/push"
)

// Defaults of Options.
const (
	defaultAckWindow      = 10 * time.Second
	defaultPendingGrace   = time.Minute
	defaultMaxOpenWindows = 100_000
	defaultChannelPrefix  = "user:#"
)

// Hub is what the Notifier needs of the hub node; *hub.Node is one.
type Hub interface {
	Publish(ctx context.Context, channel string, data []byte, req hub.PublishRequest) (hub.StreamPosition, error)
	UserForeground(ctx context.Context, userID string) (bool, error)
}

// Options configure a Notifier.
type Options struct {
	// Hub publishes and tells who is in the foreground. It may be given
	// later with Bind, since the hub's hooks need the Notifier first.
	Hub Hub
	// Queue takes the pushes. Required.
	Queue push.Queue
	// Pending keeps the open ack windows. With several nodes it must be
	// shared (RedisPending). Zero means a MemoryPending.
	Pending PendingStore
	// Policy says which events are pushed and how. Zero means
	// DefaultPolicy().
	Policy Policy
	// AckWindow is how long a foreground app has to acknowledge an event
	// before it is pushed. Zero means 10s.
	AckWindow time.Duration
	// PendingGrace is how long a window's mark outlives the window in the
	// PendingStore, so a node that is late to close it still finds it.
	// Zero means one minute.
	PendingGrace time.Duration
	// MaxOpenWindows bounds the windows this node waits on; past it, events
	// for foreground users are pushed at once rather than held. Zero means
	// 100000.
	MaxOpenWindows int
	// ChannelPrefix starts the personal channels, followed by the user id.
	// Zero means "user:#".
	ChannelPrefix string
	// Logger receives failures of the stores. Zero means slog.Default().
	Logger *slog.Logger
	// Registerer receives the Notifier's metrics. Zero means none are
	// registered.
	Registerer prometheus.Registerer
}

// Notifier publishes events into the hub and pushes those of personal
// channels that the user may not have seen. It implements the shop's
// Publisher. Run closes the ack windows as they end; Close stops it.
type Notifier struct {
	hub     atomic.Pointer[Hub]
	queue   push.Queue
	pending PendingStore
	policy  Policy
	window  time.Duration
	grace   time.Duration
	maxOpen int
	prefix  string
	metrics *metrics
	log     *slog.Logger

	// kick wakes Run when the first window is added to an empty list.
	kick     chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	mu sync.Mutex
	// windows are the open windows, ending in order: every window lasts
	// AckWindow and is appended when it opens.
	windows []*window
	closed  bool
	running bool
}

// New returns a Notifier. It contacts nothing until used.
func New(o Options) (*Notifier, error) {
	if o.Queue == nil {
		return nil, errors.New("notify: Options.Queue is required")
	}
	n := &Notifier{
		queue:   o.Queue,
		pending: o.Pending,
		policy:  o.Policy,
		window:  o.AckWindow,
		grace:   o.PendingGrace,
		maxOpen: o.MaxOpenWindows,
		prefix:  o.ChannelPrefix,
		metrics: newMetrics(o.Registerer),
		log:     o.Logger,
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if n.pending == nil {
		n.pending = NewMemoryPending()
	}
	if n.policy == nil {
		n.policy = DefaultPolicy()
	}
	if n.window <= 0 {
		n.window = defaultAckWindow
	}
	if n.grace <= 0 {
		n.grace = defaultPendingGrace
	}
	if n.maxOpen <= 0 {
		n.maxOpen = defaultMaxOpenWindows
	}
	if n.prefix == "" {
		n.prefix = defaultChannelPrefix
	}
	if n.log == nil {
		n.log = slog.Default()
	}
	if o.Hub != nil {
		n.Bind(o.Hub)
	}
	return n, nil
}

// Bind gives the Notifier the hub node. The hub's hooks must exist before
// the node does, and the Notifier needs the node, so the node may be given
// here: call Bind before anything publishes.
func (n *Notifier) Bind(h Hub) { n.hub.Store(&h) }

// errNoHub is returned by Publish before Bind.
var errNoHub = errors.New("notify: no hub bound")

// decision is what prepare found about an event before it is published.
type decision struct {
	note push.Notification
	// window is true when a window opened; reason says why the push goes
	// at once otherwise.
	window bool
	reason string
}

// Publish publishes data into channel, then, for an event of a personal
// channel that the Policy pushes, pushes it at once or after the ack
// window. It returns the hub's error only: a failed push is logged and
// counted, and the event is still on the socket. It is the shop's
// Publisher.
func (n *Notifier) Publish(ctx context.Context, channel string, data []byte, idempotencyKey string) error {
	_, err := n.publish(ctx, channel, data, hub.PublishRequest{IdempotencyKey: idempotencyKey})
	return err
}

// PublishLowPriority publishes like Publish, at low priority: a
// connection whose write queue is congested drops it first (the room's
// purchase ticker). The priority travels with the publication through the
// engine to every node. It is the shop's LowPriorityPublisher.
func (n *Notifier) PublishLowPriority(ctx context.Context, channel string, data []byte, idempotencyKey string) error {
	_, err := n.publish(ctx, channel, data, hub.PublishRequest{IdempotencyKey: idempotencyKey, Priority: hub.PriorityLow})
	return err
}

// NodePublisher is the Notifier in the shape of the hub node's Publish, for
// services that publish with a hub.PublishRequest (courier tracking).
type NodePublisher struct{ n *Notifier }

// NodePublisher returns the Notifier as a NodePublisher.
func (n *Notifier) NodePublisher() NodePublisher { return NodePublisher{n} }

// Publish publishes as the node does, with the Notifier's push fallback.
func (p NodePublisher) Publish(ctx context.Context, channel string, data []byte, req hub.PublishRequest) (hub.StreamPosition, error) {
	return p.n.publish(ctx, channel, data, req)
}

func (n *Notifier) publish(ctx context.Context, channel string, data []byte, req hub.PublishRequest) (hub.StreamPosition, error) {
	hp := n.hub.Load()
	if hp == nil {
		return hub.StreamPosition{}, errNoHub
	}
	h := *hp
	// The window opens before the publish, so an acknowledgement, which
	// can only follow the publish, always finds it.
	d := n.prepare(ctx, h, channel, data)
	sp, err := h.Publish(ctx, channel, data, req)
	n.settle(ctx, d, err)
	return sp, err
}

// broadcaster is a Hub that publishes into several channels in one call
// (the node: one round trip on Redis).
type broadcaster interface {
	Broadcast(ctx context.Context, channels []string, data []byte, req hub.PublishRequest) []hub.BroadcastResult
}

// PublishMany publishes data into every channel as Publish does into one,
// at low priority when low is set, in one call to the hub when it can
// take several channels at once. It returns an error per channel. It makes
// the Notifier the shop's ManyPublisher.
func (n *Notifier) PublishMany(ctx context.Context, channels []string, data []byte, idempotencyKey string, low bool) []error {
	req := hub.PublishRequest{IdempotencyKey: idempotencyKey}
	if low {
		req.Priority = hub.PriorityLow
	}
	errs := make([]error, len(channels))
	hp := n.hub.Load()
	if hp == nil {
		for i := range errs {
			errs[i] = errNoHub
		}
		return errs
	}
	h := *hp
	b, ok := h.(broadcaster)
	if !ok {
		for i, ch := range channels {
			_, errs[i] = n.publish(ctx, ch, data, req)
		}
		return errs
	}
	ds := make([]*decision, len(channels))
	for i, ch := range channels {
		ds[i] = n.prepare(ctx, h, ch, data)
	}
	for i, r := range b.Broadcast(ctx, channels, data, req) {
		errs[i] = r.Err
		n.settle(ctx, ds[i], r.Err)
	}
	return errs
}

// settle pushes or schedules the push of decision d after its publish
// ended with err; a nil d pushes nothing.
func (n *Notifier) settle(ctx context.Context, d *decision, err error) {
	if d == nil {
		return
	}
	switch {
	case err != nil:
		// No socket got the event: push it now, unless its window was
		// somehow acknowledged.
		if d.window && !n.take(ctx, &d.note) {
			return
		}
		n.enqueue(ctx, d.note, pushUnpublished)
	case d.window:
		n.schedule(ctx, d.note)
	default:
		n.enqueue(ctx, d.note, d.reason)
	}
}

// prepare returns the decision about data on channel, nil when it is not to
// be pushed.
func (n *Notifier) prepare(ctx context.Context, h Hub, channel string, data []byte) *decision {
	user, ok := strings.CutPrefix(channel, n.prefix)
	if !ok || user == "" {
		return nil
	}
	var ev event
	if json.Unmarshal(data, &ev) != nil || ev.ID == "" {
		return nil
	}
	rule, ok := n.policy[ev.Type]
	if !ok {
		return nil
	}
	note, ok := rule.notification(user, &ev, time.Now())
	if !ok {
		return nil
	}
	d := &decision{note: note}
	fg, err := h.UserForeground(ctx, user)
	if err != nil {
		// Better a notification the user may have seen than one lost.
		n.metrics.errors.WithLabelValues(opPresence).Inc()
		n.log.Warn("notify: reading presence; pushing", "user", user, "event", ev.ID, "err", err)
		d.reason = pushNoPresence
		return d
	}
	if !fg {
		d.reason = pushBackground
		return d
	}
	n.mu.Lock()
	unavailable := n.closed || len(n.windows) >= n.maxOpen
	n.mu.Unlock()
	if unavailable {
		d.reason = pushNoWindow
		return d
	}
	added, err := n.pending.Add(ctx, user, ev.ID, n.window+n.grace)
	if err != nil {
		n.metrics.errors.WithLabelValues(opPending).Inc()
		n.log.Warn("notify: opening an ack window; pushing", "user", user, "event", ev.ID, "err", err)
		d.reason = pushNoWindow
		return d
	}
	if !added {
		// The same event is published again while its window is open:
		// that window decides.
		return nil
	}
	d.window = true
	return d
}

// enqueue hands note to the push queue.
func (n *Notifier) enqueue(ctx context.Context, note push.Notification, reason string) {
	if err := n.queue.Enqueue(ctx, push.Job{Notification: note}); err != nil {
		n.metrics.errors.WithLabelValues(opEnqueue).Inc()
		n.log.Warn("notify: enqueueing a push", "user", note.UserID, "event", note.ID, "err", err)
		return
	}
	n.metrics.pushes.WithLabelValues(reason).Inc()
}
