package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/centrifugal/protocol"

	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/protoclient"
	"github.com/livehub/livehub/internal/redistest"
)

// The flash-sale spike: thousands of buyers tap "buy" in the same second on
// a sale of 100 units. Exactly 100 units are sold, no buyer gets more than
// the limit, and every viewer's stock bar ends at 0.
const (
	spikeUnits     = 100
	spikeLimit     = 2
	spikeBuyers    = 2000
	spikeCheckouts = 5000
	// spikeFromOneAddress turns the per-IP checkout limit off: every buyer
	// of the spike comes from 127.0.0.1. The per-buyer limit stays on.
	spikeFromOneAddress = "LIVEHUB_CHECKOUT_IP_LIMIT=0"
)

func TestCheckout_NoOversellMemoryEngine(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end checkout spike: skipped with -short")
	}
	bin := buildServer(t, moduleRoot(t))
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	srv := startServer(ctx, t, bin, "LIVEHUB_LOG_LEVEL=info", spikeFromOneAddress)
	runSpike(ctx, t, []*server{srv})
	srv.stop(t)
	if races := srv.races(); races != "" {
		t.Errorf("the server reported data races:\n%s", races)
	}
}

func TestCheckout_NoOversellAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end checkout spike: skipped with -short")
	}
	redis := redistest.Start(t)
	bin := buildServer(t, moduleRoot(t))
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	var nodes []*server
	for i := 0; i < 3; i++ {
		nodes = append(nodes, startServer(ctx, t, bin, "LIVEHUB_LOG_LEVEL=info", spikeFromOneAddress, "LIVEHUB_REDIS_URL="+redis.URL))
	}
	runSpike(ctx, t, nodes)
	for _, n := range nodes {
		n.stop(t)
		if races := n.races(); races != "" {
			t.Errorf("a server reported data races:\n%s", races)
		}
	}
}

type apiClient struct {
	http *http.Client
}

func (c *apiClient) do(ctx context.Context, method, url, token, idem string, body any, out any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, data, err
		}
	}
	return resp.StatusCode, data, nil
}

func mint(t *testing.T, sub, name string, roles ...auth.Role) string {
	t.Helper()
	tok, err := auth.Mint([]byte(jwtSecret), auth.Claims{Subject: sub, Name: name, Roles: roles}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// stockWatcher is a viewer recording every flash_sale.stock it sees and
// applying it as an app does: only when its stock_version is above the last
// one applied (the nodes publish independently, so events may arrive out of
// order).
type stockWatcher struct {
	conn    *protoclient.Conn
	mu      sync.Mutex
	seen    []int
	applied int
	version int64
}

func (w *stockWatcher) run(channel string) {
	for p := range w.conn.Pushes() {
		if p.Channel != channel || p.Pub == nil {
			continue
		}
		var ev struct {
			Type string `json:"type"`
			Data struct {
				StockLeft    int   `json:"stock_left"`
				StockVersion int64 `json:"stock_version"`
			} `json:"data"`
		}
		if json.Unmarshal(p.Pub.Data, &ev) == nil && ev.Type == "flash_sale.stock" {
			w.mu.Lock()
			w.seen = append(w.seen, ev.Data.StockLeft)
			if ev.Data.StockVersion > w.version {
				w.applied, w.version = ev.Data.StockLeft, ev.Data.StockVersion
			}
			w.mu.Unlock()
		}
	}
}

// last returns the stock the viewer shows (that of the highest version it
// received), the lowest it received, and whether it received any.
func (w *stockWatcher) last() (int, int, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.seen) == 0 {
		return 0, 0, false
	}
	lowest := w.seen[0]
	for _, v := range w.seen {
		lowest = min(lowest, v)
	}
	return w.applied, lowest, true
}

func runSpike(ctx context.Context, t *testing.T, nodes []*server) {
	t.Helper()
	api := &apiClient{http: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 128, MaxConnsPerHost: 128},
	}}
	base := func(i int) string { return "http://" + nodes[i%len(nodes)].addr }
	host := mint(t, "host-spike", "Host", auth.RoleHost)

	var stream struct{ ID string }
	if code, body, err := api.do(ctx, "POST", base(0)+"/v1/streams", host, "", map[string]any{"title": "Harbolnas"}, &stream); err != nil || code != 201 {
		t.Fatalf("create stream: %d %s %v", code, body, err)
	}
	channel := "live:" + stream.ID

	// Viewers on every node watch the room before the sale starts.
	var watchers []*stockWatcher
	for i := range nodes {
		for k := 0; k < 3; k++ {
			c, err := protoclient.Dial(ctx, "ws://"+nodes[i].addr+"/connection/websocket", protoclient.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.CloseNow)
			if _, err := c.Connect(ctx, ""); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Subscribe(ctx, &protocol.SubscribeRequest{Channel: channel}); err != nil {
				t.Fatal(err)
			}
			w := &stockWatcher{conn: c}
			go w.run(channel)
			watchers = append(watchers, w)
		}
	}

	var sale struct {
		ID        string `json:"id"`
		StockLeft int    `json:"stock_left"`
	}
	saleBody := map[string]any{
		"product": map[string]any{"id": "case-01", "name": "Phone case"}, "price": 49000,
		"quantity": spikeUnits, "per_user_limit": spikeLimit, "countdown_seconds": 0, "duration_seconds": 300,
	}
	if code, body, err := api.do(ctx, "POST", base(1)+"/v1/streams/"+stream.ID+"/flash-sales", host, "", saleBody, &sale); err != nil || code != 201 {
		t.Fatalf("create flash sale: %d %s %v", code, body, err)
	}

	buyers := make([]string, spikeBuyers)
	for i := range buyers {
		buyers[i] = mint(t, fmt.Sprintf("buyer-%d", i), fmt.Sprintf("Pembeli %d", i), auth.RoleCustomer)
	}

	type outcome struct {
		buyer, qty, status int
		code               string
	}
	results := make([]outcome, spikeCheckouts)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	start := make(chan struct{})
	for i := 0; i < spikeCheckouts; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			sem <- struct{}{}
			defer func() { <-sem }()
			b := rand.IntN(spikeBuyers)
			q := 1 + rand.IntN(2)
			var problem struct {
				Code string `json:"code"`
			}
			code, body, err := api.do(ctx, "POST", base(i)+"/v1/checkout", buyers[b], fmt.Sprintf("tap-%d", i),
				map[string]any{"flash_sale_id": sale.ID, "quantity": q}, nil)
			if err != nil {
				results[i] = outcome{b, q, -1, err.Error()}
				return
			}
			_ = json.Unmarshal(body, &problem)
			results[i] = outcome{b, q, code, problem.Code}
		}(i)
	}
	close(start)
	wg.Wait()

	sold := 0
	perBuyer := make(map[int]int)
	statuses := make(map[string]int)
	for _, r := range results {
		statuses[fmt.Sprintf("%d %s", r.status, r.code)]++
		switch {
		case r.status == http.StatusCreated:
			sold += r.qty
			perBuyer[r.buyer] += r.qty
		case r.status == http.StatusConflict && (r.code == "sold_out" || r.code == "per_user_limit"):
		case r.status == http.StatusTooManyRequests && r.code == "rate_limited":
			// A buyer drawn more often than the per-buyer burst allows.
		default:
			t.Errorf("unexpected checkout outcome: %d %s", r.status, r.code)
		}
	}
	t.Logf("checkout outcomes: %v", statuses)
	if sold != spikeUnits {
		t.Fatalf("sold %d units, want exactly %d", sold, spikeUnits)
	}
	for b, units := range perBuyer {
		if units > spikeLimit {
			t.Fatalf("buyer %d got %d units, limit %d", b, units, spikeLimit)
		}
	}
	for i := range nodes {
		var got struct {
			StockLeft int    `json:"stock_left"`
			State     string `json:"state"`
		}
		if code, body, err := api.do(ctx, "GET", base(i)+"/v1/flash-sales/"+sale.ID, host, "", nil, &got); err != nil || code != 200 {
			t.Fatalf("get sale: %d %s %v", code, body, err)
		}
		if got.StockLeft != 0 || got.State != "sold_out" {
			t.Fatalf("node %d sees stock %d state %s, want 0 sold_out", i, got.StockLeft, got.State)
		}
	}

	// Every viewer shows 0 and none saw less.
	deadline := time.Now().Add(20 * time.Second)
	for i, w := range watchers {
		for {
			last, lowest, ok := w.last()
			if ok && last == 0 {
				if lowest < 0 {
					t.Fatalf("viewer %d saw stock %d", i, lowest)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("viewer %d: shows stock %d (received any: %v), want 0", i, last, ok)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Coalesced updates may still be in flight: after a quiet period the
	// last value is still 0.
	time.Sleep(time.Second)
	for i, w := range watchers {
		if last, _, _ := w.last(); last != 0 {
			t.Fatalf("viewer %d ended on stock %d", i, last)
		}
		w.conn.CloseNow()
	}
}
