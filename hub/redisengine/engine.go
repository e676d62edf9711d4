// Package redisengine is the many-node engine of the hub: hub.Broker,
// hub.PresenceManager and hub.NodeRegistry on Redis, a single server, a
// Sentinel-managed master or a Redis Cluster.
//
// Publications fan out through Redis pub/sub, one subscription per channel per
// node, and carry the offset and epoch the publish script gave them. History
// is a capped Redis stream per channel next to a meta hash holding the epoch
// and the top offset; both are written together with the PUBLISH by one Lua
// script, so a publication is in history and delivered, or neither. Presence
// is a hash per channel with a sorted set of expiry times, so the connections
// of a node that died vanish after PresenceTTL.
//
// On Redis Cluster every key of a channel shares one hash tag and the channel
// is published with SPUBLISH (sharded pub/sub), so a channel's traffic stays
// on the master owning its slot instead of crossing the whole cluster. A node
// holds one pub/sub connection per slot in use, because go-redis resubscribes
// all of a connection's shard channels in one command, which must not cross
// slots; ClusterPartitions bounds that number.
//
// Keys, for prefix P and channel C tagged as T = {C} (see keyspace.tagged):
//
//	P.ch.T               pub/sub channel: publications, joins and leaves
//	P.meta.T             hash: e = epoch, s = top offset
//	P.stream.T           stream: id <offset>-0, field d = encoded publication
//	P.idem.T.<key>       string: "<offset>:<epoch>" of an idempotent publish
//	P.presence.exp.T     sorted set: client id -> expiry (ms)
//	P.presence.data.T    hash: client id -> client info JSON
//	P.presence.users.T   hash: user id -> number of that user's clients
//	{P.nodes}.exp        sorted set: node id -> expiry (ms)
//	{P.nodes}.data       hash: node id -> node info JSON
//	P.control            pub/sub channel of control messages (plain PUBLISH)
package redisengine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livehub/livehub/hub"
	"github.com/redis/go-redis/v9"
)

var (
	_ hub.Broker          = (*Engine)(nil)
	_ hub.BatchPublisher  = (*Engine)(nil)
	_ hub.PresenceManager = (*Engine)(nil)
	_ hub.NodeRegistry    = (*Engine)(nil)
)

// Defaults for the zero values of Options.
const (
	defaultPrefix         = "livehub"
	defaultPresenceTTL    = 60 * time.Second
	defaultHistoryMetaTTL = 30 * 24 * time.Hour // the memory engine's defaultMetaTTL
	defaultTimeout        = 3 * time.Second
	defaultIdempotentTTL  = 5 * time.Minute // hub.PublishOptions.IdempotentResultTTL
)

// Options configure an Engine. Every zero value has a default.
type Options struct {
	// URL locates Redis. The schemes are:
	//
	//	redis://[user:pass@]host:port[/db][?opts]       one server
	//	rediss://...                                    one server over TLS
	//	unix://[user:pass@]/path/redis.sock[?db=N&opts] one server on a unix socket
	//	redis+cluster://[user:pass@]h1:p1,h2:p2[?opts]  Redis Cluster, the hosts are seeds
	//	rediss+cluster://...                            Redis Cluster over TLS
	//	redis+sentinel://[user:pass@]h1:p1,h2:p2/master[?db=N&opts]
	//	                                                the master that Sentinels h1, h2 name
	//	rediss+sentinel://...                           the same over TLS
	//
	// opts are go-redis's URL options (dial_timeout, read_timeout, pool_size,
	// ...). A sentinel URL's user and password are the master's; the
	// sentinels' go in sentinel_username and sentinel_password. Zero means
	// redis://127.0.0.1:6379.
	URL string
	// Prefix starts every key and pub/sub channel name, so several
	// deployments can share a Redis. It must not contain '{' or '}'. Zero
	// means "livehub".
	Prefix string
	// PresenceTTL is how long a presence entry lives without being refreshed
	// by AddPresence. Zero means 60s.
	PresenceTTL time.Duration
	// HistoryMetaTTL is how long a channel's epoch and top offset outlive its
	// last publication; a History call with HistoryOptions.MetaTTL sets it
	// anew. Zero means 30 days, as in the memory engine.
	HistoryMetaTTL time.Duration
	// Timeout bounds every network step: dialing, one command's write and
	// read, waiting for a pooled connection, and a subscription's
	// confirmation. URL options such as read_timeout win over it. When Redis
	// is down, calls fail with hub.ErrUnavailable after at most about this
	// long. Zero means 3s.
	Timeout time.Duration
	// PubSubShards is how many pub/sub connections carry channel
	// subscriptions on a single server or Sentinel master; channels are
	// spread over them by name, and each decodes on its own goroutine. It
	// does not apply to Redis Cluster, where a node holds one connection per
	// hash slot in use (see ClusterPartitions). Zero means 1.
	PubSubShards int
	// ClusterPartitions, when positive, tags a channel's keys with one of
	// this many partition numbers instead of the channel name. On Redis
	// Cluster that bounds the slots in use, and so the sharded pub/sub
	// connections of a node, to ClusterPartitions, at the price of coarser
	// spreading of channels over masters. Changing it renames every channel
	// key, so history and presence start over. Zero means every channel is
	// its own hash tag.
	ClusterPartitions int
	// Logger receives the engine's logs: connection losses and recoveries,
	// not messages. Nil means slog.Default().
	Logger *slog.Logger
	// OnResubscribe, when set, is called after a lost pub/sub connection was
	// re-established, with the hub channels subscribed again on it:
	// publications of those channels may have been missed in between. The
	// handler passed to Run gets the same call when it implements
	// ResubscribeHandler. It runs on the goroutine delivering those channels'
	// events and must not block.
	OnResubscribe func(channels []string)
}

// ResubscribeHandler may be implemented by the hub.BrokerEventHandler given
// to Run to learn that subscriptions were re-established after a lost
// connection. The hub detects gaps from offsets anyway; this lets it look at
// once instead of at the next publication.
type ResubscribeHandler interface {
	// HandleResubscribe is called with the hub channels subscribed again.
	HandleResubscribe(channels []string)
}

// Engine is the Redis engine. It is safe for concurrent use; Run is called
// once, and Close releases the connections.
type Engine struct {
	opts    Options
	log     *slog.Logger
	client  redis.UniversalClient
	cluster *redis.ClusterClient // nil unless Redis Cluster
	keys    keyspace

	publishCmd string // "publish", or "spublish" on Redis Cluster

	subMu   sync.Mutex
	subs    map[string]struct{} // hub channels this node subscribed to
	groups  map[int]*subscriber // by shard (single server) or slot (cluster)
	control *subscriber
	handler hub.BrokerEventHandler
	runCtx  context.Context
	state   runState
	wg      sync.WaitGroup // the subscribers' goroutines
	stopRun context.CancelFunc
	runDone chan struct{}

	malformedCount atomic.Int64

	closeOnce sync.Once
}

type runState int

const (
	notRunning runState = iota
	running
	stopped
)

// New returns an engine for opts. It checks the options and builds the
// client but connects nothing: the client dials on first use. Use Ping to
// check that Redis answers.
func New(opts Options) (*Engine, error) {
	if opts.URL == "" {
		opts.URL = defaultURL
	}
	if opts.Prefix == "" {
		opts.Prefix = defaultPrefix
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, fmt.Errorf("redisengine: prefix %q must not contain braces", opts.Prefix)
	}
	if opts.PresenceTTL <= 0 {
		opts.PresenceTTL = defaultPresenceTTL
	}
	if opts.HistoryMetaTTL <= 0 {
		opts.HistoryMetaTTL = defaultHistoryMetaTTL
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.PubSubShards <= 0 {
		opts.PubSubShards = 1
	}
	if opts.ClusterPartitions < 0 {
		opts.ClusterPartitions = 0
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	client, cluster, err := newClient(opts.URL, opts.Timeout)
	if err != nil {
		return nil, fmt.Errorf("redisengine: %w", err)
	}
	e := &Engine{
		opts:       opts,
		log:        opts.Logger.With("component", "redisengine"),
		client:     client,
		cluster:    cluster,
		keys:       keyspace{prefix: opts.Prefix, partitions: opts.ClusterPartitions},
		publishCmd: "publish",
		subs:       make(map[string]struct{}),
		groups:     make(map[int]*subscriber),
		runDone:    make(chan struct{}),
	}
	if cluster != nil {
		e.publishCmd = "spublish"
	}
	return e, nil
}

// Ping checks that Redis answers; on Redis Cluster it pings every master.
func (e *Engine) Ping(ctx context.Context) error {
	if e.cluster != nil {
		err := e.cluster.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return c.Ping(ctx).Err()
		})
		return e.wrap(ctx, "ping", err)
	}
	return e.wrap(ctx, "ping", e.client.Ping(ctx).Err())
}

// Close stops Run if it is running, waits for it, and closes the connections
// to Redis. Later calls fail with an error wrapping hub.ErrUnavailable. It is
// safe to call more than once.
func (e *Engine) Close() error {
	var err error
	e.closeOnce.Do(func() {
		e.subMu.Lock()
		st, stop := e.state, e.stopRun
		if st == notRunning {
			e.state = stopped
		}
		e.subMu.Unlock()
		if st == running {
			stop()
			<-e.runDone
		}
		err = e.client.Close()
	})
	return err
}

// wrap names the operation and classifies err: the caller's own context
// errors stay as they are, anything saying that Redis cannot be reached or
// cannot serve right now wraps hub.ErrUnavailable.
func (e *Engine) wrap(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		// The caller gave up; what go-redis saw then (often an i/o timeout
		// at the context's deadline) is a consequence, not the cause.
		if errors.Is(err, ctxErr) {
			return fmt.Errorf("redisengine: %s: %w", op, err)
		}
		return fmt.Errorf("redisengine: %s: %w (%v)", op, ctxErr, err)
	}
	if unavailable(err) {
		return fmt.Errorf("redisengine: %s: %w: %w", op, hub.ErrUnavailable, err)
	}
	return fmt.Errorf("redisengine: %s: %w", op, err)
}

// unavailable tells a temporary failure (Redis down, unreachable, loading,
// failing over, a closed client) from a reply that no retry will change.
func unavailable(err error) bool {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		// Network errors, timeouts, a closed client or an exhausted pool.
		return true
	}
	if errors.Is(err, redis.Nil) {
		return false
	}
	msg := strings.TrimPrefix(rerr.Error(), "ERR ")
	for _, p := range []string{"LOADING", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "READONLY", "NOREPLICAS", "BUSY", "MOVED", "ASK"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// Client returns the engine's Redis client, so other parts of a node (the
// commerce store) share its connections and its URL handling. Closing the
// engine closes it.
func (e *Engine) Client() redis.UniversalClient { return e.client }
