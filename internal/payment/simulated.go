package payment

import (
	"context"
	"net/url"
	"time"

	"github.com/livehub/livehub/internal/commerce"
)

var _ Gateway = Simulated{}

// defaultPaymentExpiry is how long a buyer has to pay when no expiry is set.
const defaultPaymentExpiry = 15 * time.Minute

// Simulated is a gateway that takes no money: the charge's redirect URL is
// LiveHub's own pay endpoint, and the REST layer settles the order when the
// buyer opens it. It is the default for local runs and tests. The zero value
// is ready to use.
type Simulated struct {
	// Expiry is how long the charge can be paid. Zero means 15 minutes. The
	// charge never outlives the order's reservation.
	Expiry time.Duration
	// Now returns the current time. Zero means time.Now.
	Now func() time.Time
}

// SimulatedName is the gateway name of simulated charges.
const SimulatedName = "simulated"

// Name returns "simulated".
func (Simulated) Name() string { return SimulatedName }

// CreateCharge returns a charge payable at /v1/payments/simulated/{order_id}/pay.
func (s Simulated) CreateCharge(ctx context.Context, o commerce.Order) (commerce.Payment, error) {
	if err := ctx.Err(); err != nil {
		return commerce.Payment{}, &commerce.Error{Code: commerce.EUNAVAILABLE, Message: "the charge was not made", Err: err}
	}
	if err := validateOrder(o); err != nil {
		return commerce.Payment{}, err
	}
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	expiry := s.Expiry
	if expiry <= 0 {
		expiry = defaultPaymentExpiry
	}
	expires, err := chargeDeadline(o, now, expiry)
	if err != nil {
		return commerce.Payment{}, err
	}
	expires = expires.UTC()
	return commerce.Payment{
		Gateway:     SimulatedName,
		Reference:   "sim-" + o.ID,
		RedirectURL: "/v1/payments/simulated/" + url.PathEscape(o.ID) + "/pay",
		ExpiresAt:   &expires,
	}, nil
}

// Settlement is the notification a simulated payment of o amounts to, so the
// simulated pay endpoint takes the same path as a gateway's notification.
func (Simulated) Settlement(o commerce.Order) Notification {
	return Notification{
		OrderID:     o.ID,
		Status:      "settlement",
		Outcome:     OutcomePaid,
		Reference:   "sim-" + o.ID,
		Method:      SimulatedName,
		GrossAmount: o.Amount,
	}
}

// validateOrder checks what every gateway needs of an order.
func validateOrder(o commerce.Order) error {
	switch {
	case o.ID == "":
		return commerce.FieldError("id", "the order has no id")
	case o.Amount <= 0:
		return commerce.FieldError("amount", "the order's amount must be positive")
	case o.Quantity <= 0:
		return commerce.FieldError("quantity", "the order's quantity must be positive")
	}
	return nil
}

// chargeDeadline is when a charge made at now stops being payable: after
// expiry, but never after the order's reservation, so nobody pays for units
// that have gone back on sale. An order with no reservation deadline is
// bounded by expiry alone.
func chargeDeadline(o commerce.Order, now time.Time, expiry time.Duration) (time.Time, error) {
	deadline := now.Add(expiry)
	if !o.ReservedUntil.IsZero() {
		if !now.Before(o.ReservedUntil) {
			return time.Time{}, commerce.Errorf(commerce.ECONFLICT, "the order's reservation has ended")
		}
		if o.ReservedUntil.Before(deadline) {
			deadline = o.ReservedUntil
		}
	}
	return deadline, nil
}
