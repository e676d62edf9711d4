package push

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

var _ DeviceStore = (*RedisDeviceStore)(nil)

// RedisDeviceStore is a DeviceStore on Redis. Each device is a string key
// holding its JSON, named by its token; each user has a set of tokens. The
// device key is the truth: List drops tokens from a user's set whose device
// now belongs to someone else or is gone, so no step needs two keys at once
// and the store works on Redis Cluster.
type RedisDeviceStore struct {
	client redis.UniversalClient
	prefix string
}

// NewRedisDeviceStore returns a RedisDeviceStore. It does not contact Redis.
func NewRedisDeviceStore(o RedisOptions) (*RedisDeviceStore, error) {
	o, err := o.check()
	if err != nil {
		return nil, err
	}
	return &RedisDeviceStore{client: o.Client, prefix: o.Prefix}, nil
}

func (s *RedisDeviceStore) deviceKey(token string) string { return s.prefix + ".device." + token }
func (s *RedisDeviceStore) userKey(userID string) string  { return s.prefix + ".user." + userID }

// Register adds or replaces d.
func (s *RedisDeviceStore) Register(ctx context.Context, d Device) error {
	if err := d.Validate(); err != nil {
		return err
	}
	d = normalizeDevice(d, time.Now())
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	old, err := s.client.SetArgs(ctx, s.deviceKey(d.Token), b, redis.SetArgs{Get: true}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	if prev, ok := decodeDevice(old); ok && prev.UserID != d.UserID {
		if err := s.client.SRem(ctx, s.userKey(prev.UserID), d.Token).Err(); err != nil {
			return err
		}
	}
	return s.client.SAdd(ctx, s.userKey(d.UserID), d.Token).Err()
}

// Unregister forgets token if userID owns it.
func (s *RedisDeviceStore) Unregister(ctx context.Context, userID, token string) error {
	if err := unregisterScript.Run(ctx, s.client, []string{s.deviceKey(token)}, userID).Err(); err != nil {
		return err
	}
	return s.client.SRem(ctx, s.userKey(userID), token).Err()
}

// List returns userID's devices ordered by token.
func (s *RedisDeviceStore) List(ctx context.Context, userID string) ([]Device, error) {
	tokens, err := s.client.SMembers(ctx, s.userKey(userID)).Result()
	if err != nil || len(tokens) == 0 {
		return []Device{}, err
	}
	// GETs in a pipeline rather than MGET: the device keys lie in many
	// slots of a cluster, and the cluster client splits a pipeline by slot.
	cmds := make([]*redis.StringCmd, len(tokens))
	_, err = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, t := range tokens {
			cmds[i] = p.Get(ctx, s.deviceKey(t))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([]Device, 0, len(tokens))
	var stale []any
	for i, c := range cmds {
		d, ok := decodeDevice(c.Val())
		if !ok || d.UserID != userID || d.Token != tokens[i] {
			stale = append(stale, tokens[i])
			continue
		}
		out = append(out, d)
	}
	if len(stale) > 0 {
		// Best effort: a failure leaves them to the next List.
		_ = s.client.SRem(ctx, s.userKey(userID), stale...).Err()
	}
	slices.SortFunc(out, func(a, b Device) int { return strings.Compare(a.Token, b.Token) })
	return out, nil
}

// Remove forgets token whoever owns it.
func (s *RedisDeviceStore) Remove(ctx context.Context, token string) error {
	old, err := s.client.GetDel(ctx, s.deviceKey(token)).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return err
	}
	if d, ok := decodeDevice(old); ok {
		return s.client.SRem(ctx, s.userKey(d.UserID), token).Err()
	}
	return nil
}

func decodeDevice(raw string) (Device, bool) {
	var d Device
	if raw == "" || json.Unmarshal([]byte(raw), &d) != nil {
		return Device{}, false
	}
	return d, true
}
