package notify

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/push"
)

// Policy says which events on a personal channel are worth a push, and how
// each looks on the phone, by event type. A type it does not list is never
// pushed.
type Policy map[string]Rule

// Rule is how one event type becomes a push.Notification.
type Rule struct {
	// Key names the app's localized strings: Key+"_title" and Key+"_body".
	// The app formats them in its language with the arguments.
	Key string
	// Title and Body are shown when the app has no string for the keys.
	// "{1}", "{2}", ... in them stand for TitleArgs and BodyArgs.
	Title, Body string
	// TitleArgs and BodyArgs fill the strings, taken from the event's data.
	TitleArgs, BodyArgs []Arg
	// Collapse names the data field whose value becomes the collapse id: a
	// newer notification about the same order or sale replaces the older
	// one on the device. Empty means none.
	Collapse string
	// Data copies fields of the event's data into the notification's data,
	// for the app to open the right screen: notification key -> data field.
	// "type" and "event_id" are always set.
	Data map[string]string
	// Priority is how urgently to wake the device. Zero means high.
	Priority push.Priority
	// TTL is how long after the event the notification is still worth
	// showing; it is dropped after. Zero means no expiry.
	TTL time.Duration
	// Category selects the app's actions for the notification.
	Category string
	// By, when set, names a data field whose value picks the rule to use
	// among Cases, for events whose text depends on a status; the other
	// fields are then unused. A value Cases lacks is not pushed.
	By    string
	Cases map[string]Rule
}

// Arg is one argument of a localized string: a field of the event's data,
// by dotted path ("product.name").
type Arg struct {
	Field string
	// Rupiah formats a whole number as Indonesian rupiah: 150000 becomes
	// "Rp150.000".
	Rupiah bool
}

// Field is an Arg showing a data field as it is.
func Field(path string) Arg { return Arg{Field: path} }

// Rupiah is an Arg showing a data field as an amount of rupiah.
func Rupiah(path string) Arg { return Arg{Field: path, Rupiah: true} }

// Event types of courier tracking, which publishes into personal channels
// too.
const (
	eventOrderStatus   = "order.status"
	eventOrderArriving = "order.arriving"
)

// Expiries of the default policy.
const (
	// orderTTL: an order's news is worth showing for a day.
	orderTTL = 24 * time.Hour
	// deliveryTTL: a step of a delivery under way is stale within hours.
	deliveryTTL = 2 * time.Hour
	// arrivingTTL: "the courier is near" is worth showing for minutes.
	arrivingTTL = 15 * time.Minute
	// flashSaleTTL: a flash sale lasts minutes; a phone that comes back
	// online later must not announce a sale that is over.
	flashSaleTTL = 10 * time.Minute
)

// DefaultPolicy is LiveHub's policy for the events of the shop.
//
// order.created is not pushed: the buyer has just checked out in the app.
// flash_sale.stock, flash_sale.sold_out and flash_sale.ended are not pushed
// either: they matter only to someone watching. Of a delivery's
// order.status, assigned is not pushed (the merchant may assign another
// courier at once); picked_up, on_the_way, delivered and cancelled are.
func DefaultPolicy() Policy {
	order := map[string]string{"order_id": "id", "stream_id": "stream_id"}
	sale := map[string]string{"flash_sale_id": "id", "stream_id": "stream_id"}
	delivery := func(key, title, body string, ttl time.Duration) Rule {
		return Rule{
			Key: key, Title: title, Body: body,
			Collapse: "order_id", Data: map[string]string{"order_id": "order_id"},
			Priority: push.PriorityHigh, TTL: ttl, Category: "delivery",
		}
	}
	// An order's payment outcome: its amount in the body.
	outcome := func(key, title, body string) Rule {
		return Rule{
			Key: key, Title: title, Body: body, BodyArgs: []Arg{Rupiah("amount")},
			Collapse: "id", Data: order, Priority: push.PriorityHigh, TTL: orderTTL, Category: "order",
		}
	}
	return Policy{
		eventOrderStatus: {By: "status", Cases: map[string]Rule{
			"picked_up":  delivery("order_picked_up", "Pesanan diambil kurir", "Kurir sudah mengambil pesananmu.", deliveryTTL),
			"on_the_way": delivery("order_on_the_way", "Pesanan dalam perjalanan", "Pesananmu sedang diantar ke alamatmu.", deliveryTTL),
			"delivered":  delivery("order_delivered", "Pesanan sampai", "Pesananmu sudah diantar. Terima kasih sudah belanja!", orderTTL),
			"cancelled":  delivery("order_delivery_cancelled", "Pengiriman dibatalkan", "Pengiriman pesananmu dibatalkan.", orderTTL),
		}},
		eventOrderArriving: {
			Key:      "order_arriving",
			Title:    "Kurir hampir sampai",
			Body:     "Kurir sekitar {1} meter lagi dari alamatmu.",
			BodyArgs: []Arg{Field("distance_meters")},
			Collapse: "order_id", Data: map[string]string{"order_id": "order_id"},
			Priority: push.PriorityHigh, TTL: arrivingTTL, Category: "delivery",
		},
		commerce.EventOrderPaid:      outcome("order_paid", "Pembayaran diterima", "Pembayaran {1} sudah kami terima. Pesananmu segera diproses."),
		commerce.EventOrderExpired:   outcome("order_expired", "Pesanan kedaluwarsa", "Pesanan senilai {1} dibatalkan karena belum dibayar."),
		commerce.EventOrderCancelled: outcome("order_cancelled", "Pesanan dibatalkan", "Pesanan senilai {1} dibatalkan."),
		commerce.EventFlashSaleScheduled: {
			Key:      "flash_sale_scheduled",
			Title:    "Flash sale segera dimulai",
			Body:     "{1} mulai sebentar lagi.",
			BodyArgs: []Arg{Field("product.name")},
			Collapse: "id", Data: sale, Priority: push.PriorityNormal, TTL: flashSaleTTL, Category: "flash_sale",
		},
		commerce.EventFlashSaleStarted: {
			Key:      "flash_sale_started",
			Title:    "Flash sale dimulai!",
			Body:     "{1} sekarang {2}. Buruan sebelum habis!",
			BodyArgs: []Arg{Field("product.name"), Rupiah("price")},
			Collapse: "id", Data: sale, Priority: push.PriorityHigh, TTL: flashSaleTTL, Category: "flash_sale",
		},
	}
}

// event is the part of the envelope a push needs.
type event struct {
	Type string          `json:"type"`
	ID   string          `json:"id"`
	At   time.Time       `json:"at"`
	Data json.RawMessage `json:"data"`
}

// maxCollapseID is the longest collapse id APNs accepts.
const maxCollapseID = 64

// notification builds the push for ev to userID. It reports false when the
// notification would arrive expired or is not valid.
func (r *Rule) notification(userID string, ev *event, now time.Time) (push.Notification, bool) {
	fields := decodeData(ev.Data)
	if r.By != "" {
		c, ok := r.Cases[lookup(fields, r.By, false)]
		if !ok {
			return push.Notification{}, false
		}
		r = &c
	}
	n := push.Notification{
		ID:       ev.ID,
		UserID:   userID,
		Title:    fill(r.Title, r.TitleArgs, fields),
		Body:     fill(r.Body, r.BodyArgs, fields),
		Priority: r.Priority,
		Category: r.Category,
		Data:     map[string]string{"type": ev.Type, "event_id": ev.ID},
	}
	if r.Key != "" {
		n.TitleKey, n.BodyKey = r.Key+"_title", r.Key+"_body"
		n.TitleArgs = args(r.TitleArgs, fields)
		n.BodyArgs = args(r.BodyArgs, fields)
	}
	if n.Priority == "" {
		n.Priority = push.PriorityHigh
	}
	if r.Collapse != "" {
		if c := lookup(fields, r.Collapse, false); c != "" && len(c) <= maxCollapseID {
			n.CollapseID = c
		}
	}
	for key, field := range r.Data {
		if v := lookup(fields, field, false); v != "" {
			n.Data[key] = v
		}
	}
	if r.TTL > 0 {
		at := ev.At
		if at.IsZero() {
			at = now
		}
		n.Expiry = at.Add(r.TTL).UTC()
		if n.Expired(now) {
			return n, false
		}
	}
	return n, n.Validate() == nil
}

// decodeData returns the event's data as a JSON object, nil when it is not
// one.
func decodeData(raw json.RawMessage) map[string]any {
	if len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil {
		return nil
	}
	return m
}

// args returns the values of as, nil when there are none.
func args(as []Arg, fields map[string]any) []string {
	if len(as) == 0 {
		return nil
	}
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = lookup(fields, a.Field, a.Rupiah)
	}
	return out
}

// fill replaces {1}, {2}, ... in text with the values of as.
func fill(text string, as []Arg, fields map[string]any) string {
	if len(as) == 0 || !strings.Contains(text, "{") {
		return text
	}
	pairs := make([]string, 0, 2*len(as))
	for i, v := range args(as, fields) {
		pairs = append(pairs, "{"+strconv.Itoa(i+1)+"}", v)
	}
	return strings.NewReplacer(pairs...).Replace(text)
}

// lookup returns the data field at path as text, "" when it is missing or
// not a scalar.
func lookup(fields map[string]any, path string, rupiah bool) string {
	var v any = fields
	for part := range strings.SplitSeq(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[part]
	}
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		if rupiah {
			if i, err := x.Int64(); err == nil {
				return formatRupiah(i)
			}
		}
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

// formatRupiah writes i as Indonesian rupiah: "Rp150.000", "-Rp5.000".
func formatRupiah(i int64) string {
	sign := ""
	u := uint64(i)
	if i < 0 {
		sign, u = "-", uint64(-i)
	}
	digits := strconv.FormatUint(u, 10)
	var b strings.Builder
	b.WriteString(sign + "Rp")
	for j, d := range digits {
		if j > 0 && (len(digits)-j)%3 == 0 {
			b.WriteByte('.')
		}
		b.WriteRune(d)
	}
	return b.String()
}
