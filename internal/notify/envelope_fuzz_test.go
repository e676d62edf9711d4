package notify

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/commerce"
)

// FuzzEventEnvelope feeds arbitrary publications of a personal channel
// through the envelope decoding and the default push policy: nothing may
// panic, and whatever becomes a notification is valid, names the event and
// the user, and is not already expired.
func FuzzEventEnvelope(f *testing.F) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, typ := range []string{commerce.EventOrderPaid, commerce.EventOrderExpired, commerce.EventFlashSaleScheduled, "order.status"} {
		ev, _ := commerce.NewEvent(typ, now, map[string]any{
			"id": "ord_1", "stream_id": "str_1", "amount": 150000, "status": "picked_up",
			"product": map[string]any{"name": "Sepatu"}, "price": 99000,
		})
		b, _ := json.Marshal(ev)
		f.Add(b)
	}
	f.Add([]byte(`{"type":"order.paid","id":"e","data":[1,2]}`))
	f.Add([]byte(`{"type":"order.status","id":"e","data":{"status":{"x":1}}}`))
	f.Add([]byte(`{"type":"flash_sale.scheduled","id":"e","at":"0001-01-01T00:00:00Z","data":{"price":-1e308}}`))
	f.Add([]byte(`null`))
	policy := DefaultPolicy()
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev event
		if json.Unmarshal(data, &ev) != nil || ev.ID == "" {
			return
		}
		rule, ok := policy[ev.Type]
		if !ok {
			return
		}
		n, ok := rule.notification("u1", &ev, now)
		if !ok {
			return
		}
		if err := n.Validate(); err != nil {
			t.Fatalf("notification accepted but invalid: %v (%+v)", err, n)
		}
		if n.ID != ev.ID || n.UserID != "u1" || n.Data["event_id"] != ev.ID || n.Data["type"] != ev.Type {
			t.Fatalf("notification lost the event's identity: %+v", n)
		}
		if n.Expired(now) {
			t.Fatalf("expired notification accepted: %+v", n)
		}
		if len(n.CollapseID) > maxCollapseID {
			t.Fatalf("collapse id of %d bytes", len(n.CollapseID))
		}
	})
}
