package push

import (
	"errors"

	"github.com/redis/go-redis/v9"
)

// defaultRedisPrefix starts every key the Redis implementations use.
const defaultRedisPrefix = "livehub.push"

// RedisOptions are the settings the Redis implementations share.
type RedisOptions struct {
	// Client is the connection to use; it may be a cluster client. It is
	// required, and it is not closed by the implementations.
	Client redis.UniversalClient
	// Prefix starts every key. Zero means "livehub.push".
	Prefix string
}

func (o RedisOptions) check() (RedisOptions, error) {
	if o.Client == nil {
		return o, errors.New("push: RedisOptions.Client is required")
	}
	if o.Prefix == "" {
		o.Prefix = defaultRedisPrefix
	}
	return o, nil
}
