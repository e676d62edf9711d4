package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	testSecret = "bench-test-secret-0123456789abcdef"
	testAPIKey = "bench-test-api-key"
	// buildTimeout bounds compiling the server (longer with -race).
	buildTimeout = 5 * time.Minute
	// runTimeout bounds one run of the tool in a test.
	runTimeout = 2 * time.Minute
)

// TestMain lets the test binary stand in for livehub-bench as a worker:
// runs with -workers start os.Executable() -worker, which is this binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-worker" {
		os.Exit(mainRun(os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
	}
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func TestRoom_DeliversEveryMessageOnce(t *testing.T) {
	srv := startServer(t)
	rep := runBench(t, srv, Config{Mode: modeRoom, Clients: 50, Count: 200, Rate: 400, Payload: 256})

	if rep.Connect.Connected != 50 || rep.Connect.Failed != 0 {
		t.Fatalf("connect: %+v, want 50 connected", rep.Connect)
	}
	d := rep.Delivery
	if d == nil {
		t.Fatal("no delivery report")
	}
	if d.Delivered != 50*200 || d.Expected != 50*200 {
		t.Errorf("delivered %d of %d, want %d", d.Delivered, d.Expected, 50*200)
	}
	if d.Lost != 0 || d.Duplicates != 0 {
		t.Errorf("lost %d, duplicates %d, want 0 and 0", d.Lost, d.Duplicates)
	}
	l := d.Latency
	if l.Count != 50*200 || l.P50 <= 0 || l.P95 < l.P50 || l.P99 < l.P95 || l.Max < l.P99 {
		t.Errorf("latency not filled in or not ordered: %+v", l)
	}
	if d.PerSecond <= 0 || rep.Connect.PerSecond <= 0 {
		t.Errorf("rates not filled in: %.1f msg/s, %.1f conns/s", d.PerSecond, rep.Connect.PerSecond)
	}
	if rep.Publish == nil || rep.Publish.Sent != 200 || rep.Publish.Errors != 0 {
		t.Errorf("publish: %+v, want 200 sent without errors", rep.Publish)
	}
	s := rep.Server
	if s == nil || s.Error != "" || s.RSSBeforeKiB <= 0 || s.RSSAfterKiB <= 0 || s.CPUPercent <= 0 {
		t.Errorf("server figures not filled in: %+v", s)
	}
	var table bytes.Buffer
	if err := rep.writeTable(&table); err != nil || !strings.Contains(table.String(), "p99") {
		t.Errorf("table (%v):\n%s", err, table.String())
	}
}

func TestRooms_EachClientGetsItsRoomOnly(t *testing.T) {
	srv := startServer(t)
	rep := runBench(t, srv, Config{Mode: modeRooms, Clients: 30, Rooms: 4, Count: 100, Rate: 500})
	d := rep.Delivery
	// Rooms 0 and 1 get 25 messages each and hold 8 clients; rooms 2 and 3 get 25 and hold 7.
	if want := int64(30 * 25); d.Expected != want || d.Delivered != want || d.Lost != 0 || d.Duplicates != 0 || d.Ignored != 0 {
		t.Errorf("delivery %+v, want %d delivered, nothing lost, duplicated or ignored", d, want)
	}
}

func TestReconnect_RecoversWhatWasMissed(t *testing.T) {
	srv := startServer(t)
	rep := runBench(t, srv, Config{Mode: modeReconnect, Clients: 50, Count: 200, Rate: 200})
	rc := rep.Reconn
	if rc == nil {
		t.Fatal("no reconnect report")
	}
	if rc.Dropped != 50 || rc.Reconnected != 50 || rc.Recovered != 50 || rc.Failed != 0 {
		t.Errorf("reconnect %+v, want 50 dropped, reconnected and recovered", rc)
	}
	if rc.Time.Count != 50 || rc.Time.P50 <= 0 {
		t.Errorf("reconnect time not filled in: %+v", rc.Time)
	}
	if d := rep.Delivery; d.Delivered != 50*200 || d.Lost != 0 || d.Duplicates != 0 {
		t.Errorf("delivery %+v, want every message once", d)
	}
}

func TestCheckout_NeverOversellsAndEveryViewerSeesZero(t *testing.T) {
	srv := startServer(t)
	rep := runBench(t, srv, Config{Mode: modeCheckout, Clients: 20, Buyers: 200, Units: 20, PerUserLimit: 1})
	ck := rep.Checkout
	if ck == nil {
		t.Fatal("no checkout report")
	}
	if ck.Oversold != 0 || ck.Sold > ck.Units {
		t.Errorf("oversold: %d units sold of %d", ck.Sold, ck.Units)
	}
	if ck.Sold != 20 || ck.Created != 20 || ck.SoldOut != 180 || ck.Other != 0 {
		t.Errorf("status counts 201 %d, sold_out %d, limit %d, other %d %v (sold %d); want 20 sold, 180 sold out",
			ck.Created, ck.SoldOut, ck.Limit, ck.Other, ck.OtherDetail, ck.Sold)
	}
	if ck.Viewers != 20 || ck.ViewersSawZero != 20 || ck.StockZeroSeconds <= 0 {
		t.Errorf("%d of %d viewers saw stock 0 (last after %.3fs), want all 20", ck.ViewersSawZero, ck.Viewers, ck.StockZeroSeconds)
	}
	if ck.Requests != 200 || ck.PerSecond <= 0 || ck.Latency.Count != 200 || ck.Latency.P99 <= 0 {
		t.Errorf("burst figures not filled in: %d requests, %.1f/s, latency %+v", ck.Requests, ck.PerSecond, ck.Latency)
	}
}

func TestCheckout_SecondAttemptHitsThePerUserLimit(t *testing.T) {
	srv := startServer(t)
	rep := runBench(t, srv, Config{Mode: modeCheckout, Clients: 2, Buyers: 10, Attempts: 2, Units: 100, PerUserLimit: 1})
	ck := rep.Checkout
	if ck.Created != 10 || ck.Limit != 10 || ck.Sold != 10 || ck.Oversold != 0 {
		t.Errorf("201 %d, limit %d, sold %d, oversold %d; want 10, 10, 10, 0 (other %v)", ck.Created, ck.Limit, ck.Sold, ck.Oversold, ck.OtherDetail)
	}
}

func TestWorkers_MergeChildResults(t *testing.T) {
	srv := startServer(t)
	rep := runBench(t, srv, Config{Mode: modeRoom, Clients: 41, Count: 50, Rate: 200, Workers: 2,
		Sources: []string{"127.0.0.1", "127.0.0.2"}})
	if len(rep.Fleets) != 2 {
		t.Fatalf("%d fleets in the report, want one per worker: %+v", len(rep.Fleets), rep.Fleets)
	}
	var clients int
	var delivered int64
	for i, f := range rep.Fleets {
		if f.Connected != f.Clients || int64(f.Clients)*50 != f.Delivered {
			t.Errorf("worker %d: %+v, want all connected and 50 messages each", i+1, f)
		}
		clients += f.Clients
		delivered += f.Delivered
	}
	if rep.Fleets[0].Clients != 21 || rep.Fleets[1].Clients != 20 {
		t.Errorf("shares %d and %d, want 21 and 20", rep.Fleets[0].Clients, rep.Fleets[1].Clients)
	}
	d := rep.Delivery
	if clients != 41 || rep.Connect.Connected != 41 || d.Delivered != delivered || d.Delivered != 41*50 || d.Lost != 0 {
		t.Errorf("merged: %d connected, %d delivered (workers: %d), %d lost; want 41, %d, 0", rep.Connect.Connected, d.Delivered, delivered, d.Lost, 41*50)
	}
	if d.Latency.Count != 41*50 || d.Latency.P50 <= 0 {
		t.Errorf("merged latency %+v, want %d samples", d.Latency, 41*50)
	}
}

func TestHistogram_QuantilesWithinOnePercent(t *testing.T) {
	h := newHistogram()
	for i := 1; i <= 100000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	s := h.Snapshot()
	for _, q := range []float64{0.5, 0.95, 0.99, 1} {
		want := q * 100000
		got := float64(s.Quantile(q).Microseconds())
		if got < want || got > want*1.01 {
			t.Errorf("q%.2f = %.0fµs, want within 1%% above %.0fµs", q, got, want)
		}
	}
	half := newHistogram()
	rest := newHistogram()
	for i := 1; i <= 100000; i++ {
		if i%2 == 0 {
			half.Record(time.Duration(i) * time.Microsecond)
		} else {
			rest.Record(time.Duration(i) * time.Microsecond)
		}
	}
	m := half.Snapshot().merge(rest.Snapshot())
	if m.Count != s.Count || m.Min != s.Min || m.Max != s.Max || m.Quantile(0.99) != s.Quantile(0.99) {
		t.Errorf("merged halves differ from the whole: %d/%d/%d vs %d/%d/%d", m.Count, m.Min, m.Max, s.Count, s.Min, s.Max)
	}
}

func TestHistogram_BucketsCoverTheRange(t *testing.T) {
	for i := 0; i < 10000; i++ {
		v := rand.Int64N(maxMicros)
		b := bucketOf(v)
		if b < 0 || b >= numBuckets || bucketHigh(b) < v || (b > 0 && bucketHigh(b-1) >= v) {
			t.Fatalf("value %d: bucket %d [%d, %d]", v, b, bucketHigh(b-1)+1, bucketHigh(b))
		}
	}
}

func TestPayload_RoundTripsAtTheAskedSize(t *testing.T) {
	for _, size := range []int{0, 10, 64, 128, 4096} {
		b := encodePayload(12345, 1712345678901234567, size)
		if size > 64 && len(b) != size {
			t.Errorf("size %d: payload is %d bytes", size, len(b))
		}
		seq, ts, ok := parsePayload(b)
		if !ok || seq != 12345 || ts != 1712345678901234567 {
			t.Errorf("size %d: parsed %d, %d, %v from %s", size, seq, ts, ok, b)
		}
	}
	if _, _, ok := parsePayload([]byte(`{"type":"chat"}`)); ok {
		t.Error("parsed a publication that is not a bench one")
	}
}

// runBench runs the tool against srv with cfg plus the server's addresses.
func runBench(t *testing.T, srv *server, cfg Config) *Report {
	t.Helper()
	cfg.URL = "ws://" + srv.addr + "/connection/websocket"
	cfg.API = "http://" + srv.addr
	cfg.APIKey = testAPIKey
	cfg.Secret = testSecret
	cfg.ServerPID = srv.cmd.Process.Pid
	cfg.Drain = 20 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	var progress bytes.Buffer
	rep, err := run(ctx, cfg, &progress)
	if err != nil {
		t.Fatalf("run: %v\n--- progress ---\n%s--- server log ---\n%s", err, progress.String(), srv.log.String())
	}
	if testing.Verbose() {
		var b bytes.Buffer
		_ = rep.writeTable(&b)
		t.Logf("\n%s", b.String())
	}
	return rep
}

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// serverBinary builds cmd/livehub once per test binary (with -race when
// this test runs with it).
func serverBinary(t testing.TB) string {
	t.Helper()
	// A prebuilt server, so that benchmarks of two versions of the tool
	// run against the very same one.
	if bin := os.Getenv("LIVEHUB_BENCH_SERVER_BIN"); bin != "" {
		return bin
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "livehub-bench-test-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "livehub")
		args := []string{"build", "-o", buildBin}
		if raceEnabled() {
			args = append(args, "-race")
		}
		args = append(args, "./cmd/livehub")
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}

type server struct {
	addr    string
	cmd     *exec.Cmd
	log     *lockedBuffer
	done    chan struct{}
	waitErr error
}

// startServer runs a livehub on the memory engine on a free loopback port
// and stops it with SIGTERM when the test ends.
// startServer starts livehub on a free port; extra are more LIVEHUB_*
// settings.
func startServer(t testing.TB, extra ...string) *server {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a livehub server: skipped with -short")
	}
	bin := serverBinary(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{addr: ln.Addr().String(), log: &lockedBuffer{}, done: make(chan struct{})}
	_ = ln.Close()
	s.cmd = exec.Command(bin)
	s.cmd.Env = append(os.Environ(),
		"LIVEHUB_HTTP_ADDR="+s.addr,
		"LIVEHUB_JWT_SECRET="+testSecret,
		"LIVEHUB_API_KEY="+testAPIKey,
		"LIVEHUB_SHUTDOWN_GRACE=1s",
		"LIVEHUB_LOG_LEVEL=warn",
		"GORACE=atexit_sleep_ms=0",
	)
	s.cmd.Env = append(s.cmd.Env, extra...)
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	s.cmd.WaitDelay = 5 * time.Second
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start livehub: %v", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() { s.stop(t) })

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-s.done:
			t.Fatalf("livehub exited before it was ready: %v\n%s", s.waitErr, s.log.String())
		default:
		}
		resp, err := client.Get("http://" + s.addr + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("livehub not ready at %s after 20s (%v)\n%s", s.addr, err, s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM, kills a server still running ten seconds later, and
// fails the test on a data race the server reported.
func (s *server) stop(t testing.TB) {
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
			t.Errorf("livehub still running 10s after SIGTERM")
		}
	}
	if log := s.log.String(); strings.Contains(log, "WARNING: DATA RACE") {
		t.Errorf("the server reported a data race:\n%s", log)
	}
}

// lockedBuffer is a bytes.Buffer for a process's stdout and stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestParseFlags_SecretsFromTheServerVariables(t *testing.T) {
	env := map[string]string{"LIVEHUB_API_KEY": "k", "LIVEHUB_JWT_SECRET": "new,old"}
	cfg, worker, err := parseFlags([]string{"-mode", "rooms", "-sources", "127.0.0.1, 127.0.0.2"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil || worker {
		t.Fatalf("parseFlags: %v (worker %v)", err, worker)
	}
	if cfg.APIKey != "k" || cfg.Secret != "new" || cfg.Mode != modeRooms || len(cfg.Sources) != 2 || cfg.Sources[1] != "127.0.0.2" {
		t.Errorf("got key %q, secret %q, mode %q, sources %q", cfg.APIKey, cfg.Secret, cfg.Mode, cfg.Sources)
	}
	cfg, _, _ = parseFlags([]string{"-api-key", "flag", "-secret", "s"}, func(k string) string { return env[k] }, io.Discard)
	if cfg.APIKey != "flag" || cfg.Secret != "s" {
		t.Errorf("flags did not win over the variables: key %q, secret %q", cfg.APIKey, cfg.Secret)
	}
	if err := (&Config{Mode: modeCheckout, Units: 1, Buyers: 1}).normalize(); err == nil {
		t.Error("checkout without a secret was accepted")
	}
}

func TestBytes_EveryEncodingDecodesToTheEventsSent(t *testing.T) {
	srv := startServer(t)
	cfg := Config{URL: "ws://" + srv.addr + "/connection/websocket", API: "http://" + srv.addr, APIKey: testAPIKey, Secret: testSecret,
		ServerPID: srv.cmd.Process.Pid, Events: 60, Clients: 3}
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	rep, err := runBytes(ctx, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != len(wireVariants) {
		t.Fatalf("%d results, want %d", len(rep.Results), len(wireVariants))
	}
	for _, r := range rep.Results {
		if r.Variant == "JSON" && r.Error != "" {
			t.Fatalf("JSON: %s", r.Error)
		}
		if r.Error != "" {
			t.Logf("%s not measured: %s", r.Variant, r.Error)
			continue
		}
		if r.Delivered != 60*3 || r.Mismatched != 0 {
			t.Errorf("%s: delivered %d (want 180), mismatched %d", r.Variant, r.Delivered, r.Mismatched)
		}
		// Without compression or delta, the wire carries at least the event.
		if !strings.Contains(r.Variant, "deflate") && !strings.Contains(r.Variant, "delta") && !strings.Contains(r.Variant, "Protobuf") && r.PerEvent < rep.PayloadBytes {
			t.Errorf("%s: %.1f wire bytes per event, under the %.1f bytes of the event itself", r.Variant, r.PerEvent, rep.PayloadBytes)
		}
		if r.PerEvent <= 0 {
			t.Errorf("%s: no bytes counted", r.Variant)
		}
	}
	var md strings.Builder
	md.WriteString(bytesMarkdown(rep, machineInfo()))
	if !strings.Contains(md.String(), "| JSON |") {
		t.Errorf("markdown:\n%s", md.String())
	}
}

func TestSoak_ReportsRowsWithoutLoss(t *testing.T) {
	srv := startServer(t)
	cfg := Config{URL: "ws://" + srv.addr + "/connection/websocket", API: "http://" + srv.addr, APIKey: testAPIKey, Secret: testSecret,
		ServerPID: srv.cmd.Process.Pid, Sources: []string{"127.0.0.1"}, Duration: 4 * time.Second, Interval: time.Second,
		Clients: 10, Chatters: 2, ChatRate: 10, Churn: 5, CheckoutRate: 2, Couriers: 1}
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	var rows bytes.Buffer
	rep, err := runSoak(ctx, cfg, io.Discard, &rows)
	if err != nil {
		t.Fatalf("soak: %v\n%s", err, srv.log.String())
	}
	if len(rep.Rows) < 3 {
		t.Fatalf("%d rows, want one a second:\n%s", len(rep.Rows), rows.String())
	}
	f := rep.Final
	if f.ChatSent == 0 || f.Likes == 0 || f.Checkouts == 0 || f.Connects <= int64(cfg.Clients) {
		t.Errorf("nothing happened: %+v", f)
	}
	if rep.ChatLost != 0 || rep.CourierLost != 0 {
		t.Errorf("lost %d chat and %d courier events", rep.ChatLost, rep.CourierLost)
	}
	if want := int64(cfg.Clients) * f.ChatSent; f.ChatDelivered < want {
		t.Errorf("watchers saw %d of %d chat messages", f.ChatDelivered, want)
	}
	last := rep.Rows[len(rep.Rows)-1]
	if last.RSSMiB <= 0 || last.Goroutines <= 0 || last.HeapMiB <= 0 {
		t.Errorf("server figures missing: %+v", last)
	}
	if !strings.HasPrefix(rep.StockCheck, "consistent") {
		t.Errorf("stock check: %s", rep.StockCheck)
	}
	md := soakMarkdown(rep, machineInfo())
	if !strings.Contains(md, "Server memory") {
		t.Errorf("markdown:\n%s", md)
	}
}
