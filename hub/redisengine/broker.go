package redisengine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/livehub/livehub/hub"
)

// newEpoch returns the epoch a stream gets when it has none. Epochs are hex:
// the publication message format relies on them holding no colon.
func newEpoch() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Publish stores the publication in the channel's history when opts ask for
// it and publishes it to every node subscribed to the channel, both in one
// Lua script. A publish without history or idempotency key is a plain
// PUBLISH (SPUBLISH on Redis Cluster).
func (e *Engine) Publish(ctx context.Context, channel string, data []byte, opts hub.PublishOptions) (hub.StreamPosition, bool, error) {
	if err := ctx.Err(); err != nil {
		return hub.StreamPosition{}, false, err
	}
	c := e.publishCall(channel, data, opts)
	if c.plain {
		return hub.StreamPosition{}, false, e.wrap(ctx, "publish", e.publishMessage(ctx, channel, c.msg))
	}
	res, err := publishScript.Run(ctx, e.client, c.keys, c.args...).Slice()
	r := e.publishResult(ctx, res, err)
	return r.Position, r.Cached, r.Err
}

// PublishBatch publishes every item as Publish does, all in one pipeline:
// one round trip to Redis for the batch (on Redis Cluster, one per node
// holding some of the channels). It implements hub.BatchPublisher.
func (e *Engine) PublishBatch(ctx context.Context, items []hub.BatchItem) []hub.BatchResult {
	out := make([]hub.BatchResult, len(items))
	if err := ctx.Err(); err != nil {
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	calls := make([]publishCall, len(items))
	cmds := make([]redis.Cmder, len(items))
	pipe := e.client.Pipeline()
	for i, it := range items {
		c := e.publishCall(it.Channel, it.Data, it.Options)
		calls[i] = c
		switch {
		case !c.plain:
			cmds[i] = publishScript.EvalSha(ctx, pipe, c.keys, c.args...)
		case e.cluster != nil:
			cmds[i] = pipe.SPublish(ctx, e.keys.pubsub(it.Channel), c.msg)
		default:
			cmds[i] = pipe.Publish(ctx, e.keys.pubsub(it.Channel), c.msg)
		}
	}
	// Each command's error is read from the command below.
	_, _ = pipe.Exec(ctx)
	for i, c := range calls {
		if c.plain {
			out[i].Err = e.wrap(ctx, "publish", cmds[i].Err())
			continue
		}
		res, err := cmds[i].(*redis.Cmd).Slice()
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			// Redis does not have the script (it restarted): this
			// publication was not made. Publish loads the script.
			res, err = publishScript.Run(ctx, e.client, c.keys, c.args...).Slice()
		}
		out[i] = e.publishResult(ctx, res, err)
	}
	return out
}

// publishCall is what one publication sends to Redis: a run of the publish
// script or, for a publication without history or idempotency key, the
// message of a plain PUBLISH.
type publishCall struct {
	plain bool
	msg   []byte
	keys  []string
	args  []any
}

func (e *Engine) publishCall(channel string, data []byte, opts hub.PublishOptions) publishCall {
	pub := hub.Publication{Data: data, Info: opts.ClientInfo, Tags: opts.Tags, Time: time.Now().UnixMilli(), Priority: opts.Priority}
	body := encodePublication(&pub)
	withHistory := opts.HistorySize > 0 && opts.HistoryTTL > 0

	if !withHistory && opts.IdempotencyKey == "" {
		msg := make([]byte, 0, len(body)+4)
		msg = append(msg, "p0::"...)
		msg = append(msg, body...)
		return publishCall{plain: true, msg: msg}
	}

	keys := []string{e.keys.meta(channel), e.keys.stream(channel)}
	idemTTL := opts.IdempotentResultTTL
	if opts.IdempotencyKey != "" {
		keys = append(keys, e.keys.idempotency(channel, opts.IdempotencyKey))
		if idemTTL <= 0 {
			idemTTL = defaultIdempotentTTL
		}
	}
	size, historyTTL := 0, time.Duration(0)
	if withHistory {
		size, historyTTL = opts.HistorySize, opts.HistoryTTL
	}
	return publishCall{keys: keys, args: []any{
		e.keys.pubsub(channel),
		body,
		size,
		millis(historyTTL),
		millis(e.opts.HistoryMetaTTL),
		newEpoch(),
		millis(idemTTL),
		e.publishCmd,
	}}
}

// publishResult reads the publish script's reply.
func (e *Engine) publishResult(ctx context.Context, res []any, err error) hub.BatchResult {
	if err != nil {
		return hub.BatchResult{Err: e.wrap(ctx, "publish", err)}
	}
	if len(res) != 3 {
		return hub.BatchResult{Err: fmt.Errorf("redisengine: publish: unexpected reply %v", res)}
	}
	sp, err := streamPosition(res[0], res[1])
	if err != nil {
		return hub.BatchResult{Err: fmt.Errorf("redisengine: publish: %w", err)}
	}
	cached, _ := res[2].(int64)
	return hub.BatchResult{Position: sp, Cached: cached == 1}
}

// millis renders a duration for PEXPIRE and friends, rounding up so a
// sub-millisecond TTL does not become "no expiry" or an error.
func millis(d time.Duration) string {
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return strconv.FormatInt(int64(ms), 10)
}

func streamPosition(offset, epoch any) (hub.StreamPosition, error) {
	o, _ := offset.(string)
	ep, ok := epoch.(string)
	n, err := strconv.ParseUint(o, 10, 64)
	if err != nil || !ok {
		return hub.StreamPosition{}, fmt.Errorf("unexpected stream position %v:%v", offset, epoch)
	}
	return hub.StreamPosition{Offset: n, Epoch: ep}, nil
}

// PublishJoin announces a client joining the channel to the nodes subscribed
// to it, on the channel's own pub/sub channel so that it keeps its place
// among the channel's publications.
func (e *Engine) PublishJoin(ctx context.Context, channel string, info *hub.ClientInfo) error {
	return e.publishClientInfo(ctx, "publish join", channel, kindJoin, info)
}

// PublishLeave announces a client leaving the channel, like PublishJoin.
func (e *Engine) PublishLeave(ctx context.Context, channel string, info *hub.ClientInfo) error {
	return e.publishClientInfo(ctx, "publish leave", channel, kindLeave, info)
}

func (e *Engine) publishClientInfo(ctx context.Context, op, channel string, kind byte, info *hub.ClientInfo) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	msg := encodeClientInfoMessage(kind, info)
	return e.wrap(ctx, op, e.publishMessage(ctx, channel, msg))
}

// publishMessage sends msg on the channel's pub/sub channel, sharded on
// Redis Cluster.
func (e *Engine) publishMessage(ctx context.Context, channel string, msg []byte) error {
	if e.cluster != nil {
		return e.cluster.SPublish(ctx, e.keys.pubsub(channel), msg).Err()
	}
	return e.client.Publish(ctx, e.keys.pubsub(channel), msg).Err()
}

// PublishControl sends data to every node, this one included, on the
// prefix-wide control channel. It uses plain PUBLISH in every mode: on Redis
// Cluster that reaches every node's subscription wherever it is connected.
func (e *Engine) PublishControl(ctx context.Context, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return e.wrap(ctx, "publish control", e.client.Publish(ctx, e.keys.control(), data).Err())
}

// History returns publications of the channel's history and its current
// position, with the memory engine's semantics: publications after
// opts.Since (all when nil), oldest first or newest first with Reverse, at
// most Limit of them; Limit zero returns only the position and a negative
// Limit every publication kept. A channel without a stream gets a new epoch.
func (e *Engine) History(ctx context.Context, channel string, opts hub.HistoryOptions) ([]*hub.Publication, hub.StreamPosition, error) {
	if err := ctx.Err(); err != nil {
		return nil, hub.StreamPosition{}, err
	}
	limit := opts.Limit
	first := ""
	if opts.Since != nil {
		if opts.Since.Offset == math.MaxUint64 {
			limit = 0 // nothing can come after the largest offset
		} else {
			first = strconv.FormatUint(opts.Since.Offset+1, 10)
		}
	}
	limitArg := "-1"
	if limit >= 0 {
		limitArg = strconv.Itoa(limit)
	}
	reverse := "0"
	if opts.Reverse {
		reverse = "1"
	}
	// An existing meta keeps its TTL unless the caller names one; a meta
	// created here gets the caller's or the engine's.
	metaTTL, createTTL := "0", millis(e.opts.HistoryMetaTTL)
	if opts.MetaTTL > 0 {
		metaTTL = millis(opts.MetaTTL)
		createTTL = metaTTL
	}
	res, err := historyScript.Run(ctx, e.client,
		[]string{e.keys.meta(channel), e.keys.stream(channel)},
		limitArg, first, reverse, metaTTL, newEpoch(), createTTL,
	).Slice()
	if err != nil {
		return nil, hub.StreamPosition{}, e.wrap(ctx, "history", err)
	}
	if len(res) != 3 {
		return nil, hub.StreamPosition{}, fmt.Errorf("redisengine: history: unexpected reply %v", res)
	}
	sp, err := streamPosition(res[0], res[1])
	if err != nil {
		return nil, hub.StreamPosition{}, fmt.Errorf("redisengine: history: %w", err)
	}
	if limit == 0 {
		return nil, sp, nil
	}
	entries, _ := res[2].([]any)
	pubs := make([]*hub.Publication, 0, len(entries))
	for _, entry := range entries {
		pub, err := decodeStreamEntry(entry)
		if err != nil {
			return nil, hub.StreamPosition{}, fmt.Errorf("redisengine: history of %q: %w", channel, err)
		}
		pubs = append(pubs, pub)
	}
	return pubs, sp, nil
}

// decodeStreamEntry reads one XRANGE entry: {"<offset>-0", {"d", body}}.
func decodeStreamEntry(entry any) (*hub.Publication, error) {
	parts, ok := entry.([]any)
	if !ok || len(parts) != 2 {
		return nil, errMalformed
	}
	id, _ := parts[0].(string)
	ms, _, _ := strings.Cut(id, "-")
	offset, err := strconv.ParseUint(ms, 10, 64)
	if err != nil {
		return nil, errMalformed
	}
	fields, _ := parts[1].([]any)
	for i := 0; i+1 < len(fields); i += 2 {
		if name, _ := fields[i].(string); name == "d" {
			body, _ := fields[i+1].(string)
			pub, err := decodePublication([]byte(body))
			if err != nil {
				return nil, err
			}
			pub.Offset = offset
			return pub, nil
		}
	}
	return nil, errors.New("stream entry without publication")
}

// RemoveHistory drops the channel's publications; the meta hash, and so the
// stream position, stays.
func (e *Engine) RemoveHistory(ctx context.Context, channel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return e.wrap(ctx, "remove history", e.client.Del(ctx, e.keys.stream(channel)).Err())
}
