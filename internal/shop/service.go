// Package shop runs LiveHub's commerce: it turns host and buyer requests
// into store decisions, charges through the payment gateway, and tells the
// room, the buyer and the studio what happened as realtime events.
package shop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/livehub/livehub/internal/commerce"
)

// Actor is who calls: the user of a verified token.
type Actor struct {
	UserID string
	Name   string
	Roles  []string
}

// HasRole reports whether the actor holds role r.
func (a Actor) HasRole(r string) bool {
	for _, have := range a.Roles {
		if have == r {
			return true
		}
	}
	return false
}

// Publisher delivers an event's JSON into a hub channel.
type Publisher interface {
	Publish(ctx context.Context, channel string, data []byte, idempotencyKey string) error
}

// ManyPublisher is a Publisher that publishes one event into several
// channels in one call, at normal or low priority (the Redis engine makes
// that one round trip). The service uses it for events that go to more
// than one channel when its Publisher has the method. It returns an error
// per channel.
type ManyPublisher interface {
	PublishMany(ctx context.Context, channels []string, data []byte, idempotencyKey string, low bool) []error
}

// LowPriorityPublisher is a Publisher that can also publish at low
// priority: a connection whose write queue is congested drops such a
// publication before any other. The service publishes the room's purchase
// ticker (order.placed) this way when its Publisher has the method, and at
// normal priority otherwise.
type LowPriorityPublisher interface {
	PublishLowPriority(ctx context.Context, channel string, data []byte, idempotencyKey string) error
}

// Charger creates the gateway charge of an order.
type Charger interface {
	Name() string
	CreateCharge(ctx context.Context, o commerce.Order) (commerce.Payment, error)
}

// EventLog keeps order events for the merchant's own systems.
type EventLog interface {
	Append(ctx context.Context, orderID string, e commerce.Event) error
}

// RoomSummarizer reports a room's audience figures when its stream ends.
type RoomSummarizer interface {
	Audience(ctx context.Context, streamID string) (peakViewers int, likes int64, err error)
}

// Config configures a Service. Zero values take the defaults given per field.
type Config struct {
	// Rooms adds audience figures to the end-of-stream summary; nil leaves them out.
	Rooms     RoomSummarizer
	Store     commerce.Store
	Publisher Publisher
	Charger   Charger
	// Log receives order events; nil keeps none.
	Log EventLog
	// ReservationTTL is how long a reservation waits for payment. It must
	// not be shorter than the gateway's payment expiry, so no buyer pays
	// for units already back on sale. Zero means 15 minutes.
	ReservationTTL time.Duration
	// StockInterval is the least time between two flash_sale.stock events
	// of one sale; changes in between are coalesced (latest wins), and the
	// change to zero is always sent at once. Zero means 250ms.
	StockInterval time.Duration
	// TickerInterval is the least time between two order.placed events of
	// one sale from this node: the first purchase after a quiet interval is
	// sent at once, the purchases after it are folded into one event (their
	// orders and units added up, the newest buyer shown) sent when the
	// interval ends, or up to a quarter of it later. Zero means 1s.
	TickerInterval time.Duration
	// SweepInterval is how often expired reservations are looked for. Zero means 1s.
	SweepInterval time.Duration
	// MaxQuantity bounds units per checkout. Zero means 10.
	MaxQuantity int
	Now         func() time.Time
	Logger      *slog.Logger
}

// Service is the commerce service. Run drives its background work.
type Service struct {
	cfg   Config
	store commerce.Store
	log   *slog.Logger

	// lowPub is the Publisher when it publishes at low priority, else nil.
	lowPub LowPriorityPublisher
	// manyPub is the Publisher when it publishes into several channels at
	// once, else nil.
	manyPub ManyPublisher

	stockMu      sync.Mutex
	stockPending map[string]pendingStock // by sale id, waiting for a flush
	stockLast    map[string]time.Time
	stockKick    chan struct{}

	tickerMu      sync.Mutex
	tickerPending map[string]*pendingTicker // by sale id, folded purchases
	// tickerLast is when each sale's last order.placed went out; a sale
	// quiet for a whole interval is dropped, and its next purchase goes out
	// at once.
	tickerLast map[string]time.Time

	timersMu sync.Mutex
	timers   map[*time.Timer]struct{}
	closed   bool
	wg       sync.WaitGroup
}

// pendingStock is the newest stock figure of a sale this node decided and
// has not published yet.
type pendingStock struct {
	streamID string
	left     int
	version  int64
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Publisher == nil || cfg.Charger == nil {
		return nil, errors.New("shop: Store, Publisher and Charger are required")
	}
	if cfg.ReservationTTL <= 0 {
		cfg.ReservationTTL = 15 * time.Minute
	}
	if cfg.StockInterval <= 0 {
		cfg.StockInterval = 250 * time.Millisecond
	}
	if cfg.TickerInterval <= 0 {
		cfg.TickerInterval = time.Second
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = time.Second
	}
	if cfg.MaxQuantity <= 0 {
		cfg.MaxQuantity = 10
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	lowPub, _ := cfg.Publisher.(LowPriorityPublisher)
	manyPub, _ := cfg.Publisher.(ManyPublisher)
	return &Service{
		cfg: cfg, store: cfg.Store, log: cfg.Logger, lowPub: lowPub, manyPub: manyPub,
		stockPending:  make(map[string]pendingStock),
		stockLast:     make(map[string]time.Time),
		stockKick:     make(chan struct{}, 1),
		tickerPending: make(map[string]*pendingTicker),
		tickerLast:    make(map[string]time.Time),
		timers:        make(map[*time.Timer]struct{}),
	}, nil
}

// Channels of the hub the service publishes into.
func liveChannel(streamID string) string   { return "live:" + streamID }
func studioChannel(streamID string) string { return "studio:" + streamID }
func userChannel(userID string) string     { return "user:#" + userID }

// eventTimeout bounds the events of a decision, which go out even when the
// caller has gone: the store has decided.
const eventTimeout = 10 * time.Second

// emit publishes an event into channels at normal priority. Realtime
// events are best effort once the store decided: a failure is logged,
// never undoes the decision.
func (s *Service) emit(ctx context.Context, typ string, data any, idem string, channels ...string) {
	s.emitPriority(ctx, typ, data, idem, false, channels...)
}

// emitPriority publishes an event into channels, at low priority when low
// is set and the Publisher can. A ManyPublisher gets every channel in one
// call; otherwise the channels are published to at the same time: a
// publish is a round trip to the engine, and they do not depend on each
// other. It returns when every publish has. The idempotency key is the
// same in every channel: the engines keep keys per channel.
func (s *Service) emitPriority(ctx context.Context, typ string, data any, idem string, low bool, channels ...string) {
	ev, err := commerce.NewEvent(typ, s.cfg.Now(), data)
	if err != nil {
		s.log.Error("encode event", "type", typ, "err", err)
		return
	}
	s.emitEvent(ctx, ev, idem, low, channels...)
}

// emitEvent publishes a made event, as emitPriority does.
func (s *Service) emitEvent(ctx context.Context, ev commerce.Event, idem string, low bool, channels ...string) {
	b, _ := json.Marshal(ev)
	failed := func(ch string, err error) {
		if err != nil {
			s.log.Warn("publish event", "type", ev.Type, "channel", ch, "err", err)
		}
	}
	if s.manyPub != nil && len(channels) > 1 {
		for i, err := range s.manyPub.PublishMany(ctx, channels, b, idem, low) {
			failed(channels[i], err)
		}
		return
	}
	publish := func(ch string) {
		if low && s.lowPub != nil {
			failed(ch, s.lowPub.PublishLowPriority(ctx, ch, b, idem))
		} else {
			failed(ch, s.cfg.Publisher.Publish(ctx, ch, b, idem))
		}
	}
	var wg sync.WaitGroup
	for _, ch := range channels[min(1, len(channels)):] {
		wg.Go(func() { publish(ch) })
	}
	if len(channels) > 0 {
		publish(channels[0])
	}
	wg.Wait()
}

// orderEvent makes one event about order o and, at the same time, publishes
// it to the buyer and the studio and appends it to the order event log: the
// socket, the push and the webhook carry the same event, with one id.
func (s *Service) orderEvent(ctx context.Context, typ string, o commerce.Order) {
	ev, err := commerce.NewEvent(typ, s.cfg.Now(), o)
	if err != nil {
		s.log.Error("encode event", "type", typ, "err", err)
		return
	}
	var wg sync.WaitGroup
	if s.cfg.Log != nil {
		wg.Go(func() {
			if err := s.cfg.Log.Append(ctx, o.ID, ev); err != nil {
				s.log.Error("order event log append failed", "order", o.ID, "type", typ, "err", err)
			}
		})
	}
	s.emitEvent(ctx, ev, typ+":"+o.ID, false, userChannel(o.BuyerID), studioChannel(o.StreamID))
	wg.Wait()
}

// CreateStream starts a live stream hosted by the actor.
func (s *Service) CreateStream(ctx context.Context, a Actor, title string) (commerce.Stream, error) {
	if !a.HasRole("host") && !a.HasRole("admin") {
		return commerce.Stream{}, commerce.Errorf(commerce.EFORBIDDEN, "only hosts start streams")
	}
	title = strings.TrimSpace(title)
	if title == "" || utf8.RuneCountInString(title) > 200 {
		return commerce.Stream{}, commerce.FieldError("title", "must be 1 to 200 characters")
	}
	st := commerce.Stream{ID: commerce.NewID("str"), HostID: a.UserID, Title: title, State: commerce.StreamLive, CreatedAt: s.cfg.Now().UTC()}
	if err := s.store.CreateStream(ctx, st); err != nil {
		return commerce.Stream{}, err
	}
	s.emit(ctx, commerce.EventStreamStarted, st, "stream.started:"+st.ID, liveChannel(st.ID), studioChannel(st.ID))
	return st, nil
}

// GetStream returns a stream.
func (s *Service) GetStream(ctx context.Context, id string) (commerce.Stream, error) {
	return s.store.GetStream(ctx, id)
}

func (s *Service) ownStream(ctx context.Context, a Actor, id string) (commerce.Stream, error) {
	st, err := s.store.GetStream(ctx, id)
	if err != nil {
		return st, err
	}
	if st.HostID != a.UserID && !a.HasRole("admin") {
		return st, commerce.Errorf(commerce.EFORBIDDEN, "only the stream's host may do this")
	}
	return st, nil
}

// EndStream ends the actor's stream.
func (s *Service) EndStream(ctx context.Context, a Actor, id string) (commerce.Stream, error) {
	if _, err := s.ownStream(ctx, a, id); err != nil {
		return commerce.Stream{}, err
	}
	st, err := s.store.EndStream(ctx, id, s.cfg.Now().UTC())
	if err != nil {
		return st, err
	}
	s.emit(ctx, commerce.EventStreamEnded, st, "stream.ended:"+st.ID, liveChannel(st.ID), studioChannel(st.ID))
	if sum, err := s.summary(ctx, st.ID); err != nil {
		s.log.Warn("stream summary", "stream", st.ID, "err", err)
	} else {
		s.emit(ctx, commerce.EventStreamSummary, sum, "stream.summary:"+st.ID, studioChannel(st.ID))
	}
	return st, nil
}

// StreamSummary is the host's end-of-show report.
type StreamSummary struct {
	StreamID    string `json:"stream_id"`
	PeakViewers int    `json:"peak_viewers"`
	Likes       int64  `json:"likes"`
	Orders      int    `json:"orders"`
	Units       int    `json:"units"`
	Revenue     int64  `json:"revenue"`
}

// summary adds up the stream's paid orders and, when a room summarizer is
// set, its audience.
func (s *Service) summary(ctx context.Context, streamID string) (StreamSummary, error) {
	sum := StreamSummary{StreamID: streamID}
	sales, err := s.store.ListFlashSales(ctx, streamID)
	if err != nil {
		return sum, err
	}
	for _, sale := range sales {
		orders, err := s.store.ListOrdersBySale(ctx, sale.ID, 0)
		if err != nil {
			return sum, err
		}
		for _, o := range orders {
			if o.Status == commerce.OrderPaid {
				sum.Orders++
				sum.Units += o.Quantity
				sum.Revenue += o.Amount
			}
		}
	}
	if s.cfg.Rooms != nil {
		if sum.PeakViewers, sum.Likes, err = s.cfg.Rooms.Audience(ctx, streamID); err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// FlashSaleInput is what a host sends to launch a sale.
type FlashSaleInput struct {
	Product          commerce.Product `json:"product"`
	Price            int64            `json:"price"`
	Quantity         int              `json:"quantity"`
	PerUserLimit     int              `json:"per_user_limit"`
	CountdownSeconds int              `json:"countdown_seconds"`
	DurationSeconds  int              `json:"duration_seconds"`
}

func (in *FlashSaleInput) validate() error {
	switch {
	case strings.TrimSpace(in.Product.ID) == "":
		return commerce.FieldError("product.id", "is required")
	case strings.TrimSpace(in.Product.Name) == "" || utf8.RuneCountInString(in.Product.Name) > 200:
		return commerce.FieldError("product.name", "must be 1 to 200 characters")
	case in.Price <= 0 || in.Price > 1_000_000_000:
		return commerce.FieldError("price", "must be a whole number of rupiah between 1 and 1,000,000,000")
	case in.Quantity <= 0 || in.Quantity > 1_000_000:
		return commerce.FieldError("quantity", "must be between 1 and 1,000,000")
	case in.PerUserLimit <= 0 || in.PerUserLimit > in.Quantity:
		return commerce.FieldError("per_user_limit", "must be between 1 and quantity")
	case in.CountdownSeconds < 0 || in.CountdownSeconds > 86400:
		return commerce.FieldError("countdown_seconds", "must be between 0 and 86400")
	case in.DurationSeconds <= 0 || in.DurationSeconds > 7*86400:
		return commerce.FieldError("duration_seconds", "must be between 1 and 604800")
	}
	return nil
}

// CreateFlashSale launches a sale on the actor's live stream: the room gets
// flash_sale.scheduled now, flash_sale.started at the end of the countdown
// and flash_sale.ended when it is over.
func (s *Service) CreateFlashSale(ctx context.Context, a Actor, streamID string, in FlashSaleInput) (commerce.FlashSale, error) {
	st, err := s.ownStream(ctx, a, streamID)
	if err != nil {
		return commerce.FlashSale{}, err
	}
	if st.State != commerce.StreamLive {
		return commerce.FlashSale{}, commerce.Errorf(commerce.ECONFLICT, "the stream has ended")
	}
	if err := in.validate(); err != nil {
		return commerce.FlashSale{}, err
	}
	now := s.cfg.Now().UTC()
	sale := commerce.FlashSale{
		ID: commerce.NewID("fs"), StreamID: st.ID, HostID: st.HostID,
		Product: in.Product, Price: in.Price, Quantity: in.Quantity, PerUserLimit: in.PerUserLimit,
		StartsAt:  now.Add(time.Duration(in.CountdownSeconds) * time.Second).Truncate(time.Millisecond),
		StockLeft: in.Quantity,
	}
	sale.EndsAt = sale.StartsAt.Add(time.Duration(in.DurationSeconds) * time.Second)
	if err := s.store.CreateFlashSale(ctx, sale); err != nil {
		return commerce.FlashSale{}, err
	}
	sale.State = sale.StateAt(now)
	s.emit(ctx, commerce.EventFlashSaleScheduled, sale, "fs.scheduled:"+sale.ID, liveChannel(st.ID), studioChannel(st.ID))
	// The timers are the fast path of this node; every node's sweep
	// announces what a timer missed (this node stopped, say). Both claim
	// the event in the store first, so it is announced once.
	s.at(sale.StartsAt, func() { s.announceNow(sale.ID, commerce.EventFlashSaleStarted) })
	s.at(sale.EndsAt, func() { s.announceNow(sale.ID, commerce.EventFlashSaleEnded) })
	return sale, nil
}

// at runs f at t on a timer the service owns; Close stops the timers.
func (s *Service) at(t time.Time, f func()) {
	s.timersMu.Lock()
	defer s.timersMu.Unlock()
	if s.closed {
		return
	}
	var tm *time.Timer
	s.wg.Add(1)
	tm = time.AfterFunc(time.Until(t), func() {
		defer s.wg.Done()
		s.timersMu.Lock()
		_, live := s.timers[tm]
		delete(s.timers, tm)
		s.timersMu.Unlock()
		if live {
			f()
		}
	})
	s.timers[tm] = struct{}{}
}

func (s *Service) announceNow(saleID, typ string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.announce(ctx, saleID, typ); err != nil {
		s.log.Warn("announce sale", "sale", saleID, "event", typ, "err", err)
	}
}

// announce publishes a lifecycle event of a sale with its current figures,
// when this call claims it in the store: of all the nodes' timers and
// sweeps, one publishes. The idempotency key guards the hub as well. It
// reports whether this call claimed the event.
func (s *Service) announce(ctx context.Context, saleID, typ string) (bool, error) {
	claimed, err := s.store.ClaimSaleEvent(ctx, saleID, typ, s.cfg.Now().UTC())
	if err != nil || !claimed {
		return false, err
	}
	sale, err := s.GetFlashSale(ctx, saleID)
	if err != nil {
		return true, err
	}
	if typ == commerce.EventFlashSaleStarted && sale.State == commerce.SaleEnded {
		return true, nil // it ended before it was announced: only the end is
	}
	if typ == commerce.EventFlashSaleEnded && sale.EndedAt != nil && sale.EndedAt.Before(sale.EndsAt) {
		return true, nil // ended early by its host, who announced it then
	}
	s.emit(ctx, typ, sale, typ+":"+sale.ID, liveChannel(sale.StreamID), studioChannel(sale.StreamID))
	return true, nil
}

// SweepSaleEvents announces the sales' starts and ends that are due and
// that no node announced yet. Any node may sweep: each event is claimed in
// the store by one node. It returns how many events this call claimed.
func (s *Service) SweepSaleEvents(ctx context.Context) (int, error) {
	due, err := s.store.DueSaleEvents(ctx, s.cfg.Now().UTC(), 500)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, ev := range due {
		claimed, err := s.announce(ctx, ev.SaleID, ev.Event)
		if err != nil {
			s.log.Warn("announce sale", "sale", ev.SaleID, "event", ev.Event, "err", err)
		}
		if claimed {
			n++
		}
	}
	return n, nil
}

// GetFlashSale returns a sale with its state now.
func (s *Service) GetFlashSale(ctx context.Context, id string) (commerce.FlashSale, error) {
	sale, err := s.store.GetFlashSale(ctx, id)
	if err != nil {
		return sale, err
	}
	sale.State = sale.StateAt(s.cfg.Now())
	return sale, nil
}

// EndFlashSale ends a sale early (its host or an admin).
func (s *Service) EndFlashSale(ctx context.Context, a Actor, id string) (commerce.FlashSale, error) {
	sale, err := s.store.GetFlashSale(ctx, id)
	if err != nil {
		return sale, err
	}
	if sale.HostID != a.UserID && !a.HasRole("admin") {
		return sale, commerce.Errorf(commerce.EFORBIDDEN, "only the sale's host may end it")
	}
	sale, err = s.store.EndFlashSale(ctx, id, s.cfg.Now().UTC())
	if err != nil {
		return sale, err
	}
	sale.State = sale.StateAt(s.cfg.Now())
	s.emit(ctx, commerce.EventFlashSaleEnded, sale, commerce.EventFlashSaleEnded+":"+sale.ID, liveChannel(sale.StreamID), studioChannel(sale.StreamID))
	return sale, nil
}

// CheckoutInput is a buyer's checkout body.
type CheckoutInput struct {
	FlashSaleID string `json:"flash_sale_id"`
	Quantity    int    `json:"quantity"`
}

// Checkout reserves units for the buyer and creates the payment charge. The
// same idempotency key with the same body returns the same order (created
// false); with another body it is EIDEMPOTENCY.
func (s *Service) Checkout(ctx context.Context, a Actor, in CheckoutInput, idemKey string) (commerce.Order, bool, error) {
	if a.UserID == "" {
		return commerce.Order{}, false, commerce.Errorf(commerce.EUNAUTHORIZED, "sign in to buy")
	}
	if strings.TrimSpace(in.FlashSaleID) == "" {
		return commerce.Order{}, false, commerce.FieldError("flash_sale_id", "is required")
	}
	if in.Quantity <= 0 || in.Quantity > s.cfg.MaxQuantity {
		return commerce.Order{}, false, commerce.FieldError("quantity", "must be between 1 and %d", s.cfg.MaxQuantity)
	}
	if idemKey == "" || len(idemKey) > 200 {
		return commerce.Order{}, false, commerce.FieldError("Idempotency-Key", "header is required (1 to 200 characters)")
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d", in.FlashSaleID, in.Quantity)))
	now := s.cfg.Now().UTC()
	res, err := s.store.Reserve(ctx, commerce.ReserveRequest{
		SaleID: in.FlashSaleID, BuyerID: a.UserID, BuyerName: a.Name, Quantity: in.Quantity,
		IdempotencyKey: a.UserID + ":" + idemKey, RequestHash: hex.EncodeToString(sum[:]),
		OrderID: commerce.NewID("ord"), Now: now, ReservedUntil: now.Add(s.cfg.ReservationTTL),
	})
	if err != nil {
		return commerce.Order{}, false, err
	}
	o := res.Order
	if res.Replayed {
		if o.Payment.Gateway == "" && o.Status == commerce.OrderPendingPayment {
			// The first attempt reserved but did not get its charge made.
			o, err = s.charge(ctx, o)
		}
		return o, false, err
	}
	o, err = s.charge(ctx, o)
	if err != nil {
		// The reservation stays: a retry with the same Idempotency-Key
		// charges it again, and one never retried expires with its deadline.
		return commerce.Order{}, false, err
	}
	s.stockChanged(o.FlashSaleID, o.StreamID, res.StockLeft, res.StockVersion)
	// The order is made: its events go out even if the buyer hangs up now.
	// They do not depend on each other, so they go out together, and the
	// checkout waits for one round trip to the engine instead of one each.
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), eventTimeout)
	defer cancel()
	var wg sync.WaitGroup
	if t, now := s.placed(o); now {
		wg.Go(func() { s.emitTicker(ectx, t) })
	}
	s.orderEvent(ectx, commerce.EventOrderCreated, o)
	wg.Wait()
	return o, true, nil
}

func (s *Service) charge(ctx context.Context, o commerce.Order) (commerce.Order, error) {
	p, err := s.cfg.Charger.CreateCharge(ctx, o)
	if err != nil {
		var ce *commerce.Error
		if !errors.As(err, &ce) {
			err = &commerce.Error{Code: commerce.EUNAVAILABLE, Message: "the payment gateway is not answering; try again", Err: err}
		}
		return o, err
	}
	return s.store.SetPayment(ctx, o, p)
}

// MaskName shows a buyer to the room without naming them: "Budi Santoso"
// becomes "B*** S***".
func MaskName(name string) string {
	fields := strings.Fields(name)
	if len(fields) == 0 {
		return "***"
	}
	for i, f := range fields {
		r, _ := utf8.DecodeRuneInString(f)
		fields[i] = string(r) + "***"
	}
	return strings.Join(fields, " ")
}

// GetOrder returns an order to its buyer, the stream's host, or an admin.
func (s *Service) GetOrder(ctx context.Context, a Actor, id string) (commerce.Order, error) {
	o, err := s.store.GetOrder(ctx, id)
	if err != nil {
		return o, err
	}
	if o.BuyerID != a.UserID && o.HostID != a.UserID && !a.HasRole("admin") {
		// Not found rather than forbidden: order ids are not to be probed.
		return commerce.Order{}, commerce.Errorf(commerce.ENOTFOUND, "no such order")
	}
	return o, nil
}

// ListMyOrders returns the actor's orders, newest first.
func (s *Service) ListMyOrders(ctx context.Context, a Actor, limit int) ([]commerce.Order, error) {
	if limit <= 0 || limit > 100 {
		limit = 50
	}
	return s.store.ListOrdersByBuyer(ctx, a.UserID, limit)
}

// MarkPaid applies a settled payment: the order turns paid once, and the
// buyer and the studio hear of it.
func (s *Service) MarkPaid(ctx context.Context, orderID string, p commerce.Payment) (commerce.Order, error) {
	tr, err := s.store.MarkPaid(ctx, orderID, p, s.cfg.Now().UTC())
	if err != nil {
		return tr.Order, err
	}
	if tr.Changed {
		s.orderEvent(ctx, commerce.EventOrderPaid, tr.Order)
	}
	return tr.Order, nil
}

// Release ends a pending order as expired or cancelled and puts its units
// back on sale, once.
func (s *Service) Release(ctx context.Context, orderID string, to commerce.OrderStatus) (commerce.Order, error) {
	tr, err := s.release(ctx, orderID, to)
	return tr.Order, err
}

func (s *Service) release(ctx context.Context, orderID string, to commerce.OrderStatus) (commerce.Transition, error) {
	tr, err := s.store.Release(ctx, orderID, to, s.cfg.Now().UTC())
	if err != nil || !tr.Changed {
		return tr, err
	}
	o := tr.Order
	typ := commerce.EventOrderExpired
	if to == commerce.OrderCancelled {
		typ = commerce.EventOrderCancelled
	}
	s.stockChanged(o.FlashSaleID, o.StreamID, tr.StockLeft, tr.StockVersion)
	if o.Payment.Gateway != "" {
		// A charge existed: the buyer and studio saw the order.
		s.orderEvent(ctx, typ, o)
	}
	return tr, nil
}

// SweepExpired releases reservations past their deadline. Any node may
// sweep: the store releases each order once.
func (s *Service) SweepExpired(ctx context.Context) (int, error) {
	ids, err := s.store.DueReservations(ctx, s.cfg.Now(), 500)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		tr, err := s.release(ctx, id, commerce.OrderExpired)
		if err != nil {
			s.log.Warn("expire reservation", "order", id, "err", err)
			continue
		}
		if tr.Changed {
			n++
		}
	}
	return n, nil
}

// Run sweeps expired reservations and due sale starts and ends, and flushes
// coalesced stock events and folded purchase tickers until ctx is done;
// then it flushes what is pending and stops the sale timers.
func (s *Service) Run(ctx context.Context) {
	sweep := time.NewTicker(s.cfg.SweepInterval)
	defer sweep.Stop()
	flush := time.NewTicker(s.cfg.StockInterval / 2)
	defer flush.Stop()
	ticker := time.NewTicker(max(s.cfg.TickerInterval/4, time.Millisecond))
	defer ticker.Stop()
	defer s.stopTimers()
	for {
		select {
		case <-ctx.Done():
			s.flushStock(context.Background(), true)
			s.flushTicker(context.Background(), true)
			return
		case <-ticker.C:
			s.flushTicker(ctx, false)
		case <-sweep.C:
			if _, err := s.SweepExpired(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("sweep expired reservations", "err", err)
			}
			if _, err := s.SweepSaleEvents(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("sweep sale events", "err", err)
			}
		case <-flush.C:
			s.flushStock(ctx, false)
		case <-s.stockKick:
			s.flushStock(ctx, false)
		}
	}
}

func (s *Service) stopTimers() {
	s.timersMu.Lock()
	s.closed = true
	for tm := range s.timers {
		if tm.Stop() {
			s.wg.Done()
		}
		delete(s.timers, tm)
	}
	s.timersMu.Unlock()
	s.wg.Wait()
}

// stockChanged marks a sale's stock for the next flush, keeping the figure
// with the highest version of those not flushed yet; a sale that ran out is
// flushed at once, so the final zero is never coalesced away.
func (s *Service) stockChanged(saleID, streamID string, left int, version int64) {
	s.stockMu.Lock()
	if p, ok := s.stockPending[saleID]; !ok || version > p.version {
		s.stockPending[saleID] = pendingStock{streamID: streamID, left: left, version: version}
	}
	if left <= 0 {
		s.stockLast[saleID] = time.Time{}
	}
	s.stockMu.Unlock()
	if left <= 0 {
		select {
		case s.stockKick <- struct{}{}:
		default:
		}
	}
}

// flushStock publishes the stock of every sale whose stock changed and
// whose last event is older than the interval (or all, when final). The
// sale is read from the store at flush time and the figure with the higher
// stock version wins, the store's or the newest this node decided; the
// event carries that version, so a subscriber receiving the events of
// several nodes out of order keeps the newest.
func (s *Service) flushStock(ctx context.Context, final bool) {
	now := time.Now()
	due := make(map[string]pendingStock)
	s.stockMu.Lock()
	for sale, p := range s.stockPending {
		if final || now.Sub(s.stockLast[sale]) >= s.cfg.StockInterval {
			due[sale] = p
			delete(s.stockPending, sale)
			s.stockLast[sale] = now
		}
	}
	s.stockMu.Unlock()
	for saleID, p := range due {
		sale, err := s.GetFlashSale(ctx, saleID)
		if err != nil {
			s.log.Warn("read stock", "sale", saleID, "err", err)
			continue
		}
		if p.version > sale.StockVersion {
			sale.StockLeft, sale.StockVersion = p.left, p.version
			sale.State = sale.StateAt(s.cfg.Now())
		}
		data := map[string]any{
			"flash_sale_id": sale.ID, "stock_left": sale.StockLeft, "stock_version": sale.StockVersion,
			"quantity": sale.Quantity, "sold": sale.Sold,
		}
		s.emit(ctx, commerce.EventFlashSaleStock, data, "", liveChannel(p.streamID), studioChannel(p.streamID))
		if sale.StockLeft == 0 && sale.State == commerce.SaleSoldOut {
			s.emit(ctx, commerce.EventFlashSaleSoldOut, data, "", liveChannel(p.streamID))
		}
	}
}
