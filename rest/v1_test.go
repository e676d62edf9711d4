package rest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/hubauth"
	"github.com/livehub/livehub/internal/memstore"
	"github.com/livehub/livehub/internal/payment"
	"github.com/livehub/livehub/internal/shop"
	"github.com/livehub/livehub/rest"
)

const v1Secret = "v1-test-secret-0123456789abcdef"
const midtransKey = "SB-Mid-server-test-key"

type v1Server struct {
	url string
	// handler is the server's handler, for in-process requests.
	handler http.Handler
	node    *hub.Node
	shop    *shop.Service
	store   *memstore.Store
	mid     *payment.Midtrans
}

type nodePublisher struct{ n *hub.Node }

func (p nodePublisher) Publish(ctx context.Context, ch string, data []byte, idem string) error {
	_, err := p.n.Publish(ctx, ch, data, hub.PublishRequest{IdempotencyKey: idem})
	return err
}

// PublishMany publishes into several channels in one call to the node, as
// the binary's publisher does.
func (p nodePublisher) PublishMany(ctx context.Context, chs []string, data []byte, idem string, low bool) []error {
	req := hub.PublishRequest{IdempotencyKey: idem}
	if low {
		req.Priority = hub.PriorityLow
	}
	errs := make([]error, len(chs))
	for i, r := range p.n.Broadcast(ctx, chs, data, req) {
		errs[i] = r.Err
	}
	return errs
}

// PublishLowPriority publishes as the binary's publisher does the room's
// purchase ticker.
func (p nodePublisher) PublishLowPriority(ctx context.Context, ch string, data []byte, idem string) error {
	_, err := p.n.Publish(ctx, ch, data, hub.PublishRequest{IdempotencyKey: idem, Priority: hub.PriorityLow})
	return err
}

func newV1Server(t testing.TB, reservation time.Duration, tune ...func(*rest.Options)) *v1Server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	v, err := auth.NewVerifier(auth.VerifierConfig{Secrets: [][]byte{[]byte(v1Secret)}})
	if err != nil {
		t.Fatal(err)
	}
	node, err := hub.New(hub.Config{Tokens: hubauth.New(v), Logger: log, ShutdownGrace: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Run(); err != nil {
		t.Fatal(err)
	}
	store := memstore.New(memstore.Options{})
	svc, err := shop.New(shop.Config{
		Store: store, Publisher: nodePublisher{node}, Charger: payment.Simulated{Expiry: reservation},
		ReservationTTL: reservation, StockInterval: 10 * time.Millisecond, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	mid, err := payment.NewMidtrans(payment.MidtransOptions{ServerKey: midtransKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(ctx) }()
	o := rest.Options{
		Node: node, Logger: log, MaxBodyBytes: 4096,
		V1: rest.V1Options{Shop: svc, Tokens: v, Simulated: true, Notifications: &shop.Notifications{Shop: svc, Parser: mid}},
	}
	for _, f := range tune {
		f(&o)
	}
	handler := rest.New(o)
	srv := httptest.NewServer(handler)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = node.Shutdown(sctx)
	})
	return &v1Server{url: srv.URL, handler: handler, node: node, shop: svc, store: store, mid: mid}
}

func v1Token(t testing.TB, sub string, roles ...auth.Role) string {
	t.Helper()
	tok, err := auth.Mint([]byte(v1Secret), auth.Claims{Subject: sub, Name: "Name " + sub, Roles: roles}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type problem struct {
	Type   string `json:"type"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
	Field  string `json:"field"`
}

func (s *v1Server) call(t *testing.T, method, path, token, idem string, body string) (int, []byte, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, s.url+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func (s *v1Server) mustCreate(t *testing.T, path, token, body string, out any) {
	t.Helper()
	code, b, _ := s.call(t, "POST", path, token, "", body)
	if code != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", path, code, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}

type idOnly struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	StockLeft int    `json:"stock_left"`
}

func (s *v1Server) stream(t *testing.T, host string) string {
	var st idOnly
	s.mustCreate(t, "/v1/streams", host, `{"title":"Live"}`, &st)
	return st.ID
}

func (s *v1Server) sale(t *testing.T, host, stream string, qty, limit, countdown int) string {
	var sale idOnly
	s.mustCreate(t, "/v1/streams/"+stream+"/flash-sales", host, fmt.Sprintf(
		`{"product":{"id":"p1","name":"Case"},"price":49000,"quantity":%d,"per_user_limit":%d,"countdown_seconds":%d,"duration_seconds":300}`,
		qty, limit, countdown), &sale)
	return sale.ID
}

func TestV1_EveryErrorCode(t *testing.T) {
	s := newV1Server(t, time.Minute)
	host := v1Token(t, "host", auth.RoleHost)
	otherHost := v1Token(t, "host2", auth.RoleHost)
	buyer := v1Token(t, "buyer", auth.RoleCustomer)
	stream := s.stream(t, host)
	live := s.sale(t, host, stream, 3, 2, 0)
	later := s.sale(t, host, stream, 3, 2, 600)
	ended := s.sale(t, host, stream, 3, 2, 0)
	if code, b, _ := s.call(t, "POST", "/v1/flash-sales/"+ended+"/end", host, "", ""); code != 200 {
		t.Fatalf("end sale: %d %s", code, b)
	}
	checkout := func(sale string, qty int) string {
		return fmt.Sprintf(`{"flash_sale_id":%q,"quantity":%d}`, sale, qty)
	}
	if code, b, _ := s.call(t, "POST", "/v1/checkout", buyer, "first", checkout(live, 2)); code != 201 {
		t.Fatalf("first checkout: %d %s", code, b)
	}
	other := v1Token(t, "other", auth.RoleCustomer)
	var order idOnly
	_, b, _ := s.call(t, "POST", "/v1/checkout", other, "o1", checkout(live, 1))
	_ = json.Unmarshal(b, &order)

	tests := []struct {
		name, method, path, token, idem, body string
		status                                int
		code, field                           string
	}{
		{"no token", "POST", "/v1/checkout", "", "k", checkout(live, 1), 401, "unauthorized", ""},
		{"bad token", "POST", "/v1/checkout", "nope", "k", checkout(live, 1), 401, "unauthorized", ""},
		{"viewer starts a stream", "POST", "/v1/streams", buyer, "", `{"title":"x"}`, 403, "forbidden", ""},
		{"another host launches a sale", "POST", "/v1/streams/" + stream + "/flash-sales", otherHost, "", `{}`, 403, "forbidden", ""},
		{"empty title", "POST", "/v1/streams", host, "", `{"title":" "}`, 400, "invalid", "title"},
		{"bad price", "POST", "/v1/streams/" + stream + "/flash-sales", host, "", `{"product":{"id":"p","name":"n"},"price":0,"quantity":1,"per_user_limit":1,"duration_seconds":1}`, 400, "invalid", "price"},
		{"unknown field", "POST", "/v1/streams", host, "", `{"title":"x","extra":1}`, 400, "invalid", "extra"},
		{"wrong type", "POST", "/v1/checkout", buyer, "k2", `{"flash_sale_id":"x","quantity":"2"}`, 400, "invalid", "quantity"},
		{"missing idempotency key", "POST", "/v1/checkout", buyer, "", checkout(live, 1), 400, "invalid", "Idempotency-Key"},
		{"body too large", "POST", "/v1/streams", host, "", `{"title":"` + strings.Repeat("x", 5000) + `"}`, 400, "invalid", ""},
		{"unknown sale", "POST", "/v1/checkout", buyer, "k3", checkout("fs_missing", 1), 404, "not_found", ""},
		{"not started", "POST", "/v1/checkout", buyer, "k4", checkout(later, 1), 409, "sale_not_started", ""},
		{"ended", "POST", "/v1/checkout", buyer, "k5", checkout(ended, 1), 409, "sale_ended", ""},
		{"over the per-user limit", "POST", "/v1/checkout", buyer, "k6", checkout(live, 1), 409, "per_user_limit", ""},
		{"sold out", "POST", "/v1/checkout", v1Token(t, "late", auth.RoleCustomer), "k7", checkout(live, 1), 409, "sold_out", ""},
		{"key reused with another body", "POST", "/v1/checkout", buyer, "first", checkout(live, 1), 422, "idempotency_mismatch", ""},
		{"someone else's order", "GET", "/v1/orders/" + order.ID, buyer, "", "", 404, "not_found", ""},
		{"ending an ended sale", "POST", "/v1/flash-sales/" + ended + "/end", host, "", "", 409, "conflict", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, b, h := s.call(t, tt.method, tt.path, tt.token, tt.idem, tt.body)
			if code != tt.status {
				t.Fatalf("status %d, want %d: %s", code, tt.status, b)
			}
			if ct := h.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q", ct)
			}
			var p problem
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatalf("not JSON: %s", b)
			}
			if p.Code != tt.code || p.Status != tt.status || p.Field != tt.field || p.Detail == "" || p.Type == "" {
				t.Fatalf("problem %+v, want code %s field %q", p, tt.code, tt.field)
			}
		})
	}
}

func TestV1_IdempotentRetryMakesOneOrder(t *testing.T) {
	s := newV1Server(t, time.Minute)
	host := v1Token(t, "host", auth.RoleHost)
	buyer := v1Token(t, "buyer", auth.RoleCustomer)
	sale := s.sale(t, host, s.stream(t, host), 5, 2, 0)
	body := fmt.Sprintf(`{"flash_sale_id":%q,"quantity":2}`, sale)
	code1, b1, _ := s.call(t, "POST", "/v1/checkout", buyer, "retry-me", body)
	code2, b2, h2 := s.call(t, "POST", "/v1/checkout", buyer, "retry-me", body)
	var o1, o2 idOnly
	_ = json.Unmarshal(b1, &o1)
	_ = json.Unmarshal(b2, &o2)
	if code1 != 201 || code2 != 200 || o1.ID == "" || o1.ID != o2.ID || h2.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %d %s / %d %s", code1, b1, code2, b2)
	}
	_, b, _ := s.call(t, "GET", "/v1/flash-sales/"+sale, buyer, "", "")
	var got idOnly
	_ = json.Unmarshal(b, &got)
	if got.StockLeft != 3 {
		t.Fatalf("stock %d after one order of 2, want 3", got.StockLeft)
	}
	_, b, _ = s.call(t, "GET", "/v1/orders?mine", buyer, "", "")
	var mine struct{ Orders []idOnly }
	_ = json.Unmarshal(b, &mine)
	if len(mine.Orders) != 1 {
		t.Fatalf("buyer has %d orders, want 1", len(mine.Orders))
	}
}

// notify posts a Midtrans notification signed with key for the order.
func (s *v1Server) notify(t *testing.T, key, orderID, statusCode, gross, status, fraud string) (int, []byte) {
	t.Helper()
	signer, _ := payment.NewMidtrans(payment.MidtransOptions{ServerKey: key})
	body, _ := json.Marshal(map[string]string{
		"order_id": orderID, "status_code": statusCode, "gross_amount": gross,
		"signature_key":      signer.Signature(orderID, statusCode, gross),
		"transaction_status": status, "fraud_status": fraud, "transaction_id": "tx-" + orderID,
		"payment_type": "gopay", "transaction_time": "2026-11-25 10:00:00",
	})
	resp, err := http.Post(s.url+"/v1/payments/midtrans/notifications", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (s *v1Server) orderStatus(t *testing.T, id string) commerce.OrderStatus {
	t.Helper()
	o, err := s.store.GetOrder(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return o.Status
}

// paidEvents counts order.paid events in the buyer's channel history.
func (s *v1Server) events(t *testing.T, channel, typ string) int {
	t.Helper()
	pubs, _, err := s.node.History(context.Background(), channel, -1, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range pubs {
		if strings.Contains(string(p.Data), `"type":"`+typ+`"`) {
			n++
		}
	}
	return n
}

func TestV1_MidtransNotifications(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newV1Server(t, time.Minute, func(o *rest.Options) { o.Registerer = reg })
	host := v1Token(t, "host", auth.RoleHost)
	sale := s.sale(t, host, s.stream(t, host), 10, 2, 0)
	checkout := func(user string) idOnly {
		code, b, _ := s.call(t, "POST", "/v1/checkout", v1Token(t, user, auth.RoleCustomer), "k-"+user, fmt.Sprintf(`{"flash_sale_id":%q,"quantity":1}`, sale))
		if code != 201 {
			t.Fatalf("checkout: %d %s", code, b)
		}
		var o idOnly
		_ = json.Unmarshal(b, &o)
		return o
	}

	o := checkout("ani")
	if code, b := s.notify(t, "forged-key", o.ID, "200", "49000.00", "settlement", "accept"); code != 401 || !strings.Contains(string(b), "bad_signature") {
		t.Fatalf("forged notification: %d %s", code, b)
	}
	if st := s.orderStatus(t, o.ID); st != commerce.OrderPendingPayment {
		t.Fatalf("forged notification changed the order to %s", st)
	}
	if got := counterValue(t, reg, "livehub_payment_notifications_total", "result", "forged"); got != 1 {
		t.Fatalf("forged notifications counted: %v, want 1", got)
	}
	if code, b := s.notify(t, midtransKey, o.ID, "200", "1000.00", "settlement", "accept"); code != 401 {
		t.Fatalf("wrong amount accepted: %d %s", code, b)
	}
	if code, _ := s.notify(t, midtransKey, o.ID, "201", "49000.00", "pending", ""); code != 200 || s.orderStatus(t, o.ID) != commerce.OrderPendingPayment {
		t.Fatal("pending changed the order")
	}
	for i := 0; i < 3; i++ { // repeated settlement
		if code, b := s.notify(t, midtransKey, o.ID, "200", "49000.00", "settlement", "accept"); code != 200 {
			t.Fatalf("settlement: %d %s", code, b)
		}
	}
	if st := s.orderStatus(t, o.ID); st != commerce.OrderPaid {
		t.Fatalf("after settlement: %s", st)
	}
	if n := s.events(t, "user:#ani", "order.paid"); n != 1 {
		t.Fatalf("%d order.paid events for repeated settlements, want 1", n)
	}
	// Late and out-of-order notifications change nothing.
	s.notify(t, midtransKey, o.ID, "201", "49000.00", "pending", "")
	s.notify(t, midtransKey, o.ID, "407", "49000.00", "expire", "")
	if st := s.orderStatus(t, o.ID); st != commerce.OrderPaid {
		t.Fatalf("a late notification moved a paid order to %s", st)
	}

	// Expiry releases the unit; a settlement arriving after it is
	// acknowledged but cannot resurrect the order.
	o2 := checkout("budi")
	if code, b := s.notify(t, midtransKey, o2.ID, "407", "49000.00", "expire", ""); code != 200 {
		t.Fatalf("expire: %d %s", code, b)
	}
	if st := s.orderStatus(t, o2.ID); st != commerce.OrderExpired {
		t.Fatalf("after expire: %s", st)
	}
	if code, _ := s.notify(t, midtransKey, o2.ID, "200", "49000.00", "settlement", "accept"); code != 200 || s.orderStatus(t, o2.ID) != commerce.OrderExpired {
		t.Fatal("a settlement after expiry changed the order")
	}
	got, _ := s.shop.GetFlashSale(context.Background(), sale)
	if got.StockLeft != 9 || got.Sold != 1 {
		t.Fatalf("stock %d sold %d, want 9 and 1", got.StockLeft, got.Sold)
	}
}

func TestV1_ExpiredReservationsReleasedOnceUnderConcurrentSweeps(t *testing.T) {
	s := newV1Server(t, 50*time.Millisecond)
	host := v1Token(t, "host", auth.RoleHost)
	sale := s.sale(t, host, s.stream(t, host), 10, 2, 0)
	for i := 0; i < 6; i++ {
		code, b, _ := s.call(t, "POST", "/v1/checkout", v1Token(t, fmt.Sprintf("b%d", i), auth.RoleCustomer), "k", fmt.Sprintf(`{"flash_sale_id":%q,"quantity":1}`, sale))
		if code != 201 {
			t.Fatalf("checkout: %d %s", code, b)
		}
	}
	time.Sleep(100 * time.Millisecond)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = s.shop.SweepExpired(context.Background())
		}()
	}
	wg.Wait()
	got, _ := s.shop.GetFlashSale(context.Background(), sale)
	if got.StockLeft != 10 {
		t.Fatalf("stock %d after every reservation expired, want 10", got.StockLeft)
	}
}

func TestV1_EndStreamSendsSummaryToStudio(t *testing.T) {
	s := newV1Server(t, time.Minute)
	host := v1Token(t, "host", auth.RoleHost)
	stream := s.stream(t, host)
	sale := s.sale(t, host, stream, 5, 2, 0)
	buyer := v1Token(t, "buyer", auth.RoleCustomer)
	code, b, _ := s.call(t, "POST", "/v1/checkout", buyer, "k", fmt.Sprintf(`{"flash_sale_id":%q,"quantity":2}`, sale))
	var o idOnly
	_ = json.Unmarshal(b, &o)
	if code != 201 {
		t.Fatalf("checkout: %d %s", code, b)
	}
	if code, b, _ := s.call(t, "POST", "/v1/payments/simulated/"+o.ID+"/pay", buyer, "", ""); code != 200 {
		t.Fatalf("pay: %d %s", code, b)
	}
	if code, b, _ := s.call(t, "POST", "/v1/streams/"+stream+"/end", host, "", ""); code != 200 {
		t.Fatalf("end: %d %s", code, b)
	}
	pubs, _, err := s.node.History(context.Background(), "studio:"+stream, -1, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, p := range pubs {
		var ev struct {
			Type string             `json:"type"`
			Data shop.StreamSummary `json:"data"`
		}
		if json.Unmarshal(p.Data, &ev) == nil && ev.Type == "stream.summary" {
			found = true
			if ev.Data.Orders != 1 || ev.Data.Units != 2 || ev.Data.Revenue != 98000 {
				t.Fatalf("summary %+v, want 1 order, 2 units, Rp 98000", ev.Data)
			}
		}
	}
	if !found {
		t.Fatal("no stream.summary in the studio")
	}
	if code, _, _ := s.call(t, "POST", "/v1/streams/"+stream+"/end", host, "", ""); code != 409 {
		t.Fatalf("ending twice: %d, want 409", code)
	}
}

func TestV1_UncheckableTokenIs503NotUnauthorized(t *testing.T) {
	// An identity provider that is not there: the RS256 token cannot be
	// checked, which is not the app's fault.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	v, err := auth.NewVerifier(auth.VerifierConfig{JWKSURL: deadURL})
	if err != nil {
		t.Fatal(err)
	}
	s := newV1Server(t, time.Minute, func(o *rest.Options) { o.V1.Tokens = v })
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "u1", "exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = "k1"
	signed, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	code, b, h := s.call(t, "GET", "/v1/orders", signed, "", "")
	var p problem
	_ = json.Unmarshal(b, &p)
	if code != http.StatusServiceUnavailable || p.Code != "unavailable" || h.Get("Retry-After") == "" {
		t.Fatalf("GET /v1/orders with an uncheckable token: %d %s (Retry-After %q), want 503 unavailable", code, b, h.Get("Retry-After"))
	}
}
