package memstore

import (
	"testing"
	"time"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/commerce/commercetest"
)

func TestReserve_IdempotencyKeyExpiresOnTheRequestClock(t *testing.T) {
	s := New(Options{IdempotencyTTL: time.Minute})
	ctx := t.Context()
	if err := s.CreateFlashSale(ctx, commerce.FlashSale{
		ID: "fs_1", StreamID: "str_1", Price: 100, Quantity: 10, PerUserLimit: 2,
		StartsAt: commercetest.T0, EndsAt: commercetest.T0.Add(time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	req := func(orderID string, now time.Time) commerce.ReserveRequest {
		return commerce.ReserveRequest{
			SaleID: "fs_1", BuyerID: "b1", Quantity: 1, OrderID: orderID,
			IdempotencyKey: "k", RequestHash: "h", Now: now, ReservedUntil: now.Add(time.Minute),
		}
	}
	now := commercetest.T0.Add(time.Minute)
	first, err := s.Reserve(ctx, req("ord_a", now))
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Reserve(ctx, req("ord_b", now.Add(time.Minute-time.Millisecond)))
	if err != nil || !again.Replayed || again.Order.ID != first.Order.ID {
		t.Fatalf("within the TTL: %+v, %v", again, err)
	}
	later, err := s.Reserve(ctx, req("ord_c", now.Add(time.Minute)))
	if err != nil || later.Replayed || later.Order.ID != "ord_c" {
		t.Fatalf("after the TTL: %+v, %v", later, err)
	}
	if len(s.idem) != 1 || len(s.idemExpiry) != 1 {
		t.Fatalf("%d records, %d in the expiry heap; want 1", len(s.idem), len(s.idemExpiry))
	}
}
