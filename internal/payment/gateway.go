// Package payment charges orders through a payment gateway and reads what the
// gateway says back. Simulated settles through LiveHub's own REST endpoint and
// is the default for local runs; Midtrans creates Snap transactions and
// verifies Midtrans' HTTP notifications.
//
// Amounts are integer rupiah everywhere: Snap takes them as integers and
// notifications carry them as decimal strings ("49000.00"), which
// ParseNotification turns back into rupiah.
package payment

import (
	"context"
	"fmt"
	"strconv"

	"github.com/livehub/livehub/internal/commerce"
)

// Gateway creates the charge a buyer pays an order with.
type Gateway interface {
	// Name is the gateway's name as recorded in commerce.Payment.Gateway.
	Name() string
	// CreateCharge asks the gateway for a charge of o.Amount rupiah. Errors
	// are *commerce.Error: EUNAVAILABLE when the gateway is down or slow and
	// a retry may work, EINVALID when it refused the charge, ECONFLICT when
	// the order's reservation has ended.
	CreateCharge(ctx context.Context, o commerce.Order) (commerce.Payment, error)
}

// Outcome is what a notification means for the order it names.
type Outcome int

// Outcomes.
const (
	// OutcomeNone changes nothing: the payment is pending, challenged by
	// fraud detection, authorized but not captured, or in a state this
	// package does not know.
	OutcomeNone Outcome = iota
	// OutcomePaid moves the order to paid: settlement, or capture that fraud
	// detection accepted.
	OutcomePaid
	// OutcomeReleased ends the order and puts its units back on sale:
	// expire, cancel, deny, failure, or a capture that fraud detection
	// denied.
	OutcomeReleased
	// OutcomeReversed is money going back to the buyer after the order was
	// paid: refund, partial_refund, chargeback, partial_chargeback. It
	// changes nothing in LiveHub, which has no refunded status and does not
	// put sold units back on sale after the fact; the caller logs it so the
	// merchant reconciles the order in their own system.
	OutcomeReversed
)

// String returns the outcome's name, for logs.
func (o Outcome) String() string {
	switch o {
	case OutcomeNone:
		return "none"
	case OutcomePaid:
		return "paid"
	case OutcomeReleased:
		return "released"
	case OutcomeReversed:
		return "reversed"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Notification is a verified message from the gateway about an order's
// payment.
type Notification struct {
	OrderID string
	// Status is the gateway's transaction_status (settlement, pending, ...).
	Status string
	// FraudStatus is the gateway's fraud_status (accept, challenge, deny),
	// empty when it sent none.
	FraudStatus string
	Outcome     Outcome
	// Reference is the gateway's id of the transaction.
	Reference string
	// Method is how the buyer paid (gopay, qris, bank_transfer, ...).
	Method string
	// GrossAmount is the amount in rupiah.
	GrossAmount int64
	// Raw is the notification body as received, for the audit log.
	Raw []byte
}

// Payment returns what the notification says about the charge, to be stored
// on the order.
func (n Notification) Payment(gateway string) commerce.Payment {
	return commerce.Payment{Gateway: gateway, Reference: n.Reference, Status: n.Status, Method: n.Method}
}

// VerifyAmount refuses a notification that is not about o or whose gross
// amount differs from o.Amount. A signature proves the gateway sent the
// message, not that the buyer paid the price of this order: a charge made
// outside LiveHub under a reused order id would carry a valid signature too.
func VerifyAmount(n Notification, o commerce.Order) error {
	if n.OrderID != o.ID {
		return &commerce.Error{Code: commerce.ESIGNATURE, Message: "the notification is about another order",
			Err: fmt.Errorf("notification order %q, order %q", n.OrderID, o.ID)}
	}
	if n.GrossAmount != o.Amount {
		return &commerce.Error{Code: commerce.ESIGNATURE, Message: "the notification's amount differs from the order's",
			Err: fmt.Errorf("notification amount %d, order %s amount %d", n.GrossAmount, o.ID, o.Amount)}
	}
	return nil
}
