package ratelimit

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

var _ Limiter = (*Redis)(nil)

//go:embed lua/gcra.lua
var gcraLua string

var gcraScript = redis.NewScript(gcraLua)

// Redis is a Limiter shared by every node on one Redis. Each decision is one
// script on the Redis clock; a key lives only while its schedule is ahead.
type Redis struct {
	client redis.UniversalClient
	prefix string
}

// NewRedis returns a limiter storing its keys under prefix.
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix}
}

// Allow implements Limiter.
func (r *Redis) Allow(ctx context.Context, key string, l Limit) (Decision, error) {
	if !l.Enabled() {
		return Decision{Allowed: true}, nil
	}
	interval := max(l.interval().Microseconds(), 1)
	res, err := gcraScript.Run(ctx, r.client, []string{r.prefix + "rl:" + key}, interval, l.burst()).Int64Slice()
	if err != nil {
		return Decision{}, fmt.Errorf("rate limit: %w", err)
	}
	if len(res) != 2 {
		return Decision{}, fmt.Errorf("rate limit: unexpected reply %v", res)
	}
	if res[0] == 1 {
		return Decision{Allowed: true}, nil
	}
	return Decision{RetryAfter: time.Duration(res[1]) * time.Microsecond}, nil
}
