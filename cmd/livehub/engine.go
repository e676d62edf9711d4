package main

import (
	"errors"
	"io"
	"log/slog"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/internal/config"
)

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// openEngine picks the engine: memory without Redis, Redis with it.
func openEngine(cfg *config.Config, _ *slog.Logger) (hub.Broker, hub.PresenceManager, hub.NodeRegistry, io.Closer, error) {
	if cfg.RedisURL == "" {
		m := hub.NewMemoryEngine()
		return m, m, m, nopCloser{}, nil
	}
	return nil, nil, nil, nil, errors.New("LIVEHUB_REDIS_URL: the Redis engine is not built into this binary yet")
}
