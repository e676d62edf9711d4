package push

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

var _ Queue = (*RedisQueue)(nil)

// jobField is the stream entry field holding a job's JSON.
const jobField = "j"

// promoteBatch bounds the delayed jobs one Read moves to the stream.
const promoteBatch = 1000

// RedisQueueOptions configure a RedisQueue.
type RedisQueueOptions struct {
	RedisOptions
	// Name tells queues with one Prefix apart. Zero means "jobs".
	Name string
	// Group is the consumer group the workers read in. Zero means
	// "workers".
	Group string
	// ClaimIdle is how long a delivery stays pending on its consumer before
	// a Read may hand it out again. Zero means one minute.
	ClaimIdle time.Duration
	// MaxLen caps the jobs held, ready, delayed and pending together; an
	// Enqueue past it is ErrQueueFull. Zero means 1000000.
	MaxLen int64
	// Logger receives entries that could not be decoded. Zero means
	// slog.Default().
	Logger *slog.Logger
}

// RedisQueue is a Queue on a Redis stream read by one consumer group:
// XADD to enqueue, XAUTOCLAIM then XREADGROUP to read, XACK and XDEL to
// acknowledge, so the stream holds only jobs not done. Delayed jobs wait in
// a sorted set and a Lua script moves them to the stream when due; both keys
// carry one hash tag, so the script also runs on Redis Cluster.
type RedisQueue struct {
	client    redis.UniversalClient
	stream    string
	delayed   string
	group     string
	claimIdle time.Duration
	maxLen    int64
	log       *slog.Logger

	mu          sync.Mutex
	groupExists bool
	// cursor is where the next XAUTOCLAIM scan starts, so a long list of
	// pending deliveries is walked through rather than rescanned.
	cursor string
}

// NewRedisQueue returns a RedisQueue. It does not contact Redis.
func NewRedisQueue(o RedisQueueOptions) (*RedisQueue, error) {
	ro, err := o.RedisOptions.check()
	if err != nil {
		return nil, err
	}
	if o.Name == "" {
		o.Name = "jobs"
	}
	if o.Group == "" {
		o.Group = "workers"
	}
	if o.ClaimIdle <= 0 {
		o.ClaimIdle = defaultClaimIdle
	}
	if o.MaxLen <= 0 {
		o.MaxLen = defaultQueueLen
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	tag := ro.Prefix + ".queue.{" + o.Name + "}"
	return &RedisQueue{
		client:    ro.Client,
		stream:    tag,
		delayed:   tag + ".delayed",
		group:     o.Group,
		claimIdle: o.ClaimIdle,
		maxLen:    o.MaxLen,
		log:       o.Logger,
		cursor:    "0-0",
	}, nil
}

// Enqueue adds j to the stream, or to the delayed set when j.NotBefore is
// ahead.
func (q *RedisQueue) Enqueue(ctx context.Context, j Job) error {
	now := time.Now()
	j, err := prepareJob(j, now)
	if err != nil {
		return err
	}
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	// The length check and the add are two steps, so concurrent enqueuers
	// may overshoot MaxLen by a few jobs.
	var xlen, zcard *redis.IntCmd
	if _, err := q.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		xlen = p.XLen(ctx, q.stream)
		zcard = p.ZCard(ctx, q.delayed)
		return nil
	}); err != nil {
		return err
	}
	if xlen.Val()+zcard.Val() >= q.maxLen {
		return ErrQueueFull
	}
	if j.NotBefore.After(now) {
		return q.client.ZAdd(ctx, q.delayed, redis.Z{Score: float64(dueMilli(j.NotBefore)), Member: b}).Err()
	}
	return q.client.XAdd(ctx, &redis.XAddArgs{Stream: q.stream, Values: []any{jobField, b}}).Err()
}

// dueMilli is t in Unix milliseconds rounded up, so a delayed job is never
// promoted before its time by the truncation to milliseconds.
func dueMilli(t time.Time) int64 {
	ms := t.UnixMilli()
	if time.UnixMilli(ms).Before(t) {
		ms++
	}
	return ms
}

// Read moves due delayed jobs to the stream, claims deliveries idle past
// ClaimIdle, then reads new jobs, blocking up to block (or until the next
// delayed job is due) only when it has nothing yet.
func (q *RedisQueue) Read(ctx context.Context, consumer string, count int, block time.Duration) ([]Delivery, error) {
	count = max(count, 1)
	deadline := time.Now().Add(block)
	for {
		out, err := q.read(ctx, consumer, count, time.Until(deadline))
		if isNoGroup(err) {
			// Redis lost the group (a restart without persistence, a
			// flush): make it again and read once more.
			q.mu.Lock()
			q.groupExists, q.cursor = false, "0-0"
			q.mu.Unlock()
			out, err = q.read(ctx, consumer, count, time.Until(deadline))
		}
		// A read blocks only until the next delayed job is due; then the
		// job is moved to the stream by the next round.
		if err != nil || len(out) > 0 || ctx.Err() != nil || !time.Now().Before(deadline) {
			return out, err
		}
	}
}

func (q *RedisQueue) read(ctx context.Context, consumer string, count int, block time.Duration) ([]Delivery, error) {
	if err := q.ensureGroup(ctx); err != nil {
		return nil, err
	}
	now := time.Now()
	next, err := promoteScript.Run(ctx, q.client, []string{q.delayed, q.stream},
		now.UnixMilli(), promoteBatch, jobField).Int64()
	if err != nil {
		return nil, err
	}
	if next >= 0 {
		block = min(block, time.UnixMilli(next).Sub(now))
	}
	out, err := q.claim(ctx, consumer, count)
	if err != nil {
		return nil, err
	}
	if len(out) == count {
		return out, nil
	}
	args := &redis.XReadGroupArgs{
		Group:    q.group,
		Consumer: consumer,
		Streams:  []string{q.stream, ">"},
		Count:    int64(count - len(out)),
		Block:    -1, // no BLOCK argument: go-redis reads 0 as "forever"
	}
	if len(out) == 0 && block > 0 {
		args.Block = max(block, time.Millisecond)
	}
	streams, err := q.client.XReadGroup(ctx, args).Result()
	if errors.Is(err, redis.Nil) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for _, s := range streams {
		out = q.appendDeliveries(ctx, out, s.Messages)
	}
	return out, nil
}

func (q *RedisQueue) claim(ctx context.Context, consumer string, count int) ([]Delivery, error) {
	q.mu.Lock()
	start := q.cursor
	q.mu.Unlock()
	msgs, next, err := q.client.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream:   q.stream,
		Group:    q.group,
		Consumer: consumer,
		MinIdle:  q.claimIdle,
		Start:    start,
		Count:    int64(count),
	}).Result()
	if err != nil {
		return nil, err
	}
	q.mu.Lock()
	q.cursor = next
	q.mu.Unlock()
	return q.appendDeliveries(ctx, nil, msgs), nil
}

// appendDeliveries decodes msgs onto out. An entry that does not decode will
// never be deliverable, so it is logged and removed instead of being handed
// out again and again.
func (q *RedisQueue) appendDeliveries(ctx context.Context, out []Delivery, msgs []redis.XMessage) []Delivery {
	for _, m := range msgs {
		raw, _ := m.Values[jobField].(string)
		var j Job
		if err := json.Unmarshal([]byte(raw), &j); err != nil || raw == "" {
			q.log.Warn("push: dropping an undecodable queue entry", "key", q.stream, "id", m.ID, "err", err)
			if err := q.Ack(ctx, m.ID); err != nil {
				q.log.Warn("push: removing an undecodable queue entry", "key", q.stream, "id", m.ID, "err", err)
			}
			continue
		}
		out = append(out, Delivery{ID: m.ID, Job: j})
	}
	return out
}

// ensureGroup creates the group at the start of the stream, and the stream
// with it, unless it is known to exist.
func (q *RedisQueue) ensureGroup(ctx context.Context) error {
	q.mu.Lock()
	known := q.groupExists
	q.mu.Unlock()
	if known {
		return nil
	}
	err := q.client.XGroupCreateMkStream(ctx, q.stream, q.group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return err
	}
	q.mu.Lock()
	q.groupExists = true
	q.mu.Unlock()
	return nil
}

// Ack acknowledges ids and deletes their entries.
func (q *RedisQueue) Ack(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := q.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAck(ctx, q.stream, q.group, ids...)
		p.XDel(ctx, q.stream, ids...)
		return nil
	})
	if isNoGroup(err) {
		// Nothing is pending in a group that does not exist; the entries
		// go with XDEL alone.
		return q.client.XDel(ctx, q.stream, ids...).Err()
	}
	return err
}

func isNoGroup(err error) bool {
	return err != nil && strings.Contains(err.Error(), "NOGROUP")
}
