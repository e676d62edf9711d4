package shop_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/memstore"
	"github.com/livehub/livehub/internal/redisstore"
	"github.com/livehub/livehub/internal/redistest"
	"github.com/livehub/livehub/internal/shop"
	"github.com/redis/go-redis/v9"
)

// published is one publication as the hub would have received it.
type published struct {
	node, channel, key string
	ev                 commerce.Event
	// low is set for a publication at low priority.
	low bool
}

// hubLog is the order in which publications reach the hub, across nodes.
type hubLog struct {
	mu   sync.Mutex
	pubs []published
}

func (l *hubLog) add(p published) {
	l.mu.Lock()
	l.pubs = append(l.pubs, p)
	l.mu.Unlock()
}

// find returns the publications into channel of event type typ, in order.
func (l *hubLog) find(channel, typ string) []published {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []published
	for _, p := range l.pubs {
		if p.channel == channel && p.ev.Type == typ {
			out = append(out, p)
		}
	}
	return out
}

// publisher is one node's shop.Publisher. With hold set, the node's first
// flash_sale.stock into a live: channel waits, once it has entered Publish
// (entered is closed), until release is closed: it reaches the hub as late
// as the test wants.
type publisher struct {
	node  string
	log   *hubLog
	hold  bool
	once  sync.Once
	enter chan struct{}
	free  chan struct{}
}

func newPublisher(node string, log *hubLog, hold bool) *publisher {
	return &publisher{node: node, log: log, hold: hold, enter: make(chan struct{}), free: make(chan struct{})}
}

func (p *publisher) release() {
	select {
	case <-p.free:
	default:
		close(p.free)
	}
}

func (p *publisher) Publish(ctx context.Context, channel string, data []byte, key string) error {
	return p.publish(channel, data, key, false)
}

func (p *publisher) PublishLowPriority(ctx context.Context, channel string, data []byte, key string) error {
	return p.publish(channel, data, key, true)
}

func (p *publisher) publish(channel string, data []byte, key string, low bool) error {
	var ev commerce.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return err
	}
	if p.hold && ev.Type == commerce.EventFlashSaleStock && strings.HasPrefix(channel, "live:") {
		first := false
		p.once.Do(func() { first = true })
		if first {
			close(p.enter)
			<-p.free
		}
	}
	p.log.add(published{node: p.node, channel: channel, key: key, ev: ev, low: low})
	return nil
}

type charger struct{}

func (charger) Name() string { return "test" }
func (charger) CreateCharge(_ context.Context, o commerce.Order) (commerce.Payment, error) {
	return commerce.Payment{Gateway: "test", Reference: "ref-" + o.ID}, nil
}

// clock is a settable clock shared by the services of a test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// stores returns, per engine, a function making views of one shared store,
// as the nodes of one deployment have: one memory store, or Redis stores
// with one prefix on a private Redis.
func stores(t *testing.T) map[string]func() commerce.Store {
	mem := memstore.New(memstore.Options{})
	srv := redistest.Start(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "shop" + hex.EncodeToString(b[:])
	return map[string]func() commerce.Store{
		"memory": func() commerce.Store { return mem },
		"redis": func() commerce.Store {
			opts, err := redis.ParseURL(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			c := redis.NewClient(opts)
			t.Cleanup(func() { _ = c.Close() })
			return redisstore.New(c, redisstore.Options{Prefix: prefix})
		},
	}
}

// node is a running shop.Service; stop ends its Run and waits for it.
type node struct {
	svc  *shop.Service
	stop func()
}

func startNode(t *testing.T, cfg shop.Config) *node {
	t.Helper()
	cfg.Charger = charger{}
	svc, err := shop.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		svc.Run(ctx)
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return &node{svc: svc, stop: stop}
}

// waitFor polls cond until it holds, failing the test after a generous
// bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var host = shop.Actor{UserID: "host-1", Name: "Host", Roles: []string{"host"}}

func buyer(id string) shop.Actor {
	return shop.Actor{UserID: id, Name: "Buyer " + id, Roles: []string{"customer"}}
}

// stockData is the data of flash_sale.stock and flash_sale.sold_out.
type stockData struct {
	SaleID  string `json:"flash_sale_id"`
	Left    int    `json:"stock_left"`
	Version int64  `json:"stock_version"`
}

func stockOf(t *testing.T, p published) stockData { return dataOf[stockData](t, p) }

// dataOf decodes the data of a published event.
func dataOf[T any](t *testing.T, p published) T {
	t.Helper()
	var d T
	if err := json.Unmarshal(p.ev.Data, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// Node A decides stock 4, node B then decides stock 3, and A's event reaches
// the hub after B's. A viewer applying the rule of docs/events.md (apply a
// stock event only when its stock_version is above the last one applied,
// starting from the snapshot's) ends on the store's stock.
func TestStockEvents_NewestVersionWinsAcrossNodes(t *testing.T) {
	for name, newStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			log := &hubLog{}
			pubA, pubB := newPublisher("A", log, true), newPublisher("B", log, false)
			t.Cleanup(pubA.release)
			cfg := shop.Config{StockInterval: 20 * time.Millisecond, SweepInterval: time.Hour}
			cfgA, cfgB := cfg, cfg
			cfgA.Store, cfgA.Publisher = newStore(), pubA
			cfgB.Store, cfgB.Publisher = newStore(), pubB
			a, b := startNode(t, cfgA), startNode(t, cfgB)
			ctx := t.Context()

			st, sale := openSale(t, a.svc, 5, 1)
			// The viewer's snapshot, before any change.
			snap, err := b.svc.GetFlashSale(ctx, sale.ID)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := a.svc.Checkout(ctx, buyer("b1"), shop.CheckoutInput{FlashSaleID: sale.ID, Quantity: 1}, "k1"); err != nil {
				t.Fatal(err)
			}
			<-pubA.enter // A is publishing stock 4 and is held there
			if _, _, err := b.svc.Checkout(ctx, buyer("b2"), shop.CheckoutInput{FlashSaleID: sale.ID, Quantity: 1}, "k2"); err != nil {
				t.Fatal(err)
			}
			live := "live:" + st.ID
			waitFor(t, "B's stock event", func() bool { return len(log.find(live, commerce.EventFlashSaleStock)) == 1 })
			pubA.release()
			waitFor(t, "A's stock event", func() bool { return len(log.find(live, commerce.EventFlashSaleStock)) == 2 })

			events := log.find(live, commerce.EventFlashSaleStock)
			first, last := stockOf(t, events[0]), stockOf(t, events[1])
			if events[1].node != "A" || last.Left != 4 || first.Left != 3 {
				t.Fatalf("publication order: %s %+v then %s %+v, want B's 3 then A's 4", events[0].node, first, events[1].node, last)
			}

			applied := stockData{Left: snap.StockLeft, Version: snap.StockVersion}
			for _, p := range events {
				if d := stockOf(t, p); d.Version > applied.Version {
					applied = d
				}
			}
			truth, err := a.svc.GetFlashSale(ctx, sale.ID)
			if err != nil {
				t.Fatal(err)
			}
			if truth.StockLeft != 3 || applied.Left != truth.StockLeft || applied.Version != truth.StockVersion {
				t.Fatalf("viewer applied stock %d version %d; the store has %d version %d (want 3)",
					applied.Left, applied.Version, truth.StockLeft, truth.StockVersion)
			}
		})
	}
}

// A sold-out event carries the version of the stock event it follows.
func TestStockEvents_SoldOutCarriesVersion(t *testing.T) {
	log := &hubLog{}
	n := startNode(t, shop.Config{Store: memstore.New(memstore.Options{}), Publisher: newPublisher("A", log, false), StockInterval: 20 * time.Millisecond})
	ctx := t.Context()
	st, sale := openSale(t, n.svc, 1, 1)
	if _, _, err := n.svc.Checkout(ctx, buyer("b1"), shop.CheckoutInput{FlashSaleID: sale.ID, Quantity: 1}, "k1"); err != nil {
		t.Fatal(err)
	}
	live := "live:" + st.ID
	waitFor(t, "sold out", func() bool { return len(log.find(live, commerce.EventFlashSaleSoldOut)) == 1 })
	stock, sold := log.find(live, commerce.EventFlashSaleStock), log.find(live, commerce.EventFlashSaleSoldOut)
	if d, s := stockOf(t, stock[len(stock)-1]), stockOf(t, sold[0]); d.Version != 1 || s != d {
		t.Fatalf("stock event %+v, sold out %+v: want both at version 1", d, s)
	}
}

// The node that created the sales stops before their time; the other nodes'
// sweeps announce each start and end once, and an end made by the host is
// not announced again.
func TestSaleEvents_AnnouncedByAnotherNode(t *testing.T) {
	for name, newStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			log := &hubLog{}
			clk := &clock{now: time.Now().UTC().Truncate(time.Millisecond)}
			cfg := func(node string) shop.Config {
				return shop.Config{Store: newStore(), Publisher: newPublisher(node, log, false), Now: clk.Now, SweepInterval: 5 * time.Millisecond}
			}
			a := startNode(t, cfg("A"))
			ctx := t.Context()
			st, err := a.svc.CreateStream(ctx, host, "Harbolnas")
			if err != nil {
				t.Fatal(err)
			}
			in := shop.FlashSaleInput{
				Product: commerce.Product{ID: "p1", Name: "Phone case"}, Price: 49000,
				Quantity: 5, PerUserLimit: 1, CountdownSeconds: 60, DurationSeconds: 60,
			}
			timed, err := a.svc.CreateFlashSale(ctx, host, st.ID, in)
			if err != nil {
				t.Fatal(err)
			}
			in.DurationSeconds = 30
			early, err := a.svc.CreateFlashSale(ctx, host, st.ID, in)
			if err != nil {
				t.Fatal(err)
			}
			a.stop() // its timers go with it

			b, c := startNode(t, cfg("B")), startNode(t, cfg("C"))
			live, studio := "live:"+st.ID, "studio:"+st.ID
			count := func(channel, typ, saleID string) int {
				n := 0
				for _, p := range log.find(channel, typ) {
					var s struct {
						ID string `json:"id"`
					}
					if json.Unmarshal(p.ev.Data, &s) == nil && s.ID == saleID {
						n++
						if want := typ + ":" + saleID; p.key != want {
							t.Errorf("%s published with key %q, want %q", typ, p.key, want)
						}
					}
				}
				return n
			}
			if n := count(live, commerce.EventFlashSaleStarted, timed.ID); n != 0 {
				t.Fatalf("started announced %d times before its time", n)
			}

			clk.Add(61 * time.Second)
			waitFor(t, "both sales started", func() bool {
				return count(studio, commerce.EventFlashSaleStarted, timed.ID) == 1 && count(studio, commerce.EventFlashSaleStarted, early.ID) == 1
			})
			if _, err := b.svc.EndFlashSale(ctx, host, early.ID); err != nil {
				t.Fatal(err)
			}
			clk.Add(60 * time.Second)
			waitFor(t, "the timed sale ended", func() bool { return count(studio, commerce.EventFlashSaleEnded, timed.ID) == 1 })
			b.stop()
			c.stop()
			// Nothing is left to announce.
			for _, n := range []*node{b, c} {
				if claimed, err := n.svc.SweepSaleEvents(ctx); err != nil || claimed != 0 {
					t.Fatalf("SweepSaleEvents after = %d, %v; want 0", claimed, err)
				}
			}

			for _, ch := range []string{live, studio} {
				for _, tc := range []struct {
					typ, sale string
				}{
					{commerce.EventFlashSaleStarted, timed.ID}, {commerce.EventFlashSaleEnded, timed.ID},
					{commerce.EventFlashSaleStarted, early.ID}, {commerce.EventFlashSaleEnded, early.ID},
				} {
					if n := count(ch, tc.typ, tc.sale); n != 1 {
						t.Errorf("%s of %s in %s: published %d times, want 1", tc.typ, tc.sale, ch, n)
					}
				}
			}
		})
	}
}

// openSale starts a stream as host and opens a phone-case sale of quantity
// units in it, at most perUser a buyer.
func openSale(t *testing.T, svc *shop.Service, quantity, perUser int) (commerce.Stream, commerce.FlashSale) {
	t.Helper()
	st, err := svc.CreateStream(t.Context(), host, "Harbolnas")
	if err != nil {
		t.Fatal(err)
	}
	sale, err := svc.CreateFlashSale(t.Context(), host, st.ID, shop.FlashSaleInput{
		Product: commerce.Product{ID: "p1", Name: "Phone case"}, Price: 49000,
		Quantity: quantity, PerUserLimit: perUser, DurationSeconds: 600,
	})
	if err != nil {
		t.Fatal(err)
	}
	return st, sale
}
