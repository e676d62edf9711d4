package redisstore

import (
	"strconv"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/commerce/commercetest"
	"github.com/livehub/livehub/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// newTestStore returns a Store on a private server, and its client.
func newTestStore(t *testing.T, opts Options) (*Store, *redis.Client) {
	t.Helper()
	srv := redistest.Start(t)
	o, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	if opts.Prefix == "" {
		opts.Prefix = "t"
	}
	return New(c, opts), c
}

// saleWithOrder creates a sale of 10 units open from T0 for an hour and one
// pending order ord_1 of 2 units, due at T0+11m.
func saleWithOrder(t *testing.T, s *Store) commerce.FlashSale {
	t.Helper()
	ctx := t.Context()
	fs := commerce.FlashSale{
		ID: "fs_1", StreamID: "str_1", HostID: "h", Price: 100, Quantity: 10, PerUserLimit: 2,
		StartsAt: commercetest.T0, EndsAt: commercetest.T0.Add(time.Hour),
	}
	if err := s.CreateFlashSale(ctx, fs); err != nil {
		t.Fatal(err)
	}
	now := commercetest.T0.Add(time.Minute)
	if _, err := s.Reserve(ctx, commerce.ReserveRequest{
		SaleID: fs.ID, BuyerID: "b1", Quantity: 2, OrderID: "ord_1",
		Now: now, ReservedUntil: now.Add(10 * time.Minute),
	}); err != nil {
		t.Fatal(err)
	}
	return fs
}

// go-redis sends a script again when its reply was lost; the second run must
// report the change the first one made, and change nothing more.
func TestScripts_RetryOfTheSameCallReportsItsChange(t *testing.T) {
	s, c := newTestStore(t, Options{})
	ctx := t.Context()
	fs := saleWithOrder(t, s)
	at := msString(commercetest.T0.Add(2 * time.Minute))

	keys := []string{s.k.sale(fs.ID), s.k.held(fs.ID), s.k.due(fs.ID), s.k.order(fs.ID, "ord_1")}
	for i := range 2 {
		v, err := releaseScript.Run(ctx, c, keys, "ord_1", "expired", at, "tok-release").Result()
		if err != nil {
			t.Fatal(err)
		}
		rep, err := parseReply("release", v, 2)
		if err != nil {
			t.Fatal(err)
		}
		if rep.kind != "changed" || rep.n != 10 || rep.ver != 2 {
			t.Fatalf("run %d: %s with stock %d version %d, want changed with 10 and 2", i, rep.kind, rep.n, rep.ver)
		}
	}
	// Another call finds the order released.
	tr, err := s.Release(ctx, "ord_1", commerce.OrderExpired, commercetest.T0.Add(3*time.Minute))
	if err != nil || tr.Changed || tr.StockLeft != 10 {
		t.Fatalf("Release after = %+v, %v", tr, err)
	}

	now := commercetest.T0.Add(4 * time.Minute)
	rkeys := []string{s.k.sale(fs.ID), s.k.held(fs.ID), s.k.orders(fs.ID), s.k.due(fs.ID), s.k.order(fs.ID, "ord_2")}
	for i := range 2 {
		v, err := reserveScript.Run(ctx, c, rkeys, "ord_2", "b1", "", "1", msString(now),
			msString(now.Add(time.Minute)), "", "tok-reserve", strconv.FormatInt(s.orderTTL.Milliseconds(), 10)).Result()
		if err != nil {
			t.Fatal(err)
		}
		rep, err := parseReply("reserve", v, 2)
		if err != nil {
			t.Fatal(err)
		}
		if rep.kind != "ok" || rep.n != 9 || rep.ver != 3 {
			t.Fatalf("run %d: %s with stock %d version %d, want ok with 9 and 3", i, rep.kind, rep.n, rep.ver)
		}
	}
	if held, _ := c.HGet(ctx, s.k.held(fs.ID), "b1").Int(); held != 1 {
		t.Fatalf("buyer holds %d units, want 1", held)
	}

	// Ending a sale: the retry succeeds, another call conflicts.
	for i := range 2 {
		v, err := endSaleScript.Run(ctx, c, []string{s.k.sale(fs.ID)}, msString(now), "tok-end").Result()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseReply("end", v, 0); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	if _, err := s.EndFlashSale(ctx, fs.ID, now); commerce.ErrorCode(err) != commerce.ECONFLICT {
		t.Fatalf("EndFlashSale after = %v", err)
	}
}

// The order index lives outside the sale's slot; a node that died between
// the reservation and the index must not leave units held for ever.
func TestDueReservations_RepairsTheOrderIndex(t *testing.T) {
	s, c := newTestStore(t, Options{})
	ctx := t.Context()
	saleWithOrder(t, s)
	if err := c.Del(ctx, s.k.orderSale("ord_1")).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetOrder(ctx, "ord_1"); commerce.ErrorCode(err) != commerce.ENOTFOUND {
		t.Fatalf("GetOrder without index: %v", err)
	}
	ids, err := s.DueReservations(ctx, commercetest.T0.Add(20*time.Minute), 10)
	if err != nil || len(ids) != 1 || ids[0] != "ord_1" {
		t.Fatalf("DueReservations = %v, %v", ids, err)
	}
	tr, err := s.Release(ctx, "ord_1", commerce.OrderExpired, commercetest.T0.Add(20*time.Minute))
	if err != nil || !tr.Changed || tr.StockLeft != 10 {
		t.Fatalf("Release = %+v, %v", tr, err)
	}
}

// Sweeps visit only sales that may still hold reservations.
func TestDueReservations_ClosesSalesThatAreOver(t *testing.T) {
	s, c := newTestStore(t, Options{})
	ctx := t.Context()
	fs := saleWithOrder(t, s)
	open := func() bool {
		ok, err := c.SIsMember(ctx, s.k.openSales(), fs.ID).Result()
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	end := fs.EndsAt.Add(s.closeGrace)
	// Over, but a reservation is still pending: stays open.
	if ids, err := s.DueReservations(ctx, end, 0); err != nil || len(ids) != 1 || !open() {
		t.Fatalf("DueReservations = %v, %v; open %v", ids, err, open())
	}
	if _, err := s.Release(ctx, "ord_1", commerce.OrderExpired, end); err != nil {
		t.Fatal(err)
	}
	// Within the grace after the end: stays open.
	if _, err := s.DueReservations(ctx, end.Add(-time.Millisecond), 0); err != nil || !open() {
		t.Fatalf("closed within the grace: %v", err)
	}
	if _, err := s.DueReservations(ctx, end, 0); err != nil || open() {
		t.Fatalf("still open after the grace: %v", err)
	}
	// A late reservation stamped before the end is refused once closed.
	now := fs.EndsAt.Add(-time.Second)
	_, err := s.Reserve(ctx, commerce.ReserveRequest{
		SaleID: fs.ID, BuyerID: "b2", Quantity: 1, OrderID: "ord_late",
		Now: now, ReservedUntil: now.Add(time.Minute),
	})
	if commerce.ErrorCode(err) != commerce.EENDED {
		t.Fatalf("Reserve in a closed sale: %v", err)
	}
}

func TestReserve_IdempotencyKeyExpires(t *testing.T) {
	s, _ := newTestStore(t, Options{IdempotencyTTL: 50 * time.Millisecond})
	ctx := t.Context()
	saleWithOrder(t, s)
	now := commercetest.T0.Add(time.Minute)
	req := func(orderID string) commerce.ReserveRequest {
		return commerce.ReserveRequest{
			SaleID: "fs_1", BuyerID: "b2", Quantity: 1, OrderID: orderID,
			IdempotencyKey: "k", RequestHash: "h", Now: now, ReservedUntil: now.Add(time.Minute),
		}
	}
	first, err := s.Reserve(ctx, req("ord_a"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	second, err := s.Reserve(ctx, req("ord_b"))
	if err != nil {
		t.Fatal(err)
	}
	if second.Replayed || second.Order.ID == first.Order.ID {
		t.Fatalf("after the TTL the key replayed %s", first.Order.ID)
	}
}

func TestReserve_DeadlineWithinOrderTTL(t *testing.T) {
	s, _ := newTestStore(t, Options{OrderTTL: time.Hour})
	saleWithOrder(t, s)
	now := commercetest.T0.Add(time.Minute)
	_, err := s.Reserve(t.Context(), commerce.ReserveRequest{
		SaleID: "fs_1", BuyerID: "b2", Quantity: 1, OrderID: "ord_x",
		Now: now, ReservedUntil: now.Add(time.Hour),
	})
	if commerce.ErrorCode(err) != commerce.EINVALID {
		t.Fatalf("Reserve past the order TTL: %v", err)
	}
}

func TestNew_Defaults(t *testing.T) {
	s := New(nil, Options{})
	if s.k.p != "livehub" || s.idemTTL != 24*time.Hour || s.orderTTL != 30*24*time.Hour || s.closeGrace != time.Minute {
		t.Fatalf("defaults: %+v", s)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a prefix with a brace")
		}
	}()
	New(nil, Options{Prefix: "a{b"})
}

// On a single Redis, reserve.lua binds the idempotency key and writes the
// order's indexes with the reservation. Run again by a client retry, it
// reports the reservation as made; another request with the key finds the
// key bound and changes nothing.
func TestReserve_OneScriptBindsReservesAndIndexes(t *testing.T) {
	s, c := newTestStore(t, Options{})
	if !s.single {
		t.Fatal("a Store on one server does not take the one-script path")
	}
	ctx := t.Context()
	fs := saleWithOrder(t, s)
	now := commercetest.T0.Add(4 * time.Minute)
	req := commerce.ReserveRequest{
		SaleID: fs.ID, BuyerID: "b2", BuyerName: "Budi", Quantity: 1, OrderID: "ord_2",
		IdempotencyKey: "b2:k", RequestHash: "h", Now: now, ReservedUntil: now.Add(time.Minute),
	}
	rec := `{"h":"h","s":"fs_1","b":"b2","o":"ord_2"}`
	keys, args := s.reserveArgs(&req, "ord_2")
	keys = append(keys, s.k.idem(req.IdempotencyKey), s.k.orderSale("ord_2"), s.k.buyerOrders("b2"))
	args = append(args, rec, "60000")
	for i := range 2 {
		v, err := reserveScript.Run(ctx, c, keys, args...).Result()
		if err != nil {
			t.Fatal(err)
		}
		rep, err := parseReply("reserve", v, 2)
		if err != nil {
			t.Fatal(err)
		}
		if rep.kind != "ok" || rep.n != 7 || rep.ver != 2 {
			t.Fatalf("run %d: %s with stock %d version %d, want ok with 7 and 2", i, rep.kind, rep.n, rep.ver)
		}
	}
	if held, _ := c.HGet(ctx, s.k.held(fs.ID), "b2").Int(); held != 1 {
		t.Fatalf("buyer holds %d units, want 1", held)
	}
	if got, _ := c.Get(ctx, s.k.idem(req.IdempotencyKey)).Result(); got != rec {
		t.Fatalf("idempotency record %q, want %q", got, rec)
	}
	if ttl := c.PTTL(ctx, s.k.idem(req.IdempotencyKey)).Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("idempotency record TTL %s", ttl)
	}
	// The indexes: GetOrder finds the order through P.order, the buyer's list has it.
	if o, err := s.GetOrder(ctx, "ord_2"); err != nil || o.BuyerID != "b2" {
		t.Fatalf("GetOrder = %+v, %v", o, err)
	}
	if ttl := c.PTTL(ctx, s.k.orderSale("ord_2")).Val(); ttl <= 0 {
		t.Fatalf("order index TTL %s", ttl)
	}
	if list, err := s.ListOrdersByBuyer(ctx, "b2", 0); err != nil || len(list) != 1 || list[0].ID != "ord_2" {
		t.Fatalf("ListOrdersByBuyer = %+v, %v", list, err)
	}

	// The same request again, with a fresh order id: the key is bound to
	// ord_2, which is replayed.
	again := req
	again.OrderID = "ord_3"
	res, err := s.Reserve(ctx, again)
	if err != nil || !res.Replayed || res.Order.ID != "ord_2" || res.StockLeft != 7 {
		t.Fatalf("Reserve again = %+v, %v; want ord_2 replayed", res, err)
	}
	if n := c.Exists(ctx, s.k.order(fs.ID, "ord_3"), s.k.orderSale("ord_3")).Val(); n != 0 {
		t.Fatalf("the replay wrote %d keys of ord_3", n)
	}
	// Another request with the key: refused, nothing changes.
	other := again
	other.Quantity, other.RequestHash = 2, "h2"
	if _, err := s.Reserve(ctx, other); commerce.ErrorCode(err) != commerce.EIDEMPOTENCY {
		t.Fatalf("Reserve with another request = %v, want %s", err, commerce.EIDEMPOTENCY)
	}
	if left, _ := c.HGet(ctx, s.k.sale(fs.ID), "stock").Int(); left != 7 {
		t.Fatalf("stock %d after the refusals, want 7", left)
	}
}
