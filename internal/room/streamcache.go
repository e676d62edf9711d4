package room

import (
	"context"
	"sync"
	"time"

	"github.com/livehub/livehub/internal/commerce"
)

// maxCachedStreams bounds the stream cache; when full it starts over, which
// costs one store read per stream in use.
const maxCachedStreams = 10000

// streamCache remembers streams, and streams that do not exist, for a short
// while, so chat and likes read the store about once a second per stream and
// node however busy the room is.
type streamCache struct {
	src Streams
	ttl time.Duration
	now func() time.Time

	// mu guards m.
	mu sync.Mutex
	m  map[string]cachedStream
}

type cachedStream struct {
	st  commerce.Stream
	err error
	at  time.Time
}

func newStreamCache(src Streams, ttl time.Duration, now func() time.Time) *streamCache {
	return &streamCache{src: src, ttl: ttl, now: now, m: make(map[string]cachedStream)}
}

// get returns the stream. Only a stream and "no such stream" are kept: a
// store that fails is asked again next time.
func (c *streamCache) get(ctx context.Context, id string) (commerce.Stream, error) {
	if c.ttl < 0 {
		return c.src.GetStream(ctx, id)
	}
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < c.ttl {
		return e.st, e.err
	}
	st, err := c.src.GetStream(ctx, id)
	if err != nil && commerce.ErrorCode(err) != commerce.ENOTFOUND {
		return st, err
	}
	c.mu.Lock()
	if len(c.m) >= maxCachedStreams {
		clear(c.m)
	}
	c.m[id] = cachedStream{st: st, err: err, at: now}
	c.mu.Unlock()
	return st, err
}
