package campaign

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

var _ Store = (*RedisStore)(nil)

// RedisStore is a Store on Redis. For prefix P:
//
//	P.campaign.{c:ID}           hash: id, stream_id, host_id, total, queued,
//	                            state, created_at and updated_at (Unix ms);
//	                            expires RecordTTL after its last update
//	P.campaign.window.{s:S}     string: the id of the campaign that opened
//	                            stream S's window; expires with the window
//
// Each command touches one key, so it works on Redis Cluster. A window is a
// SET NX PX: of two nodes claiming at once, one wins.
type RedisStore struct {
	client redis.UniversalClient
	prefix string
	ttl    time.Duration
}

// NewRedisStore returns a RedisStore. It does not contact Redis.
func NewRedisStore(o RedisOptions) (*RedisStore, error) {
	o, err := o.check()
	if err != nil {
		return nil, err
	}
	return &RedisStore{client: o.Client, prefix: o.Prefix, ttl: o.RecordTTL}, nil
}

func (s *RedisStore) recordKey(id string) string {
	return s.prefix + ".campaign." + hashTag("c", id)
}

func (s *RedisStore) windowKey(stream string) string {
	return s.prefix + ".campaign.window." + hashTag("s", stream)
}

// Claim reserves the stream's next campaign for window. The window runs on
// the Redis server's clock; now is not used.
func (s *RedisStore) Claim(ctx context.Context, streamID string, window time.Duration, _ time.Time) (time.Duration, error) {
	key := s.windowKey(streamID)
	for {
		ok, err := s.client.SetNX(ctx, key, "1", max(window, time.Millisecond)).Result()
		if err != nil || ok {
			return 0, err
		}
		ttl, err := s.client.PTTL(ctx, key).Result()
		if err != nil {
			return 0, err
		}
		// -2: the window ended between the two commands; claim again.
		// -1 cannot happen, as every window is set with an expiry.
		if ttl > 0 {
			return ttl, nil
		}
	}
}

// Release gives back the stream's claim.
func (s *RedisStore) Release(ctx context.Context, streamID string) error {
	return s.client.Del(ctx, s.windowKey(streamID)).Err()
}

// Create stores a new campaign.
func (s *RedisStore) Create(ctx context.Context, c Campaign) error {
	key := s.recordKey(c.ID)
	_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key,
			"id", c.ID, "stream_id", c.StreamID, "host_id", c.HostID,
			"total", c.Total, "queued", c.Queued, "state", string(c.State),
			"created_at", c.CreatedAt.UnixMilli(), "updated_at", c.UpdatedAt.UnixMilli())
		p.PExpire(ctx, key, s.ttl)
		return nil
	})
	return err
}

// Get returns a campaign.
func (s *RedisStore) Get(ctx context.Context, id string) (Campaign, error) {
	m, err := s.client.HGetAll(ctx, s.recordKey(id)).Result()
	if err != nil {
		return Campaign{}, err
	}
	if m["id"] == "" {
		return Campaign{}, ErrNotFound
	}
	c := Campaign{ID: m["id"], StreamID: m["stream_id"], HostID: m["host_id"], State: State(m["state"])}
	ints := []struct {
		field string
		to    *int64
	}{{"total", &c.Total}, {"queued", &c.Queued}}
	for _, f := range ints {
		if *f.to, err = strconv.ParseInt(m[f.field], 10, 64); err != nil {
			return Campaign{}, errors.New("campaign: bad " + f.field + " in record " + id)
		}
	}
	created, err1 := strconv.ParseInt(m["created_at"], 10, 64)
	updated, err2 := strconv.ParseInt(m["updated_at"], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return Campaign{}, errors.New("campaign: bad times in record " + id)
	}
	c.CreatedAt, c.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return c, nil
}

// Progress records a campaign's progress. The script-free check then write
// is safe because only the campaign's own goroutine writes its progress.
func (s *RedisStore) Progress(ctx context.Context, id string, queued, total int64, state State, updatedAt time.Time) error {
	key := s.recordKey(id)
	n, err := s.client.Exists(ctx, key).Result()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	_, err = s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "queued", queued, "total", total, "state", string(state), "updated_at", updatedAt.UnixMilli())
		p.PExpire(ctx, key, s.ttl)
		return nil
	})
	return err
}
