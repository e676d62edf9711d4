package push

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

var _ Dedupe = (*RedisDedupe)(nil)

// Values of a dedupe key.
const (
	markClaimed = "c"
	markSent    = "s"
)

// RedisDedupeOptions configure a RedisDedupe.
type RedisDedupeOptions struct {
	RedisOptions
	DedupeOptions
}

// RedisDedupe is a Dedupe on Redis, shared by every worker: one key per
// (event, token) pair, claimed with SET NX GET and a short TTL, confirmed
// with a SET carrying the long one.
type RedisDedupe struct {
	client redis.UniversalClient
	prefix string
	opts   DedupeOptions
}

// NewRedisDedupe returns a RedisDedupe. It does not contact Redis.
func NewRedisDedupe(o RedisDedupeOptions) (*RedisDedupe, error) {
	ro, err := o.RedisOptions.check()
	if err != nil {
		return nil, err
	}
	return &RedisDedupe{client: ro.Client, prefix: ro.Prefix, opts: o.DedupeOptions.withDefaults()}, nil
}

func (d *RedisDedupe) key(eventID, token string) string {
	return d.prefix + ".sent." + eventID + "." + token
}

// Claim claims eventID for each token not claimed or sent.
func (d *RedisDedupe) Claim(ctx context.Context, eventID string, tokens []string) ([]ClaimState, error) {
	cmds := make([]*redis.StatusCmd, len(tokens))
	_, err := d.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, t := range tokens {
			cmds[i] = p.SetArgs(ctx, d.key(eventID, t), markClaimed, redis.SetArgs{Mode: "NX", Get: true, TTL: d.opts.ClaimTTL})
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([]ClaimState, len(tokens))
	for i, c := range cmds {
		old, err := c.Result()
		switch {
		case errors.Is(err, redis.Nil):
			out[i] = Claimed
		case err != nil:
			return nil, err
		case old == markSent:
			out[i] = AlreadySent
		default:
			out[i] = InFlight
		}
	}
	return out, nil
}

// Confirm marks eventID as sent to tokens.
func (d *RedisDedupe) Confirm(ctx context.Context, eventID string, tokens []string) error {
	_, err := d.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, t := range tokens {
			p.Set(ctx, d.key(eventID, t), markSent, d.opts.TTL)
		}
		return nil
	})
	return err
}

// Release drops the claims of eventID on tokens.
func (d *RedisDedupe) Release(ctx context.Context, eventID string, tokens []string) error {
	_, err := d.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, t := range tokens {
			p.Del(ctx, d.key(eventID, t))
		}
		return nil
	})
	return err
}
