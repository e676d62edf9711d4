package shop_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/memstore"
	"github.com/livehub/livehub/internal/shop"
)

// tickerData is the data of order.placed.
type tickerData struct {
	SaleID   string `json:"flash_sale_id"`
	Quantity int    `json:"quantity"`
	Orders   int    `json:"orders"`
	Buyer    string `json:"buyer"`
}

func tickerOf(t *testing.T, p published) tickerData { return dataOf[tickerData](t, p) }

// tickerRoom is a node with a live stream and a sale of 100 units, and the
// log of what it published.
type tickerRoom struct {
	n            *node
	log          *hubLog
	live, studio string
	sale         commerce.FlashSale
}

func newTickerRoom(t *testing.T, interval time.Duration) *tickerRoom {
	t.Helper()
	log := &hubLog{}
	n := startNode(t, shop.Config{
		Store: memstore.New(memstore.Options{}), Publisher: newPublisher("A", log, false),
		TickerInterval: interval, SweepInterval: time.Hour,
	})
	st, sale := openSale(t, n.svc, 100, 10)
	return &tickerRoom{n: n, log: log, live: "live:" + st.ID, studio: "studio:" + st.ID, sale: sale}
}

// buy checks out qty units as a buyer named name.
func (r *tickerRoom) buy(t *testing.T, i int, name string, qty int) {
	t.Helper()
	a := shop.Actor{UserID: fmt.Sprintf("b%d", i), Name: name, Roles: []string{"customer"}}
	if _, _, err := r.n.svc.Checkout(t.Context(), a, shop.CheckoutInput{FlashSaleID: r.sale.ID, Quantity: qty}, fmt.Sprintf("k%d", i)); err != nil {
		t.Fatal(err)
	}
}

func (r *tickerRoom) tickers(t *testing.T) []tickerData {
	t.Helper()
	var out []tickerData
	for _, p := range r.log.find(r.live, commerce.EventOrderPlaced) {
		if !p.low {
			t.Errorf("order.placed published at normal priority")
		}
		out = append(out, tickerOf(t, p))
	}
	return out
}

// A burst of checkouts gives the room two order.placed: the first purchase
// at once, the rest folded into one event when the interval ends.
func TestOrderTicker_BurstIsOneEventAtOnceAndOneFolded(t *testing.T) {
	const interval = time.Second
	r := newTickerRoom(t, interval)
	buyers := []struct {
		name string
		qty  int
	}{{"Budi Santoso", 1}, {"Ani", 2}, {"Citra Dewi", 1}, {"Dodi", 3}, {"Eka Putri", 1}}
	for i, b := range buyers {
		r.buy(t, i, b.name, b.qty)
	}
	if got := r.tickers(t); len(got) != 1 || got[0] != (tickerData{SaleID: r.sale.ID, Quantity: 1, Orders: 1, Buyer: "B*** S***"}) {
		t.Fatalf("right after the burst the room got %+v, want the first purchase alone", got)
	}
	waitFor(t, "the folded ticker", func() bool { return len(r.log.find(r.live, commerce.EventOrderPlaced)) == 2 })
	r.n.stop() // nothing is left to flush
	got := r.tickers(t)
	if len(got) != 2 || got[1] != (tickerData{SaleID: r.sale.ID, Quantity: 7, Orders: 4, Buyer: "E*** P***"}) {
		t.Fatalf("the room got %+v, want the first purchase, then 4 orders of 7 units with the newest buyer", got)
	}
	events := r.log.find(r.live, commerce.EventOrderPlaced)
	if gap := events[1].ev.At.Sub(events[0].ev.At); gap < interval-50*time.Millisecond {
		t.Fatalf("the folded ticker came %s after the first, before the interval of %s ended", gap, interval)
	}
	// The buyer and the studio still get every order, at normal priority.
	created := r.log.find(r.studio, commerce.EventOrderCreated)
	for _, p := range created {
		if p.low {
			t.Fatalf("order.created published at low priority")
		}
	}
	if len(created) != len(buyers) {
		t.Fatalf("studio got %d order.created, want %d", len(created), len(buyers))
	}
}

// A purchase after a quiet interval goes out with its checkout, also after
// folded purchases were flushed.
func TestOrderTicker_QuietPurchaseIsImmediate(t *testing.T) {
	const interval = 300 * time.Millisecond
	r := newTickerRoom(t, interval)
	r.buy(t, 1, "Budi Santoso", 2)
	if got := r.tickers(t); len(got) != 1 || got[0] != (tickerData{SaleID: r.sale.ID, Quantity: 2, Orders: 1, Buyer: "B*** S***"}) {
		t.Fatalf("the room got %+v, want the purchase at once", got)
	}
	time.Sleep(2 * interval)
	r.buy(t, 2, "Ani", 1)
	if got := r.tickers(t); len(got) != 2 || got[1] != (tickerData{SaleID: r.sale.ID, Quantity: 1, Orders: 1, Buyer: "A***"}) {
		t.Fatalf("after a quiet interval the room got %+v, want the purchase at once", got)
	}
	r.buy(t, 3, "Citra Dewi", 1)
	r.buy(t, 4, "Dodi", 1)
	orders := func() int {
		n := 0
		for _, d := range r.tickers(t) {
			n += d.Orders
		}
		return n
	}
	waitFor(t, "every purchase in the ticker", func() bool { return orders() == 4 })
	before := len(r.tickers(t))
	time.Sleep(2 * interval)
	r.buy(t, 5, "Eka Putri", 3)
	got := r.tickers(t)
	if len(got) != before+1 || got[len(got)-1] != (tickerData{SaleID: r.sale.ID, Quantity: 3, Orders: 1, Buyer: "E*** P***"}) {
		t.Fatalf("after a quiet interval following a flush the room got %+v, want the purchase at once", got[before:])
	}
}

// Purchases folded and waiting are published when the service stops.
func TestOrderTicker_ShutdownFlushesPending(t *testing.T) {
	r := newTickerRoom(t, time.Hour)
	r.buy(t, 1, "Budi Santoso", 1)
	r.buy(t, 2, "Ani", 2)
	r.buy(t, 3, "Citra Dewi", 1)
	if got := r.tickers(t); len(got) != 1 {
		t.Fatalf("before the stop the room got %+v, want the first purchase alone", got)
	}
	r.n.stop()
	got := r.tickers(t)
	if len(got) != 2 || got[1] != (tickerData{SaleID: r.sale.ID, Quantity: 3, Orders: 2, Buyer: "C*** D***"}) {
		t.Fatalf("after the stop the room got %+v, want the 2 waiting orders of 3 units", got)
	}
}
