package campaign

import (
	"errors"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of RedisOptions.
const (
	defaultRedisPrefix = "livehub"
	defaultRecordTTL   = 7 * 24 * time.Hour
)

// RedisOptions are the settings the Redis implementations share.
type RedisOptions struct {
	// Client is the connection to use; it may be a cluster client. It is
	// required, and it is not closed by the implementations.
	Client redis.UniversalClient
	// Prefix starts every key, so deployments can share a Redis. Zero
	// means "livehub".
	Prefix string
	// RecordTTL is how long a campaign record stays readable after its
	// last update. Zero means 7 days.
	RecordTTL time.Duration
}

func (o RedisOptions) check() (RedisOptions, error) {
	if o.Client == nil {
		return o, errors.New("campaign: RedisOptions.Client is required")
	}
	if o.Prefix == "" {
		o.Prefix = defaultRedisPrefix
	}
	if o.RecordTTL <= 0 {
		o.RecordTTL = defaultRecordTTL
	}
	return o, nil
}

// hashTag returns the Redis Cluster hash tag of an id of kind k: {k:id},
// or a hash of the id when the id holds braces that would end the tag
// early.
func hashTag(k, id string) string {
	if strings.ContainsAny(id, "{}") {
		h := fnv.New64a()
		_, _ = h.Write([]byte(id))
		return "{" + k + "#" + strconv.FormatUint(h.Sum64(), 36) + "}"
	}
	return "{" + k + ":" + id + "}"
}
