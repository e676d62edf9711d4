// Package commercetest is the test suite every commerce.Store passes: the
// memory store and the Redis store run the same tests, so they decide stock,
// limits, idempotency and order transitions the same way.
//
// The suite fixes a few choices the interface leaves open:
//
//   - A quantity below 1 is EINVALID; above the sale's per-user limit it is
//     ELIMIT, as is a quantity that with the buyer's held units (pending and
//     paid) would pass the limit.
//   - Checks run in this order: request fields (EINVALID), idempotency key
//     (EIDEMPOTENCY), sale (ENOTFOUND), replay, window (ENOTSTARTED, EENDED),
//     per-user limit (ELIMIT), stock (ESOLDOUT). A replay is answered even
//     after the sale ended. An order id already used by another request is
//     ECONFLICT.
//   - An idempotency key binds the request hash, the sale and the buyer; any
//     of them different is EIDEMPOTENCY. A request whose first attempt failed
//     (sold out, say) is decided again when retried with the same key.
//   - Ending an ended stream or sale is ECONFLICT; a sale past EndsAt counts
//     as ended. SetPayment and MarkPaid on an expired or cancelled order are
//     ECONFLICT. Release to a status other than expired or cancelled is
//     EINVALID.
//   - Times come back in UTC at millisecond precision. Order lists are newest
//     first, ties by descending id; DueReservations is earliest deadline
//     first, ties by id; limit <= 0 means no limit. ListFlashSales is in
//     creation order.
//   - GetFlashSale leaves State empty (callers use StateAt).
//   - StockVersion starts at 0 and is incremented by each reservation and
//     each release that changes the order, in the same step as the stock;
//     replays, refusals and payments leave it alone.
//   - A sale's flash_sale.started is due from StartsAt, its
//     flash_sale.ended from EndsAt; each is claimed once. EndFlashSale
//     claims the end (and the start, before StartsAt), and a sale whose end
//     was claimed cannot be ended again.
package commercetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/commerce"
)

// T0 is the suite's fixed clock: sales start at T0 and end an hour later.
var T0 = time.Date(2030, 5, 17, 19, 0, 0, 0, time.UTC)

// Sale defaults used by the suite.
const (
	salePrice = 15_000
	saleQty   = 10
	saleLimit = 2
)

// RunStoreTests runs the whole suite. newStore returns an empty store,
// private to the (sub)test it is given.
func RunStoreTests(t *testing.T, newStore func(t *testing.T) commerce.Store) {
	t.Run("Streams", func(t *testing.T) { testStreams(t, newStore(t)) })
	t.Run("FlashSales", func(t *testing.T) { testFlashSales(t, newStore(t)) })
	t.Run("Reserve", func(t *testing.T) { testReserve(t, newStore) })
	t.Run("Idempotency", func(t *testing.T) { testIdempotency(t, newStore) })
	t.Run("SetPayment", func(t *testing.T) { testSetPayment(t, newStore(t)) })
	t.Run("MarkPaid", func(t *testing.T) { testMarkPaid(t, newStore(t)) })
	t.Run("Release", func(t *testing.T) { testRelease(t, newStore(t)) })
	t.Run("ListOrders", func(t *testing.T) { testListOrders(t, newStore(t)) })
	t.Run("DueReservations", func(t *testing.T) { testDueReservations(t, newStore(t)) })
	t.Run("StockVersion", func(t *testing.T) { testStockVersion(t, newStore(t)) })
	t.Run("SaleEvents", func(t *testing.T) { testSaleEvents(t, newStore(t)) })
	t.Run("NoOversell", func(t *testing.T) { RunNoOversellTests(t, newStore(t)) })
}

func ctx(t *testing.T) context.Context { return t.Context() }

// wantCode fails the test unless err carries code.
func wantCode(t *testing.T, err error, code commerce.Code) {
	t.Helper()
	if got := commerce.ErrorCode(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fixture is a stream with one sale, as most tests need.
type fixture struct {
	st     commerce.Store
	stream commerce.Stream
	sale   commerce.FlashSale
}

// newFixture creates a live stream and a sale of saleQty units at
// salePrice, open from T0 for an hour; edit changes the sale before it is
// created.
func newFixture(t *testing.T, st commerce.Store, edit ...func(*commerce.FlashSale)) *fixture {
	t.Helper()
	f := &fixture{st: st, stream: commerce.Stream{
		ID: "str_" + t.Name(), HostID: "host1", Title: "Friday deals",
		State: commerce.StreamLive, CreatedAt: T0.Add(-time.Hour),
	}}
	must(t, st.CreateStream(ctx(t), f.stream))
	f.sale = f.addSale(t, "fs_"+t.Name(), edit...)
	return f
}

func (f *fixture) addSale(t *testing.T, id string, edit ...func(*commerce.FlashSale)) commerce.FlashSale {
	t.Helper()
	s := commerce.FlashSale{
		ID: id, StreamID: f.stream.ID, HostID: f.stream.HostID,
		Product:  commerce.Product{ID: "p1", Name: "Batik shirt", ImageURL: "https://img.example/p1.jpg"},
		Price:    salePrice,
		Quantity: saleQty, PerUserLimit: saleLimit,
		StartsAt: T0, EndsAt: T0.Add(time.Hour),
	}
	for _, e := range edit {
		e(&s)
	}
	must(t, f.st.CreateFlashSale(ctx(t), s))
	s.StockLeft = s.Quantity
	return s
}

// req is a reservation of qty units by buyer at T0+1m, held for 10 minutes,
// with no idempotency key.
func (f *fixture) req(buyer, orderID string, qty int) commerce.ReserveRequest {
	now := T0.Add(time.Minute)
	return commerce.ReserveRequest{
		SaleID: f.sale.ID, BuyerID: buyer, BuyerName: "Budi " + buyer, Quantity: qty,
		OrderID: orderID, Now: now, ReservedUntil: now.Add(10 * time.Minute),
	}
}

func (f *fixture) reserve(t *testing.T, buyer, orderID string, qty int) commerce.ReserveResult {
	t.Helper()
	res, err := f.st.Reserve(ctx(t), f.req(buyer, orderID, qty))
	if err != nil {
		t.Fatalf("Reserve(%s, %s, %d): %v", buyer, orderID, qty, err)
	}
	return res
}

func (f *fixture) stock(t *testing.T) (left, sold int) {
	t.Helper()
	s, err := f.st.GetFlashSale(ctx(t), f.sale.ID)
	must(t, err)
	return s.StockLeft, s.Sold
}

func (f *fixture) wantStock(t *testing.T, left, sold int) {
	t.Helper()
	if l, s := f.stock(t); l != left || s != sold {
		t.Fatalf("stock left %d sold %d, want %d and %d", l, s, left, sold)
	}
}

func timeEq(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func ptr(t time.Time) *time.Time { return &t }

func sameOrder(t *testing.T, got, want commerce.Order) {
	t.Helper()
	g, w := got, want
	if !g.ReservedUntil.Equal(w.ReservedUntil) || !g.CreatedAt.Equal(w.CreatedAt) ||
		!g.UpdatedAt.Equal(w.UpdatedAt) || !timeEq(g.PaidAt, w.PaidAt) ||
		!timeEq(g.Payment.ExpiresAt, w.Payment.ExpiresAt) {
		t.Fatalf("order times differ:\n got %+v\nwant %+v", got, want)
	}
	g.ReservedUntil, g.CreatedAt, g.UpdatedAt, g.PaidAt, g.Payment.ExpiresAt = w.ReservedUntil, w.CreatedAt, w.UpdatedAt, w.PaidAt, w.Payment.ExpiresAt
	if g != w {
		t.Fatalf("order differs:\n got %+v\nwant %+v", got, want)
	}
}

func orderIDs(orders []commerce.Order) []string {
	ids := make([]string, len(orders))
	for i, o := range orders {
		ids[i] = o.ID
	}
	return ids
}

func wantIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}
