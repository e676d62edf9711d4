package rest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/memstore"
	"github.com/livehub/livehub/internal/payment"
	"github.com/livehub/livehub/internal/shop"
	"github.com/livehub/livehub/rest"
)

// gatedCharger holds every charge until open is closed, so that checkouts
// stay in progress for as long as a test needs.
type gatedCharger struct {
	payment.Simulated
	open    chan struct{}
	once    sync.Once
	entered atomic.Int64
}

func (g *gatedCharger) release() { g.once.Do(func() { close(g.open) }) }

func (g *gatedCharger) CreateCharge(ctx context.Context, o commerce.Order) (commerce.Payment, error) {
	g.entered.Add(1)
	select {
	case <-g.open:
	case <-ctx.Done():
	}
	return g.Simulated.CreateCharge(ctx, o)
}

// newGatedServer is a v1 server whose checkouts wait at the gateway until
// the charger's gate opens, with the given admission bound.
func newGatedServer(t *testing.T, a rest.CheckoutAdmission, reg *prometheus.Registry) (*v1Server, *gatedCharger) {
	t.Helper()
	g := &gatedCharger{Simulated: payment.Simulated{Expiry: time.Minute}, open: make(chan struct{})}
	t.Cleanup(g.release)
	s := newV1Server(t, time.Minute, func(o *rest.Options) {
		gated, err := shop.New(shop.Config{
			Store: memstore.New(memstore.Options{}), Publisher: nodePublisher{o.Node}, Charger: g,
			ReservationTTL: time.Minute, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		o.V1.Shop = gated
		o.V1.CheckoutAdmission = a
		o.Registerer = reg
	})
	// Every call goes to the gated service and its own store.
	s.shop, s.store = nil, nil
	return s, g
}

func gaugeValue(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type checkoutAnswer struct {
	code int
	p    problem
	h    http.Header
}

func TestCheckout_AdmissionRefusesPastItsPlacesAndReservesNothing(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, gate := newGatedServer(t, rest.CheckoutAdmission{MaxInFlight: 2, MaxWait: time.Minute}, reg)
	host := v1Token(t, "host1", auth.RoleHost)
	sale := s.sale(t, host, s.stream(t, host), 100, 10, 0)

	// Two checkouts take the two places and wait at the gateway; two more
	// wait for a place.
	answers := make([]checkoutAnswer, 4)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			code, p, h := s.checkoutFrom(t, v1Token(t, fmt.Sprint("buyer", i)), sale, "k", "")
			answers[i] = checkoutAnswer{code, p, h}
		})
		if i == 1 {
			waitFor(t, "two checkouts at the gateway", func() bool { return gate.entered.Load() == 2 })
		}
	}
	waitFor(t, "two checkouts waiting", func() bool { return gaugeValue(t, reg, "livehub_rest_checkouts_waiting") == 2 })
	if got := gaugeValue(t, reg, "livehub_rest_checkouts_in_flight"); got != 2 {
		t.Fatalf("checkouts in flight %v, want 2", got)
	}

	// Every place and every waiting place is taken: the next is refused at
	// once, before its body is read.
	code, p, h := s.checkoutFrom(t, v1Token(t, "late"), sale, "late-1", "")
	if code != http.StatusServiceUnavailable || p.Code != "unavailable" || p.Status != 503 {
		t.Fatalf("checkout past the bound: %d %+v, want 503 unavailable", code, p)
	}
	if p.Detail != "this node has too many checkouts in progress; retry in a moment" {
		t.Fatalf("detail %q", p.Detail)
	}
	if h.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q, want 1", h.Get("Retry-After"))
	}
	if got := counterValue(t, reg, "livehub_rest_shed_total", "reason", "full"); got != 1 {
		t.Fatalf("livehub_rest_shed_total{reason=full} = %v, want 1", got)
	}
	if gate.entered.Load() != 2 {
		t.Fatalf("%d checkouts reached the gateway, want 2", gate.entered.Load())
	}

	// The gateway answers: the two in flight finish, the two waiting run.
	gate.release()
	wg.Wait()
	for i, a := range answers {
		if a.code != http.StatusCreated {
			t.Fatalf("checkout %d: %d %+v, want 201", i, a.code, a.p)
		}
	}
	// The refused buyer retries with the same key and gets the order.
	if code, p, _ := s.checkoutFrom(t, v1Token(t, "late"), sale, "late-1", ""); code != http.StatusCreated {
		t.Fatalf("retry after the refusal: %d %+v", code, p)
	}
	var fs struct {
		StockLeft int `json:"stock_left"`
	}
	if code, b, _ := s.call(t, "GET", "/v1/flash-sales/"+sale, host, "", ""); code != http.StatusOK || json.Unmarshal(b, &fs) != nil {
		t.Fatalf("GET sale: %d %s", code, b)
	}
	if fs.StockLeft != 95 {
		t.Fatalf("stock left %d after five orders, want 95", fs.StockLeft)
	}
	if in, q := gaugeValue(t, reg, "livehub_rest_checkouts_in_flight"), gaugeValue(t, reg, "livehub_rest_checkouts_waiting"); in != 0 || q != 0 {
		t.Fatalf("after the burst: %v in flight, %v waiting, want 0 and 0", in, q)
	}
}

func TestCheckout_AdmissionRefusesAWaitThatFindsNoPlace(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, gate := newGatedServer(t, rest.CheckoutAdmission{MaxInFlight: 1, MaxWait: 20 * time.Millisecond, RetryAfter: 3 * time.Second}, reg)
	host := v1Token(t, "host1", auth.RoleHost)
	sale := s.sale(t, host, s.stream(t, host), 10, 10, 0)
	first := make(chan checkoutAnswer, 1)
	go func() {
		code, p, h := s.checkoutFrom(t, v1Token(t, "first"), sale, "k", "")
		first <- checkoutAnswer{code, p, h}
	}()
	waitFor(t, "the first checkout at the gateway", func() bool { return gate.entered.Load() == 1 })

	code, p, h := s.checkoutFrom(t, v1Token(t, "second"), sale, "k", "")
	if code != http.StatusServiceUnavailable || p.Code != "unavailable" || h.Get("Retry-After") != "3" {
		t.Fatalf("checkout that waited in vain: %d %+v Retry-After %q, want 503 unavailable, 3", code, p, h.Get("Retry-After"))
	}
	if got := counterValue(t, reg, "livehub_rest_shed_total", "reason", "wait"); got != 1 {
		t.Fatalf("livehub_rest_shed_total{reason=wait} = %v, want 1", got)
	}
	gate.release()
	if a := <-first; a.code != http.StatusCreated {
		t.Fatalf("first checkout: %d %+v", a.code, a.p)
	}
	if gate.entered.Load() != 1 {
		t.Fatalf("%d checkouts reached the gateway, want 1", gate.entered.Load())
	}
}

func TestCheckout_AdmissionOffLetsEveryCheckoutIn(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, gate := newGatedServer(t, rest.CheckoutAdmission{}, reg)
	host := v1Token(t, "host1", auth.RoleHost)
	sale := s.sale(t, host, s.stream(t, host), 100, 10, 0)
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Go(func() { codes[i], _, _ = s.checkoutFrom(t, v1Token(t, fmt.Sprint("b", i)), sale, "k", "") })
	}
	waitFor(t, "eight checkouts at the gateway", func() bool { return gate.entered.Load() == 8 })
	gate.release()
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusCreated {
			t.Fatalf("checkout %d: %d", i, c)
		}
	}
}
