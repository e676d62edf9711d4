package main

import (
	"context"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// BenchmarkFleetReadPath is what the tool spends per delivery: 1,000
// clients in one room of a livehub started for it, b.N publications of
// 200 bytes at 100/s through the server API. It reports the CPU time of
// this process (the clients' read path, and the publishing calls, which
// are a thousandth of the deliveries) and its allocations per delivery;
// the server's CPU is not counted, so the figure holds even when the
// machine is shared. Run it with a fixed count, and against a prebuilt
// server to compare two versions of the tool:
//
//	LIVEHUB_BENCH_SERVER_BIN=bin/livehub go test ./cmd/livehub-bench -run '^$' -bench FleetReadPath -benchtime 300x
func BenchmarkFleetReadPath(b *testing.B) {
	const clients = 1000
	srv := startServer(b)
	spec := fleetSpec{
		Kind: kindSeq, URL: "ws://" + srv.addr + "/connection/websocket", Secret: testSecret,
		Sources: []string{"127.0.0.1"}, Clients: clients, Channels: []string{"live:bench"},
		Count: b.N, DialConcurrency: 64, Timeout: 5 * time.Minute,
	}
	ctx, cancel := context.WithTimeout(context.Background(), spec.Timeout)
	defer cancel()
	f, err := newFleet(spec)
	if err != nil {
		b.Fatal(err)
	}
	defer f.close()
	if st, err := f.connect(ctx); err != nil || st.Connected != clients {
		b.Fatalf("connect: %+v, %v", st, err)
	}
	cfg := Config{API: "http://" + srv.addr, APIKey: testAPIKey, Payload: 200, PublishConcurrency: 16}
	pubClients := sourceClients([]string{"127.0.0.1"}, cfg.PublishConcurrency)
	defer closeIdle(pubClients)
	pub := newPublisher(cfg, pubClients[0])

	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cpu0 := processCPU(b)
	b.ResetTimer()
	pr := pub.run(ctx, spec.Channels, b.N, 100, nil)
	if err := f.settle(ctx, 30*time.Second); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	cpu := processCPU(b) - cpu0
	runtime.ReadMemStats(&m1)
	res, err := f.finish(ctx)
	if err != nil {
		b.Fatal(err)
	}
	deliveries := int64(clients) * int64(b.N)
	if pr.Errors != 0 || res.Delivered != deliveries || res.Lost != 0 {
		b.Fatalf("published %d (%d errors), delivered %d of %d, lost %d", pr.Sent, pr.Errors, res.Delivered, deliveries, res.Lost)
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(deliveries), "cpu-ns/delivery")
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(deliveries), "allocs/delivery")
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/float64(deliveries), "B/delivery")
}

// processCPU is the user and system CPU time of this process so far.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
