package commercetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/commerce"
)

// testStockVersion checks that every decision that changes a sale's stock
// increments its stock version in the same step, and that nothing else does.
func testStockVersion(t *testing.T, st commerce.Store) {
	f := newFixture(t, st)
	version := func() int64 {
		t.Helper()
		s, err := st.GetFlashSale(ctx(t), f.sale.ID)
		must(t, err)
		return s.StockVersion
	}
	if v := version(); v != 0 {
		t.Fatalf("new sale: stock version %d, want 0", v)
	}

	r1 := f.reserve(t, "buyer1", "ord_1", 1)
	if r1.StockVersion <= 0 || r1.StockLeft != saleQty-1 {
		t.Fatalf("first reservation: stock %d version %d, want %d and a version above 0", r1.StockLeft, r1.StockVersion, saleQty-1)
	}
	keyed := f.req("buyer2", "ord_2", 2)
	keyed.IdempotencyKey, keyed.RequestHash = "buyer2:k", "h"
	r2, err := st.Reserve(ctx(t), keyed)
	must(t, err)
	if r2.StockVersion <= r1.StockVersion {
		t.Fatalf("second reservation: version %d, want above %d", r2.StockVersion, r1.StockVersion)
	}
	if v := version(); v != r2.StockVersion {
		t.Fatalf("GetFlashSale: version %d, want %d", v, r2.StockVersion)
	}

	// A replay, a refusal and a payment change no stock, nor the version.
	replay, err := st.Reserve(ctx(t), keyed)
	must(t, err)
	if !replay.Replayed || replay.StockVersion != r2.StockVersion || replay.StockLeft != r2.StockLeft {
		t.Fatalf("replay: %+v, want replayed with stock %d version %d", replay, r2.StockLeft, r2.StockVersion)
	}
	_, err = st.Reserve(ctx(t), f.req("buyer2", "ord_3", 1))
	wantCode(t, err, commerce.ELIMIT)
	paid, err := st.MarkPaid(ctx(t), "ord_1", commerce.Payment{Gateway: "simulated"}, T0.Add(2*time.Minute))
	must(t, err)
	if paid.StockVersion != r2.StockVersion {
		t.Fatalf("MarkPaid: version %d, want %d", paid.StockVersion, r2.StockVersion)
	}
	if v := version(); v != r2.StockVersion {
		t.Fatalf("after a replay, a refusal and a payment: version %d, want %d", v, r2.StockVersion)
	}

	// A release puts units back: a new version, once.
	rel, err := st.Release(ctx(t), "ord_2", commerce.OrderExpired, T0.Add(3*time.Minute))
	must(t, err)
	if !rel.Changed || rel.StockVersion <= r2.StockVersion || rel.StockLeft != saleQty-1 {
		t.Fatalf("Release: %+v, want changed with stock %d and a version above %d", rel, saleQty-1, r2.StockVersion)
	}
	again, err := st.Release(ctx(t), "ord_2", commerce.OrderCancelled, T0.Add(4*time.Minute))
	must(t, err)
	if again.Changed || again.StockVersion != rel.StockVersion {
		t.Fatalf("second Release: %+v, want unchanged with version %d", again, rel.StockVersion)
	}
	sales, err := st.ListFlashSales(ctx(t), f.stream.ID)
	must(t, err)
	if len(sales) != 1 || sales[0].StockVersion != rel.StockVersion || sales[0].StockLeft != rel.StockLeft {
		t.Fatalf("ListFlashSales: %+v, want stock %d version %d", sales, rel.StockLeft, rel.StockVersion)
	}

	// Concurrent decisions each get a version of their own, and the stock
	// that goes with the highest is the sale's.
	g := *f
	g.sale = f.addSale(t, "fs_rush_"+t.Name(), func(s *commerce.FlashSale) { s.Quantity = 40; s.PerUserLimit = 1 })
	type seen struct {
		left    int
		version int64
	}
	var (
		mu   sync.Mutex
		all  []seen
		wg   sync.WaitGroup
		fail error
	)
	for i := range 40 {
		wg.Go(func() {
			r := g.req(fmt.Sprintf("rush%02d", i), fmt.Sprintf("ord_rush_%02d", i), 1)
			res, err := st.Reserve(ctx(t), r)
			if err == nil && i%2 == 0 {
				var tr commerce.Transition
				tr, err = st.Release(ctx(t), r.OrderID, commerce.OrderCancelled, r.Now)
				mu.Lock()
				all = append(all, seen{tr.StockLeft, tr.StockVersion})
				mu.Unlock()
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fail = err
				return
			}
			all = append(all, seen{res.StockLeft, res.StockVersion})
		})
	}
	wg.Wait()
	must(t, fail)
	versions := make(map[int64]bool)
	var top seen
	for _, s := range all {
		if versions[s.version] {
			t.Fatalf("version %d was returned twice", s.version)
		}
		versions[s.version] = true
		if s.version > top.version {
			top = s
		}
	}
	final, err := st.GetFlashSale(ctx(t), g.sale.ID)
	must(t, err)
	if len(all) != 60 || final.StockVersion != 60 || top.version != final.StockVersion || top.left != final.StockLeft || final.StockLeft != 20 {
		t.Fatalf("after 40 reservations and 20 releases: %d decisions, top %+v, sale stock %d version %d; want 60, stock 20 at version 60",
			len(all), top, final.StockLeft, final.StockVersion)
	}
}

// testSaleEvents checks the claims of sales' starts and ends: due only once
// their time came, claimed once, and an end made by the host claims it.
func testSaleEvents(t *testing.T, st commerce.Store) {
	f := newFixture(t, st) // A: T0 to T0+1h
	b := f.addSale(t, "fs_b_"+t.Name(), func(s *commerce.FlashSale) {
		s.StartsAt, s.EndsAt = T0.Add(10*time.Minute), T0.Add(20*time.Minute)
	})
	c := f.addSale(t, "fs_c_"+t.Name(), func(s *commerce.FlashSale) {
		s.StartsAt, s.EndsAt = T0.Add(2*time.Hour), T0.Add(3*time.Hour)
	})
	started, ended := commerce.EventFlashSaleStarted, commerce.EventFlashSaleEnded
	wantDue := func(now time.Time, want ...commerce.SaleEvent) {
		t.Helper()
		got, err := st.DueSaleEvents(ctx(t), now, 0)
		must(t, err)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("DueSaleEvents(%s) = %v, want %v", now.Sub(T0), got, want)
		}
	}
	claim := func(id, ev string, now time.Time, want bool) {
		t.Helper()
		got, err := st.ClaimSaleEvent(ctx(t), id, ev, now)
		must(t, err)
		if got != want {
			t.Fatalf("ClaimSaleEvent(%s, %s, %s) = %v, want %v", id, ev, now.Sub(T0), got, want)
		}
	}

	wantDue(T0.Add(-time.Millisecond))
	claim(f.sale.ID, started, T0.Add(-time.Millisecond), false)
	wantDue(T0, commerce.SaleEvent{SaleID: f.sale.ID, Event: started})
	claim(f.sale.ID, started, T0, true)
	claim(f.sale.ID, started, T0.Add(time.Second), false)
	wantDue(T0)

	// C is ended by its host before it starts: neither event is left.
	_, err := st.EndFlashSale(ctx(t), c.ID, T0.Add(time.Minute))
	must(t, err)
	// B is ended by its host while live: only its start is left.
	_, err = st.EndFlashSale(ctx(t), b.ID, T0.Add(15*time.Minute))
	must(t, err)
	wantDue(T0.Add(20*time.Minute), commerce.SaleEvent{SaleID: b.ID, Event: started})
	claim(b.ID, ended, T0.Add(20*time.Minute), false)
	wantDue(T0.Add(4*time.Hour),
		commerce.SaleEvent{SaleID: b.ID, Event: started},
		commerce.SaleEvent{SaleID: f.sale.ID, Event: ended})
	claim(c.ID, started, T0.Add(4*time.Hour), false)
	claim(c.ID, ended, T0.Add(4*time.Hour), false)

	// Many nodes claim at once: one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 16 {
		wg.Go(func() {
			ok, err := st.ClaimSaleEvent(ctx(t), f.sale.ID, ended, T0.Add(time.Hour))
			mu.Lock()
			defer mu.Unlock()
			if err == nil && ok {
				wins++
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("16 concurrent claims of the end: %d won, want 1", wins)
	}
	claim(b.ID, started, T0.Add(4*time.Hour), true)
	wantDue(T0.Add(4 * time.Hour))

	// An end claimed by a node whose clock is ahead ends the sale for a
	// host whose clock is behind.
	d := f.addSale(t, "fs_d_"+t.Name())
	claim(d.ID, ended, T0.Add(time.Hour), true)
	_, err = st.EndFlashSale(ctx(t), d.ID, T0.Add(59*time.Minute))
	wantCode(t, err, commerce.ECONFLICT)

	_, err = st.ClaimSaleEvent(ctx(t), f.sale.ID, commerce.EventFlashSaleStock, T0)
	wantCode(t, err, commerce.EINVALID)
	_, err = st.ClaimSaleEvent(ctx(t), "fs_none", started, T0)
	wantCode(t, err, commerce.ENOTFOUND)
	if due, err := st.DueSaleEvents(ctx(t), T0.Add(4*time.Hour), 1); err != nil || len(due) > 1 {
		t.Fatalf("DueSaleEvents with limit 1 = %v, %v", due, err)
	}
}
