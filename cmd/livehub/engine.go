package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/hub/redisengine"
	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/config"
	"github.com/livehub/livehub/internal/memstore"
	"github.com/livehub/livehub/internal/orderevents"
	"github.com/livehub/livehub/internal/ratelimit"
	"github.com/livehub/livehub/internal/redisstore"
	"github.com/livehub/livehub/internal/room"
	"github.com/livehub/livehub/internal/tracking"
)

// redisLogger routes go-redis's own messages (failed dials while Redis is
// down) into the structured log.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// engine is what a node keeps its shared state in.
type engine struct {
	broker   hub.Broker
	presence hub.PresenceManager
	registry hub.NodeRegistry
	store    commerce.Store
	events   orderevents.Log
	rooms    room.State
	tracking tracking.State
	limiter  ratelimit.Limiter
	closer   io.Closer
}

// openEngine picks the engine: memory without Redis, Redis with it.
func openEngine(cfg *config.Config, log *slog.Logger) (*engine, error) {
	if cfg.RedisURL == "" {
		m := hub.NewMemoryEngine()
		return &engine{m, m, m, memstore.New(memstore.Options{}), orderevents.NewMemoryLog(orderevents.MemoryOptions{}), room.NewMemoryState(), tracking.NewMemoryState(), ratelimit.NewMemory(), nopCloser{}}, nil
	}
	redis.SetLogger(redisLogger{log})
	e, err := redisengine.New(redisengine.Options{URL: cfg.RedisURL, Prefix: cfg.RedisPrefix, Logger: log})
	if err != nil {
		return nil, err
	}
	// A Redis that is down at start is not fatal: the engine reconnects by
	// itself, and clients get temporary errors meanwhile.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Ping(ctx); err != nil {
		log.Error("redis does not answer yet; retrying in the background", "err", err)
	}
	events, err := orderevents.NewRedisLog(orderevents.RedisOptions{Client: e.Client(), Key: cfg.RedisPrefix + ".orderevents", Logger: log})
	if err != nil {
		_ = e.Close()
		return nil, err
	}
	store := redisstore.New(e.Client(), redisstore.Options{Prefix: cfg.RedisPrefix})
	rooms := room.NewRedisState(e.Client(), room.RedisStateOptions{Prefix: cfg.RedisPrefix})
	track := tracking.NewRedisState(e.Client(), tracking.RedisStateOptions{Prefix: cfg.RedisPrefix})
	limiter := ratelimit.NewRedis(e.Client(), cfg.RedisPrefix)
	return &engine{e, e, e, store, events, rooms, track, limiter, e}, nil
}
