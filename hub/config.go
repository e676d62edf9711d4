package hub

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Node. Zero values take the defaults given per field.
type Config struct {
	// Name of the node in logs and the info API. Zero means the host name.
	Name string
	// Version reported to clients and in the info API.
	Version string
	// Broker, Presence and Registry are the engine. Nil means a new
	// MemoryEngine for all three.
	Broker   Broker
	Presence PresenceManager
	Registry NodeRegistry
	// Namespaces are the channel rules. Nil means DefaultNamespaces().
	Namespaces []NamespaceOptions
	// Tokens verifies connection and subscription tokens. Nil refuses every
	// token, so only anonymous connections work (when allowed).
	Tokens TokenVerifier
	// AllowAnonymous accepts connections without a token; they may only
	// subscribe to namespaces marked anonymous.
	AllowAnonymous bool
	// Hooks are the application's decisions.
	Hooks Hooks

	// Compression is when WebSocket permessage-deflate is negotiated with a
	// client that offers it. Zero means CompressionNoContextTakeover.
	Compression Compression
	// CompressionThreshold is the size below which a message goes out
	// uncompressed on a compressed connection: deflate does not pay for
	// itself on small messages. Zero means 512 bytes.
	CompressionThreshold int

	// MaxFrameBytes bounds a frame a client sends. Zero means 64 KiB.
	MaxFrameBytes int64
	// MaxQueueBytes bounds the bytes waiting to be written to one
	// connection; a client that falls further behind is disconnected as slow
	// (3008). Zero means 1 MiB.
	MaxQueueBytes int
	// LowPriorityQueueBytes is the queued bytes past which a connection
	// drops low-priority publications instead of queueing them. Zero means
	// a quarter of MaxQueueBytes.
	LowPriorityQueueBytes int
	// MaxBatchBytes bounds the queued frames joined into one WebSocket
	// message. Zero means 64 KiB.
	MaxBatchBytes int
	// WriteTimeout bounds one write to a connection. Zero means 10s.
	WriteTimeout time.Duration
	// MaxConnsPerUser bounds the connections one signed-in user may hold on
	// this node; the next connect is closed with 3504 (connection limit).
	// Anonymous connections are not counted. Zero means no bound.
	MaxConnsPerUser int
	// MaxChannelsPerConn bounds a connection's subscriptions. Zero means 128.
	MaxChannelsPerConn int
	// CommandRate is the sustained commands per second a connection may
	// send, with bursts of CommandBurst. Zero means 50 and 100.
	CommandRate  float64
	CommandBurst int
	// ConnectTimeout is how long a socket may stay open without a connect
	// command before it is closed as stale (3502). Zero means 10s.
	ConnectTimeout time.Duration
	// ExpiredCloseDelay is how long past its credentials' expiry a
	// connection that did not refresh stays open before it is closed (3005).
	// Zero means 25s.
	ExpiredCloseDelay time.Duration
	// PingInterval is how often the server pings; PongTimeout how long it
	// waits for the pong before closing the socket (3012). Zero means 25s and 10s.
	PingInterval time.Duration
	PongTimeout  time.Duration
	// PresenceRefresh is how often presence entries are refreshed; keep it
	// well under the engine's presence expiry. Zero means 20s.
	PresenceRefresh time.Duration
	// HistoryMaxLimit caps the publications one history call returns. Zero means 1000.
	HistoryMaxLimit int
	// ShutdownGrace spreads the closing of connections at shutdown over this
	// long, with jitter, so a rolling restart does not make every phone
	// reconnect in the same second. Zero means 10s.
	ShutdownGrace time.Duration
	// NodeInfoInterval is how often the node reports itself to the registry.
	// Zero means 5s.
	NodeInfoInterval time.Duration

	// Logger receives structured logs. Nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives the hub's metrics. Nil means no metrics registered.
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() error {
	if c.Broker == nil || c.Presence == nil || c.Registry == nil {
		m := NewMemoryEngine()
		if c.Broker == nil {
			c.Broker = m
		}
		if c.Presence == nil {
			c.Presence = m
		}
		if c.Registry == nil {
			c.Registry = m
		}
	}
	if c.Namespaces == nil {
		c.Namespaces = DefaultNamespaces()
	}
	seen := map[string]bool{}
	for i := range c.Namespaces {
		if err := c.Namespaces[i].validate(); err != nil {
			return err
		}
		if seen[c.Namespaces[i].Name] {
			return fmt.Errorf("namespace %q defined twice", c.Namespaces[i].Name)
		}
		seen[c.Namespaces[i].Name] = true
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = 64 << 10
	}
	def(&c.MaxQueueBytes, 1<<20)
	def(&c.LowPriorityQueueBytes, c.MaxQueueBytes/4)
	def(&c.MaxBatchBytes, 64<<10)
	def(&c.CompressionThreshold, 512)
	if c.Compression > CompressionContextTakeover {
		return fmt.Errorf("unknown compression mode %d", c.Compression)
	}
	def(&c.MaxChannelsPerConn, 128)
	def(&c.CommandBurst, 100)
	def(&c.HistoryMaxLimit, 1000)
	if c.CommandRate <= 0 {
		c.CommandRate = 50
	}
	defDur(&c.WriteTimeout, 10*time.Second)
	defDur(&c.ConnectTimeout, 10*time.Second)
	defDur(&c.PingInterval, 25*time.Second)
	defDur(&c.ExpiredCloseDelay, 25*time.Second)
	defDur(&c.PongTimeout, 10*time.Second)
	defDur(&c.PresenceRefresh, 20*time.Second)
	defDur(&c.ShutdownGrace, 10*time.Second)
	defDur(&c.NodeInfoInterval, 5*time.Second)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}
