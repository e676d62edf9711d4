package campaign

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

var _ Follows = (*RedisFollows)(nil)

// RedisFollows is Follows on Redis. Each host has one sorted set,
// P.follow.{h:HOST}.followers, whose members are the followers' user ids,
// all with score 0: members of equal score sort by their bytes, so
// ZRANGEBYLEX walks the followers from a cursor without an offset that
// shifts when someone unfollows. A host's key stands alone, so it works on
// Redis Cluster.
type RedisFollows struct {
	client redis.UniversalClient
	prefix string
}

// NewRedisFollows returns a RedisFollows. It does not contact Redis.
func NewRedisFollows(o RedisOptions) (*RedisFollows, error) {
	o, err := o.check()
	if err != nil {
		return nil, err
	}
	return &RedisFollows{client: o.Client, prefix: o.Prefix}, nil
}

func (f *RedisFollows) key(host string) string {
	return f.prefix + ".follow." + hashTag("h", host) + ".followers"
}

// Follow makes user a follower of host.
func (f *RedisFollows) Follow(ctx context.Context, host, user string) error {
	if err := checkFollow(host, user); err != nil {
		return err
	}
	return f.client.ZAdd(ctx, f.key(host), redis.Z{Member: user}).Err()
}

// Unfollow stops user following host.
func (f *RedisFollows) Unfollow(ctx context.Context, host, user string) error {
	return f.client.ZRem(ctx, f.key(host), user).Err()
}

// IsFollowing reports whether user follows host.
func (f *RedisFollows) IsFollowing(ctx context.Context, host, user string) (bool, error) {
	err := f.client.ZScore(ctx, f.key(host), user).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return err == nil, err
}

// Count returns the number of host's followers.
func (f *RedisFollows) Count(ctx context.Context, host string) (int64, error) {
	return f.client.ZCard(ctx, f.key(host)).Result()
}

// Page returns up to n followers of host after cursor.
func (f *RedisFollows) Page(ctx context.Context, host, cursor string, n int) ([]string, string, error) {
	n = max(n, 1)
	lo := "-"
	if cursor != "" {
		lo = "(" + cursor
	}
	// One more than asked tells whether a next page exists.
	users, err := f.client.ZRangeByLex(ctx, f.key(host), &redis.ZRangeBy{Min: lo, Max: "+", Count: int64(n + 1)}).Result()
	if err != nil {
		return nil, "", err
	}
	if len(users) <= n {
		return users, "", nil
	}
	users = users[:n]
	return users, users[n-1], nil
}
