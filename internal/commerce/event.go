package commerce

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Event is the versioned envelope every publication carries:
// {"type":"flash_sale.stock","v":1,"id":"...","at":"RFC3339","data":{...}}.
// docs/events.md lists every type and its data.
type Event struct {
	Type string          `json:"type"`
	V    int             `json:"v"`
	ID   string          `json:"id"`
	At   time.Time       `json:"at"`
	Data json.RawMessage `json:"data"`
}

// Event types.
const (
	EventStreamStarted      = "stream.started"
	EventStreamEnded        = "stream.ended"
	EventStreamSummary      = "stream.summary" // to the studio when a stream ends
	EventFlashSaleScheduled = "flash_sale.scheduled"
	EventFlashSaleStarted   = "flash_sale.started"
	EventFlashSaleStock     = "flash_sale.stock"
	EventFlashSaleSoldOut   = "flash_sale.sold_out"
	EventFlashSaleEnded     = "flash_sale.ended"
	EventOrderPlaced        = "order.placed"  // the room's purchase ticker, buyer masked
	EventOrderCreated       = "order.created" // to the buyer and the studio
	EventOrderPaid          = "order.paid"
	EventOrderExpired       = "order.expired"
	EventOrderCancelled     = "order.cancelled"
)

// NewEvent builds an envelope around data, which is marshalled to JSON.
func NewEvent(typ string, at time.Time, data any) (Event, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return Event{}, err
	}
	return Event{Type: typ, V: 1, ID: NewID("ev"), At: at.UTC(), Data: b}, nil
}

// NewID returns a random id with a readable prefix ("ord_3f9a...").
func NewID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}
