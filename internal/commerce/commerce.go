package commerce

import (
	"context"
	"time"
)

// StreamState is where a live stream is in its life.
type StreamState string

// Stream states.
const (
	StreamLive  StreamState = "live"
	StreamEnded StreamState = "ended"
)

// Stream is a host's live show; its room is the channel live:{ID}.
type Stream struct {
	ID        string      `json:"id"`
	HostID    string      `json:"host_id"`
	Title     string      `json:"title"`
	State     StreamState `json:"state"`
	CreatedAt time.Time   `json:"created_at"`
	EndedAt   *time.Time  `json:"ended_at,omitempty"`
}

// Product is what a flash sale sells.
type Product struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	ImageURL string `json:"image_url,omitempty"`
}

// SaleState is where a flash sale is.
type SaleState string

// Sale states.
const (
	SaleScheduled SaleState = "scheduled" // counting down to StartsAt
	SaleLive      SaleState = "live"
	SaleSoldOut   SaleState = "sold_out" // live, but every unit is reserved or sold
	SaleEnded     SaleState = "ended"
)

// FlashSale sells Quantity units of a product at Price (integer rupiah)
// between StartsAt and EndsAt, at most PerUserLimit per buyer.
type FlashSale struct {
	ID           string    `json:"id"`
	StreamID     string    `json:"stream_id"`
	HostID       string    `json:"host_id"`
	Product      Product   `json:"product"`
	Price        int64     `json:"price"`
	Quantity     int       `json:"quantity"`
	PerUserLimit int       `json:"per_user_limit"`
	StartsAt     time.Time `json:"starts_at"`
	EndsAt       time.Time `json:"ends_at"`
	// StockLeft is the units neither reserved nor sold.
	StockLeft int `json:"stock_left"`
	// Sold is the units of paid orders.
	Sold int `json:"sold"`
	// StockVersion counts the decisions that changed StockLeft (a
	// reservation, a release). The store increments it in the same atomic
	// step as the change, so of two figures of one sale the one with the
	// higher version is the newer; 0 before any change.
	StockVersion int64 `json:"stock_version"`
	// EndedAt is set when the host ended the sale before EndsAt.
	EndedAt *time.Time `json:"ended_at,omitempty"`
	State   SaleState  `json:"state"`
}

// StateAt returns the sale's state at now.
func (s *FlashSale) StateAt(now time.Time) SaleState {
	switch {
	case s.EndedAt != nil || !now.Before(s.EndsAt):
		return SaleEnded
	case now.Before(s.StartsAt):
		return SaleScheduled
	case s.StockLeft <= 0:
		return SaleSoldOut
	}
	return SaleLive
}

// OrderStatus is where an order is. Transitions only go forward:
// pending_payment -> paid, or pending_payment -> expired | cancelled.
type OrderStatus string

// Order statuses.
const (
	OrderPendingPayment OrderStatus = "pending_payment"
	OrderPaid           OrderStatus = "paid"
	OrderExpired        OrderStatus = "expired"
	OrderCancelled      OrderStatus = "cancelled"
)

// Final reports whether no further payment transition can happen.
func (s OrderStatus) Final() bool { return s != OrderPendingPayment }

// Payment is what the gateway said about an order's charge.
type Payment struct {
	Gateway string `json:"gateway"`
	// Reference is the gateway's id for the charge.
	Reference string `json:"reference,omitempty"`
	// RedirectURL or Token is what the app opens to pay (Snap's redirect
	// URL and token, or the simulated pay endpoint).
	RedirectURL string `json:"redirect_url,omitempty"`
	Token       string `json:"token,omitempty"`
	// Status is the gateway's own word for the charge (settlement, pending...).
	Status    string     `json:"status,omitempty"`
	Method    string     `json:"method,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// Order is a buyer's purchase in a flash sale. While pending_payment it holds
// a reservation of Quantity units until ReservedUntil.
type Order struct {
	ID            string      `json:"id"`
	BuyerID       string      `json:"buyer_id"`
	BuyerName     string      `json:"buyer_name,omitempty"`
	FlashSaleID   string      `json:"flash_sale_id"`
	StreamID      string      `json:"stream_id"`
	HostID        string      `json:"host_id"`
	Quantity      int         `json:"quantity"`
	Amount        int64       `json:"amount"`
	Status        OrderStatus `json:"status"`
	ReservedUntil time.Time   `json:"reserved_until"`
	Payment       Payment     `json:"payment"`
	CreatedAt     time.Time   `json:"created_at"`
	UpdatedAt     time.Time   `json:"updated_at"`
	PaidAt        *time.Time  `json:"paid_at,omitempty"`
}

// ReserveRequest asks for units of a sale for a buyer, as one atomic
// decision: window open, stock left, per-user limit, reserve, remember the
// idempotency key.
type ReserveRequest struct {
	SaleID    string
	BuyerID   string
	BuyerName string
	Quantity  int
	// IdempotencyKey identifies the buyer's attempt; RequestHash is a digest
	// of the request body, so the same key with another body is refused
	// (EIDEMPOTENCY) instead of returning the first order.
	IdempotencyKey string
	RequestHash    string
	// OrderID is the id the new order gets (ignored on a replay).
	OrderID       string
	Now           time.Time
	ReservedUntil time.Time
}

// ReserveResult is the outcome of a successful reservation.
type ReserveResult struct {
	Order Order
	// Replayed is true when the idempotency key had already made Order.
	Replayed bool
	// StockLeft after the reservation, and the sale's StockVersion with it.
	StockLeft    int
	StockVersion int64
}

// Transition is the outcome of an order state change.
type Transition struct {
	Order Order
	// Changed is false when the order was already in (or past) the state,
	// so side effects must not run again.
	Changed bool
	// StockLeft of the sale after the change (units released by an
	// expiry or cancel are back on sale), and its StockVersion with it.
	StockLeft    int
	StockVersion int64
}

// SaleEvent is a lifecycle event of a sale that is due to be announced:
// Event is EventFlashSaleStarted once StartsAt passed, EventFlashSaleEnded
// once EndsAt passed.
type SaleEvent struct {
	SaleID string
	Event  string
}

// Store keeps streams, sales and orders. The memory store serves one node;
// the Redis store decides stock and payments with Lua scripts, so no node
// ever keeps its own count. Both pass commercetest.RunStoreTests.
type Store interface {
	CreateStream(ctx context.Context, s Stream) error
	GetStream(ctx context.Context, id string) (Stream, error)
	// EndStream marks the stream ended; ending an ended stream is ECONFLICT.
	EndStream(ctx context.Context, id string, at time.Time) (Stream, error)

	// CreateFlashSale stores the sale with StockLeft = Quantity.
	CreateFlashSale(ctx context.Context, s FlashSale) error
	// GetFlashSale returns the sale with its current StockLeft and Sold
	// (State is left for the caller to compute with StateAt).
	GetFlashSale(ctx context.Context, id string) (FlashSale, error)
	// EndFlashSale ends the sale at at; ending an ended sale is ECONFLICT,
	// and so is ending a sale whose flash_sale.ended was claimed. It claims
	// the sale's flash_sale.ended (and flash_sale.started, when at is
	// before StartsAt) in the same step: the caller announces the end.
	EndFlashSale(ctx context.Context, id string, at time.Time) (FlashSale, error)
	// ListFlashSales returns a stream's sales, oldest first.
	ListFlashSales(ctx context.Context, streamID string) ([]FlashSale, error)

	// Reserve makes an order pending payment, atomically. Errors: ENOTFOUND,
	// ENOTSTARTED, EENDED, ESOLDOUT, ELIMIT, EIDEMPOTENCY, EINVALID.
	Reserve(ctx context.Context, r ReserveRequest) (ReserveResult, error)
	GetOrder(ctx context.Context, id string) (Order, error)
	// ListOrdersByBuyer returns a buyer's orders, newest first.
	ListOrdersByBuyer(ctx context.Context, buyerID string, limit int) ([]Order, error)
	// ListOrdersBySale returns a sale's orders, newest first.
	ListOrdersBySale(ctx context.Context, saleID string, limit int) ([]Order, error)
	// SetPayment records the gateway's charge p on the pending order o, as
	// Reserve returned it, and returns o with the payment: o.ID and
	// o.FlashSaleID locate the order without a lookup (an order of another
	// sale is ENOTFOUND), and a pending order changes in nothing but its
	// payment, so it need not be read back. A final order is ECONFLICT.
	SetPayment(ctx context.Context, o Order, p Payment) (Order, error)
	// MarkPaid moves a pending order to paid and confirms its units as sold.
	// A paid order is left alone (Changed false); an expired or cancelled one
	// is ECONFLICT (the units went back on sale).
	MarkPaid(ctx context.Context, orderID string, p Payment, at time.Time) (Transition, error)
	// Release moves a pending order to expired or cancelled and returns its
	// units to stock, exactly once however many nodes try at once. A final
	// order is left alone (Changed false).
	Release(ctx context.Context, orderID string, to OrderStatus, at time.Time) (Transition, error)
	// DueReservations lists pending orders whose reservation ended before now.
	DueReservations(ctx context.Context, now time.Time, limit int) ([]string, error)

	// DueSaleEvents lists the lifecycle events whose time came by now
	// (StartsAt, EndsAt) and that nobody claimed yet, earliest due time
	// first (ties by sale id; a sale's flash_sale.started comes before its
	// flash_sale.ended); limit <= 0 means all.
	DueSaleEvents(ctx context.Context, now time.Time, limit int) ([]SaleEvent, error)
	// ClaimSaleEvent claims the right to announce a sale's lifecycle event
	// (EventFlashSaleStarted or EventFlashSaleEnded). It returns true to
	// exactly one caller, however many nodes try, and only once the event
	// is due at now; false when it is not due yet or was claimed already
	// (EndFlashSale claims the end it makes). Another event is EINVALID.
	ClaimSaleEvent(ctx context.Context, saleID, event string, now time.Time) (bool, error)
}
