package notify

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

var _ PendingStore = (*RedisPending)(nil)

// defaultRedisPrefix starts the keys of RedisPending.
const defaultRedisPrefix = "livehub.notify"

// RedisPendingOptions configure a RedisPending.
type RedisPendingOptions struct {
	// Client is the connection to use; it may be a cluster client. It is
	// required, and it is not closed by the store.
	Client redis.UniversalClient
	// Prefix starts every key. Zero means "livehub.notify".
	Prefix string
}

// RedisPending is a PendingStore on Redis, shared by the nodes: a window is
// a key set with SET NX PX, and both the acknowledgement and the window's
// end DEL it. DEL is atomic and answers how many keys it removed, so of an
// Ack and a Take racing for one window exactly one sees it go.
//
// A user's keys share a hash tag, so an Ack of several events is one DEL
// that Redis Cluster accepts.
type RedisPending struct {
	client redis.UniversalClient
	prefix string
}

// NewRedisPending returns a RedisPending. It does not contact Redis.
func NewRedisPending(o RedisPendingOptions) (*RedisPending, error) {
	if o.Client == nil {
		return nil, errors.New("notify: RedisPendingOptions.Client is required")
	}
	if o.Prefix == "" {
		o.Prefix = defaultRedisPrefix
	}
	return &RedisPending{client: o.Client, prefix: o.Prefix}, nil
}

// key names the window of (userID, eventID).
func (r *RedisPending) key(userID, eventID string) string {
	return r.prefix + ":ack:{" + userID + "}:" + eventID
}

// Add opens the window of (userID, eventID) for ttl.
func (r *RedisPending) Add(ctx context.Context, userID, eventID string, ttl time.Duration) (bool, error) {
	if err := checkPending(userID, eventID); err != nil {
		return false, err
	}
	if ttl <= 0 {
		return false, errors.New("notify: a pending window needs a positive ttl")
	}
	ok, err := r.client.SetNX(ctx, r.key(userID, eventID), "1", ttl).Result()
	if err != nil {
		return false, err
	}
	return ok, nil
}

// Ack closes the open windows among userID's eventIDs in one DEL.
func (r *RedisPending) Ack(ctx context.Context, userID string, eventIDs []string) (int, error) {
	if len(eventIDs) == 0 || userID == "" {
		return 0, nil
	}
	keys := make([]string, 0, len(eventIDs))
	seen := make(map[string]bool, len(eventIDs))
	for _, id := range eventIDs {
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		keys = append(keys, r.key(userID, id))
	}
	if len(keys) == 0 {
		return 0, nil
	}
	n, err := r.client.Del(ctx, keys...).Result()
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// Take closes the window of (userID, eventID), reporting whether it was
// open.
func (r *RedisPending) Take(ctx context.Context, userID, eventID string) (bool, error) {
	if err := checkPending(userID, eventID); err != nil {
		return false, err
	}
	n, err := r.client.Del(ctx, r.key(userID, eventID)).Result()
	if err != nil {
		return false, err
	}
	return n == 1, nil
}
