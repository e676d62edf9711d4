package payment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/livehub/livehub/internal/commerce"
)

var _ Gateway = (*Midtrans)(nil)

// Midtrans Snap origins.
const (
	MidtransSandboxURL    = "https://app.sandbox.midtrans.com"
	MidtransProductionURL = "https://app.midtrans.com"
)

// MidtransName is the gateway name of Midtrans charges.
const MidtransName = "midtrans"

// snapPath is where Snap creates transactions, under the origin.
const snapPath = "/snap/v1/transactions"

// Bounds of what is read from or sent to Midtrans.
const (
	defaultMidtransTimeout = 10 * time.Second
	maxSnapResponse        = 1 << 20
	maxItemName            = 50  // Snap's item_details.name limit
	maxFirstName           = 255 // Snap's customer_details.first_name limit
)

// DefaultEnabledPayments are the payment channels Snap offers when
// MidtransOptions.EnabledPayments is empty: the e-wallets and QRIS that
// settle within a flash sale's reservation. OVO is left out: Midtrans
// documents a fixed 60-second expiry for it and no custom expiry.
var DefaultEnabledPayments = []string{"gopay", "shopeepay", "other_qris"}

// MidtransOptions configure a Midtrans gateway.
type MidtransOptions struct {
	// ServerKey authenticates LiveHub to Snap (HTTP basic auth) and is the
	// secret in the notification signature. Required.
	ServerKey string
	// BaseURL is Snap's origin. Zero means MidtransSandboxURL; production is
	// MidtransProductionURL.
	BaseURL string
	// HTTPClient makes the requests to Snap. Zero means a client with a
	// 10-second timeout. The request's context bounds the call either way.
	HTTPClient *http.Client
	// PaymentExpiry is how long the buyer has to pay once the charge is made,
	// sent to Snap in whole minutes. Zero means 15 minutes. The charge never
	// outlives the order's reservation: Snap is given the shorter of the two.
	PaymentExpiry time.Duration
	// EnabledPayments are Snap's payment channel names offered to the buyer.
	// Zero means DefaultEnabledPayments.
	EnabledPayments []string
	// Now returns the current time. Zero means time.Now.
	Now func() time.Time
}

// Midtrans creates Snap transactions and verifies Midtrans' HTTP
// notifications. It is safe for concurrent use.
type Midtrans struct {
	serverKey string
	endpoint  string
	client    *http.Client
	expiry    time.Duration
	enabled   []string
	now       func() time.Time
}

// NewMidtrans returns a Midtrans gateway.
func NewMidtrans(o MidtransOptions) (*Midtrans, error) {
	if o.ServerKey == "" {
		// An empty key would make every notification signature computable
		// by anyone.
		return nil, errors.New("payment: Midtrans needs a server key")
	}
	base := o.BaseURL
	if base == "" {
		base = MidtransSandboxURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("payment: Midtrans base URL %q is not an http(s) origin", base)
	}
	m := &Midtrans{
		serverKey: o.ServerKey,
		endpoint:  strings.TrimSuffix(base, "/") + snapPath,
		client:    o.HTTPClient,
		expiry:    o.PaymentExpiry,
		enabled:   append([]string(nil), o.EnabledPayments...),
		now:       o.Now,
	}
	if m.client == nil {
		m.client = &http.Client{Timeout: defaultMidtransTimeout}
	}
	if m.expiry <= 0 {
		m.expiry = defaultPaymentExpiry
	}
	if len(m.enabled) == 0 {
		m.enabled = append([]string(nil), DefaultEnabledPayments...)
	}
	if m.now == nil {
		m.now = time.Now
	}
	return m, nil
}

// Name returns "midtrans".
func (m *Midtrans) Name() string { return MidtransName }

// snapRequest is the body of Snap's create-transaction call.
type snapRequest struct {
	TransactionDetails snapTransaction `json:"transaction_details"`
	ItemDetails        []snapItem      `json:"item_details"`
	CustomerDetails    *snapCustomer   `json:"customer_details,omitempty"`
	EnabledPayments    []string        `json:"enabled_payments,omitempty"`
	Expiry             snapExpiry      `json:"expiry"`
}

type snapTransaction struct {
	OrderID     string `json:"order_id"`
	GrossAmount int64  `json:"gross_amount"`
}

type snapItem struct {
	ID       string `json:"id"`
	Price    int64  `json:"price"`
	Quantity int    `json:"quantity"`
	Name     string `json:"name"`
}

type snapCustomer struct {
	FirstName string `json:"first_name"`
}

type snapExpiry struct {
	// StartTime is "2006-01-02 15:04:05 -0700". Without it Snap starts the
	// clock when the buyer picks a payment channel, which could be long
	// after the reservation began.
	StartTime string `json:"start_time"`
	Unit      string `json:"unit"`
	Duration  int64  `json:"duration"`
}

// snapResponse is Snap's answer, on success and on error.
type snapResponse struct {
	Token         string   `json:"token"`
	RedirectURL   string   `json:"redirect_url"`
	ErrorMessages []string `json:"error_messages"`
}

// snapTimeLayout is Snap's expiry.start_time format.
const snapTimeLayout = "2006-01-02 15:04:05 -0700"

// wib is Western Indonesian Time, in which start_time is written; a fixed
// zone needs no time zone database on the host.
var wib = time.FixedZone("WIB", 7*60*60)

// CreateCharge creates a Snap transaction for o and returns its token and
// redirect URL. The order id is Snap's order_id, so a notification names the
// order directly.
func (m *Midtrans) CreateCharge(ctx context.Context, o commerce.Order) (commerce.Payment, error) {
	if err := validateOrder(o); err != nil {
		return commerce.Payment{}, err
	}
	start := m.now().Truncate(time.Second)
	deadline, err := chargeDeadline(o, start, m.expiry)
	if err != nil {
		return commerce.Payment{}, err
	}
	// Snap counts in whole minutes; rounding down keeps the charge inside
	// the reservation.
	minutes := int64(deadline.Sub(start) / time.Minute)
	if minutes < 1 {
		return commerce.Payment{}, commerce.Errorf(commerce.ECONFLICT, "the order's reservation ends too soon to pay")
	}
	body, err := json.Marshal(m.snapRequest(o, start, minutes))
	if err != nil {
		return commerce.Payment{}, &commerce.Error{Code: commerce.EINTERNAL, Message: "the charge was not made", Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.endpoint, bytes.NewReader(body))
	if err != nil {
		return commerce.Payment{}, &commerce.Error{Code: commerce.EINTERNAL, Message: "the charge was not made", Err: err}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(m.serverKey, "")
	resp, err := m.client.Do(req)
	if err != nil {
		return commerce.Payment{}, &commerce.Error{Code: commerce.EUNAVAILABLE,
			Message: "the payment gateway is not answering; try again", Err: fmt.Errorf("snap: %w", err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxSnapResponse))
	if err != nil {
		return commerce.Payment{}, &commerce.Error{Code: commerce.EUNAVAILABLE,
			Message: "the payment gateway is not answering; try again", Err: fmt.Errorf("snap: reading the answer: %w", err)}
	}
	var sr snapResponse
	jsonErr := json.Unmarshal(raw, &sr)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return commerce.Payment{}, snapError(resp.StatusCode, sr.ErrorMessages)
	}
	if jsonErr != nil || sr.Token == "" || sr.RedirectURL == "" {
		return commerce.Payment{}, &commerce.Error{Code: commerce.EUNAVAILABLE,
			Message: "the payment gateway gave an unexpected answer; try again",
			Err:     fmt.Errorf("snap: HTTP %d without token and redirect_url: %.200q", resp.StatusCode, raw)}
	}
	expires := start.Add(time.Duration(minutes) * time.Minute).UTC()
	return commerce.Payment{
		Gateway:     MidtransName,
		Reference:   o.ID,
		RedirectURL: sr.RedirectURL,
		Token:       sr.Token,
		ExpiresAt:   &expires,
	}, nil
}

func (m *Midtrans) snapRequest(o commerce.Order, start time.Time, minutes int64) snapRequest {
	// Snap refuses a transaction whose items do not add up to the gross
	// amount, so an amount that does not divide evenly is one line.
	item := snapItem{ID: o.FlashSaleID, Price: o.Amount, Quantity: 1}
	if o.Amount%int64(o.Quantity) == 0 {
		item.Price, item.Quantity = o.Amount/int64(o.Quantity), o.Quantity
	}
	if item.ID == "" {
		item.ID = o.ID
	}
	item.Name = truncateRunes("Flash sale "+item.ID, maxItemName)
	r := snapRequest{
		TransactionDetails: snapTransaction{OrderID: o.ID, GrossAmount: o.Amount},
		ItemDetails:        []snapItem{item},
		EnabledPayments:    m.enabled,
		Expiry:             snapExpiry{StartTime: start.In(wib).Format(snapTimeLayout), Unit: "minute", Duration: minutes},
	}
	if name := strings.TrimSpace(o.BuyerName); name != "" {
		r.CustomerDetails = &snapCustomer{FirstName: truncateRunes(name, maxFirstName)}
	}
	return r
}

// snapError turns a non-2xx answer into a domain error. Midtrans' messages
// go into the cause, which is logged; the caller sees a stable message.
func snapError(status int, messages []string) error {
	cause := fmt.Errorf("snap: HTTP %d: %s", status, strings.Join(messages, "; "))
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		// The server key is wrong or revoked: nothing the buyer can fix,
		// and retrying will not help until an operator does.
		return &commerce.Error{Code: commerce.EINTERNAL, Message: "the payment gateway refused LiveHub's credentials", Err: cause}
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500:
		return &commerce.Error{Code: commerce.EUNAVAILABLE, Message: "the payment gateway is not available; try again", Err: cause}
	case status >= 400:
		return &commerce.Error{Code: commerce.EINVALID, Message: "the payment gateway refused the charge", Err: cause}
	}
	return &commerce.Error{Code: commerce.EUNAVAILABLE, Message: "the payment gateway gave an unexpected answer; try again", Err: cause}
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}
