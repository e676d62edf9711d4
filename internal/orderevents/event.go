// Package orderevents carries order events out of LiveHub to the merchant's
// own order system: a Log keeps them until a consumer acknowledges them, and
// the Webhook worker POSTs each one, signed, to the merchant's URL.
//
// Delivery is at least once. An event is acknowledged only after the merchant
// answered 2xx (or refused it for good, or it ran out of attempts), so a node
// that dies mid-delivery leaves it pending and another consumer picks it up
// once it has been idle long enough. Receivers deduplicate on the event id
// (the X-LiveHub-Delivery header) and must not rely on arrival order across
// events: an order's status only moves forward, so an order.placed arriving
// after order.paid is stale and can be ignored.
package orderevents

import (
	"context"
	"encoding/json"
	"time"

	"github.com/livehub/livehub/internal/commerce"
)

// Event types. Data is the order as commerce.Order marshals it.
const (
	TypeOrderPlaced    = "order.placed"    // reserved, waiting for payment
	TypeOrderPaid      = "order.paid"      // paid; the units are sold
	TypeOrderExpired   = "order.expired"   // not paid in time; the units are back on sale
	TypeOrderCancelled = "order.cancelled" // cancelled before payment; the units are back on sale
)

// Event is one thing that happened to an order, as the merchant receives it.
type Event struct {
	// ID identifies the event; a redelivery carries the same ID.
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	OrderID string          `json:"order_id"`
	At      time.Time       `json:"at"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// NewEvent returns an event of type typ about o, with o as its data.
func NewEvent(typ string, o commerce.Order, at time.Time) (Event, error) {
	data, err := json.Marshal(o)
	if err != nil {
		return Event{}, err
	}
	return Event{ID: commerce.NewID("ev"), Type: typ, OrderID: o.ID, At: at.UTC(), Data: data}, nil
}

// FromCommerce turns a realtime commerce event about order orderID into an
// order event with the same id, type, time and data.
func FromCommerce(orderID string, e commerce.Event) Event {
	return Event{ID: e.ID, Type: e.Type, OrderID: orderID, At: e.At, Data: e.Data}
}

// Delivery is an event handed to a consumer, pending until acknowledged.
type Delivery struct {
	// ID is the log's id of the entry, passed to Ack and Touch. It differs
	// from Event.ID.
	ID    string
	Event Event
}

// Log keeps order events for consumer groups. Every group receives every
// event; within a group each event goes to one consumer at a time and stays
// pending until acknowledged. An event pending longer than the log's claim
// idle time is handed to the next consumer that reads, so the events of a
// consumer that died are delivered again. The log is capped: past its length
// the oldest events are dropped, acknowledged or not.
//
// MemoryLog and RedisLog implement it and pass the same test suite.
type Log interface {
	// Append adds e. An empty e.ID gets a fresh id and a zero e.At the
	// current time.
	Append(ctx context.Context, e Event) error
	// Read returns up to count events for consumer of group: first those
	// pending longer than the claim idle time (whichever consumer had them),
	// then events no consumer of the group has seen. When there are none
	// it waits up to block for new ones; block <= 0 does not wait. A group
	// read for the first time starts at the oldest event in the log.
	Read(ctx context.Context, group, consumer string, count int, block time.Duration) ([]Delivery, error)
	// Ack ends the pending state of the deliveries ids of group. Unknown
	// ids are ignored.
	Ack(ctx context.Context, group string, ids ...string) error
	// Touch makes ids pending on consumer as if just delivered, so a
	// delivery still being worked on is not handed to another consumer.
	Touch(ctx context.Context, group, consumer string, ids ...string) error
}

// Defaults shared by the Log implementations.
const (
	defaultMaxLen    = 100_000
	defaultClaimIdle = time.Minute
)

// prepare fills what Append fills and checks the rest.
func prepare(e Event, now time.Time) (Event, error) {
	if e.Type == "" {
		return e, commerce.FieldError("type", "the event has no type")
	}
	if e.OrderID == "" {
		return e, commerce.FieldError("order_id", "the event has no order id")
	}
	if len(e.Data) > 0 && !json.Valid(e.Data) {
		return e, commerce.FieldError("data", "the event's data is not JSON")
	}
	if e.ID == "" {
		e.ID = commerce.NewID("ev")
	}
	if e.At.IsZero() {
		e.At = now
	}
	e.At = e.At.UTC()
	return e, nil
}
