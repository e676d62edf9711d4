package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/centrifugal/protocol"

	"github.com/livehub/livehub/internal/protoclient"
)

// rollingNode is one livehub process of a rolling restart. A node keeps its
// address across restarts; gen counts the processes that served it.
type rollingNode struct {
	idx  int
	addr string

	mu  sync.Mutex
	gen int
	srv *server
}

func (n *rollingNode) current() (*server, int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv, n.gen
}

// rollingCluster is a set of livehub processes on one Redis, each restartable
// on its own address.
type rollingCluster struct {
	t     *testing.T
	bin   string
	env   []string
	nodes []*rollingNode
	rr    atomic.Int64
}

func newRollingCluster(ctx context.Context, t *testing.T, bin string, n int, env ...string) *rollingCluster {
	t.Helper()
	c := &rollingCluster{t: t, bin: bin, env: env}
	for i := 0; i < n; i++ {
		node := &rollingNode{idx: i, addr: freeAddr(t)}
		node.srv = c.spawn(ctx, node.addr)
		c.nodes = append(c.nodes, node)
	}
	return c
}

// spawn starts a livehub process on addr and waits for its /readyz.
func (c *rollingCluster) spawn(ctx context.Context, addr string) *server {
	t := c.t
	t.Helper()
	s := &server{addr: addr, log: &lockedBuffer{}, done: make(chan struct{})}
	s.cmd = exec.CommandContext(ctx, c.bin)
	s.cmd.Env = append(os.Environ(),
		"LIVEHUB_HTTP_ADDR="+addr,
		"LIVEHUB_JWT_SECRET="+jwtSecret,
		"LIVEHUB_API_KEY="+apiKey,
	)
	s.cmd.Env = append(s.cmd.Env, c.env...)
	if os.Getenv("GORACE") == "" {
		s.cmd.Env = append(s.cmd.Env, "GORACE=atexit_sleep_ms=0")
	}
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	s.cmd.WaitDelay = 5 * time.Second
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start livehub on %s: %v", addr, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	probe := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-s.done:
			t.Fatalf("livehub on %s exited before it was ready: %v\n--- server log ---\n%s", addr, s.waitErr, s.log.String())
		default:
		}
		resp, err := probe.Get("http://" + addr + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("livehub on %s not ready after 30s (last error %v)\n--- server log ---\n%s", addr, err, s.logTail(100))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// terminate sends SIGTERM to the node's process, waits for it to exit and
// checks it exited 0 without data races. It returns how long the exit took
// and the values of the node's count of 3001 closes read from /metrics
// while it drained, in the order read.
func (c *rollingCluster) terminate(node *rollingNode, limit time.Duration) (time.Duration, []int) {
	t := c.t
	t.Helper()
	s, gen := node.current()
	// The first value is read before the signal, so that the drain's
	// steps are counted from where the node stood, however late the
	// sampler's next read comes on a loaded machine.
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	baseline, err := shutdownCloses(hc, s.addr)
	if err != nil {
		t.Fatalf("node %d (process %d): read /metrics before SIGTERM: %v", node.idx, gen, err)
	}
	sampled := make(chan []int, 1)
	go func() { sampled <- append([]int{baseline}, sampleShutdownCloses(hc, s)...) }()
	select {
	case <-s.done:
		t.Fatalf("node %d (process %d) exited before SIGTERM: %v\n--- server log (tail) ---\n%s", node.idx, gen, s.waitErr, s.logTail(100))
	default:
	}
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM node %d: %v", node.idx, err)
	}
	select {
	case <-s.done:
	case <-time.After(limit):
		t.Fatalf("node %d still running %s after SIGTERM\n--- server log (tail) ---\n%s", node.idx, limit, s.logTail(100))
	}
	took := time.Since(start)
	for _, line := range strings.Split(s.log.String(), "\n") {
		if strings.Contains(line, `"took"`) {
			t.Logf("node %d (process %d): %s", node.idx, gen, line)
		}
	}
	var exitErr *exec.ExitError
	switch {
	case s.waitErr == nil:
	case errors.As(s.waitErr, &exitErr):
		t.Errorf("node %d (process %d) exited with code %d after SIGTERM, want 0\n--- server log (tail) ---\n%s",
			node.idx, gen, exitErr.ExitCode(), s.logTail(60))
	default:
		t.Errorf("node %d wait: %v", node.idx, s.waitErr)
	}
	if races := s.races(); races != "" {
		t.Errorf("node %d (process %d) reported data races:\n%s", node.idx, gen, races)
	}
	return took, <-sampled
}

// sampleShutdownCloses reads the node's count of 3001 closes as often as it
// answers, until the process exits or the HTTP server stops.
func sampleShutdownCloses(hc *http.Client, s *server) []int {
	var out []int
	for {
		select {
		case <-s.done:
			return out
		default:
		}
		n, err := shutdownCloses(hc, s.addr)
		if err != nil {
			if len(out) > 0 {
				return out
			}
			// The server stops listening only at the end of its
			// drain; an early error is a refused or slow read.
			time.Sleep(5 * time.Millisecond)
			continue
		}
		out = append(out, n)
		time.Sleep(10 * time.Millisecond)
	}
}

// shutdownCloses reads livehub_hub_disconnects_total{code="3001"} from the
// node's /metrics.
func shutdownCloses(hc *http.Client, addr string) (int, error) {
	resp, err := hc.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("/metrics answered %d", resp.StatusCode)
	}
	n := 0
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, `livehub_hub_disconnects_total{code="3001"} `); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			n = int(f)
		}
	}
	return n, nil
}

// intermediateSteps counts the distinct values strictly between the first
// and the largest of samples: how many times the drain was seen part way.
func intermediateSteps(samples []int) int {
	if len(samples) == 0 {
		return 0
	}
	first, last := samples[0], slices.Max(samples)
	seen := make(map[int]bool)
	for _, v := range samples {
		if v > first && v < last {
			seen[v] = true
		}
	}
	return len(seen)
}

// restart starts a new process on the node's address.
func (c *rollingCluster) restart(ctx context.Context, node *rollingNode) {
	c.t.Helper()
	s := c.spawn(ctx, node.addr)
	node.mu.Lock()
	node.srv = s
	node.gen++
	node.mu.Unlock()
}

func (c *rollingCluster) base(i int) string { return "http://" + c.nodes[i%len(c.nodes)].addr }

// closeEvent is one connection of a viewer ending.
type closeEvent struct {
	node, gen int
	code      int
	reason    string
	at        time.Time
	// recoveredAt is when the viewer had recovered on another node.
	recoveredAt time.Time
	// subscribed is false when the socket closed before the subscription
	// was made (a connect refused by a draining node).
	subscribed bool
}

// viewer is a client of the live room that behaves as the SDKs do: when
// disconnected it reconnects, to the next node of a round robin (skipping
// nodes that refuse the socket), and resubscribes with recover and the last
// offset and epoch it saw.
type viewer struct {
	id      int
	cluster *rollingCluster
	channel string

	// Owned by the viewer's goroutine until done is closed.
	epoch      string
	offset     uint64
	positioned bool
	nextSeq    int
	errs       []string
	closes     []closeEvent
	resubs     int
	recovered  int
	recoveredN int
	// recoveredMax is the most publications one recovery returned.
	recoveredMax int
	// awayMax is the longest time from a close to the recovered
	// resubscription, awayDials how many dials it took and awayWhy the
	// steps (why collects those of the current reconnect).
	awayMax   time.Duration
	awayDials int
	awayWhy   string
	why       []string
	dials     int

	lastErr    atomic.Value // string, for diagnostics
	seqSeen    atomic.Int64 // the last numbered publication seen, for waiting
	subscribed chan struct{}
	done       chan struct{}
}

func newViewer(id int, c *rollingCluster, channel string) *viewer {
	return &viewer{id: id, cluster: c, channel: channel, nextSeq: 1,
		subscribed: make(chan struct{}), done: make(chan struct{})}
}

func (v *viewer) fail(format string, args ...any) {
	if len(v.errs) < 5 {
		v.errs = append(v.errs, fmt.Sprintf(format, args...))
	}
}

// run connects and reconnects until ctx ends.
func (v *viewer) run(ctx context.Context) {
	defer close(v.done)
	next := v.id % len(v.cluster.nodes)
	first := true
	failedInRow := 0
	for ctx.Err() == nil {
		// The first connection goes to the viewer's own node; later ones
		// to the next node of a round robin shared by all viewers, as a
		// load balancer would pick.
		if !first {
			next = int(v.cluster.rr.Add(1)) % len(v.cluster.nodes)
		}
		first = false
		node := v.cluster.nodes[next]
		_, gen := node.current()
		v.dials++
		t0 := time.Now()
		conn, err := v.dial(ctx, node.addr)
		v.why = append(v.why, fmt.Sprintf("dial node %d/%d %s err=%v", node.idx, gen, time.Since(t0).Round(time.Millisecond), err))
		if err != nil {
			v.lastErr.Store(err.Error())
			// Refused (the node is down or draining): try the next one;
			// after a full round, back off a little, with jitter.
			failedInRow++
			if failedInRow%len(v.cluster.nodes) == 0 {
				sleepCtx(ctx, 50*time.Millisecond+rand.N(100*time.Millisecond))
			}
			continue
		}
		failedInRow = 0
		v.session(ctx, conn, node.idx, gen)
		if ctx.Err() != nil {
			return
		}
		// The SDKs wait a short, jittered moment before reconnecting.
		sleepCtx(ctx, rand.N(100*time.Millisecond))
	}
}

func (v *viewer) dial(ctx context.Context, addr string) (*protoclient.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return protoclient.Dial(dctx, "ws://"+addr+"/connection/websocket", protoclient.Options{})
}

// session connects, subscribes (recovering when it has a position) and reads
// until the connection ends.
func (v *viewer) session(ctx context.Context, conn *protoclient.Conn, node, gen int) {
	stop := context.AfterFunc(ctx, conn.CloseNow)
	defer stop()
	defer conn.CloseNow()
	subscribed := false
	ended := func() {
		<-conn.Done()
		if ctx.Err() != nil {
			return
		}
		code, reason := conn.CloseStatus()
		if subscribed {
			v.dials = 0
			v.why = nil
		}
		v.closes = append(v.closes, closeEvent{node: node, gen: gen, code: int(code), reason: reason, at: time.Now(), subscribed: subscribed})
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	t0 := time.Now()
	defer func() {
		v.why = append(v.why, fmt.Sprintf("session node %d/%d %s", node, gen, time.Since(t0).Round(time.Millisecond)))
	}()
	if _, err := conn.Connect(cctx, ""); err != nil {
		v.lastErr.Store("connect: " + err.Error())
		if errors.Is(err, protoclient.ErrClosed) {
			ended()
		}
		return
	}
	req := &protocol.SubscribeRequest{Channel: v.channel}
	if v.positioned {
		req.Recover, req.Offset, req.Epoch = true, v.offset, v.epoch
	}
	var res *protocol.SubscribeResult
	for {
		var err error
		res, err = conn.Subscribe(cctx, req)
		var re *protoclient.ReplyError
		if errors.As(err, &re) && re.Code == 100 && cctx.Err() == nil {
			v.why = append(v.why, "subscribe 100 after "+time.Since(t0).Round(time.Millisecond).String())
			// A node that has just started may not reach Redis yet; the
			// SDKs retry a temporary error.
			sleepCtx(cctx, 50*time.Millisecond)
			continue
		}
		if err != nil {
			v.lastErr.Store("subscribe: " + err.Error())
			if errors.Is(err, protoclient.ErrClosed) {
				ended()
			} else if ctx.Err() == nil {
				v.fail("subscribe on node %d: %v", node, err)
			}
			return
		}
		break
	}
	subscribed = true
	if v.positioned {
		v.resubs++
		switch {
		case !res.WasRecovering:
			v.fail("resubscribe on node %d: was_recovering=false", node)
		case !res.Recovered:
			// The room keeps 100 publications of history: say how far the
			// stream moved while the viewer was away.
			away := time.Duration(0)
			if n := len(v.closes); n > 0 {
				away = time.Since(v.closes[n-1].at)
			}
			v.fail("resubscribe on node %d from offset %d epoch %s after %s away: recovered=false (stream now at offset %d epoch %s)",
				node, v.offset, v.epoch, away.Round(time.Millisecond), res.Offset, res.Epoch)
		case res.Epoch != v.epoch:
			v.fail("resubscribe on node %d: epoch changed from %s to %s", node, v.epoch, res.Epoch)
		default:
			v.recovered++
			v.recoveredN += len(res.Publications)
			v.recoveredMax = max(v.recoveredMax, len(res.Publications))
			if n := len(v.closes); n > 0 {
				v.closes[n-1].recoveredAt = time.Now()
				if away := time.Since(v.closes[n-1].at); away > v.awayMax {
					v.awayMax, v.awayDials = away, v.dials
					v.awayWhy = strings.Join(v.why, "; ") + fmt.Sprintf("; subscribed after %s", time.Since(t0).Round(time.Millisecond))
				}
			}
		}
		for _, p := range res.Publications {
			v.handle(p, node, "recovered")
		}
		if res.Recovered && res.Offset != v.offset {
			v.fail("recovery on node %d ended at offset %d, stream is at %d", node, v.offset, res.Offset)
			v.offset = res.Offset
		}
		if !res.Recovered {
			v.epoch, v.offset = res.Epoch, res.Offset
		}
	} else {
		v.epoch, v.offset, v.positioned = res.Epoch, res.Offset, true
		close(v.subscribed)
	}
	for p := range conn.Pushes() {
		if p.Channel == v.channel && p.Pub != nil {
			v.handle(p.Pub, node, "live")
		}
	}
	ended()
}

// handle checks that a publication follows the last one seen, and that
// numbered publications come once each, in order.
func (v *viewer) handle(p *protocol.Publication, node int, how string) {
	if p.Offset == 0 {
		// An ephemeral publication (likes.count, viewers.count) keeps no
		// place in the stream and is not recovered.
		if how == "recovered" {
			v.fail("recovered an ephemeral publication on node %d", node)
		}
		return
	}
	if p.Offset != v.offset+1 {
		v.fail("%s publication on node %d: offset %d after %d", how, node, p.Offset, v.offset)
	}
	if p.Offset > v.offset {
		v.offset = p.Offset
	}
	var d struct {
		Seq *int `json:"seq"`
	}
	if json.Unmarshal(p.Data, &d) != nil || d.Seq == nil {
		return
	}
	if *d.Seq != v.nextSeq {
		v.fail("%s numbered publication on node %d: got %d, want %d", how, node, *d.Seq, v.nextSeq)
	}
	if *d.Seq >= v.nextSeq {
		v.nextSeq = *d.Seq + 1
	}
	v.seqSeen.Store(int64(*d.Seq))
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// serverPublish publishes data through the server API of one node.
func serverPublish(ctx context.Context, hc *http.Client, base, channel string, data any, idem string) error {
	body, _ := json.Marshal(map[string]any{"channel": channel, "data": data, "idempotency_key": idem})
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/api/publish", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("X-API-Key", apiKey)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out struct {
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return fmt.Errorf("publish: status %d: %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK || out.Error != nil {
		return fmt.Errorf("publish: status %d error %+v", resp.StatusCode, out.Error)
	}
	return nil
}

// spreadReport describes how a node's lame-duck closes were spread in time.
type spreadReport struct {
	n          int
	span       time.Duration
	maxIn10ms  int
	firstToMid time.Duration
	// backBeforeLast counts viewers that had recovered on another node
	// before this node closed its last viewer.
	backBeforeLast int
}

func spreadOf(closes []closeEvent) spreadReport {
	sorted := make([]time.Time, 0, len(closes))
	for _, c := range closes {
		sorted = append(sorted, c.at)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Before(sorted[j]) })
	r := spreadReport{n: len(sorted)}
	if len(sorted) == 0 {
		return r
	}
	last := sorted[len(sorted)-1]
	for _, c := range closes {
		if !c.recoveredAt.IsZero() && c.recoveredAt.Before(last) {
			r.backBeforeLast++
		}
	}
	r.span = last.Sub(sorted[0])
	r.firstToMid = sorted[len(sorted)/2].Sub(sorted[0])
	j := 0
	for i := range sorted {
		for sorted[i].Sub(sorted[j]) > 10*time.Millisecond {
			j++
		}
		r.maxIn10ms = max(r.maxIn10ms, i-j+1)
	}
	return r
}

func (r spreadReport) String() string {
	return fmt.Sprintf("%d closes over %s (half of them after %s), at most %d within 10ms, %d viewers back on another node before the last close",
		r.n, r.span.Round(time.Millisecond), r.firstToMid.Round(time.Millisecond), r.maxIn10ms, r.backBeforeLast)
}

func retryAfter(h http.Header) time.Duration {
	if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s > 0 {
		return min(time.Duration(s)*time.Second, 2*time.Second)
	}
	return 200 * time.Millisecond
}
