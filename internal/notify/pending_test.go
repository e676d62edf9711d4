package notify_test

import (
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/livehub/livehub/internal/notify"
	"github.com/livehub/livehub/internal/notify/notifytest"
	"github.com/livehub/livehub/internal/redistest"
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

func TestPendingStore_Memory(t *testing.T) {
	notifytest.RunPendingStoreTests(t, func(t *testing.T) notify.PendingStore { return notify.NewMemoryPending() })
}

func TestPendingStore_Redis(t *testing.T) {
	client := newRedis(t)
	n := 0
	notifytest.RunPendingStoreTests(t, func(t *testing.T) notify.PendingStore {
		n++
		s, err := notify.NewRedisPending(notify.RedisPendingOptions{Client: client, Prefix: fmt.Sprintf("t%d", n)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestPendingStore_RedisCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs})
	t.Cleanup(func() { _ = client.Close() })
	n := 0
	notifytest.RunPendingStoreTests(t, func(t *testing.T) notify.PendingStore {
		n++
		s, err := notify.NewRedisPending(notify.RedisPendingOptions{Client: client, Prefix: fmt.Sprintf("t%d", n)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
