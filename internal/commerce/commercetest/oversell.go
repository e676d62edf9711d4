package commercetest

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/commerce"
)

// Figures of the flash-sale rush.
const (
	rushUnits    = 100
	rushAttempts = 5000
	rushBuyers   = 2000
	rushLimit    = 2
	rushReleases = 8 // goroutines releasing each order at once
)

// RunNoOversellTests hammers one sale from many goroutines. stores are
// views of the same state, as nodes of one deployment are (one memory store,
// or several Redis stores on one Redis); attempts and releases are spread
// over them. The sale must sell exactly its units, never more, nobody past
// the per-user limit, and every reservation must come back exactly once.
func RunNoOversellTests(t *testing.T, stores ...commerce.Store) {
	if len(stores) == 0 {
		t.Fatal("commercetest: no store")
	}
	st := stores[0]
	f := newFixture(t, st, func(s *commerce.FlashSale) {
		s.Quantity, s.PerUserLimit = rushUnits, rushLimit
	})
	now := T0.Add(time.Minute)

	var (
		mu      sync.Mutex
		orders  []commerce.Order
		codes   = map[commerce.Code]int{}
		minLeft = rushUnits
	)
	rng := rand.New(rand.NewPCG(1, 2))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range rushAttempts {
		r := commerce.ReserveRequest{
			SaleID:   f.sale.ID,
			BuyerID:  fmt.Sprintf("buyer%04d", rng.IntN(rushBuyers)),
			Quantity: 1 + rng.IntN(2),
			OrderID:  fmt.Sprintf("ord_%05d", i),
			Now:      now.Add(time.Duration(i) * time.Millisecond),
		}
		r.ReservedUntil = r.Now.Add(10 * time.Minute)
		if i%2 == 0 {
			r.IdempotencyKey, r.RequestHash = fmt.Sprintf("key%05d", i), "h"
		}
		store := stores[i%len(stores)]
		wg.Go(func() {
			<-start
			res, err := store.Reserve(ctx(t), r)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				codes[commerce.ErrorCode(err)]++
				if c := commerce.ErrorCode(err); c != commerce.ESOLDOUT && c != commerce.ELIMIT {
					t.Errorf("Reserve %s: %v", r.OrderID, err)
				}
				return
			}
			orders = append(orders, res.Order)
			minLeft = min(minLeft, res.StockLeft)
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	units, perBuyer := 0, map[string]int{}
	for _, o := range orders {
		units += o.Quantity
		perBuyer[o.BuyerID] += o.Quantity
		if o.Amount != int64(o.Quantity)*f.sale.Price {
			t.Errorf("order %s: amount %d for %d units", o.ID, o.Amount, o.Quantity)
		}
	}
	t.Logf("%d orders, %d units; refusals %v", len(orders), units, codes)
	if units != rushUnits {
		t.Fatalf("reserved %d units of %d", units, rushUnits)
	}
	for b, n := range perBuyer {
		if n > rushLimit {
			t.Fatalf("buyer %s holds %d units, limit %d", b, n, rushLimit)
		}
	}
	if minLeft < 0 {
		t.Fatalf("stock went to %d", minLeft)
	}
	f.wantStock(t, 0, 0)
	listed, err := st.ListOrdersBySale(ctx(t), f.sale.ID, 0)
	must(t, err)
	if len(listed) != len(orders) {
		t.Fatalf("ListOrdersBySale has %d orders, %d were made", len(listed), len(orders))
	}

	// Every order released by several nodes at once: exactly one wins.
	changed := make([]int, len(orders))
	start = make(chan struct{})
	for i, o := range orders {
		for g := range rushReleases {
			store := stores[(i+g)%len(stores)]
			to := commerce.OrderExpired
			if g%2 == 1 {
				to = commerce.OrderCancelled
			}
			wg.Go(func() {
				<-start
				tr, err := store.Release(ctx(t), o.ID, to, now.Add(20*time.Minute))
				if err != nil {
					t.Errorf("Release %s: %v", o.ID, err)
					return
				}
				if tr.Changed {
					mu.Lock()
					changed[i]++
					mu.Unlock()
				}
			})
		}
	}
	close(start)
	wg.Wait()
	for i, n := range changed {
		if n != 1 {
			t.Fatalf("order %s released %d times", orders[i].ID, n)
		}
	}
	f.wantStock(t, rushUnits, 0)

	// With everything back, a buyer who held the limit can buy again.
	var full string
	for b, n := range perBuyer {
		if n == rushLimit {
			full = b
			break
		}
	}
	if full != "" {
		r := f.req(full, "ord_again", rushLimit)
		r.Now, r.ReservedUntil = now.Add(21*time.Minute), now.Add(31*time.Minute)
		if _, err := st.Reserve(ctx(t), r); err != nil {
			t.Fatalf("buyer %s after release: %v", full, err)
		}
	}

	t.Run("PayOrReleaseRace", func(t *testing.T) { testPayOrRelease(t, stores) })
}

// testPayOrRelease races payment against expiry on the same orders: each
// order ends either paid or released, and the units add up.
func testPayOrRelease(t *testing.T, stores []commerce.Store) {
	const n = 40
	f := newFixture(t, stores[0], func(s *commerce.FlashSale) { s.Quantity, s.PerUserLimit = n, 1 })
	for i := range n {
		f.reserve(t, fmt.Sprintf("buyer%d", i), fmt.Sprintf("ord_%d", i), 1)
	}
	at := T0.Add(11 * time.Minute)
	var (
		mu                sync.Mutex
		paid, released    = map[string]int{}, map[string]int{}
		conflicts, others int
		wg                sync.WaitGroup
	)
	start := make(chan struct{})
	for i := range n {
		id := fmt.Sprintf("ord_%d", i)
		for g := range 6 {
			store := stores[(i+g)%len(stores)]
			wg.Go(func() {
				<-start
				var tr commerce.Transition
				var err error
				if g%2 == 0 {
					tr, err = store.MarkPaid(ctx(t), id, commerce.Payment{Gateway: "sim"}, at)
				} else {
					tr, err = store.Release(ctx(t), id, commerce.OrderExpired, at)
				}
				mu.Lock()
				defer mu.Unlock()
				switch {
				case commerce.ErrorCode(err) == commerce.ECONFLICT && g%2 == 0:
					conflicts++
				case err != nil:
					others++
					t.Errorf("%s: %v", id, err)
				case tr.Changed && g%2 == 0:
					paid[id]++
				case tr.Changed:
					released[id]++
				}
			})
		}
	}
	close(start)
	wg.Wait()
	for i := range n {
		id := fmt.Sprintf("ord_%d", i)
		if paid[id]+released[id] != 1 {
			t.Fatalf("%s: paid %d times, released %d times", id, paid[id], released[id])
		}
		o, err := stores[0].GetOrder(ctx(t), id)
		must(t, err)
		if want := commerce.OrderPaid; paid[id] == 1 && o.Status != want || paid[id] == 0 && o.Status != commerce.OrderExpired {
			t.Fatalf("%s is %s after paid %d released %d", id, o.Status, paid[id], released[id])
		}
	}
	f.wantStock(t, len(released), len(paid))
}
