package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/commerce/commercetest"
	"github.com/livehub/livehub/internal/redisstore"
	"github.com/livehub/livehub/internal/redistest"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newClient returns a client of the server at url, closed when the test
// ends. The pool is sized for the suite's rush of concurrent checkouts.
func newClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opts.PoolSize, opts.PoolTimeout = 64, 30*time.Second
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// prefix returns a key prefix of its own, so tests may share a server.
func prefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

func TestStore(t *testing.T) {
	srv := redistest.Start(t)
	c := newClient(t, srv.URL)
	commercetest.RunStoreTests(t, func(t *testing.T) commerce.Store {
		return redisstore.New(c, redisstore.Options{Prefix: prefix()})
	})
}

func TestStore_Cluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	c := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: cl.Addrs, PoolSize: 64, PoolTimeout: 30 * time.Second,
	})
	t.Cleanup(func() { _ = c.Close() })
	commercetest.RunStoreTests(t, func(t *testing.T) commerce.Store {
		return redisstore.New(c, redisstore.Options{Prefix: prefix()})
	})
}

// Three nodes, each with its own client, sell one sale on one Redis.
func TestCheckout_NoOversellAcrossNodes(t *testing.T) {
	srv := redistest.Start(t)
	p := prefix()
	var nodes []commerce.Store
	for range 3 {
		nodes = append(nodes, redisstore.New(newClient(t, srv.URL), redisstore.Options{Prefix: p}))
	}
	commercetest.RunNoOversellTests(t, nodes...)
}

func TestStore_RedisDownIsUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	opts, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	opts.MaxRetries = -1
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	st := redisstore.New(c, redisstore.Options{Prefix: prefix()})
	srv.Kill()

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	now := time.Now()
	_, err = st.Reserve(ctx, commerce.ReserveRequest{
		SaleID: "fs_1", BuyerID: "b1", Quantity: 1, OrderID: "ord_1",
		Now: now, ReservedUntil: now.Add(time.Minute),
	})
	if commerce.ErrorCode(err) != commerce.EUNAVAILABLE {
		t.Fatalf("Reserve with Redis down: %v, want %s", err, commerce.EUNAVAILABLE)
	}
	var ce *commerce.Error
	if !errors.As(err, &ce) || ce.Err == nil {
		t.Fatalf("error %v does not carry its cause", err)
	}
	_, err = st.GetOrder(ctx, "ord_1")
	if commerce.ErrorCode(err) != commerce.EUNAVAILABLE {
		t.Fatalf("GetOrder with Redis down: %v, want %s", err, commerce.EUNAVAILABLE)
	}
}

func TestStore_RejectsBracesInIDs(t *testing.T) {
	srv := redistest.Start(t)
	st := redisstore.New(newClient(t, srv.URL), redisstore.Options{Prefix: prefix()})
	ctx := t.Context()
	err := st.CreateStream(ctx, commerce.Stream{ID: "s{1}", HostID: "h"})
	if commerce.ErrorCode(err) != commerce.EINVALID {
		t.Fatalf("CreateStream with a brace: %v", err)
	}
	err = st.CreateFlashSale(ctx, commerce.FlashSale{
		ID: "fs}", StreamID: "s", Quantity: 1, PerUserLimit: 1,
		StartsAt: commercetest.T0, EndsAt: commercetest.T0.Add(time.Hour),
	})
	if commerce.ErrorCode(err) != commerce.EINVALID {
		t.Fatalf("CreateFlashSale with a brace: %v", err)
	}
	if _, err := st.GetOrder(ctx, "o{x}"); commerce.ErrorCode(err) != commerce.ENOTFOUND {
		t.Fatalf("GetOrder with a brace: %v", err)
	}
}
