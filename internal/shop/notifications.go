package shop

import (
	"context"
	"net/http"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/payment"
)

// NotificationParser verifies a gateway's notification body.
type NotificationParser interface {
	Name() string
	ParseNotification(body []byte) (payment.Notification, error)
}

// Notifications applies a gateway's payment notifications to orders. Each
// is verified (signature, then order and amount) before anything changes,
// and applying one twice, or late, changes nothing: the order's state
// machine only moves forward.
type Notifications struct {
	Shop   *Service
	Parser NotificationParser
}

// Gateway names the gateway in the webhook path.
func (n *Notifications) Gateway() string { return n.Parser.Name() }

// Handle verifies and applies one notification.
func (n *Notifications) Handle(r *http.Request, body []byte) error {
	ctx := r.Context()
	note, err := n.Parser.ParseNotification(body)
	if err != nil {
		if commerce.ErrorCode(err) == commerce.ESIGNATURE {
			n.Shop.log.Warn("payment notification refused", "gateway", n.Parser.Name(), "remote", r.RemoteAddr, "err", err)
		}
		return err
	}
	return n.apply(ctx, note)
}

func (n *Notifications) apply(ctx context.Context, note payment.Notification) error {
	s := n.Shop
	o, err := s.store.GetOrder(ctx, note.OrderID)
	if err != nil {
		return err
	}
	if err := payment.VerifyAmount(note, o); err != nil {
		s.log.Warn("payment notification refused", "order", o.ID, "err", err)
		return err
	}
	switch note.Outcome {
	case payment.OutcomePaid:
		_, err := s.MarkPaid(ctx, o.ID, note.Payment(n.Parser.Name()))
		if commerce.ErrorCode(err) == commerce.ECONFLICT {
			// Paid after the reservation ended: the units may be sold to
			// someone else. Acknowledge (retries change nothing) and leave
			// the refund to the merchant, loudly.
			s.log.Error("payment settled after the reservation was released; refund needed",
				"order", o.ID, "status", o.Status, "reference", note.Reference)
			return nil
		}
		return err
	case payment.OutcomeReleased:
		to := commerce.OrderCancelled
		if note.Status == "expire" {
			to = commerce.OrderExpired
		}
		_, err := s.Release(ctx, o.ID, to)
		return err
	case payment.OutcomeReversed:
		s.log.Warn("payment reversed at the gateway; reconcile the order", "order", o.ID, "status", note.Status)
	}
	return nil
}
