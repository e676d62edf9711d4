package ratelimit

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

var _ Limiter = (*Redis)(nil)

var (
	//go:embed lua/gcra.lua
	gcraLua string
	//go:embed lua/gcra_all.lua
	gcraAllLua string

	gcraScript    = redis.NewScript(gcraLua)
	gcraAllScript = redis.NewScript(gcraAllLua)
)

// Redis is a Limiter shared by every node on one Redis. Each decision is one
// script on the Redis clock; a key lives only while its schedule is ahead.
type Redis struct {
	client redis.UniversalClient
	prefix string
	// cluster is set on Redis Cluster, where keys of one AllowAll sit in
	// different slots and cannot be decided in one script.
	cluster bool
}

// NewRedis returns a limiter storing its keys under prefix.
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	_, cluster := client.(*redis.ClusterClient)
	return &Redis{client: client, prefix: prefix, cluster: cluster}
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

// AllowAll implements Limiter: one script for every key, one round trip.
// On Redis Cluster the keys are decided one after the other, and a request
// refused by a later key has used up the earlier ones.
func (r *Redis) AllowAll(ctx context.Context, reqs []Request) (Decision, int, error) {
	keys := make([]string, 0, len(reqs))
	args := make([]any, 0, 2*len(reqs))
	at := make([]int, 0, len(reqs))
	for i, q := range reqs {
		if !q.Limit.Enabled() {
			continue
		}
		keys = append(keys, r.prefix+"rl:"+q.Key)
		args = append(args, max(q.Limit.interval().Microseconds(), 1), q.Limit.burst())
		at = append(at, i)
	}
	if len(keys) == 0 {
		return Decision{Allowed: true}, -1, nil
	}
	if len(keys) == 1 || r.cluster {
		for _, i := range at {
			d, err := r.Allow(ctx, reqs[i].Key, reqs[i].Limit)
			if err != nil || !d.Allowed {
				return d, i, err
			}
		}
		return Decision{Allowed: true}, -1, nil
	}
	res, err := gcraAllScript.Run(ctx, r.client, keys, args...).Int64Slice()
	if err != nil {
		return Decision{}, -1, fmt.Errorf("rate limit: %w", err)
	}
	if len(res) != 3 || (res[0] == 0 && (res[2] < 1 || int(res[2]) > len(at))) {
		return Decision{}, -1, fmt.Errorf("rate limit: unexpected reply %v", res)
	}
	if res[0] == 1 {
		return Decision{Allowed: true}, -1, nil
	}
	return Decision{RetryAfter: time.Duration(res[1]) * time.Microsecond}, at[res[2]-1], nil
}
