package payment_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/payment"
)

const testServerKey = "SB-Mid-server-test-key"

// snapBody is what Snap must receive; unknown members fail the decode, so a
// misspelt member name is caught.
type snapBody struct {
	TransactionDetails struct {
		OrderID     string `json:"order_id"`
		GrossAmount int64  `json:"gross_amount"`
	} `json:"transaction_details"`
	ItemDetails []struct {
		ID       string `json:"id"`
		Price    int64  `json:"price"`
		Quantity int    `json:"quantity"`
		Name     string `json:"name"`
	} `json:"item_details"`
	CustomerDetails *struct {
		FirstName string `json:"first_name"`
	} `json:"customer_details"`
	EnabledPayments []string `json:"enabled_payments"`
	Expiry          struct {
		StartTime string `json:"start_time"`
		Unit      string `json:"unit"`
		Duration  int64  `json:"duration"`
	} `json:"expiry"`
}

// fakeSnap answers like Snap's create-transaction endpoint after checking the
// request the way Snap would: method, path, basic auth with the server key,
// JSON body.
type fakeSnap struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	bodies []snapBody
	// answer writes the response once the request passed the checks.
	answer func(w http.ResponseWriter, body snapBody)
}

func newFakeSnap(t *testing.T) *fakeSnap {
	f := &fakeSnap{t: t}
	f.answer = func(w http.ResponseWriter, body snapBody) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]string{
			"token":        "tok-" + body.TransactionDetails.OrderID,
			"redirect_url": "https://app.sandbox.midtrans.com/snap/v4/redirection/tok-" + body.TransactionDetails.OrderID,
		})
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSnap) serve(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, msg string) {
		f.t.Errorf("snap request: %s", msg)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"error_messages":["` + msg + `"]}`))
	}
	if r.Method != http.MethodPost {
		fail(http.StatusMethodNotAllowed, "method "+r.Method)
		return
	}
	if r.URL.Path != "/snap/v1/transactions" {
		fail(http.StatusNotFound, "path "+r.URL.Path)
		return
	}
	if got, want := r.Header.Get("Authorization"), "Basic "+base64.StdEncoding.EncodeToString([]byte(testServerKey+":")); got != want {
		fail(http.StatusUnauthorized, "authorization "+got)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		fail(http.StatusBadRequest, "content type "+ct)
		return
	}
	if a := r.Header.Get("Accept"); a != "application/json" {
		fail(http.StatusBadRequest, "accept "+a)
		return
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	var body snapBody
	if err := dec.Decode(&body); err != nil {
		fail(http.StatusBadRequest, "body: "+err.Error())
		return
	}
	f.mu.Lock()
	f.bodies = append(f.bodies, body)
	f.mu.Unlock()
	f.answer(w, body)
}

func (f *fakeSnap) lastBody() snapBody {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.bodies) == 0 {
		f.t.Fatal("snap received no request")
	}
	return f.bodies[len(f.bodies)-1]
}

var testNow = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func newMidtrans(t *testing.T, baseURL string, opts ...func(*payment.MidtransOptions)) *payment.Midtrans {
	t.Helper()
	o := payment.MidtransOptions{
		ServerKey: testServerKey,
		BaseURL:   baseURL,
		Now:       func() time.Time { return testNow },
	}
	for _, f := range opts {
		f(&o)
	}
	m, err := payment.NewMidtrans(o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func testOrder() commerce.Order {
	return commerce.Order{
		ID:            "ord_0123456789abcdef01234567",
		BuyerID:       "u1",
		BuyerName:     "Budi Santoso",
		FlashSaleID:   "fs_1",
		Quantity:      2,
		Amount:        98000,
		Status:        commerce.OrderPendingPayment,
		ReservedUntil: testNow.Add(30 * time.Minute),
	}
}

func TestMidtrans_CreateChargeSendsSnapTransaction(t *testing.T) {
	snap := newFakeSnap(t)
	m := newMidtrans(t, snap.srv.URL)
	o := testOrder()
	p, err := m.CreateCharge(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	b := snap.lastBody()
	if b.TransactionDetails.OrderID != o.ID || b.TransactionDetails.GrossAmount != 98000 {
		t.Errorf("transaction_details = %+v", b.TransactionDetails)
	}
	if len(b.ItemDetails) != 1 || b.ItemDetails[0].Price != 49000 || b.ItemDetails[0].Quantity != 2 ||
		b.ItemDetails[0].ID != "fs_1" || b.ItemDetails[0].Name == "" {
		t.Errorf("item_details = %+v", b.ItemDetails)
	}
	if b.CustomerDetails == nil || b.CustomerDetails.FirstName != "Budi Santoso" {
		t.Errorf("customer_details = %+v", b.CustomerDetails)
	}
	if strings.Join(b.EnabledPayments, ",") != "gopay,shopeepay,other_qris" {
		t.Errorf("enabled_payments = %v", b.EnabledPayments)
	}
	// 10:00 UTC is 17:00 in Jakarta.
	if b.Expiry.StartTime != "2026-03-01 17:00:00 +0700" || b.Expiry.Unit != "minute" || b.Expiry.Duration != 15 {
		t.Errorf("expiry = %+v", b.Expiry)
	}
	want := testNow.Add(15 * time.Minute)
	if p.Gateway != "midtrans" || p.Token != "tok-"+o.ID || !strings.HasSuffix(p.RedirectURL, "/tok-"+o.ID) ||
		p.Reference != o.ID || p.ExpiresAt == nil || !p.ExpiresAt.Equal(want) {
		t.Errorf("payment = %+v (expires %v, want %v)", p, p.ExpiresAt, want)
	}
}

func TestMidtrans_ChargeNeverOutlivesReservation(t *testing.T) {
	snap := newFakeSnap(t)
	m := newMidtrans(t, snap.srv.URL, func(o *payment.MidtransOptions) { o.PaymentExpiry = time.Hour })
	o := testOrder()
	o.ReservedUntil = testNow.Add(10*time.Minute + 40*time.Second)
	p, err := m.CreateCharge(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if d := snap.lastBody().Expiry.Duration; d != 10 {
		t.Errorf("expiry duration = %d minutes, want 10 (whole minutes inside the reservation)", d)
	}
	if want := testNow.Add(10 * time.Minute); !p.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", p.ExpiresAt, want)
	}

	for name, until := range map[string]time.Time{
		"ended":       testNow.Add(-time.Second),
		"now":         testNow,
		"under a min": testNow.Add(59 * time.Second),
	} {
		o.ReservedUntil = until
		_, err := m.CreateCharge(context.Background(), o)
		if code := commerce.ErrorCode(err); code != commerce.ECONFLICT {
			t.Errorf("%s: code %q (%v), want %q", name, code, err, commerce.ECONFLICT)
		}
	}
}

func TestMidtrans_CreateChargeOptionsAndItems(t *testing.T) {
	snap := newFakeSnap(t)
	m := newMidtrans(t, snap.srv.URL+"/", func(o *payment.MidtransOptions) {
		o.EnabledPayments = []string{"gopay"}
		o.PaymentExpiry = 5 * time.Minute
	})
	o := testOrder()
	o.Amount, o.Quantity, o.BuyerName = 100001, 2, "  "
	if _, err := m.CreateCharge(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	b := snap.lastBody()
	// 100001 does not divide by 2: one line, so the items add up.
	if len(b.ItemDetails) != 1 || b.ItemDetails[0].Price != 100001 || b.ItemDetails[0].Quantity != 1 {
		t.Errorf("item_details = %+v", b.ItemDetails)
	}
	if b.CustomerDetails != nil {
		t.Errorf("customer_details sent for a blank name: %+v", b.CustomerDetails)
	}
	if strings.Join(b.EnabledPayments, ",") != "gopay" || b.Expiry.Duration != 5 {
		t.Errorf("enabled_payments %v, expiry %+v", b.EnabledPayments, b.Expiry)
	}
}

func TestMidtrans_CreateChargeRefusesBadOrders(t *testing.T) {
	snap := newFakeSnap(t)
	m := newMidtrans(t, snap.srv.URL)
	for name, mutate := range map[string]func(*commerce.Order){
		"no id":         func(o *commerce.Order) { o.ID = "" },
		"zero amount":   func(o *commerce.Order) { o.Amount = 0 },
		"zero quantity": func(o *commerce.Order) { o.Quantity = 0 },
	} {
		o := testOrder()
		mutate(&o)
		if _, err := m.CreateCharge(context.Background(), o); commerce.ErrorCode(err) != commerce.EINVALID {
			t.Errorf("%s: %v, want EINVALID", name, err)
		}
	}
	snap.mu.Lock()
	defer snap.mu.Unlock()
	if len(snap.bodies) != 0 {
		t.Errorf("snap called %d times for invalid orders", len(snap.bodies))
	}
}

func TestMidtrans_CreateChargeMapsSnapErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		body      string
		wantCode  commerce.Code
		wantCause string
	}{
		{"unauthorized", 401, `{"error_messages":["Access denied due to unauthorized transaction, please check client or server key"]}`, commerce.EINTERNAL, "Access denied"},
		{"validation", 400, `{"error_messages":["transaction_details.gross_amount is not equal to the sum of item_details"]}`, commerce.EINVALID, "gross_amount is not equal"},
		{"rate limited", 429, `{"error_messages":["too many requests"]}`, commerce.EUNAVAILABLE, "429"},
		{"server error", 500, `{"error_messages":["Sorry, we encountered internal server error. We will fix this soon."]}`, commerce.EUNAVAILABLE, "internal server error"},
		{"bad gateway html", 502, `<html>bad gateway</html>`, commerce.EUNAVAILABLE, "502"},
		{"created without token", 201, `{"redirect_url":"https://x"}`, commerce.EUNAVAILABLE, "without token"},
		{"created not json", 201, `ok`, commerce.EUNAVAILABLE, "without token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := newFakeSnap(t)
			snap.answer = func(w http.ResponseWriter, _ snapBody) {
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}
			m := newMidtrans(t, snap.srv.URL)
			_, err := m.CreateCharge(context.Background(), testOrder())
			var ce *commerce.Error
			if !errors.As(err, &ce) || ce.Code != tc.wantCode {
				t.Fatalf("err = %v, want code %q", err, tc.wantCode)
			}
			if !strings.Contains(err.Error(), tc.wantCause) {
				t.Errorf("err = %v, want the cause to mention %q", err, tc.wantCause)
			}
			if strings.Contains(ce.Message, "Access denied") || strings.Contains(ce.Message, "item_details") {
				t.Errorf("gateway detail leaked into the caller's message %q", ce.Message)
			}
		})
	}
}

func TestMidtrans_CreateChargeUnavailableOnTimeoutAndDownServer(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	m := newMidtrans(t, slow.URL, func(o *payment.MidtransOptions) {
		o.HTTPClient = &http.Client{Timeout: 50 * time.Millisecond}
	})
	if _, err := m.CreateCharge(context.Background(), testOrder()); commerce.ErrorCode(err) != commerce.EUNAVAILABLE {
		t.Errorf("client timeout: %v, want EUNAVAILABLE", err)
	}

	m = newMidtrans(t, slow.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := m.CreateCharge(ctx, testOrder())
	if commerce.ErrorCode(err) != commerce.EUNAVAILABLE || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("context deadline: %v, want EUNAVAILABLE wrapping context.DeadlineExceeded", err)
	}

	down := httptest.NewServer(http.NotFoundHandler())
	url := down.URL
	down.Close()
	m = newMidtrans(t, url)
	if _, err := m.CreateCharge(context.Background(), testOrder()); commerce.ErrorCode(err) != commerce.EUNAVAILABLE {
		t.Errorf("server down: %v, want EUNAVAILABLE", err)
	}
}

func TestNewMidtrans_RefusesMissingKeyAndBadURL(t *testing.T) {
	if _, err := payment.NewMidtrans(payment.MidtransOptions{}); err == nil {
		t.Error("no server key accepted")
	}
	for _, u := range []string{"ftp://x", "app.midtrans.com", "https://", "://"} {
		if _, err := payment.NewMidtrans(payment.MidtransOptions{ServerKey: "k", BaseURL: u}); err == nil {
			t.Errorf("base URL %q accepted", u)
		}
	}
	m, err := payment.NewMidtrans(payment.MidtransOptions{ServerKey: "k"})
	if err != nil || m.Name() != "midtrans" {
		t.Fatalf("defaults: %v, %v", m, err)
	}
}
