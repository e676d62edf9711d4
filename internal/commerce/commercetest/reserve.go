package commercetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/commerce"
)

func testReserve(t *testing.T, newStore func(t *testing.T) commerce.Store) {
	t.Run("HappyPath", func(t *testing.T) {
		f := newFixture(t, newStore(t))
		r := f.req("buyer1", "ord_1", 2)
		res, err := f.st.Reserve(ctx(t), r)
		must(t, err)
		want := commerce.Order{
			ID: "ord_1", BuyerID: "buyer1", BuyerName: r.BuyerName,
			FlashSaleID: f.sale.ID, StreamID: f.stream.ID, HostID: f.stream.HostID,
			Quantity: 2, Amount: 2 * salePrice, Status: commerce.OrderPendingPayment,
			ReservedUntil: r.ReservedUntil, CreatedAt: r.Now, UpdatedAt: r.Now,
		}
		sameOrder(t, res.Order, want)
		if res.Replayed || res.StockLeft != saleQty-2 {
			t.Fatalf("Reserve: Replayed %v StockLeft %d, want false and %d", res.Replayed, res.StockLeft, saleQty-2)
		}
		got, err := f.st.GetOrder(ctx(t), "ord_1")
		must(t, err)
		sameOrder(t, got, want)
		f.wantStock(t, saleQty-2, 0)
		_, err = f.st.GetOrder(ctx(t), "ord_none")
		wantCode(t, err, commerce.ENOTFOUND)
	})

	t.Run("AmountUsesStoredPrice", func(t *testing.T) {
		f := newFixture(t, newStore(t), func(s *commerce.FlashSale) { s.Price = 999_999_937; s.PerUserLimit = 3 })
		res := f.reserve(t, "buyer1", "ord_1", 3)
		if res.Order.Amount != 3*999_999_937 {
			t.Fatalf("Amount = %d, want %d", res.Order.Amount, 3*999_999_937)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		f := newFixture(t, newStore(t))
		ended := f.addSale(t, "fs_ended")
		_, err := f.st.EndFlashSale(ctx(t), ended.ID, T0.Add(30*time.Second))
		must(t, err)
		for _, tc := range []struct {
			name string
			edit func(*commerce.ReserveRequest)
			want commerce.Code
		}{
			{"unknown sale", func(r *commerce.ReserveRequest) { r.SaleID = "fs_none" }, commerce.ENOTFOUND},
			{"before start", func(r *commerce.ReserveRequest) {
				r.Now, r.ReservedUntil = T0.Add(-time.Millisecond), T0.Add(time.Minute)
			}, commerce.ENOTSTARTED},
			{"at end", func(r *commerce.ReserveRequest) {
				r.Now, r.ReservedUntil = T0.Add(time.Hour), T0.Add(2*time.Hour)
			}, commerce.EENDED},
			{"ended by host", func(r *commerce.ReserveRequest) { r.SaleID = ended.ID }, commerce.EENDED},
			{"zero quantity", func(r *commerce.ReserveRequest) { r.Quantity = 0 }, commerce.EINVALID},
			{"negative quantity", func(r *commerce.ReserveRequest) { r.Quantity = -1 }, commerce.EINVALID},
			{"quantity over limit", func(r *commerce.ReserveRequest) { r.Quantity = saleLimit + 1 }, commerce.ELIMIT},
			{"no buyer", func(r *commerce.ReserveRequest) { r.BuyerID = "" }, commerce.EINVALID},
			{"no order id", func(r *commerce.ReserveRequest) { r.OrderID = "" }, commerce.EINVALID},
			{"deadline not after now", func(r *commerce.ReserveRequest) { r.ReservedUntil = r.Now }, commerce.EINVALID},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := f.req("buyer1", "ord_"+tc.name, 1)
				tc.edit(&r)
				_, err := f.st.Reserve(ctx(t), r)
				wantCode(t, err, tc.want)
			})
		}
		// Nothing was reserved by any of them.
		f.wantStock(t, saleQty, 0)
		orders, err := f.st.ListOrdersByBuyer(ctx(t), "buyer1", 0)
		must(t, err)
		if len(orders) != 0 {
			t.Fatalf("failed reservations made orders: %v", orderIDs(orders))
		}
	})

	t.Run("LimitAcrossOrders", func(t *testing.T) {
		f := newFixture(t, newStore(t))
		f.reserve(t, "buyer1", "ord_1", 1)
		_, err := f.st.Reserve(ctx(t), f.req("buyer1", "ord_2", 2))
		wantCode(t, err, commerce.ELIMIT)
		f.reserve(t, "buyer1", "ord_3", 1)
		_, err = f.st.Reserve(ctx(t), f.req("buyer1", "ord_4", 1))
		wantCode(t, err, commerce.ELIMIT)
		// Paid units still count.
		_, err = f.st.MarkPaid(ctx(t), "ord_1", commerce.Payment{Gateway: "sim"}, T0.Add(2*time.Minute))
		must(t, err)
		_, err = f.st.Reserve(ctx(t), f.req("buyer1", "ord_5", 1))
		wantCode(t, err, commerce.ELIMIT)
		// Another buyer is not affected.
		f.reserve(t, "buyer2", "ord_6", 2)
		f.wantStock(t, saleQty-4, 1)
	})

	t.Run("SoldOut", func(t *testing.T) {
		f := newFixture(t, newStore(t), func(s *commerce.FlashSale) { s.Quantity = 3 })
		f.reserve(t, "buyer1", "ord_1", 2)
		_, err := f.st.Reserve(ctx(t), f.req("buyer2", "ord_2", 2))
		wantCode(t, err, commerce.ESOLDOUT)
		res := f.reserve(t, "buyer2", "ord_3", 1)
		if res.StockLeft != 0 {
			t.Fatalf("StockLeft = %d, want 0", res.StockLeft)
		}
		_, err = f.st.Reserve(ctx(t), f.req("buyer3", "ord_4", 1))
		wantCode(t, err, commerce.ESOLDOUT)
		f.wantStock(t, 0, 0)
		s, err := f.st.GetFlashSale(ctx(t), f.sale.ID)
		must(t, err)
		if got := s.StateAt(T0.Add(time.Minute)); got != commerce.SaleSoldOut {
			t.Fatalf("StateAt = %s, want %s", got, commerce.SaleSoldOut)
		}
	})

	t.Run("OrderIDTaken", func(t *testing.T) {
		f := newFixture(t, newStore(t))
		f.reserve(t, "buyer1", "ord_1", 1)
		_, err := f.st.Reserve(ctx(t), f.req("buyer2", "ord_1", 1))
		wantCode(t, err, commerce.ECONFLICT)
		f.wantStock(t, saleQty-1, 0)
	})
}

func testIdempotency(t *testing.T, newStore func(t *testing.T) commerce.Store) {
	keyed := func(f *fixture, buyer, orderID string, qty int, key, hash string) commerce.ReserveRequest {
		r := f.req(buyer, orderID, qty)
		r.IdempotencyKey, r.RequestHash = key, hash
		return r
	}

	t.Run("ReplayReturnsSameOrder", func(t *testing.T) {
		f := newFixture(t, newStore(t))
		first, err := f.st.Reserve(ctx(t), keyed(f, "buyer1", "ord_1", 2, "k1", "h1"))
		must(t, err)
		r := keyed(f, "buyer1", "ord_2", 2, "k1", "h1")
		r.Now = r.Now.Add(time.Second)
		again, err := f.st.Reserve(ctx(t), r)
		must(t, err)
		if !again.Replayed || again.StockLeft != saleQty-2 {
			t.Fatalf("replay: Replayed %v StockLeft %d, want true and %d", again.Replayed, again.StockLeft, saleQty-2)
		}
		sameOrder(t, again.Order, first.Order)
		f.wantStock(t, saleQty-2, 0)
		_, err = f.st.GetOrder(ctx(t), "ord_2")
		wantCode(t, err, commerce.ENOTFOUND)
		orders, err := f.st.ListOrdersBySale(ctx(t), f.sale.ID, 0)
		must(t, err)
		wantIDs(t, "ListOrdersBySale", orderIDs(orders), []string{"ord_1"})
	})

	t.Run("ReplayAfterPaymentAndEnd", func(t *testing.T) {
		f := newFixture(t, newStore(t))
		_, err := f.st.Reserve(ctx(t), keyed(f, "buyer1", "ord_1", 1, "k1", "h1"))
		must(t, err)
		_, err = f.st.MarkPaid(ctx(t), "ord_1", commerce.Payment{Gateway: "sim"}, T0.Add(2*time.Minute))
		must(t, err)
		_, err = f.st.EndFlashSale(ctx(t), f.sale.ID, T0.Add(3*time.Minute))
		must(t, err)
		r := keyed(f, "buyer1", "ord_2", 1, "k1", "h1")
		r.Now, r.ReservedUntil = T0.Add(4*time.Minute), T0.Add(14*time.Minute)
		again, err := f.st.Reserve(ctx(t), r)
		must(t, err)
		if !again.Replayed || again.Order.ID != "ord_1" || again.Order.Status != commerce.OrderPaid {
			t.Fatalf("replay after end = %+v", again)
		}
	})

	t.Run("OtherRequestIsRefused", func(t *testing.T) {
		f := newFixture(t, newStore(t))
		other := f.addSale(t, "fs_other")
		_, err := f.st.Reserve(ctx(t), keyed(f, "buyer1", "ord_1", 1, "k1", "h1"))
		must(t, err)
		for name, r := range map[string]commerce.ReserveRequest{
			"other hash":  keyed(f, "buyer1", "ord_2", 2, "k1", "h2"),
			"other buyer": keyed(f, "buyer2", "ord_3", 1, "k1", "h1"),
			"other sale": func() commerce.ReserveRequest {
				r := keyed(f, "buyer1", "ord_4", 1, "k1", "h1")
				r.SaleID = other.ID
				return r
			}(),
		} {
			_, err := f.st.Reserve(ctx(t), r)
			if commerce.ErrorCode(err) != commerce.EIDEMPOTENCY {
				t.Errorf("%s: Reserve = %v, want %s", name, err, commerce.EIDEMPOTENCY)
			}
		}
		f.wantStock(t, saleQty-1, 0)
	})

	t.Run("FailedAttemptIsDecidedAgain", func(t *testing.T) {
		f := newFixture(t, newStore(t), func(s *commerce.FlashSale) { s.Quantity = 1 })
		f.reserve(t, "buyer1", "ord_1", 1)
		_, err := f.st.Reserve(ctx(t), keyed(f, "buyer2", "ord_2", 1, "k2", "h"))
		wantCode(t, err, commerce.ESOLDOUT)
		_, err = f.st.Release(ctx(t), "ord_1", commerce.OrderCancelled, T0.Add(2*time.Minute))
		must(t, err)
		res, err := f.st.Reserve(ctx(t), keyed(f, "buyer2", "ord_3", 1, "k2", "h"))
		must(t, err)
		if res.Replayed || res.StockLeft != 0 {
			t.Fatalf("retry after release = %+v", res)
		}
		// The key keeps the order the first attempt was to create.
		again, err := f.st.Reserve(ctx(t), keyed(f, "buyer2", "ord_4", 1, "k2", "h"))
		must(t, err)
		if !again.Replayed || again.Order.ID != res.Order.ID {
			t.Fatalf("replay = %+v, want order %s", again, res.Order.ID)
		}
	})

	t.Run("ConcurrentRetriesMakeOneOrder", func(t *testing.T) {
		f := newFixture(t, newStore(t))
		const n = 20
		var (
			mu    sync.Mutex
			ids   = map[string]int{}
			fresh int
			wg    sync.WaitGroup
		)
		for i := range n {
			wg.Go(func() {
				res, err := f.st.Reserve(ctx(t), keyed(f, "buyer1", fmt.Sprintf("ord_%d", i), 2, "k1", "h1"))
				if err != nil {
					t.Errorf("Reserve: %v", err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				ids[res.Order.ID]++
				if !res.Replayed {
					fresh++
				}
			})
		}
		wg.Wait()
		if len(ids) != 1 || fresh != 1 {
			t.Fatalf("orders %v, %d not replayed; want one order made once", ids, fresh)
		}
		f.wantStock(t, saleQty-2, 0)
	})

	t.Run("WithoutAKeyEveryRequestCounts", func(t *testing.T) {
		f := newFixture(t, newStore(t))
		f.reserve(t, "buyer1", "ord_1", 1)
		f.reserve(t, "buyer1", "ord_2", 1)
		f.wantStock(t, saleQty-2, 0)
	})
}
