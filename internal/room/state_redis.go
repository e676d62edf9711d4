package room

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/livehub/livehub/internal/redisutil"
)

var _ State = (*RedisState)(nil)

//go:embed lua/*.lua
var luaFiles embed.FS

var (
	chatCheckScript = redisutil.MustScript(luaFiles, "chat_check.lua")
	announceScript  = redisutil.MustScript(luaFiles, "announce.lua")
	peakScript      = redisutil.MustScript(luaFiles, "peak.lua")
)

// Defaults of RedisStateOptions.
const (
	defaultStatePrefix = "livehub"
	defaultStateTTL    = 7 * 24 * time.Hour
)

// RedisStateOptions configure a RedisState.
type RedisStateOptions struct {
	// Prefix starts every key, so several deployments can share a Redis. It
	// must not contain '{' or '}'. Zero means "livehub".
	Prefix string
	// TTL is how long a room's keys live after their last write, so rooms of
	// long-ended streams leave nothing behind. Zero means 7 days.
	TTL time.Duration
}

// RedisState is a State on Redis, shared by every node: a single server, a
// Sentinel-managed master or a Redis Cluster, through any go-redis
// UniversalClient.
//
// For prefix P and stream S, with the hash tag T = {r:S} (a stream id with
// braces is tagged by a hash of it instead), the keys are:
//
//	P.room.T.mods        set: moderator user ids
//	P.room.T.mutes       hash: user id -> muted until, Unix ms
//	P.room.T.bans        set: banned user ids
//	P.room.T.conf        hash: slow (seconds), mode (reject|mask), pin_msg and
//	                     pin_product (JSON), peak, ann.<topic> and
//	                     ann_at.<topic> (the last announced figure and when)
//	P.room.T.words       set: muted words, lowercase
//	P.room.T.likes       string: the likes total, INCRBY by every node
//	P.room.T.slow.<user> string: when the user's slow-mode interval started;
//	                     expires with it
//	P.room.T.claim.<t>   string: a node's claim to announce topic t; expires
//	                     after the announcement interval
//
// Every key of a stream shares the hash tag, so on Redis Cluster they sit in
// one slot and each Lua script (lua/*.lua) and MULTI touches one slot.
// Decisions that read and write (the chat check, the announcement claim, the
// peak) are Lua scripts, so two nodes never both pass a user through slow
// mode or both announce the same interval.
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
	redisutil.CheckPrefix("room", opts.Prefix)
	if opts.TTL <= 0 {
		opts.TTL = defaultStateTTL
	}
	return &RedisState{c: client, prefix: opts.Prefix, ttl: opts.TTL}
}

// roomKeys names the keys of one stream's room.
type roomKeys struct{ base string }

func (s *RedisState) keys(stream string) roomKeys {
	return roomKeys{base: s.prefix + ".room." + redisutil.Tag("r", stream)}
}

func (k roomKeys) mods() string              { return k.base + ".mods" }
func (k roomKeys) mutes() string             { return k.base + ".mutes" }
func (k roomKeys) bans() string              { return k.base + ".bans" }
func (k roomKeys) conf() string              { return k.base + ".conf" }
func (k roomKeys) words() string             { return k.base + ".words" }
func (k roomKeys) likes() string             { return k.base + ".likes" }
func (k roomKeys) slow(user string) string   { return k.base + ".slow." + user }
func (k roomKeys) claim(topic string) string { return k.base + ".claim." + topic }

// write runs f in MULTI/EXEC and refreshes the TTL of the keys it names.
func (s *RedisState) write(ctx context.Context, op string, f func(p redis.Pipeliner), keys ...string) error {
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		f(p)
		for _, k := range keys {
			p.PExpire(ctx, k, s.ttl)
		}
		return nil
	})
	return fail(op, err)
}

// AddModerator implements State.
func (s *RedisState) AddModerator(ctx context.Context, stream, user string) error {
	k := s.keys(stream)
	return s.write(ctx, "add moderator", func(p redis.Pipeliner) { p.SAdd(ctx, k.mods(), user) }, k.mods())
}

// RemoveModerator implements State.
func (s *RedisState) RemoveModerator(ctx context.Context, stream, user string) error {
	return fail("remove moderator", s.c.SRem(ctx, s.keys(stream).mods(), user).Err())
}

// IsModerator implements State.
func (s *RedisState) IsModerator(ctx context.Context, stream, user string) (bool, error) {
	ok, err := s.c.SIsMember(ctx, s.keys(stream).mods(), user).Result()
	return ok, fail("is moderator", err)
}

// Mute implements State.
func (s *RedisState) Mute(ctx context.Context, stream, user string, until time.Time) error {
	k := s.keys(stream)
	return s.write(ctx, "mute", func(p redis.Pipeliner) { p.HSet(ctx, k.mutes(), user, until.UnixMilli()) }, k.mutes())
}

// Unmute implements State.
func (s *RedisState) Unmute(ctx context.Context, stream, user string) error {
	return fail("unmute", s.c.HDel(ctx, s.keys(stream).mutes(), user).Err())
}

// Ban implements State.
func (s *RedisState) Ban(ctx context.Context, stream, user string) error {
	k := s.keys(stream)
	return s.write(ctx, "ban", func(p redis.Pipeliner) { p.SAdd(ctx, k.bans(), user) }, k.bans())
}

// Unban implements State.
func (s *RedisState) Unban(ctx context.Context, stream, user string) error {
	return fail("unban", s.c.SRem(ctx, s.keys(stream).bans(), user).Err())
}

// SetSlowMode implements State.
func (s *RedisState) SetSlowMode(ctx context.Context, stream string, seconds int) error {
	k := s.keys(stream)
	return s.write(ctx, "set slow mode", func(p redis.Pipeliner) { p.HSet(ctx, k.conf(), "slow", seconds) }, k.conf())
}

// SetMutedWords implements State.
func (s *RedisState) SetMutedWords(ctx context.Context, stream string, words []string, mode WordMode) error {
	k := s.keys(stream)
	return s.write(ctx, "set muted words", func(p redis.Pipeliner) {
		p.Del(ctx, k.words())
		if len(words) > 0 {
			members := make([]any, len(words))
			for i, w := range words {
				members[i] = w
			}
			p.SAdd(ctx, k.words(), members...)
		}
		p.HSet(ctx, k.conf(), "mode", string(mode))
	}, k.words(), k.conf())
}

// SetPinnedMessage implements State.
func (s *RedisState) SetPinnedMessage(ctx context.Context, stream string, m *PinnedMessage) error {
	return s.setPinned(ctx, stream, "pin_msg", m, m == nil)
}

// SetPinnedProduct implements State.
func (s *RedisState) SetPinnedProduct(ctx context.Context, stream string, p *PinnedProduct) error {
	return s.setPinned(ctx, stream, "pin_product", p, p == nil)
}

func (s *RedisState) setPinned(ctx context.Context, stream, field string, v any, clear bool) error {
	k := s.keys(stream)
	if clear {
		return fail("unpin", s.c.HDel(ctx, k.conf(), field).Err())
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.write(ctx, "pin", func(p redis.Pipeliner) { p.HSet(ctx, k.conf(), field, b) }, k.conf())
}

// CheckChat implements State.
func (s *RedisState) CheckChat(ctx context.Context, c ChatCheck) (ChatVerdict, error) {
	k := s.keys(c.Stream)
	exempt := "0"
	if c.Exempt {
		exempt = "1"
	}
	args := make([]any, 0, 3+len(c.Words))
	args = append(args, c.User, c.Now.UnixMilli(), exempt)
	for _, w := range c.Words {
		args = append(args, w)
	}
	res, err := chatCheckScript.Run(ctx, s.c,
		[]string{k.bans(), k.mutes(), k.mods(), k.conf(), k.words(), k.slow(c.User)}, args...).Slice()
	if err != nil {
		return ChatVerdict{}, fail("chat check", err)
	}
	var v ChatVerdict
	if len(res) == 0 {
		return v, internal("chat check", "empty reply")
	}
	switch res[0] {
	case "banned":
		v.Banned = true
	case "muted":
		v.MutedUntil = time.UnixMilli(toInt(res, 1))
	case "slow":
		v.Wait = time.Duration(toInt(res, 1)) * time.Millisecond
		v.Moderator = toInt(res, 2) == 1
	case "words", "ok":
		v.Moderator = toInt(res, 1) == 1
		v.Mode = WordMode(toString(res, 2))
		for i := 3; i < len(res); i++ {
			v.Matched = append(v.Matched, toString(res, i))
		}
	default:
		return v, internal("chat check", "unknown reply %v", res[0])
	}
	return v, nil
}

// AddLikes implements State.
func (s *RedisState) AddLikes(ctx context.Context, stream string, n int64) (int64, error) {
	k := s.keys(stream)
	if n == 0 {
		total, err := s.c.Get(ctx, k.likes()).Int64()
		if errors.Is(err, redis.Nil) {
			return 0, nil
		}
		return total, fail("likes", err)
	}
	var incr *redis.IntCmd
	err := s.write(ctx, "add likes", func(p redis.Pipeliner) { incr = p.IncrBy(ctx, k.likes(), n) }, k.likes())
	if err != nil {
		return 0, err
	}
	return incr.Val(), nil
}

// RecordViewers implements State.
func (s *RedisState) RecordViewers(ctx context.Context, stream string, count int) (int, error) {
	peak, err := peakScript.Run(ctx, s.c, []string{s.keys(stream).conf()}, count, s.ttl.Milliseconds()).Int()
	return peak, fail("record viewers", err)
}

// ClaimAnnouncement implements State.
func (s *RedisState) ClaimAnnouncement(ctx context.Context, stream, topic string, value int64, every time.Duration, now time.Time) (Announcement, error) {
	k := s.keys(stream)
	res, err := announceScript.Run(ctx, s.c, []string{k.conf(), k.claim(topic)},
		topic, value, max(every.Milliseconds(), 1), now.UnixMilli(), s.ttl.Milliseconds()).Slice()
	if err != nil {
		return Announcement{}, fail("claim announcement", err)
	}
	if len(res) != 4 {
		return Announcement{}, internal("claim announcement", "reply of %d values", len(res))
	}
	a := Announcement{Claimed: toInt(res, 0) == 1, Changed: toInt(res, 1) == 1}
	if p := toString(res, 2); p != "" {
		a.Previous, _ = strconv.ParseInt(p, 10, 64)
	}
	if at := toString(res, 3); at != "" {
		ms, _ := strconv.ParseInt(at, 10, 64)
		a.PreviousAt = time.UnixMilli(ms)
	}
	return a, nil
}

// Snapshot implements State.
func (s *RedisState) Snapshot(ctx context.Context, stream string, now time.Time) (Snapshot, error) {
	k := s.keys(stream)
	var (
		mods, bans, words *redis.StringSliceCmd
		mutes, conf       *redis.MapStringStringCmd
		likes             *redis.StringCmd
	)
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		mods = p.SMembers(ctx, k.mods())
		mutes = p.HGetAll(ctx, k.mutes())
		bans = p.SMembers(ctx, k.bans())
		conf = p.HGetAll(ctx, k.conf())
		words = p.SMembers(ctx, k.words())
		likes = p.Get(ctx, k.likes())
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Snapshot{}, fail("snapshot", err)
	}
	snap := Snapshot{
		Moderators: sorted(mods.Val()),
		Bans:       sorted(bans.Val()),
		MutedWords: sorted(words.Val()),
		Mutes:      []Mute{},
		WordMode:   WordsReject,
	}
	for u, ms := range mutes.Val() {
		n, err := strconv.ParseInt(ms, 10, 64)
		if err != nil {
			continue
		}
		if until := time.UnixMilli(n); until.After(now) {
			snap.Mutes = append(snap.Mutes, Mute{UserID: u, Until: until})
		}
	}
	sortMutes(snap.Mutes)
	c := conf.Val()
	snap.SlowModeSeconds, _ = strconv.Atoi(c["slow"])
	snap.ViewerPeak, _ = strconv.Atoi(c["peak"])
	if m := c["mode"]; m != "" {
		snap.WordMode = WordMode(m)
	}
	if b := c["pin_msg"]; b != "" {
		var m PinnedMessage
		if err := json.Unmarshal([]byte(b), &m); err != nil {
			return Snapshot{}, internal("snapshot", "pinned message: %v", err)
		}
		snap.PinnedMessage = &m
	}
	if b := c["pin_product"]; b != "" {
		var p PinnedProduct
		if err := json.Unmarshal([]byte(b), &p); err != nil {
			return Snapshot{}, internal("snapshot", "pinned product: %v", err)
		}
		snap.PinnedProduct = &p
	}
	if v := likes.Val(); v != "" {
		snap.Likes, _ = strconv.ParseInt(v, 10, 64)
	}
	return snap, nil
}

func sorted(s []string) []string {
	m := make(map[string]struct{}, len(s))
	for _, v := range s {
		m[v] = struct{}{}
	}
	return sortedKeys(m)
}

func toInt(res []any, i int) int64 {
	if i >= len(res) {
		return 0
	}
	switch v := res[i].(type) {
	case int64:
		return v
	case string:
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	}
	return 0
}

func toString(res []any, i int) string {
	if i >= len(res) {
		return ""
	}
	switch v := res[i].(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	}
	return ""
}

// fail turns a client error into a commerce.Error (redisutil.Fail).
func fail(op string, err error) error { return redisutil.Fail("room: redis", "the room", op, err) }

func internal(op, format string, args ...any) error {
	return redisutil.Internal("room: redis", "the room", op, format, args...)
}
