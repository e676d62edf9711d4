package rest_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/hub/redisengine"
	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/hubauth"
	"github.com/livehub/livehub/internal/payment"
	"github.com/livehub/livehub/internal/redisstore"
	"github.com/livehub/livehub/internal/redistest"
	"github.com/livehub/livehub/internal/shop"
	"github.com/livehub/livehub/rest"
	goredis "github.com/redis/go-redis/v9"
)

// BenchmarkCheckoutHTTP_Redis measures POST /v1/checkout through HTTP on
// the Redis engine: each checkout is the reserve script (which binds the
// idempotency key and indexes the order too), the simulated charge, the
// payment script and order.created to the buyer and the studio, published
// together; the room's order.placed is folded per sale and interval. It
// reports checkouts per second and latency percentiles, and two figures a
// busy machine hardly moves: the node's Redis round trips (commands and
// pipelines) and the redis-server's CPU time, per checkout. The stock is
// large enough that every checkout succeeds.
//
//	go test ./rest -run '^$' -bench CheckoutHTTP_Redis -benchtime 20000x
func BenchmarkCheckoutHTTP_Redis(b *testing.B) {
	rs := redistest.Start(b)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := redisengine.New(redisengine.Options{URL: rs.URL, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	trips := &roundTrips{}
	e.Client().AddHook(trips)
	v, _ := auth.NewVerifier(auth.VerifierConfig{Secrets: [][]byte{[]byte(v1Secret)}})
	node, err := hub.New(hub.Config{Broker: e, Presence: e, Registry: e, Tokens: hubauth.New(v), Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	if err := node.Run(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = node.Shutdown(ctx)
	}()
	svc, err := shop.New(shop.Config{
		Store: redisstore.New(e.Client(), redisstore.Options{}), Publisher: nodePublisher{node},
		Charger: payment.Simulated{}, Logger: log,
	})
	if err != nil {
		b.Fatal(err)
	}
	// The service's background work runs as in the binary: stock events and
	// the folded purchase ticker go out while the checkouts run.
	runCtx, stopRun := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); svc.Run(runCtx) }()
	defer func() { stopRun(); <-ran }()
	srv := httptest.NewServer(rest.New(rest.Options{Node: node, Logger: log, V1: rest.V1Options{Shop: svc, Tokens: v, Simulated: true}}))
	defer srv.Close()

	host := shop.Actor{UserID: "bench-host", Roles: []string{"host"}}
	ctx := context.Background()
	st, err := svc.CreateStream(ctx, host, "bench")
	if err != nil {
		b.Fatal(err)
	}
	sale, err := svc.CreateFlashSale(ctx, host, st.ID, shop.FlashSaleInput{
		Product: commerce.Product{ID: "p", Name: "Bench"}, Price: 1000,
		Quantity: 1_000_000, PerUserLimit: 1, DurationSeconds: 3600,
	})
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	body := fmt.Sprintf(`{"flash_sale_id":%q,"quantity":1}`, sale.ID)
	var (
		next      atomic.Int64
		mu        sync.Mutex
		latencies []time.Duration
		failures  atomic.Int64
	)
	b.SetParallelism(16)
	cpu0 := redisCPU(b, e.Client())
	trips0 := trips.n.Load()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			i := next.Add(1)
			req, _ := http.NewRequest("POST", srv.URL+"/v1/checkout", strings.NewReader(body))
			// A fresh buyer per checkout: the per-user limit never refuses.
			tok, _ := auth.Mint([]byte(v1Secret), auth.Claims{Subject: fmt.Sprintf("b-%d", i)}, time.Hour)
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Idempotency-Key", fmt.Sprint(i))
			start := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				failures.Add(1)
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			local = append(local, time.Since(start))
			if resp.StatusCode != http.StatusCreated {
				failures.Add(1)
			}
		}
		mu.Lock()
		latencies = append(latencies, local...)
		mu.Unlock()
	})
	b.StopTimer()
	tripsPerOp := float64(trips.n.Load()-trips0) / float64(b.N)
	cpuPerOp := (redisCPU(b, e.Client()) - cpu0).Seconds() * 1e6 / float64(b.N)
	if f := failures.Load(); f > 0 {
		b.Fatalf("%d checkouts failed", f)
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checkouts/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(tripsPerOp, "redis-trips/op")
	b.ReportMetric(cpuPerOp, "redis-cpu-µs/op")
}

// roundTrips counts a client's round trips to Redis: each command and each
// pipeline (a script run is one, unless Redis lacks it and it is sent again).
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (r *roundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}

// redisCPU returns the CPU time the redis-server has used (user and
// system), from INFO cpu.
func redisCPU(b *testing.B, c goredis.UniversalClient) time.Duration {
	b.Helper()
	info, err := c.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("INFO cpu %s: %v", line, err)
			}
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}
