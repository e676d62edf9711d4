package orderevents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

var _ Log = (*RedisLog)(nil)

// Defaults of RedisOptions.
const (
	defaultRedisURL     = "redis://127.0.0.1:6379"
	defaultRedisKey     = "livehub.orderevents"
	defaultRedisTimeout = 3 * time.Second
)

// eventField is the stream entry field holding the event's JSON.
const eventField = "e"

// RedisOptions configure a RedisLog.
type RedisOptions struct {
	// URL locates Redis: redis://[user:pass@]host:port[/db][?opts],
	// rediss://... over TLS, or unix://[user:pass@]/path/redis.sock[?db=N].
	// Zero means redis://127.0.0.1:6379. Ignored when Client is set.
	URL string
	// Client, when set, is used instead of dialing URL, and is not closed
	// by Close. It may be a cluster client: the log is a single key.
	Client redis.UniversalClient
	// Key is the stream's key. Zero means "livehub.orderevents".
	Key string
	// MaxLen caps the stream, approximately (XADD MAXLEN ~): Redis trims
	// whole nodes, so a few more may be kept. Zero means 100000.
	MaxLen int64
	// ClaimIdle is how long a delivery stays pending on its consumer before
	// another read may take it. Zero means one minute.
	ClaimIdle time.Duration
	// Timeout bounds dialing and each command's network I/O when the client
	// is built from URL; a blocking read adds its block time. Zero means 3s.
	Timeout time.Duration
	// Logger receives entries that could not be decoded. Zero means
	// slog.Default().
	Logger *slog.Logger
}

// RedisLog is a Log on a capped Redis stream with one consumer group per
// Log group: XADD MAXLEN ~ to append, XAUTOCLAIM then XREADGROUP to read,
// XACK to acknowledge, XCLAIM to touch.
type RedisLog struct {
	client    redis.UniversalClient
	ownClient bool
	key       string
	maxLen    int64
	claimIdle time.Duration
	log       *slog.Logger

	mu sync.Mutex
	// groups are the consumer groups known to exist.
	groups map[string]bool
	// cursors are where each group's next XAUTOCLAIM scan starts, so a long
	// list of pending deliveries is walked through rather than rescanned
	// from its start on every read.
	cursors map[string]string
}

// NewRedisLog returns a RedisLog. It does not contact Redis; see Ping.
func NewRedisLog(o RedisOptions) (*RedisLog, error) {
	if o.Timeout <= 0 {
		o.Timeout = defaultRedisTimeout
	}
	l := &RedisLog{
		client:    o.Client,
		key:       o.Key,
		maxLen:    o.MaxLen,
		claimIdle: o.ClaimIdle,
		log:       o.Logger,
		groups:    make(map[string]bool),
		cursors:   make(map[string]string),
	}
	if l.client == nil {
		c, err := newRedisClient(o.URL, o.Timeout)
		if err != nil {
			return nil, err
		}
		l.client, l.ownClient = c, true
	}
	if l.key == "" {
		l.key = defaultRedisKey
	}
	if l.maxLen <= 0 {
		l.maxLen = defaultMaxLen
	}
	if l.claimIdle <= 0 {
		l.claimIdle = defaultClaimIdle
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	return l, nil
}

// newRedisClient builds a client for a single-server URL. Commands are not
// retried: an XADD whose reply was lost may have been applied, and the
// caller decides whether to append again.
func newRedisClient(rawURL string, timeout time.Duration) (*redis.Client, error) {
	if rawURL == "" {
		rawURL = defaultRedisURL
	}
	scheme, _, _ := strings.Cut(rawURL, "://")
	if scheme != "redis" && scheme != "rediss" && scheme != "unix" {
		return nil, fmt.Errorf("orderevents: redis URL scheme %q is not one of redis, rediss, unix", scheme)
	}
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("orderevents: redis URL: %w", err)
	}
	for _, d := range []*time.Duration{&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.PoolTimeout} {
		if *d == 0 {
			*d = timeout
		}
	}
	opt.ContextTimeoutEnabled = true
	if opt.MaxRetries == 0 {
		opt.MaxRetries = -1
	}
	if opt.DialerRetries == 0 {
		opt.DialerRetries = 1
	}
	return redis.NewClient(opt), nil
}

// Ping checks that Redis answers.
func (l *RedisLog) Ping(ctx context.Context) error {
	return l.client.Ping(ctx).Err()
}

// Close closes the client the log dialed; a client given in RedisOptions is
// left open.
func (l *RedisLog) Close() error {
	if l.ownClient {
		return l.client.Close()
	}
	return nil
}

// Append adds e to the stream, trimming it to about MaxLen entries.
func (l *RedisLog) Append(ctx context.Context, e Event) error {
	e, err := prepare(e, time.Now())
	if err != nil {
		return err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return l.client.XAdd(ctx, &redis.XAddArgs{
		Stream: l.key,
		MaxLen: l.maxLen,
		Approx: true,
		Values: []any{eventField, b},
	}).Err()
}

// Read claims deliveries idle longer than ClaimIdle, then reads new events,
// blocking up to block only when there is nothing to claim. A blocked read
// is not interrupted by ctx: it returns when block ends.
func (l *RedisLog) Read(ctx context.Context, group, consumer string, count int, block time.Duration) ([]Delivery, error) {
	count = max(count, 1)
	out, err := l.read(ctx, group, consumer, count, block)
	if isNoGroup(err) {
		// Redis lost the group (a restart without persistence, a flush):
		// make it again and read once more.
		l.forgetGroup(group)
		out, err = l.read(ctx, group, consumer, count, block)
	}
	return out, err
}

func (l *RedisLog) read(ctx context.Context, group, consumer string, count int, block time.Duration) ([]Delivery, error) {
	if err := l.ensureGroup(ctx, group); err != nil {
		return nil, err
	}
	out, err := l.claim(ctx, group, consumer, count)
	if err != nil {
		return nil, err
	}
	if len(out) == count {
		return out, nil
	}
	args := &redis.XReadGroupArgs{
		Group:    group,
		Consumer: consumer,
		Streams:  []string{l.key, ">"},
		Count:    int64(count - len(out)),
		Block:    -1, // no BLOCK argument: go-redis reads 0 as "forever"
	}
	if len(out) == 0 && block > 0 {
		args.Block = max(block, time.Millisecond)
	}
	streams, err := l.client.XReadGroup(ctx, args).Result()
	if errors.Is(err, redis.Nil) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for _, s := range streams {
		out = l.appendDeliveries(ctx, group, out, s.Messages)
	}
	return out, nil
}

// claim takes up to count deliveries of group idle for ClaimIdle.
func (l *RedisLog) claim(ctx context.Context, group, consumer string, count int) ([]Delivery, error) {
	l.mu.Lock()
	start := l.cursors[group]
	l.mu.Unlock()
	if start == "" {
		start = "0-0"
	}
	msgs, next, err := l.client.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream:   l.key,
		Group:    group,
		Consumer: consumer,
		MinIdle:  l.claimIdle,
		Start:    start,
		Count:    int64(count),
	}).Result()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.cursors[group] = next
	l.mu.Unlock()
	return l.appendDeliveries(ctx, group, nil, msgs), nil
}

// appendDeliveries decodes msgs onto out. An entry that does not decode will
// never be deliverable, so it is logged and acknowledged instead of being
// handed out again and again.
func (l *RedisLog) appendDeliveries(ctx context.Context, group string, out []Delivery, msgs []redis.XMessage) []Delivery {
	for _, m := range msgs {
		raw, _ := m.Values[eventField].(string)
		var e Event
		if err := json.Unmarshal([]byte(raw), &e); err != nil || raw == "" {
			l.log.Warn("orderevents: dropping an undecodable stream entry", "key", l.key, "id", m.ID, "err", err)
			if err := l.client.XAck(ctx, l.key, group, m.ID).Err(); err != nil {
				l.log.Warn("orderevents: ack of an undecodable entry", "key", l.key, "id", m.ID, "err", err)
			}
			continue
		}
		out = append(out, Delivery{ID: m.ID, Event: e})
	}
	return out
}

// ensureGroup creates group at the start of the stream, and the stream with
// it, unless it is known to exist.
func (l *RedisLog) ensureGroup(ctx context.Context, group string) error {
	l.mu.Lock()
	known := l.groups[group]
	l.mu.Unlock()
	if known {
		return nil
	}
	err := l.client.XGroupCreateMkStream(ctx, l.key, group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return err
	}
	l.mu.Lock()
	l.groups[group] = true
	l.mu.Unlock()
	return nil
}

func (l *RedisLog) forgetGroup(group string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.groups, group)
	delete(l.cursors, group)
}

func isNoGroup(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOGROUP")
}

// Ack acknowledges ids in group.
func (l *RedisLog) Ack(ctx context.Context, group string, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	err := l.client.XAck(ctx, l.key, group, ids...).Err()
	if isNoGroup(err) {
		return nil // nothing is pending in a group that does not exist
	}
	return err
}

// Touch claims ids for consumer with no minimum idle time, which resets
// their idle time without counting a delivery. An id no longer pending is
// left alone.
func (l *RedisLog) Touch(ctx context.Context, group, consumer string, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	err := l.client.XClaimJustID(ctx, &redis.XClaimArgs{
		Stream:   l.key,
		Group:    group,
		Consumer: consumer,
		MinIdle:  0,
		Messages: ids,
	}).Err()
	if isNoGroup(err) {
		return nil
	}
	return err
}
