package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/livehub/livehub/internal/auth"
)

// shopClient calls the commerce API under /v1 with a Bearer token.
type shopClient struct {
	base   string
	client *http.Client
}

// call sends body as JSON and decodes a 2xx answer into out. Any other
// status is returned as a *statusError.
func (s shopClient) call(ctx context.Context, path, token, idem string, body, out any) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+path, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		var p struct {
			Code   string `json:"code"`
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal(rb, &p)
		return resp.StatusCode, &statusError{Status: resp.StatusCode, Code: p.Code, Detail: p.Detail, RetryAfter: resp.Header.Get("Retry-After")}
	}
	if out != nil {
		if err := json.Unmarshal(rb, out); err != nil {
			return resp.StatusCode, fmt.Errorf("POST %s: bad body: %w", path, err)
		}
	}
	return resp.StatusCode, nil
}

// statusError is a non-2xx answer of /v1 (an application/problem+json body).
type statusError struct {
	Status     int
	Code       string
	Detail     string
	RetryAfter string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Detail)
}

// checkoutReport is how the checkout burst, or the sustained checkouts,
// went.
type checkoutReport struct {
	StreamID     string         `json:"stream_id"`
	FlashSaleID  string         `json:"flash_sale_id"`
	Units        int            `json:"units"`
	PerUserLimit int            `json:"per_user_limit"`
	Buyers       int            `json:"buyers"`
	Requests     int            `json:"requests"`
	Seconds      float64        `json:"seconds"`
	PerSecond    float64        `json:"per_second"`
	Latency      latencySummary `json:"latency"`
	Created      int            `json:"status_201"`
	SoldOut      int            `json:"status_409_sold_out"`
	Limit        int            `json:"status_409_limit"`
	Other        int            `json:"status_other"`
	// Shed counts 503 answers with Retry-After: the node had too many
	// checkouts in progress and refused this one at once.
	Shed int `json:"status_503_shed"`
	// CreatedLatency and ShedLatency count from each request's send to its
	// answer, for the 201 answers and for the shed ones.
	CreatedLatency latencySummary `json:"latency_201"`
	ShedLatency    latencySummary `json:"latency_503_shed"`
	// OtherDetail counts the other answers by "status code" (or error).
	OtherDetail map[string]int `json:"status_other_detail,omitempty"`
	// Sold is the units of the 201 answers; Oversold is what exceeds Units.
	Sold     int `json:"units_sold"`
	Oversold int `json:"oversold"`
	// Viewers subscribed to the room; ViewersSawZero of them saw
	// flash_sale.stock with stock_left 0, the last StockZeroSeconds after
	// the burst began.
	Viewers          int     `json:"viewers"`
	ViewersSawZero   int     `json:"viewers_saw_zero"`
	StockZeroSeconds float64 `json:"stock_zero_seconds"`
	// StockLatency is, over every viewer and every flash_sale.stock event,
	// the time from the event's "at" to its arrival.
	StockLatency latencySummary `json:"stock_event_latency"`

	// Sustained checkouts (-sustain-rate): TargetRate a second were
	// scheduled for TargetSeconds, each by a new buyer; Latency counts from
	// each checkout's scheduled start, so time spent waiting for one of the
	// MaxInFlight connections is in it. LateStarts of them started more
	// than lateStart after their time; MaxLagMS is the latest start.
	TargetRate    float64 `json:"target_rate,omitempty"`
	TargetSeconds float64 `json:"target_seconds,omitempty"`
	MaxInFlight   int     `json:"max_in_flight,omitempty"`
	LateStarts    int     `json:"late_starts,omitempty"`
	MaxLagMS      float64 `json:"max_lag_ms,omitempty"`
}

// isStockZero reports whether a room publication is flash_sale.stock with
// stock_left 0.
func isStockZero(data []byte) bool {
	if !bytes.Contains(data, []byte(`"flash_sale.stock"`)) {
		return false
	}
	var ev struct {
		Type string `json:"type"`
		Data struct {
			StockLeft *int `json:"stock_left"`
		} `json:"data"`
	}
	if err := json.Unmarshal(data, &ev); err != nil {
		return false
	}
	return ev.Type == "flash_sale.stock" && ev.Data.StockLeft != nil && *ev.Data.StockLeft == 0
}

// stockEventTime returns the "at" of a flash_sale.stock event in Unix ns.
func stockEventTime(data []byte) (int64, bool) {
	if !bytes.Contains(data, []byte(`"flash_sale.stock"`)) {
		return 0, false
	}
	var ev struct {
		Type string    `json:"type"`
		At   time.Time `json:"at"`
	}
	if err := json.Unmarshal(data, &ev); err != nil || ev.Type != "flash_sale.stock" || ev.At.IsZero() {
		return 0, false
	}
	return ev.At.UnixNano(), true
}

// runCheckout plays a host who opens a stream and a flash sale, viewers who
// watch the room and buyers who all check out at once or, with
// -sustain-rate, one after another at that rate.
func runCheckout(ctx context.Context, cfg Config, logw io.Writer, rep *Report) error {
	signer, err := auth.NewSigner(auth.SignerConfig{Secret: []byte(cfg.Secret)})
	if err != nil {
		return err
	}
	sustained := cfg.SustainRate > 0
	units, limit, buyers := cfg.Units, cfg.PerUserLimit, cfg.Buyers
	if sustained {
		if units, limit, buyers, err = sustainedSale(ctx, cfg); err != nil {
			return err
		}
	} else if cfg.SustainRate < 0 {
		return errors.New("-sustain-rate must not be negative")
	}
	ttl := cfg.Timeout + time.Hour
	runID := randomID()
	hostTok, err := signer.Mint(auth.Claims{Subject: "bench-host-" + runID, Name: "Bench Host", Roles: []auth.Role{auth.RoleHost}}, ttl)
	if err != nil {
		return err
	}
	clients := sourceClients(cfg.Sources, cfg.BuyerConns)
	defer closeIdle(clients)
	shop := shopClient{base: strings.TrimRight(cfg.API, "/"), client: clients[0]}

	var stream struct {
		ID string `json:"id"`
	}
	if _, err := shop.call(ctx, "/v1/streams", hostTok, "", map[string]string{"title": "livehub-bench " + runID}, &stream); err != nil {
		return fmt.Errorf("create stream: %w", err)
	}
	channel := "live:" + stream.ID
	fmt.Fprintf(logw, "stream %s: connecting %d viewers to %s\n", stream.ID, cfg.Clients, channel)

	var fleets []fleetRunner
	if cfg.Clients > 0 {
		fleets, err = startFleets(cfg, kindStock, []string{channel}, 0)
		if err != nil {
			return err
		}
		defer closeFleets(fleets)
		rep.addPIDs(fleets)
		if err := connectFleets(ctx, fleets, rep); err != nil {
			return err
		}
	}
	rep.connected()

	var sale struct {
		ID string `json:"id"`
	}
	saleIn := map[string]any{
		"product":           map[string]string{"id": "bench-sku", "name": "Bench item"},
		"price":             10000,
		"quantity":          units,
		"per_user_limit":    limit,
		"countdown_seconds": 0,
		"duration_seconds":  3600,
	}
	if _, err := shop.call(ctx, "/v1/streams/"+stream.ID+"/flash-sales", hostTok, "", saleIn, &sale); err != nil {
		return fmt.Errorf("create flash sale: %w", err)
	}

	// Tokens first, so the burst measures checkouts, not signing.
	tokens := make([]string, buyers)
	for i := range tokens {
		tokens[i], err = signer.Mint(auth.Claims{
			Subject: fmt.Sprintf("bench-buyer-%s-%d", runID, i),
			Name:    "Bench Buyer " + strconv.Itoa(i),
			Roles:   []auth.Role{auth.RoleCustomer},
		}, ttl)
		if err != nil {
			return err
		}
	}
	cr := &checkoutReport{
		StreamID: stream.ID, FlashSaleID: sale.ID, Units: units, PerUserLimit: limit,
		Buyers: buyers, Requests: buyers * cfg.Attempts, OtherDetail: map[string]int{},
	}
	body := map[string]any{"flash_sale_id": sale.ID, "quantity": cfg.Quantity}
	if sustained {
		fmt.Fprintf(logw, "flash sale %s: %d units; %d checkouts at %g/s for %s, at most %d in flight\n",
			sale.ID, units, buyers, cfg.SustainRate, cfg.Duration, cfg.BuyerConns)
		ph := rep.startPhase()
		runSustained(ctx, cfg, shop.base, clients, tokens, runID, body, cr)
		rep.Checkout = cr
		fmt.Fprintf(logw, "sustained: %d of %d checkouts started more than %s late (the latest %.1fms)\n",
			cr.LateStarts, cr.Requests, lateStart, cr.MaxLagMS)
		return finishCheckout(ctx, fleets, rep, ph, time.Second, time.Time{}, "sustained checkouts", "sustained checkouts and their events")
	}
	fmt.Fprintf(logw, "flash sale %s: %d units; %d buyers × %d checkouts\n", sale.ID, cfg.Units, cfg.Buyers, cfg.Attempts)

	lat := newHistogram()
	byClass := newClassLatency()
	var mu sync.Mutex
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < cfg.Buyers; i++ {
		for a := 0; a < cfg.Attempts; a++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				select {
				case <-gate:
				case <-ctx.Done():
					return
				}
				rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				var order struct {
					Quantity int `json:"quantity"`
				}
				c := shopClient{base: shop.base, client: clients[i%len(clients)]}
				t0 := time.Now()
				status, err := c.call(rctx, "/v1/checkout", tokens[i], fmt.Sprintf("bench-%s-%d-%d", runID, i, a), body, &order)
				lat.Record(time.Since(t0))
				byClass.record(status, err, time.Since(t0))
				mu.Lock()
				defer mu.Unlock()
				cr.classify(status, order.Quantity, err)
			}()
		}
	}
	ph := rep.startPhase()
	start := time.Now()
	close(gate)
	wg.Wait()
	took := time.Since(start)
	cr.Seconds = took.Seconds()
	cr.PerSecond = float64(cr.Requests) / took.Seconds()
	cr.Latency = lat.Snapshot().summary()
	byClass.fill(cr)
	cr.Oversold = max(0, cr.Sold-cr.Units)
	if len(cr.OtherDetail) == 0 {
		cr.OtherDetail = nil
	}
	rep.Checkout = cr

	// Short of a sell-out no stock_left 0 is coming: do not wait for it.
	drain := cfg.Drain
	if cr.Sold < cr.Units {
		drain = 0
	}
	return finishCheckout(ctx, fleets, rep, ph, drain, start, "checkout burst", "checkout burst and its events")
}

// finishCheckout ends the phase ph of the checkouts, named alone without
// viewers and withEvents with them: it waits up to drain for the viewers'
// last stock events and adds what they saw to the checkout report. start
// is when the checkouts began, for the time to stock 0 (zero: not
// measured).
func finishCheckout(ctx context.Context, fleets []fleetRunner, rep *Report, ph phase, drain time.Duration, start time.Time, alone, withEvents string) error {
	cr := rep.Checkout
	if len(fleets) == 0 {
		rep.endPhase(ph, alone)
		return nil
	}
	if err := settleFleets(ctx, fleets, drain); err != nil {
		return err
	}
	rep.endPhase(ph, withEvents)
	res, err := finishFleets(ctx, fleets, rep)
	if err != nil {
		return err
	}
	cr.Viewers = res.Connect.Connected
	cr.ViewersSawZero = res.SawZero
	cr.StockLatency = res.Latency.summary()
	if res.SawZeroLastNS > 0 && !start.IsZero() {
		cr.StockZeroSeconds = time.Duration(res.SawZeroLastNS - start.UnixNano()).Seconds()
	}
	return nil
}

// lateStart is how late a sustained checkout may start before it counts
// as late.
const lateStart = 10 * time.Millisecond

// sustainedSale shapes the sale of sustained checkouts: a buyer per
// checkout, and units for every one of them, so that no answer is sold out
// or over the limit unless the server is wrong.
func sustainedSale(ctx context.Context, cfg Config) (units, limit, buyers int, err error) {
	total := int(math.Ceil(cfg.SustainRate * cfg.Duration.Seconds()))
	if total < 1 {
		return 0, 0, 0, errors.New("-sustain-rate × -duration is less than one checkout")
	}
	units = max(cfg.Units, total*cfg.Quantity)
	if units > maxSaleUnits {
		return 0, 0, 0, fmt.Errorf("-sustain-rate × -duration × -quantity needs %d units; a sale holds at most %d", units, maxSaleUnits)
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < cfg.Duration+time.Minute {
		return 0, 0, 0, fmt.Errorf("-duration %s does not fit in -timeout (%s left); raise -timeout", cfg.Duration, time.Until(dl).Round(time.Second))
	}
	return units, max(cfg.PerUserLimit, cfg.Quantity), total, nil
}

// maxSaleUnits is the most units the server accepts for one sale.
const maxSaleUnits = 1_000_000

// runSustained sends one checkout per token, the i-th at start +
// i/SustainRate, each by its own buyer: open loop, so a slow answer does
// not delay the next request, with at most BuyerConns in flight. When none
// is free the schedule waits, and the latency of each checkout counts from
// its scheduled start, so the wait is measured rather than hidden. It fills
// cr with the answers.
func runSustained(ctx context.Context, cfg Config, base string, clients []*http.Client, tokens []string, runID string, body any, cr *checkoutReport) {
	cr.TargetRate, cr.TargetSeconds, cr.MaxInFlight = cfg.SustainRate, cfg.Duration.Seconds(), cfg.BuyerConns
	lat := newHistogram()
	byClass := newClassLatency()
	slots := make(chan struct{}, cfg.BuyerConns)
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		sent int
		lag  time.Duration
	)
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
schedule:
	for i := range tokens {
		at := start.Add(time.Duration(float64(i) / cfg.SustainRate * float64(time.Second)))
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				break schedule
			}
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			break schedule
		}
		if l := time.Since(at); l > lateStart {
			cr.LateStarts++
			lag = max(lag, l)
		}
		sent++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			var order struct {
				Quantity int `json:"quantity"`
			}
			c := shopClient{base: base, client: clients[i%len(clients)]}
			sent := time.Now()
			status, err := c.call(rctx, "/v1/checkout", tokens[i], fmt.Sprintf("bench-%s-%d", runID, i), body, &order)
			lat.Record(time.Since(at))
			byClass.record(status, err, time.Since(sent))
			mu.Lock()
			defer mu.Unlock()
			cr.classify(status, order.Quantity, err)
		}()
	}
	wg.Wait()
	took := time.Since(start)
	cr.Requests = sent
	cr.Seconds = took.Seconds()
	cr.PerSecond = float64(sent) / took.Seconds()
	cr.Latency = lat.Snapshot().summary()
	byClass.fill(cr)
	cr.MaxLagMS = float64(lag.Microseconds()) / 1000
	cr.Oversold = max(0, cr.Sold-cr.Units)
	if len(cr.OtherDetail) == 0 {
		cr.OtherDetail = nil
	}
}

// classify counts one checkout answer.
func (cr *checkoutReport) classify(status, quantity int, err error) {
	se, isStatus := err.(*statusError)
	switch {
	case err == nil && status == http.StatusCreated:
		cr.Created++
		cr.Sold += quantity
	case isStatus && se.Status == http.StatusConflict && se.Code == "sold_out":
		cr.SoldOut++
	case isStatus && se.Status == http.StatusConflict && se.Code == "per_user_limit":
		cr.Limit++
	case isShed(err):
		cr.Shed++
	default:
		cr.Other++
		key := strconv.Itoa(status)
		switch {
		case isStatus:
			key += " " + se.Code
		case err != nil:
			key = "error " + firstLine(err.Error())
		}
		cr.OtherDetail[key]++
	}
}

// classLatency keeps the latency of the 201 answers and of the shed ones
// apart.
type classLatency struct{ created, shed *histogram }

func newClassLatency() classLatency {
	return classLatency{created: newHistogram(), shed: newHistogram()}
}

func (l classLatency) record(status int, err error, d time.Duration) {
	switch {
	case err == nil && status == http.StatusCreated:
		l.created.Record(d)
	case isShed(err):
		l.shed.Record(d)
	}
}

// isShed reports whether err is a node's refusal for want of room: 503 with
// Retry-After.
func isShed(err error) bool {
	se, ok := err.(*statusError)
	return ok && se.Status == http.StatusServiceUnavailable && se.RetryAfter != ""
}

func (l classLatency) fill(cr *checkoutReport) {
	cr.CreatedLatency = l.created.Snapshot().summary()
	cr.ShedLatency = l.shed.Snapshot().summary()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
