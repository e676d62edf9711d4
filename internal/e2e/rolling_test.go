package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/redistest"
)

// A rolling restart in the middle of a flash sale: three nodes on one Redis
// are stopped with SIGTERM and started again on the same address, one after
// the other, while viewers watch the room, buyers check out and pay, and a
// backend publishes a numbered sequence into the room.
const (
	rollingNodes    = 3
	rollingViewers  = 240
	rollingBuyers   = 200
	rollingUnits    = 300
	rollingLimit    = 2
	rollingGrace    = 2 * time.Second
	rollingTimeout  = 3 * time.Minute
	rollingPubEvery = 100 * time.Millisecond
	// Before the last node is back, checkouts stop once this many units are
	// taken, so the sale is still selling during every restart.
	rollingPhaseOneCap = 240
)

func TestRolling_RestartEachNodeDuringFlashSale(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end rolling restart: skipped with -short")
	}
	redis := redistest.Start(t)
	bin := buildServer(t, moduleRoot(t))
	ctx, cancel := context.WithTimeout(context.Background(), rollingTimeout)
	defer cancel()
	began := time.Now()
	at := func() string { return time.Since(began).Round(time.Millisecond).String() }

	cl := newRollingCluster(ctx, t, bin, rollingNodes,
		"LIVEHUB_REDIS_URL="+redis.URL,
		"LIVEHUB_SHUTDOWN_GRACE="+rollingGrace.String(),
		"LIVEHUB_SHUTDOWN_TIMEOUT=20s",
		"LIVEHUB_PING_INTERVAL=5s",
		"LIVEHUB_LOG_LEVEL=info",
		// Every buyer calls from 127.0.0.1: the per-IP checkout limit
		// would take them for one abusive address. The per-buyer limit
		// stays on (a 429 is retried after Retry-After).
		"LIVEHUB_CHECKOUT_IP_LIMIT=0",
	)
	r := &rollingRun{t: t, cl: cl, http: &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64},
	}}
	defer r.http.CloseIdleConnections()
	host := mint(t, "host-rolling", "Host", auth.RoleHost)

	var stream struct {
		ID string `json:"id"`
	}
	if st, _, body, err := r.call(ctx, "POST", cl.base(0)+"/v1/streams", host, "", map[string]any{"title": "Rolling restart sale"}); err != nil || st != 201 {
		t.Fatalf("create stream: %d %s %v", st, body, err)
	} else if err := json.Unmarshal(body, &stream); err != nil {
		t.Fatal(err)
	}
	channel := "live:" + stream.ID

	// Viewers join before the sale, a third on each node.
	vctx, stopViewers := context.WithCancel(ctx)
	defer stopViewers()
	viewers := make([]*viewer, rollingViewers)
	for i := range viewers {
		viewers[i] = newViewer(i, cl, channel)
		go viewers[i].run(vctx)
	}
	defer func() {
		stopViewers()
		for _, v := range viewers {
			<-v.done
		}
	}()
	for _, v := range viewers {
		select {
		case <-v.subscribed:
		case <-v.done:
			t.Fatalf("viewer %d stopped before subscribing: %v", v.id, v.errs)
		case <-time.After(30 * time.Second):
			t.Fatalf("viewer %d not subscribed after 30s (last error: %v)", v.id, v.lastErr.Load())
		}
	}

	t.Logf("%s: %d viewers subscribed", at(), len(viewers))
	var sale struct {
		ID string `json:"id"`
	}
	saleBody := map[string]any{
		"product": map[string]any{"id": "sku-rolling", "name": "Sepatu lari"}, "price": 259000,
		"quantity": rollingUnits, "per_user_limit": rollingLimit, "countdown_seconds": 0, "duration_seconds": 600,
	}
	if st, _, body, err := r.call(ctx, "POST", cl.base(1)+"/v1/streams/"+stream.ID+"/flash-sales", host, "", saleBody); err != nil || st != 201 {
		t.Fatalf("create flash sale: %d %s %v", st, body, err)
	} else if err := json.Unmarshal(body, &sale); err != nil {
		t.Fatal(err)
	}
	r.saleID = sale.ID
	r.buyers = make([]string, rollingBuyers)
	r.held = make([]int, rollingBuyers)
	for i := range r.buyers {
		r.buyers[i] = mint(t, fmt.Sprintf("rolling-buyer-%d", i), fmt.Sprintf("Pembeli %d", i), auth.RoleCustomer)
	}

	// The backend's numbered publications, one at a time, each retried
	// with its idempotency key until a node takes it.
	var published atomic.Int64
	pubStop := make(chan struct{})
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		tick := time.NewTicker(rollingPubEvery)
		defer tick.Stop()
		for seq := 1; ; seq++ {
			select {
			case <-pubStop:
				return
			case <-tick.C:
			}
			if err := r.publishSeq(ctx, channel, seq); err != nil {
				r.errorf("numbered publication %d: %v", seq, err)
				return
			}
			published.Store(int64(seq))
		}
	}()

	// Buyers tap "buy" at a steady pace while the nodes restart.
	phaseOneStop := make(chan struct{})
	phaseOneDone := make(chan struct{})
	go func() {
		defer close(phaseOneDone)
		r.phaseOne(ctx, phaseOneStop)
	}()

	progress := func(what string, pubs int64, units int64) {
		t.Helper()
		p0, u0 := published.Load(), r.committed.Load()
		deadline := time.Now().Add(30 * time.Second)
		for published.Load() < p0+pubs || r.committed.Load() < min(u0+units, rollingPhaseOneCap-2) {
			if time.Now().After(deadline) {
				t.Fatalf("no progress %s: %d numbered publications (from %d), %d units (from %d)",
					what, published.Load(), p0, r.committed.Load(), u0)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	progress("before the first restart", 10, 20)
	for _, node := range cl.nodes {
		before := r.committed.Load()
		took, samples := cl.terminate(node, 25*time.Second)
		if t.Failed() {
			t.FailNow()
		}
		// Read from the node itself: its count of 3001 closes went up
		// step by step while it drained, rather than in one jump. The
		// reads come from this loaded process, so two values part way
		// are asked for; the close times the viewers record are the
		// finer check (checkViewers).
		steps := intermediateSteps(samples)
		t.Logf("node %d: count of 3001 closes read %d times while draining, %v, %d values part way",
			node.idx, len(samples), compactSamples(samples), steps)
		if steps < 2 {
			t.Errorf("node %d closed its clients in one go: its count of 3001 closes read %v while it drained", node.idx, samples)
		}
		cl.restart(ctx, node)
		if after := r.committed.Load(); after == before && before < rollingPhaseOneCap-10 {
			t.Errorf("no checkout succeeded while node %d restarted (%d units taken)", node.idx, after)
		}
		t.Logf("%s: node %d exited %s after SIGTERM and is back on %s; units taken %d -> %d, numbered publications %d",
			at(), node.idx, took.Round(time.Millisecond), node.addr, before, r.committed.Load(), published.Load())
		progress(fmt.Sprintf("after restarting node %d", node.idx), 10, 10)
	}
	close(phaseOneStop)
	<-phaseOneDone
	unitsDuringRestarts := r.committed.Load()

	// Then the remaining units go, one at a time, to buyers with allowance.
	r.phaseTwo(ctx)
	close(pubStop)
	<-pubDone
	total := int(published.Load())
	t.Logf("%s: units taken during the restarts %d, after %d; %d numbered publications",
		at(), unitsDuringRestarts, r.committed.Load(), total)

	// Every viewer reaches the last numbered publication.
	deadline := time.Now().Add(30 * time.Second)
	for _, v := range viewers {
		for v.seqSeen.Load() < int64(total) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	stopViewers()
	for _, v := range viewers {
		<-v.done
	}

	t.Logf("%s: viewers stopped", at())
	r.checkViewers(viewers, total)
	r.checkOrders(ctx, host)

	t.Logf("%s: orders checked", at())
	for _, node := range cl.nodes {
		cl.terminate(node, 25*time.Second)
	}
	r.mu.Lock()
	t.Logf("checkout outcomes %v; retries %v; %s in all", r.outcomes, r.retries, time.Since(began).Round(time.Millisecond))
	r.mu.Unlock()
}

// rollingRun holds the buyers' side of the run.
type rollingRun struct {
	t      *testing.T
	cl     *rollingCluster
	http   *http.Client
	saleID string
	buyers []string

	committed atomic.Int64 // units of 2xx checkouts
	inflight  atomic.Int64 // units asked by checkouts without an answer yet
	soldOut   atomic.Bool
	keys      atomic.Int64

	mu       sync.Mutex
	held     []int // units per buyer, from 2xx answers
	results  []checkoutResult
	outcomes map[string]int
	retries  map[string]int
	errs     []string
}

type checkoutResult struct {
	key      string
	buyer    int
	qty      int
	status   int
	code     string
	order    string
	replayed bool
}

func (r *rollingRun) errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) < 20 {
		r.errs = append(r.errs, fmt.Sprintf(format, args...))
	}
}

func (r *rollingRun) retry(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.retries == nil {
		r.retries = make(map[string]int)
	}
	r.retries[reason]++
}

// call makes one HTTP request and reads the whole answer.
func (r *rollingRun) call(ctx context.Context, method, url, token, idem string, body any) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, data, err
}

// callRetrying sends the same request to random nodes until one answers
// with something other than a 5xx or 429, as an app retrying the same
// Idempotency-Key after a dropped connection would.
func (r *rollingRun) callRetrying(ctx context.Context, method, path, token, idem string, body any) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var lastErr error
	for {
		base := r.cl.base(rand.IntN(len(r.cl.nodes)))
		st, hdr, data, err := r.call(ctx, method, base+path, token, idem, body)
		wait := 20*time.Millisecond + rand.N(30*time.Millisecond)
		switch {
		case err != nil:
			lastErr = err
			r.retry("connection error")
		case st == http.StatusTooManyRequests:
			lastErr = fmt.Errorf("status %d: %s", st, data)
			r.retry("429")
			wait = retryAfter(hdr)
		case st >= 500:
			lastErr = fmt.Errorf("status %d: %s", st, data)
			r.retry(fmt.Sprint(st))
		default:
			return st, hdr, data, nil
		}
		if ctx.Err() != nil {
			return 0, nil, nil, fmt.Errorf("no answer within 30s: %w", lastErr)
		}
		sleepCtx(ctx, wait)
	}
}

// checkout buys qty units for a buyer with a fresh idempotency key, and pays
// the order it gets.
func (r *rollingRun) checkout(ctx context.Context, buyer, qty int) checkoutResult {
	res := checkoutResult{key: fmt.Sprintf("tap-%d", r.keys.Add(1)), buyer: buyer, qty: qty}
	r.inflight.Add(int64(qty))
	defer r.inflight.Add(-int64(qty))
	st, hdr, data, err := r.callRetrying(ctx, "POST", "/v1/checkout", r.buyers[buyer], res.key,
		map[string]any{"flash_sale_id": r.saleID, "quantity": qty})
	res.status = st
	var reply struct {
		ID       string `json:"id"`
		Code     string `json:"code"`
		Quantity int    `json:"quantity"`
	}
	switch {
	case err != nil:
		res.status, res.code = -1, err.Error()
	case json.Unmarshal(data, &reply) != nil:
		res.code = "undecodable: " + string(data)
	case st == http.StatusCreated || st == http.StatusOK:
		res.order, res.replayed = reply.ID, hdr.Get("Idempotent-Replayed") == "true"
		if reply.Quantity != qty || reply.ID == "" {
			r.errorf("checkout %s answered %d with order %q of %d units, asked %d", res.key, st, reply.ID, reply.Quantity, qty)
		}
		r.committed.Add(int64(qty))
		r.mu.Lock()
		r.held[buyer] += qty
		r.mu.Unlock()
	default:
		res.code = reply.Code
	}
	if res.order != "" {
		pst, _, pdata, perr := r.callRetrying(ctx, "POST", "/v1/payments/simulated/"+res.order+"/pay", r.buyers[buyer], "", nil)
		var paid struct {
			Status string `json:"status"`
		}
		if perr != nil || pst != http.StatusOK || json.Unmarshal(pdata, &paid) != nil || paid.Status != "paid" {
			r.errorf("pay %s: %d %s %v", res.order, pst, pdata, perr)
		}
	}
	if res.code == "sold_out" {
		r.soldOut.Store(true)
	}
	r.mu.Lock()
	r.results = append(r.results, res)
	if r.outcomes == nil {
		r.outcomes = make(map[string]int)
	}
	r.outcomes[strings.TrimSpace(fmt.Sprintf("%d %s", res.status, map[bool]string{true: "replayed"}[res.replayed]+res.code))]++
	r.mu.Unlock()
	return res
}

// phaseOne launches checkouts of random buyers at a steady pace until stop,
// keeping the units taken under rollingPhaseOneCap.
func (r *rollingRun) phaseOne(ctx context.Context, stop <-chan struct{}) {
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, 32)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		qty := 1 + rand.IntN(rollingLimit)
		if r.committed.Load()+r.inflight.Load()+int64(qty) > rollingPhaseOneCap {
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r.checkout(ctx, rand.IntN(len(r.buyers)), qty)
		}()
	}
}

// phaseTwo sells what is left, one unit at a time, to buyers still under
// the limit, until the sale is sold out.
func (r *rollingRun) phaseTwo(ctx context.Context) {
	order := rand.Perm(len(r.buyers))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !r.soldOut.Load() && ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(order) {
					return
				}
				b := order[i]
				for !r.soldOut.Load() && ctx.Err() == nil {
					r.mu.Lock()
					room := rollingLimit - r.held[b]
					r.mu.Unlock()
					if room <= 0 {
						break
					}
					if res := r.checkout(ctx, b, 1); res.status != http.StatusCreated {
						if res.code != "sold_out" {
							r.errorf("buyer %d with %d units left under the limit: checkout %d %s", b, room, res.status, res.code)
						}
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	if !r.soldOut.Load() {
		r.errorf("every buyer reached the limit and the sale never sold out (%d units taken)", r.committed.Load())
	}
}

func (r *rollingRun) publishSeq(ctx context.Context, channel string, seq int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var lastErr error
	for ctx.Err() == nil {
		base := r.cl.base(rand.IntN(len(r.cl.nodes)))
		lastErr = serverPublish(ctx, r.http, base, channel, map[string]any{"seq": seq}, fmt.Sprintf("seq-%d", seq))
		if lastErr == nil {
			return nil
		}
		r.retry("publish")
		sleepCtx(ctx, 20*time.Millisecond)
	}
	return fmt.Errorf("no node took it within 30s: %w", lastErr)
}

// checkViewers asserts that every viewer saw every numbered publication once
// and in order, recovered on every reconnect, and was moved off each node
// with 3001 spread over the grace period.
func (r *rollingRun) checkViewers(viewers []*viewer, total int) {
	t := r.t
	t.Helper()
	type nodeGen struct{ node, gen int }
	closes := make(map[nodeGen][]closeEvent)
	codes := make(map[int]int)
	resubs, recovered, recoveredPubs, recoveredMax, failed := 0, 0, 0, 0, 0
	var awayMax time.Duration
	awayDials, awayWhy := 0, ""
	for _, v := range viewers {
		if len(v.errs) > 0 {
			failed++
			if failed <= 10 {
				t.Errorf("viewer %d: %s", v.id, strings.Join(v.errs, "; "))
			}
		}
		if v.nextSeq != total+1 {
			t.Errorf("viewer %d: saw numbered publications up to %d, %d were published", v.id, v.nextSeq-1, total)
		}
		sessionsEnded := 0
		for _, c := range v.closes {
			codes[c.code]++
			if c.code != 3001 {
				t.Errorf("viewer %d: connection to node %d (process %d) closed with %d %q, want 3001 shutdown", v.id, c.node, c.gen, c.code, c.reason)
			}
			if c.gen != 0 {
				t.Errorf("viewer %d: disconnected by node %d after its restart (code %d)", v.id, c.node, c.code)
			}
			if c.subscribed {
				sessionsEnded++
				closes[nodeGen{c.node, c.gen}] = append(closes[nodeGen{c.node, c.gen}], c)
			}
		}
		if sessionsEnded == 0 {
			t.Errorf("viewer %d was never moved off a node", v.id)
		}
		if v.resubs != sessionsEnded || v.recovered != v.resubs {
			t.Errorf("viewer %d: %d subscribed sessions ended, %d resubscribes, %d recovered", v.id, sessionsEnded, v.resubs, v.recovered)
		}
		resubs += v.resubs
		recovered += v.recovered
		recoveredPubs += v.recoveredN
		recoveredMax = max(recoveredMax, v.recoveredMax)
		if v.awayMax > awayMax {
			awayMax, awayDials, awayWhy = v.awayMax, v.awayDials, fmt.Sprintf("viewer %d: %s", v.id, v.awayWhy)
		}
	}
	if failed > 10 {
		t.Errorf("... and %d more viewers failed", failed-10)
	}
	t.Logf("%d viewers: %d reconnects, %d recovered (with %d publications from history, at most %d at once; longest away %s, %d dials); close codes %v",
		len(viewers), resubs, recovered, recoveredPubs, recoveredMax, awayMax.Round(time.Millisecond), awayDials, codes)
	t.Logf("longest reconnect: %s", awayWhy)
	if resubs < len(viewers) {
		t.Errorf("only %d reconnects among %d viewers: the restarts did not move every viewer", resubs, len(viewers))
	}
	for i := range r.cl.nodes {
		rep := spreadOf(closes[nodeGen{i, 0}])
		t.Logf("node %d lame duck: %s", i, rep)
		switch {
		case rep.n < 20:
			t.Errorf("node %d closed only %d subscribed viewers at its shutdown", i, rep.n)
		case rep.maxIn10ms > rep.n/2:
			t.Errorf("node %d closed its viewers all at once: %s", i, rep)
		case rep.backBeforeLast < rep.n/4:
			// Spread over the grace period, the first viewers are back on
			// other nodes long before the last one is told to go.
			t.Errorf("node %d closed its last viewer before a quarter of the others had reconnected: %s", i, rep)
		}
	}
}

// checkOrders asserts no order was lost or duplicated and no unit oversold.
func (r *rollingRun) checkOrders(ctx context.Context, host string) {
	// The run's goroutines are done; r.results is no longer written.
	t := r.t
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.errs {
		t.Error(e)
	}
	byKey := make(map[string]string)
	byOrder := make(map[string]checkoutResult)
	units := 0
	for _, res := range r.results {
		switch {
		case res.status == http.StatusCreated || res.status == http.StatusOK:
			if prev, ok := byKey[res.key]; ok && prev != res.order {
				t.Errorf("idempotency key %s of buyer %d made orders %s and %s", res.key, res.buyer, prev, res.order)
			}
			byKey[res.key] = res.order
			if prev, ok := byOrder[res.order]; ok {
				t.Errorf("order %s answered to keys %s and %s", res.order, prev.key, res.key)
				continue
			}
			byOrder[res.order] = res
			units += res.qty
		case res.status == http.StatusConflict && (res.code == "sold_out" || res.code == "per_user_limit"):
		default:
			t.Errorf("checkout %s of buyer %d: %d %s", res.key, res.buyer, res.status, res.code)
		}
	}

	// The sale, seen from every node.
	for i := range r.cl.nodes {
		st, _, body, err := r.call(ctx, "GET", r.cl.base(i)+"/v1/flash-sales/"+r.saleID, host, "", nil)
		var sale struct {
			Quantity  int    `json:"quantity"`
			StockLeft int    `json:"stock_left"`
			Sold      int    `json:"sold"`
			State     string `json:"state"`
		}
		if err != nil || st != 200 || json.Unmarshal(body, &sale) != nil {
			t.Fatalf("get sale: %d %s %v", st, body, err)
		}
		taken := sale.Quantity - sale.StockLeft
		if sale.Sold > rollingUnits || taken > rollingUnits || sale.StockLeft < 0 {
			t.Errorf("oversold: %+v", sale)
		}
		if taken != units || sale.Sold != units {
			t.Errorf("sale %+v: stock went down by %d and %d are sold, but the buyers hold %d units in %d orders",
				sale, taken, sale.Sold, units, len(byOrder))
		}
		if sale.StockLeft != 0 || sale.Sold != rollingUnits || sale.State != "sold_out" {
			t.Errorf("sale ended at %+v, want all %d units sold", sale, rollingUnits)
		}
	}

	// Every order answered is there, paid, as answered; every buyer's
	// orders are exactly those answered, within the limit.
	perBuyer := make(map[int][]checkoutResult)
	for _, res := range byOrder {
		perBuyer[res.buyer] = append(perBuyer[res.buyer], res)
	}
	forEach(len(r.buyers), 16, func(b int) {
		st, _, body, err := r.callRetrying(ctx, "GET", "/v1/orders?mine&limit=100", r.buyers[b], "", nil)
		var list struct {
			Orders []struct {
				ID          string `json:"id"`
				FlashSaleID string `json:"flash_sale_id"`
				Quantity    int    `json:"quantity"`
				Status      string `json:"status"`
			} `json:"orders"`
		}
		if err != nil || st != 200 || json.Unmarshal(body, &list) != nil {
			t.Errorf("list orders of buyer %d: %d %s %v", b, st, body, err)
			return
		}
		var got, want []string
		held := 0
		for _, o := range list.Orders {
			if o.FlashSaleID != r.saleID {
				continue
			}
			got = append(got, o.ID)
			if o.Status != "paid" {
				t.Errorf("buyer %d: order %s is %s, want paid", b, o.ID, o.Status)
			}
			if res, ok := byOrder[o.ID]; ok && res.qty != o.Quantity {
				t.Errorf("buyer %d: order %s has %d units, checkout asked %d", b, o.ID, o.Quantity, res.qty)
			}
			held += o.Quantity
		}
		for _, res := range perBuyer[b] {
			want = append(want, res.order)
		}
		sort.Strings(got)
		sort.Strings(want)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("buyer %d: orders in the store %v, orders answered %v", b, got, want)
		}
		if held > rollingLimit {
			t.Errorf("buyer %d holds %d units, limit %d", b, held, rollingLimit)
		}
	})
	ids := make([]string, 0, len(byOrder))
	for id := range byOrder {
		ids = append(ids, id)
	}
	forEach(len(ids), 16, func(i int) {
		res := byOrder[ids[i]]
		st, _, body, err := r.callRetrying(ctx, "GET", "/v1/orders/"+ids[i], r.buyers[res.buyer], "", nil)
		var o struct {
			Status   string `json:"status"`
			Quantity int    `json:"quantity"`
		}
		if err != nil || st != 200 || json.Unmarshal(body, &o) != nil || o.Status != "paid" || o.Quantity != res.qty {
			t.Errorf("order %s (key %s, %d units): %d %s %v", ids[i], res.key, res.qty, st, body, err)
		}
	})
	t.Logf("%d orders for %d units by %d buyers", len(byOrder), units, len(perBuyer))
}

// forEach runs f(0..n-1) on at most workers goroutines.
func forEach(n, workers int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// compactSamples shows a sample series without its repeats.
func compactSamples(samples []int) []int {
	return slices.Compact(slices.Clone(samples))
}
