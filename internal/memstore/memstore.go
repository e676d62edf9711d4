// Package memstore keeps LiveHub's commerce state in memory for a single
// node: commerce.Store behind one mutex, so every reservation, payment and
// release is one critical section and stock can never go below zero.
//
// Nothing survives a restart and nothing is shared between processes; a
// deployment of several nodes uses redisstore instead. Both pass
// commercetest.RunStoreTests and behave alike: times are kept at millisecond
// precision in UTC, lists newest first break ties by descending id, and an
// idempotency key is remembered for Options.IdempotencyTTL after its first
// use, measured on the requests' own clock (ReserveRequest.Now).
package memstore

import (
	"container/heap"
	"context"
	"sort"
	"sync"
	"time"

	"github.com/livehub/livehub/internal/commerce"
)

var _ commerce.Store = (*Store)(nil)

// defaultIdempotencyTTL is the zero value of Options.IdempotencyTTL.
const defaultIdempotencyTTL = 24 * time.Hour

// Options configure a Store. Every zero value has a default.
type Options struct {
	// IdempotencyTTL is how long an idempotency key is remembered after the
	// request that first used it. Zero means 24h.
	IdempotencyTTL time.Duration
}

// Store is an in-memory commerce.Store. The zero value is not usable; call New.
type Store struct {
	idemTTL time.Duration

	// mu guards everything below.
	mu          sync.Mutex
	streams     map[string]*commerce.Stream
	sales       map[string]*sale
	streamSales map[string][]string // sale ids in creation order
	orders      map[string]*order
	saleOrders  map[string][]string
	buyerOrders map[string][]string
	pending     map[string]struct{} // ids of pending_payment orders
	idem        map[string]*idemRecord
	idemExpiry  idemHeap
}

type sale struct {
	commerce.FlashSale
	// held is each buyer's units in pending or paid orders.
	held map[string]int
	// startClaimed and endClaimed record that flash_sale.started and
	// flash_sale.ended were claimed (ClaimSaleEvent, EndFlashSale).
	startClaimed, endClaimed bool
}

type order struct {
	commerce.Order
	idemKey string
}

// idemRecord binds an idempotency key to the request that first used it
// and to the order id that request was to create.
type idemRecord struct {
	key, hash, saleID, buyerID, orderID string
	expires                             int64 // Unix ms
}

// New returns an empty Store.
func New(opts Options) *Store {
	if opts.IdempotencyTTL <= 0 {
		opts.IdempotencyTTL = defaultIdempotencyTTL
	}
	return &Store{
		idemTTL:     opts.IdempotencyTTL,
		streams:     make(map[string]*commerce.Stream),
		sales:       make(map[string]*sale),
		streamSales: make(map[string][]string),
		orders:      make(map[string]*order),
		saleOrders:  make(map[string][]string),
		buyerOrders: make(map[string][]string),
		pending:     make(map[string]struct{}),
		idem:        make(map[string]*idemRecord),
	}
}

// ms normalises a time the way the Redis store stores it: Unix milliseconds, UTC.
func ms(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }

func msPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := ms(*t)
	return &v
}

// CreateStream stores s; an empty State means live.
func (s *Store) CreateStream(_ context.Context, st commerce.Stream) error {
	if st.ID == "" {
		return commerce.FieldError("id", "is required")
	}
	if st.State == "" {
		st.State = commerce.StreamLive
	}
	st.CreatedAt = ms(st.CreatedAt)
	st.EndedAt = msPtr(st.EndedAt)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.streams[st.ID]; ok {
		return commerce.Errorf(commerce.ECONFLICT, "stream %s already exists", st.ID)
	}
	s.streams[st.ID] = &st
	return nil
}

// GetStream returns a stream.
func (s *Store) GetStream(_ context.Context, id string) (commerce.Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.streams[id]
	if !ok {
		return commerce.Stream{}, commerce.Errorf(commerce.ENOTFOUND, "no such stream")
	}
	return copyStream(st), nil
}

// EndStream marks a live stream ended at at.
func (s *Store) EndStream(_ context.Context, id string, at time.Time) (commerce.Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.streams[id]
	if !ok {
		return commerce.Stream{}, commerce.Errorf(commerce.ENOTFOUND, "no such stream")
	}
	if st.State == commerce.StreamEnded {
		return commerce.Stream{}, commerce.Errorf(commerce.ECONFLICT, "the stream has already ended")
	}
	at = ms(at)
	st.State, st.EndedAt = commerce.StreamEnded, &at
	return copyStream(st), nil
}

func copyStream(st *commerce.Stream) commerce.Stream {
	c := *st
	c.EndedAt = msPtr(st.EndedAt)
	return c
}

// CreateFlashSale stores the sale with StockLeft = Quantity, nothing sold and
// not ended. It does not check the stream: the caller does.
func (s *Store) CreateFlashSale(_ context.Context, fs commerce.FlashSale) error {
	if err := validateSale(&fs); err != nil {
		return err
	}
	fs.StartsAt, fs.EndsAt = ms(fs.StartsAt), ms(fs.EndsAt)
	fs.StockLeft, fs.Sold, fs.StockVersion, fs.EndedAt, fs.State = fs.Quantity, 0, 0, nil, ""
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sales[fs.ID]; ok {
		return commerce.Errorf(commerce.ECONFLICT, "flash sale %s already exists", fs.ID)
	}
	s.sales[fs.ID] = &sale{FlashSale: fs, held: make(map[string]int)}
	s.streamSales[fs.StreamID] = append(s.streamSales[fs.StreamID], fs.ID)
	return nil
}

// GetFlashSale returns a sale with its current StockLeft and Sold; State is
// left empty.
func (s *Store) GetFlashSale(_ context.Context, id string) (commerce.FlashSale, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl, ok := s.sales[id]
	if !ok {
		return commerce.FlashSale{}, commerce.Errorf(commerce.ENOTFOUND, "no such flash sale")
	}
	return sl.copy(), nil
}

// EndFlashSale ends a sale at at. A sale already ended, by its host or
// because at is not before EndsAt, is ECONFLICT.
func (s *Store) EndFlashSale(_ context.Context, id string, at time.Time) (commerce.FlashSale, error) {
	at = ms(at)
	s.mu.Lock()
	defer s.mu.Unlock()
	sl, ok := s.sales[id]
	if !ok {
		return commerce.FlashSale{}, commerce.Errorf(commerce.ENOTFOUND, "no such flash sale")
	}
	if sl.EndedAt != nil || !at.Before(sl.EndsAt) || sl.endClaimed {
		return commerce.FlashSale{}, commerce.Errorf(commerce.ECONFLICT, "the flash sale has already ended")
	}
	sl.EndedAt = &at
	sl.endClaimed = true
	if at.Before(sl.StartsAt) {
		sl.startClaimed = true
	}
	return sl.copy(), nil
}

// ListFlashSales returns a stream's sales in the order they were created.
func (s *Store) ListFlashSales(_ context.Context, streamID string) ([]commerce.FlashSale, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.streamSales[streamID]
	out := make([]commerce.FlashSale, 0, len(ids))
	for _, id := range ids {
		out = append(out, s.sales[id].copy())
	}
	return out, nil
}

func (sl *sale) copy() commerce.FlashSale {
	c := sl.FlashSale
	c.EndedAt = msPtr(sl.EndedAt)
	return c
}

// Reserve makes an order pending payment, or returns the order an earlier
// request with the same idempotency key made. See commerce.Store.
func (s *Store) Reserve(_ context.Context, r commerce.ReserveRequest) (commerce.ReserveResult, error) {
	if err := validateReserve(&r); err != nil {
		return commerce.ReserveResult{}, err
	}
	now, until := ms(r.Now), ms(r.ReservedUntil)
	s.mu.Lock()
	defer s.mu.Unlock()

	orderID := r.OrderID
	if r.IdempotencyKey != "" {
		s.expireIdemLocked(now.UnixMilli())
		if rec, ok := s.idem[r.IdempotencyKey]; ok {
			if rec.hash != r.RequestHash || rec.saleID != r.SaleID || rec.buyerID != r.BuyerID {
				return commerce.ReserveResult{}, errIdempotency()
			}
			orderID = rec.orderID
		} else {
			rec := &idemRecord{
				key: r.IdempotencyKey, hash: r.RequestHash, saleID: r.SaleID, buyerID: r.BuyerID,
				orderID: orderID, expires: now.Add(s.idemTTL).UnixMilli(),
			}
			s.idem[rec.key] = rec
			heap.Push(&s.idemExpiry, rec)
		}
	}

	sl, ok := s.sales[r.SaleID]
	if !ok {
		return commerce.ReserveResult{}, commerce.Errorf(commerce.ENOTFOUND, "no such flash sale")
	}
	if o, ok := s.orders[orderID]; ok {
		if r.IdempotencyKey == "" || o.idemKey != r.IdempotencyKey || o.FlashSaleID != r.SaleID || o.BuyerID != r.BuyerID {
			return commerce.ReserveResult{}, commerce.Errorf(commerce.ECONFLICT, "order id %s is taken", orderID)
		}
		return commerce.ReserveResult{Order: o.copy(), Replayed: true, StockLeft: sl.StockLeft, StockVersion: sl.StockVersion}, nil
	}
	if err := checkReserve(sl, now, r.BuyerID, r.Quantity); err != nil {
		return commerce.ReserveResult{}, err
	}

	sl.StockLeft -= r.Quantity
	sl.StockVersion++
	sl.held[r.BuyerID] += r.Quantity
	o := &order{idemKey: r.IdempotencyKey, Order: commerce.Order{
		ID: orderID, BuyerID: r.BuyerID, BuyerName: r.BuyerName,
		FlashSaleID: sl.ID, StreamID: sl.StreamID, HostID: sl.HostID,
		Quantity: r.Quantity, Amount: sl.Price * int64(r.Quantity),
		Status: commerce.OrderPendingPayment, ReservedUntil: until,
		CreatedAt: now, UpdatedAt: now,
	}}
	s.orders[orderID] = o
	s.saleOrders[sl.ID] = append(s.saleOrders[sl.ID], orderID)
	s.buyerOrders[r.BuyerID] = append(s.buyerOrders[r.BuyerID], orderID)
	s.pending[orderID] = struct{}{}
	return commerce.ReserveResult{Order: o.copy(), StockLeft: sl.StockLeft, StockVersion: sl.StockVersion}, nil
}

// checkReserve applies the sale's rules in the order the Redis script does:
// window, per-user limit, stock.
func checkReserve(sl *sale, now time.Time, buyerID string, qty int) error {
	switch {
	case now.Before(sl.StartsAt):
		return commerce.Errorf(commerce.ENOTSTARTED, "the flash sale has not started")
	case sl.EndedAt != nil || !now.Before(sl.EndsAt):
		return commerce.Errorf(commerce.EENDED, "the flash sale has ended")
	case sl.held[buyerID]+qty > sl.PerUserLimit:
		return errLimit(sl.PerUserLimit)
	case sl.StockLeft < qty:
		return commerce.Errorf(commerce.ESOLDOUT, "not enough stock left")
	}
	return nil
}

func errLimit(limit int) error {
	return commerce.Errorf(commerce.ELIMIT, "at most %d per buyer", limit)
}

func errIdempotency() error {
	return commerce.Errorf(commerce.EIDEMPOTENCY, "the idempotency key was used with another request")
}

// expireIdemLocked forgets idempotency keys whose TTL ended by now (Unix ms).
func (s *Store) expireIdemLocked(now int64) {
	for len(s.idemExpiry) > 0 && s.idemExpiry[0].expires <= now {
		rec := heap.Pop(&s.idemExpiry).(*idemRecord)
		delete(s.idem, rec.key)
	}
}

// GetOrder returns an order.
func (s *Store) GetOrder(_ context.Context, id string) (commerce.Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	if !ok {
		return commerce.Order{}, errNoOrder()
	}
	return o.copy(), nil
}

func errNoOrder() error { return commerce.Errorf(commerce.ENOTFOUND, "no such order") }

// ListOrdersByBuyer returns a buyer's orders, newest first; limit <= 0 means all.
func (s *Store) ListOrdersByBuyer(_ context.Context, buyerID string, limit int) ([]commerce.Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listLocked(s.buyerOrders[buyerID], limit), nil
}

// ListOrdersBySale returns a sale's orders, newest first; limit <= 0 means all.
func (s *Store) ListOrdersBySale(_ context.Context, saleID string, limit int) ([]commerce.Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listLocked(s.saleOrders[saleID], limit), nil
}

func (s *Store) listLocked(ids []string, limit int) []commerce.Order {
	out := make([]commerce.Order, 0, len(ids))
	for _, id := range ids {
		out = append(out, s.orders[id].copy())
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID > out[j].ID
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// SetPayment records the gateway's charge on the pending order ref; a
// final order is ECONFLICT. See commerce.Store.
func (s *Store) SetPayment(_ context.Context, ref commerce.Order, p commerce.Payment) (commerce.Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[ref.ID]
	if !ok || o.FlashSaleID != ref.FlashSaleID {
		return commerce.Order{}, errNoOrder()
	}
	if o.Status.Final() {
		return commerce.Order{}, commerce.Errorf(commerce.ECONFLICT, "the order is %s", o.Status)
	}
	o.Payment = copyPayment(p)
	return o.copy(), nil
}

// MarkPaid moves a pending order to paid. See commerce.Store.
func (s *Store) MarkPaid(_ context.Context, orderID string, p commerce.Payment, at time.Time) (commerce.Transition, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[orderID]
	if !ok {
		return commerce.Transition{}, errNoOrder()
	}
	sl := s.sales[o.FlashSaleID]
	switch o.Status {
	case commerce.OrderPaid:
		return commerce.Transition{Order: o.copy(), StockLeft: sl.StockLeft, StockVersion: sl.StockVersion}, nil
	case commerce.OrderPendingPayment:
	default:
		return commerce.Transition{}, commerce.Errorf(commerce.ECONFLICT, "the order is %s", o.Status)
	}
	at = ms(at)
	o.Status, o.Payment, o.PaidAt, o.UpdatedAt = commerce.OrderPaid, copyPayment(p), &at, at
	sl.Sold += o.Quantity
	delete(s.pending, orderID)
	return commerce.Transition{Order: o.copy(), Changed: true, StockLeft: sl.StockLeft, StockVersion: sl.StockVersion}, nil
}

// Release moves a pending order to to (expired or cancelled) and puts its
// units back. See commerce.Store.
func (s *Store) Release(_ context.Context, orderID string, to commerce.OrderStatus, at time.Time) (commerce.Transition, error) {
	if to != commerce.OrderExpired && to != commerce.OrderCancelled {
		return commerce.Transition{}, commerce.FieldError("status", "must be expired or cancelled")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[orderID]
	if !ok {
		return commerce.Transition{}, errNoOrder()
	}
	sl := s.sales[o.FlashSaleID]
	if o.Status.Final() {
		return commerce.Transition{Order: o.copy(), StockLeft: sl.StockLeft, StockVersion: sl.StockVersion}, nil
	}
	o.Status, o.UpdatedAt = to, ms(at)
	sl.StockLeft += o.Quantity
	sl.StockVersion++
	if sl.held[o.BuyerID] -= o.Quantity; sl.held[o.BuyerID] <= 0 {
		delete(sl.held, o.BuyerID)
	}
	delete(s.pending, orderID)
	return commerce.Transition{Order: o.copy(), Changed: true, StockLeft: sl.StockLeft, StockVersion: sl.StockVersion}, nil
}

// DueReservations lists pending orders whose ReservedUntil is before now,
// earliest deadline first (ties by id); limit <= 0 means all.
func (s *Store) DueReservations(_ context.Context, now time.Time, limit int) ([]string, error) {
	now = ms(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []*order
	for id := range s.pending {
		if o := s.orders[id]; o.ReservedUntil.Before(now) {
			due = append(due, o)
		}
	}
	sort.Slice(due, func(i, j int) bool {
		if !due[i].ReservedUntil.Equal(due[j].ReservedUntil) {
			return due[i].ReservedUntil.Before(due[j].ReservedUntil)
		}
		return due[i].ID < due[j].ID
	})
	if limit > 0 && len(due) > limit {
		due = due[:limit]
	}
	ids := make([]string, len(due))
	for i, o := range due {
		ids[i] = o.ID
	}
	return ids, nil
}

// DueSaleEvents lists the unclaimed lifecycle events due by now. See
// commerce.Store.
func (s *Store) DueSaleEvents(_ context.Context, now time.Time, limit int) ([]commerce.SaleEvent, error) {
	now = ms(now)
	type due struct {
		ev commerce.SaleEvent
		at time.Time
	}
	var all []due
	s.mu.Lock()
	for id, sl := range s.sales {
		if !sl.startClaimed && !now.Before(sl.StartsAt) {
			all = append(all, due{commerce.SaleEvent{SaleID: id, Event: commerce.EventFlashSaleStarted}, sl.StartsAt})
		}
		if !sl.endClaimed && !now.Before(sl.EndsAt) {
			all = append(all, due{commerce.SaleEvent{SaleID: id, Event: commerce.EventFlashSaleEnded}, sl.EndsAt})
		}
	}
	s.mu.Unlock()
	sort.Slice(all, func(i, j int) bool {
		if !all[i].at.Equal(all[j].at) {
			return all[i].at.Before(all[j].at)
		}
		if all[i].ev.SaleID != all[j].ev.SaleID {
			return all[i].ev.SaleID < all[j].ev.SaleID
		}
		return all[i].ev.Event == commerce.EventFlashSaleStarted && all[j].ev.Event != commerce.EventFlashSaleStarted
	})
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	out := make([]commerce.SaleEvent, len(all))
	for i, d := range all {
		out[i] = d.ev
	}
	return out, nil
}

// ClaimSaleEvent claims a due lifecycle event of a sale, once. See
// commerce.Store.
func (s *Store) ClaimSaleEvent(_ context.Context, saleID, event string, now time.Time) (bool, error) {
	if event != commerce.EventFlashSaleStarted && event != commerce.EventFlashSaleEnded {
		return false, commerce.FieldError("event", "must be %s or %s", commerce.EventFlashSaleStarted, commerce.EventFlashSaleEnded)
	}
	now = ms(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	sl, ok := s.sales[saleID]
	if !ok {
		return false, commerce.Errorf(commerce.ENOTFOUND, "no such flash sale")
	}
	if event == commerce.EventFlashSaleStarted {
		if sl.startClaimed || now.Before(sl.StartsAt) {
			return false, nil
		}
		sl.startClaimed = true
		return true, nil
	}
	if sl.endClaimed || now.Before(sl.EndsAt) {
		return false, nil
	}
	sl.endClaimed = true
	return true, nil
}

func (o *order) copy() commerce.Order {
	c := o.Order
	c.PaidAt = msPtr(o.PaidAt)
	c.Payment = copyPayment(o.Payment)
	return c
}

func copyPayment(p commerce.Payment) commerce.Payment {
	if p.ExpiresAt != nil {
		t := *p.ExpiresAt
		p.ExpiresAt = &t
	}
	return p
}

// idemHeap orders idempotency records by expiry, soonest first.
type idemHeap []*idemRecord

func (h idemHeap) Len() int           { return len(h) }
func (h idemHeap) Less(i, j int) bool { return h[i].expires < h[j].expires }
func (h idemHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *idemHeap) Push(x any)        { *h = append(*h, x.(*idemRecord)) }
func (h *idemHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return x
}
