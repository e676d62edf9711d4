package memstore

import (
	"github.com/livehub/livehub/internal/commerce"
)

// maxAmount bounds an order's amount to what a float64 holds exactly, as
// the Redis store's Lua arithmetic does.
const maxAmount = 1<<53 - 1

// validateSale checks what the store relies on; the shop validates the rest.
func validateSale(s *commerce.FlashSale) error {
	switch {
	case s.ID == "":
		return commerce.FieldError("id", "is required")
	case s.StreamID == "":
		return commerce.FieldError("stream_id", "is required")
	case s.Quantity < 1:
		return commerce.FieldError("quantity", "must be at least 1")
	case s.PerUserLimit < 1:
		return commerce.FieldError("per_user_limit", "must be at least 1")
	case s.Price < 0 || s.Price > maxAmount/int64(s.PerUserLimit):
		return commerce.FieldError("price", "is out of range")
	case s.StartsAt.IsZero():
		return commerce.FieldError("starts_at", "is required")
	case !s.EndsAt.After(s.StartsAt):
		return commerce.FieldError("ends_at", "must be after starts_at")
	}
	return nil
}

// validateReserve checks a request before any state is looked at. A
// quantity above the sale's per-user limit is ELIMIT, decided with the sale.
func validateReserve(r *commerce.ReserveRequest) error {
	switch {
	case r.SaleID == "":
		return commerce.FieldError("sale_id", "is required")
	case r.BuyerID == "":
		return commerce.FieldError("buyer_id", "is required")
	case r.OrderID == "":
		return commerce.FieldError("order_id", "is required")
	case r.Quantity < 1:
		return commerce.FieldError("quantity", "must be at least 1")
	case r.Now.IsZero():
		return commerce.FieldError("now", "is required")
	case r.ReservedUntil.UnixMilli() <= r.Now.UnixMilli():
		return commerce.FieldError("reserved_until", "must be after now")
	}
	return nil
}
