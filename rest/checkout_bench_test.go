package rest_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
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
)

// BenchmarkCheckoutHTTP_Redis measures POST /v1/checkout through HTTP on
// the Redis engine: each checkout is the reserve script, the simulated
// charge and the events. It reports checkouts per second and latency
// percentiles; the stock is large enough that every checkout succeeds.
//
//	go test ./rest -run '^$' -bench CheckoutHTTP_Redis -benchtime 20000x
func BenchmarkCheckoutHTTP_Redis(b *testing.B) {
	redis := redistest.Start(b)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := redisengine.New(redisengine.Options{URL: redis.URL, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
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
}
