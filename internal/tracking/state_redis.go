package tracking

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/livehub/livehub/internal/redisutil"
)

var _ State = (*RedisState)(nil)

//go:embed lua/*.lua
var luaFiles embed.FS

var (
	assignScript = redisutil.MustScript(luaFiles, "assign.lua")
	statusScript = redisutil.MustScript(luaFiles, "status.lua")
	appendScript = redisutil.MustScript(luaFiles, "append.lua")
)

// Defaults of RedisStateOptions.
const (
	defaultStatePrefix = "livehub"
	defaultStateTTL    = 7 * 24 * time.Hour
)

// RedisStateOptions configure a RedisState.
type RedisStateOptions struct {
	// Prefix starts every key. It must not contain '{' or '}'. Zero means
	// "livehub".
	Prefix string
	// TTL is how long an order's keys live after their last write. Zero
	// means 7 days.
	TTL time.Duration
}

// RedisState is a State on Redis, shared by every node, through any go-redis
// UniversalClient (single server, Sentinel, Cluster).
//
// For prefix P and order O, with the hash tag T = {o:O} (an id with braces
// is tagged by a hash of it instead), the keys are:
//
//	P.track.T.d     hash: order_id, courier, buyer, merchant, addr (JSON),
//	                status, proof, assigned_at, updated_at (Unix ms), last
//	                (JSON point), last_dt (its device time), last_at (when
//	                it was accepted, Unix ms), arriving
//	P.track.T.path  list: JSON points, oldest first, capped
//
// Both keys share the hash tag, so each Lua script (lua/*.lua) touches one
// slot. Decisions that read and write (assign, status, append) are scripts;
// the arriving flag is HSETNX.
type RedisState struct {
	c      redis.UniversalClient
	prefix string
	ttl    time.Duration
}

// NewRedisState returns a RedisState on client. It panics when opts.Prefix
// contains a brace.
func NewRedisState(client redis.UniversalClient, opts RedisStateOptions) *RedisState {
	if opts.Prefix == "" {
		opts.Prefix = defaultStatePrefix
	}
	redisutil.CheckPrefix("tracking", opts.Prefix)
	if opts.TTL <= 0 {
		opts.TTL = defaultStateTTL
	}
	return &RedisState{c: client, prefix: opts.Prefix, ttl: opts.TTL}
}

type orderKeys struct{ base string }

func (s *RedisState) keys(orderID string) orderKeys {
	return orderKeys{base: s.prefix + ".track." + redisutil.Tag("o", orderID)}
}

func (k orderKeys) delivery() string { return k.base + ".d" }
func (k orderKeys) path() string     { return k.base + ".path" }

// Assign implements State.
func (s *RedisState) Assign(ctx context.Context, a Assignment) (Assignment, error) {
	k := s.keys(a.OrderID)
	addr, err := json.Marshal(a.Address)
	if err != nil {
		return Assignment{}, err
	}
	res, err := assignScript.Run(ctx, s.c, []string{k.delivery(), k.path()},
		a.OrderID, a.CourierID, a.BuyerID, a.MerchantID, addr, a.AssignedAt.UnixMilli(), s.ttl.Milliseconds()).Slice()
	if err != nil {
		return Assignment{}, fail("assign", err)
	}
	outcome, fields, err := scriptReply(res)
	if err != nil {
		return Assignment{}, fail("assign", err)
	}
	if outcome != "ok" {
		return Assignment{}, reassignable(Status(outcome))
	}
	snap, err := decodeSnapshot(fields)
	return snap.Assignment, fail("assign", err)
}

// Get implements State.
func (s *RedisState) Get(ctx context.Context, orderID string) (Snapshot, error) {
	k := s.keys(orderID)
	var (
		all *redis.MapStringStringCmd
		n   *redis.IntCmd
	)
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		all = p.HGetAll(ctx, k.delivery())
		n = p.LLen(ctx, k.path())
		return nil
	})
	if err != nil {
		return Snapshot{}, fail("get", err)
	}
	m := all.Val()
	if len(m) == 0 || m["status"] == "" {
		return Snapshot{}, ErrNotAssigned
	}
	snap, err := snapshotFromMap(m)
	if err != nil {
		return Snapshot{}, fail("get", err)
	}
	snap.PathLen = int(n.Val())
	return snap, nil
}

// SetStatus implements State.
func (s *RedisState) SetStatus(ctx context.Context, orderID string, to Status, proof string, at time.Time) (Assignment, bool, error) {
	k := s.keys(orderID)
	res, err := statusScript.Run(ctx, s.c, []string{k.delivery()}, string(to), proof, at.UnixMilli(), s.ttl.Milliseconds()).Slice()
	if err != nil {
		return Assignment{}, false, fail("set status", err)
	}
	outcome, fields, err := scriptReply(res)
	if err != nil {
		return Assignment{}, false, fail("set status", err)
	}
	if outcome == "none" {
		return Assignment{}, false, ErrNotAssigned
	}
	snap, err := decodeSnapshot(fields)
	if err != nil {
		return Assignment{}, false, fail("set status", err)
	}
	switch outcome {
	case "same":
		return snap.Assignment, false, nil
	case "backward":
		return snap.Assignment, false, forward(snap.Status, to)
	}
	return snap.Assignment, true, nil
}

// Append implements State.
func (s *RedisState) Append(ctx context.Context, r AppendRequest) error {
	k := s.keys(r.OrderID)
	args := []any{r.PrevDeviceTime, r.Now.UnixMilli(), r.Throttle.Milliseconds(), r.PathMax, s.ttl.Milliseconds()}
	if n := len(r.Points); n > 0 {
		last, err := json.Marshal(r.Points[n-1])
		if err != nil {
			return err
		}
		args = append(args, last, r.Points[n-1].DeviceTime)
		for _, p := range r.Points {
			b, err := json.Marshal(p)
			if err != nil {
				return err
			}
			args = append(args, b)
		}
	}
	res, err := appendScript.Run(ctx, s.c, []string{k.delivery(), k.path()}, args...).Slice()
	if err != nil {
		return fail("append", err)
	}
	if len(res) != 2 {
		return fail("append", errors.New("unexpected reply"))
	}
	outcome, _ := res[0].(string)
	wait, _ := res[1].(int64)
	switch outcome {
	case "ok":
		return nil
	case "none":
		return ErrNotAssigned
	case "ended":
		return ErrEnded
	case "stale":
		return ErrStale
	case "throttled":
		return &ThrottledError{Wait: time.Duration(wait) * time.Millisecond}
	}
	return fail("append", fmt.Errorf("unexpected outcome %q", outcome))
}

// Path implements State.
func (s *RedisState) Path(ctx context.Context, orderID string, n int) ([]Point, error) {
	start := int64(0)
	if n > 0 {
		start = -int64(n)
	}
	raw, err := s.c.LRange(ctx, s.keys(orderID).path(), start, -1).Result()
	if err != nil {
		return nil, fail("path", err)
	}
	out := make([]Point, 0, len(raw))
	for _, r := range raw {
		var p Point
		if err := json.Unmarshal([]byte(r), &p); err != nil {
			return nil, fail("path", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// MarkArriving implements State.
func (s *RedisState) MarkArriving(ctx context.Context, orderID string) (bool, error) {
	k := s.keys(orderID).delivery()
	// The hash exists once a courier is assigned; HSETNX on a missing hash
	// would create a stray key, so look first. The flag only ever goes from
	// unset to set, so the check cannot race with a reset.
	n, err := s.c.Exists(ctx, k).Result()
	if err != nil {
		return false, fail("mark arriving", err)
	}
	if n == 0 {
		return false, ErrNotAssigned
	}
	set, err := s.c.HSetNX(ctx, k, "arriving", 1).Result()
	return set, fail("mark arriving", err)
}

// scriptReply splits a script's {outcome, HGETALL} reply.
func scriptReply(res []any) (string, []any, error) {
	if len(res) != 2 {
		return "", nil, errors.New("unexpected reply")
	}
	outcome, _ := res[0].(string)
	fields, _ := res[1].([]any)
	return outcome, fields, nil
}

func decodeSnapshot(fields []any) (Snapshot, error) {
	m := make(map[string]string, len(fields)/2)
	for i := 0; i+1 < len(fields); i += 2 {
		k, _ := fields[i].(string)
		v, _ := fields[i+1].(string)
		m[k] = v
	}
	return snapshotFromMap(m)
}

func snapshotFromMap(m map[string]string) (Snapshot, error) {
	var s Snapshot
	s.OrderID, s.CourierID, s.BuyerID, s.MerchantID = m["order_id"], m["courier"], m["buyer"], m["merchant"]
	s.Status, s.ProofPhotoURL = Status(m["status"]), m["proof"]
	s.AssignedAt, s.UpdatedAt, s.LastAt = msTime(m["assigned_at"]), msTime(m["updated_at"]), msTime(m["last_at"])
	s.Arriving = m["arriving"] != ""
	if v := m["addr"]; v != "" {
		if err := json.Unmarshal([]byte(v), &s.Address); err != nil {
			return s, err
		}
	}
	if v := m["last"]; v != "" {
		var p Point
		if err := json.Unmarshal([]byte(v), &p); err != nil {
			return s, err
		}
		s.Last = &p
	}
	return s, nil
}

func msTime(v string) time.Time {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// fail wraps a Redis error as a commerce error that hides the details.
func fail(op string, err error) error { return redisutil.Fail("tracking: redis", "tracking", op, err) }
