package commercetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/commerce"
)

func testSetPayment(t *testing.T, st commerce.Store) {
	f := newFixture(t, st)
	res := f.reserve(t, "buyer1", "ord_1", 1)
	exp := T0.Add(15 * time.Minute)
	p := commerce.Payment{Gateway: "midtrans", Reference: "ch_1", RedirectURL: "https://pay.example/ch_1", Token: "tok", Status: "pending", ExpiresAt: &exp}
	got, err := st.SetPayment(ctx(t), res.Order, p)
	must(t, err)
	want := res.Order
	want.Payment = p
	sameOrder(t, got, want)
	again, err := st.GetOrder(ctx(t), "ord_1")
	must(t, err)
	sameOrder(t, again, want)

	none := res.Order
	none.ID = "ord_none"
	_, err = st.SetPayment(ctx(t), none, p)
	wantCode(t, err, commerce.ENOTFOUND)
	// The order exists, but not in the sale named: not found either.
	other := res.Order
	other.FlashSaleID = "fs_other"
	_, err = st.SetPayment(ctx(t), other, p)
	wantCode(t, err, commerce.ENOTFOUND)
	_, err = st.Release(ctx(t), "ord_1", commerce.OrderExpired, T0.Add(11*time.Minute))
	must(t, err)
	_, err = st.SetPayment(ctx(t), res.Order, p)
	wantCode(t, err, commerce.ECONFLICT)
}

func testMarkPaid(t *testing.T, st commerce.Store) {
	f := newFixture(t, st)
	res := f.reserve(t, "buyer1", "ord_1", 2)
	paidAt := T0.Add(3 * time.Minute)
	p := commerce.Payment{Gateway: "sim", Reference: "ch_1", Status: "settlement", Method: "qris"}

	tr, err := st.MarkPaid(ctx(t), "ord_1", p, paidAt)
	must(t, err)
	want := res.Order
	want.Status, want.Payment, want.PaidAt, want.UpdatedAt = commerce.OrderPaid, p, &paidAt, paidAt
	if !tr.Changed || tr.StockLeft != saleQty-2 {
		t.Fatalf("MarkPaid: Changed %v StockLeft %d, want true and %d", tr.Changed, tr.StockLeft, saleQty-2)
	}
	sameOrder(t, tr.Order, want)
	f.wantStock(t, saleQty-2, 2)

	// Paid again: nothing changes, not even the payment.
	tr, err = st.MarkPaid(ctx(t), "ord_1", commerce.Payment{Gateway: "other"}, paidAt.Add(time.Minute))
	must(t, err)
	if tr.Changed || tr.StockLeft != saleQty-2 {
		t.Fatalf("second MarkPaid: Changed %v StockLeft %d", tr.Changed, tr.StockLeft)
	}
	sameOrder(t, tr.Order, want)
	f.wantStock(t, saleQty-2, 2)

	// A released order cannot be paid: its units went back on sale.
	f.reserve(t, "buyer2", "ord_2", 1)
	_, err = st.Release(ctx(t), "ord_2", commerce.OrderExpired, T0.Add(12*time.Minute))
	must(t, err)
	tr, err = st.MarkPaid(ctx(t), "ord_2", p, T0.Add(13*time.Minute))
	wantCode(t, err, commerce.ECONFLICT)
	f.wantStock(t, saleQty-2, 2)

	_, err = st.MarkPaid(ctx(t), "ord_none", p, paidAt)
	wantCode(t, err, commerce.ENOTFOUND)
}

func testRelease(t *testing.T, st commerce.Store) {
	f := newFixture(t, st)
	res := f.reserve(t, "buyer1", "ord_1", 2)
	at := T0.Add(11 * time.Minute)

	_, err := st.Release(ctx(t), "ord_1", commerce.OrderPaid, at)
	wantCode(t, err, commerce.EINVALID)

	tr, err := st.Release(ctx(t), "ord_1", commerce.OrderExpired, at)
	must(t, err)
	want := res.Order
	want.Status, want.UpdatedAt = commerce.OrderExpired, at
	if !tr.Changed || tr.StockLeft != saleQty {
		t.Fatalf("Release: Changed %v StockLeft %d, want true and %d", tr.Changed, tr.StockLeft, saleQty)
	}
	sameOrder(t, tr.Order, want)
	f.wantStock(t, saleQty, 0)

	// Only once, whatever status is asked the second time.
	for _, to := range []commerce.OrderStatus{commerce.OrderExpired, commerce.OrderCancelled} {
		tr, err = st.Release(ctx(t), "ord_1", to, at.Add(time.Minute))
		must(t, err)
		if tr.Changed || tr.StockLeft != saleQty || tr.Order.Status != commerce.OrderExpired {
			t.Fatalf("second Release(%s) = %+v", to, tr)
		}
	}
	f.wantStock(t, saleQty, 0)

	// The buyer's units are back too: they may buy up to the limit again.
	f.reserve(t, "buyer1", "ord_2", 2)

	// Released as cancelled.
	tr, err = st.Release(ctx(t), "ord_2", commerce.OrderCancelled, at)
	must(t, err)
	if !tr.Changed || tr.Order.Status != commerce.OrderCancelled {
		t.Fatalf("cancel = %+v", tr)
	}

	// A paid order is left alone.
	f.reserve(t, "buyer1", "ord_3", 1)
	_, err = st.MarkPaid(ctx(t), "ord_3", commerce.Payment{Gateway: "sim"}, at)
	must(t, err)
	tr, err = st.Release(ctx(t), "ord_3", commerce.OrderExpired, at)
	must(t, err)
	if tr.Changed || tr.Order.Status != commerce.OrderPaid {
		t.Fatalf("Release of a paid order = %+v", tr)
	}
	f.wantStock(t, saleQty-1, 1)

	_, err = st.Release(ctx(t), "ord_none", commerce.OrderExpired, at)
	wantCode(t, err, commerce.ENOTFOUND)
}

func testListOrders(t *testing.T, st commerce.Store) {
	f := newFixture(t, st)
	other := f.addSale(t, "fs_2")
	reserveAt := func(saleID, buyer, id string, after time.Duration) {
		t.Helper()
		r := f.req(buyer, id, 1)
		r.SaleID = saleID
		r.Now = T0.Add(after)
		r.ReservedUntil = r.Now.Add(10 * time.Minute)
		if _, err := st.Reserve(ctx(t), r); err != nil {
			t.Fatalf("Reserve %s: %v", id, err)
		}
	}
	reserveAt(f.sale.ID, "buyer1", "ord_a", time.Minute)
	reserveAt(other.ID, "buyer1", "ord_b", 2*time.Minute)
	reserveAt(f.sale.ID, "buyer2", "ord_c", 3*time.Minute)
	reserveAt(f.sale.ID, "buyer1", "ord_d", 4*time.Minute)
	// Same instant: the larger id comes first.
	reserveAt(other.ID, "buyer3", "ord_f", 5*time.Minute)
	reserveAt(other.ID, "buyer3", "ord_e", 5*time.Minute)

	list := func(by func() ([]commerce.Order, error)) []string {
		t.Helper()
		orders, err := by()
		must(t, err)
		return orderIDs(orders)
	}
	for _, tc := range []struct {
		name string
		got  []string
		want []string
	}{
		{"buyer1", list(func() ([]commerce.Order, error) { return st.ListOrdersByBuyer(ctx(t), "buyer1", 0) }), []string{"ord_d", "ord_b", "ord_a"}},
		{"buyer1 limit 2", list(func() ([]commerce.Order, error) { return st.ListOrdersByBuyer(ctx(t), "buyer1", 2) }), []string{"ord_d", "ord_b"}},
		{"buyer3", list(func() ([]commerce.Order, error) { return st.ListOrdersByBuyer(ctx(t), "buyer3", 10) }), []string{"ord_f", "ord_e"}},
		{"nobody", list(func() ([]commerce.Order, error) { return st.ListOrdersByBuyer(ctx(t), "nobody", 10) }), []string{}},
		{"sale 1", list(func() ([]commerce.Order, error) { return st.ListOrdersBySale(ctx(t), f.sale.ID, 0) }), []string{"ord_d", "ord_c", "ord_a"}},
		{"sale 2 limit 1", list(func() ([]commerce.Order, error) { return st.ListOrdersBySale(ctx(t), other.ID, 1) }), []string{"ord_f"}},
		{"unknown sale", list(func() ([]commerce.Order, error) { return st.ListOrdersBySale(ctx(t), "fs_none", 10) }), []string{}},
	} {
		wantIDs(t, tc.name, tc.got, tc.want)
	}

	// Lists show each order's current state.
	_, err := st.MarkPaid(ctx(t), "ord_a", commerce.Payment{Gateway: "sim"}, T0.Add(6*time.Minute))
	must(t, err)
	orders, err := st.ListOrdersByBuyer(ctx(t), "buyer1", 0)
	must(t, err)
	if o := orders[len(orders)-1]; o.ID != "ord_a" || o.Status != commerce.OrderPaid {
		t.Fatalf("listed %s as %s, want ord_a paid", o.ID, o.Status)
	}
}

func testDueReservations(t *testing.T, st commerce.Store) {
	f := newFixture(t, st, func(s *commerce.FlashSale) { s.PerUserLimit = 5 })
	other := f.addSale(t, "fs_2")
	deadline := map[string]time.Duration{"ord_1": 12, "ord_2": 10, "ord_3": 14, "ord_4": 10, "ord_5": 11}
	for i, id := range []string{"ord_1", "ord_2", "ord_3", "ord_4", "ord_5"} {
		r := f.req(fmt.Sprintf("buyer%d", i%2), id, 1)
		if id == "ord_5" {
			r.SaleID = other.ID
		}
		r.ReservedUntil = T0.Add(deadline[id] * time.Minute)
		if _, err := st.Reserve(ctx(t), r); err != nil {
			t.Fatalf("Reserve %s: %v", id, err)
		}
	}
	due := func(now time.Time, limit int) []string {
		t.Helper()
		ids, err := st.DueReservations(ctx(t), now, limit)
		must(t, err)
		return ids
	}
	wantIDs(t, "due before any deadline", due(T0.Add(10*time.Minute), 0), []string{})
	wantIDs(t, "due just after 10m", due(T0.Add(10*time.Minute+time.Millisecond), 0), []string{"ord_2", "ord_4"})
	wantIDs(t, "due at 12m", due(T0.Add(12*time.Minute), 0), []string{"ord_2", "ord_4", "ord_5"})
	wantIDs(t, "due at 20m", due(T0.Add(20*time.Minute), 0), []string{"ord_2", "ord_4", "ord_5", "ord_1", "ord_3"})
	wantIDs(t, "due at 20m limit 2", due(T0.Add(20*time.Minute), 2), []string{"ord_2", "ord_4"})

	// Paid and released orders are no longer due.
	_, err := st.MarkPaid(ctx(t), "ord_2", commerce.Payment{Gateway: "sim"}, T0.Add(9*time.Minute))
	must(t, err)
	for _, id := range due(T0.Add(20*time.Minute), 0) {
		if _, err := st.Release(ctx(t), id, commerce.OrderExpired, T0.Add(20*time.Minute)); err != nil {
			t.Fatalf("Release %s: %v", id, err)
		}
	}
	wantIDs(t, "due after sweep", due(T0.Add(20*time.Minute), 0), []string{})
	f.wantStock(t, saleQty-1, 1)
}
