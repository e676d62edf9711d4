package push_test

import (
	"testing"

	"github.com/livehub/livehub/internal/redistest"
	"github.com/livehub/livehub/push"
	"github.com/livehub/livehub/push/pushtest"
	"github.com/redis/go-redis/v9"
)

// newRedis returns a client of a redis-server private to the test.
func newRedis(t *testing.T) redis.UniversalClient {
	t.Helper()
	srv := redistest.Start(t)
	opt, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestDeviceStore_Memory(t *testing.T) {
	pushtest.RunDeviceStoreTests(t, func(t *testing.T) push.DeviceStore { return push.NewMemoryDeviceStore() })
}

func TestDeviceStore_Redis(t *testing.T) {
	client := newRedis(t)
	n := 0
	pushtest.RunDeviceStoreTests(t, func(t *testing.T) push.DeviceStore {
		n++
		s, err := push.NewRedisDeviceStore(push.RedisOptions{Client: client, Prefix: "t" + string(rune('a'+n))})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestQueue_Memory(t *testing.T) {
	pushtest.RunQueueTests(t, func(t *testing.T, c pushtest.QueueConfig) push.Queue {
		return push.NewMemoryQueue(push.MemoryQueueOptions{ClaimIdle: c.ClaimIdle, MaxLen: c.MaxLen})
	})
}

func TestQueue_Redis(t *testing.T) {
	pushtest.RunQueueTests(t, func(t *testing.T, c pushtest.QueueConfig) push.Queue {
		q, err := push.NewRedisQueue(push.RedisQueueOptions{
			RedisOptions: push.RedisOptions{Client: newRedis(t)},
			ClaimIdle:    c.ClaimIdle,
			MaxLen:       int64(c.MaxLen),
		})
		if err != nil {
			t.Fatal(err)
		}
		return q
	})
}

func TestDedupe_Memory(t *testing.T) {
	pushtest.RunDedupeTests(t, func(t *testing.T, o push.DedupeOptions) push.Dedupe { return push.NewMemoryDedupe(o) })
}

func TestDedupe_Redis(t *testing.T) {
	pushtest.RunDedupeTests(t, func(t *testing.T, o push.DedupeOptions) push.Dedupe {
		d, err := push.NewRedisDedupe(push.RedisDedupeOptions{RedisOptions: push.RedisOptions{Client: newRedis(t)}, DedupeOptions: o})
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}
