package notify

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/push"
)

func TestFormatRupiah(t *testing.T) {
	for _, tt := range []struct {
		in   int64
		want string
	}{
		{0, "Rp0"}, {5, "Rp5"}, {999, "Rp999"}, {1000, "Rp1.000"}, {150000, "Rp150.000"},
		{1234567, "Rp1.234.567"}, {-5000, "-Rp5.000"}, {1_000_000_000, "Rp1.000.000.000"},
	} {
		if got := formatRupiah(tt.in); got != tt.want {
			t.Errorf("formatRupiah(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDefaultPolicy_Notifications(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	o := commerce.Order{ID: "ord_1", StreamID: "str_1", Amount: 150000}
	sale := commerce.FlashSale{ID: "fs_1", StreamID: "str_1", Product: commerce.Product{Name: "Sepatu"}, Price: 99000}
	p := DefaultPolicy()
	for _, typ := range []string{commerce.EventOrderCreated, commerce.EventOrderPlaced, commerce.EventFlashSaleStock,
		commerce.EventFlashSaleSoldOut, commerce.EventFlashSaleEnded} {
		if _, ok := p[typ]; ok {
			t.Errorf("%s is pushed", typ)
		}
	}
	for _, tt := range []struct {
		typ       string
		data      any
		titleKey  string
		title     string
		body      string
		collapse  string
		priority  push.Priority
		expiresIn time.Duration
		dataKey   string
	}{
		{commerce.EventOrderPaid, o, "order_paid_title", "Pembayaran diterima",
			"Pembayaran Rp150.000 sudah kami terima. Pesananmu segera diproses.", "ord_1", push.PriorityHigh, 24 * time.Hour, "order_id"},
		{commerce.EventOrderExpired, o, "order_expired_title", "Pesanan kedaluwarsa",
			"Pesanan senilai Rp150.000 dibatalkan karena belum dibayar.", "ord_1", push.PriorityHigh, 24 * time.Hour, "order_id"},
		{commerce.EventOrderCancelled, o, "order_cancelled_title", "Pesanan dibatalkan",
			"Pesanan senilai Rp150.000 dibatalkan.", "ord_1", push.PriorityHigh, 24 * time.Hour, "order_id"},
		{commerce.EventFlashSaleScheduled, sale, "flash_sale_scheduled_title", "Flash sale segera dimulai",
			"Sepatu mulai sebentar lagi.", "fs_1", push.PriorityNormal, 10 * time.Minute, "flash_sale_id"},
		{commerce.EventFlashSaleStarted, sale, "flash_sale_started_title", "Flash sale dimulai!",
			"Sepatu sekarang Rp99.000. Buruan sebelum habis!", "fs_1", push.PriorityHigh, 10 * time.Minute, "flash_sale_id"},
	} {
		t.Run(tt.typ, func(t *testing.T) {
			data, _ := json.Marshal(tt.data)
			ev := &event{Type: tt.typ, ID: "ev_1", At: now, Data: data}
			rule := p[tt.typ]
			n, ok := rule.notification("u1", ev, now)
			if !ok {
				t.Fatal("not pushed")
			}
			if n.ID != "ev_1" || n.UserID != "u1" || n.TitleKey != tt.titleKey || n.Title != tt.title || n.Body != tt.body ||
				n.CollapseID != tt.collapse || n.Priority != tt.priority || !n.Expiry.Equal(now.Add(tt.expiresIn)) ||
				n.Data["type"] != tt.typ || n.Data["event_id"] != "ev_1" || n.Data[tt.dataKey] != tt.collapse || n.Data["stream_id"] != "str_1" {
				t.Fatalf("notification %+v", n)
			}
			if len(n.BodyArgs) == 0 || n.BodyKey == "" {
				t.Fatalf("no localization arguments: %+v", n)
			}
			if _, ok := rule.notification("u1", ev, now.Add(tt.expiresIn)); ok {
				t.Fatal("pushed once expired")
			}
		})
	}
}

func TestRule_MissingFieldsStillPush(t *testing.T) {
	r := DefaultPolicy()[commerce.EventOrderPaid]
	n, ok := r.notification("u1", &event{Type: commerce.EventOrderPaid, ID: "ev_1", Data: json.RawMessage(`"not an object"`)}, time.Now())
	if !ok || n.CollapseID != "" || n.Title != "Pembayaran diterima" || n.BodyArgs[0] != "" {
		t.Fatalf("%v %+v", ok, n)
	}
	long := `{"id":"ord_` + strings.Repeat("0", 64) + `"}`
	n, _ = r.notification("u1", &event{Type: commerce.EventOrderPaid, ID: "ev_1", Data: json.RawMessage(long)}, time.Now())
	if n.CollapseID != "" {
		t.Fatalf("collapse id longer than APNs takes: %q", n.CollapseID)
	}
}

func TestDefaultPolicy_DeliveryEvents(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	p := DefaultPolicy()
	status := func(s string) *event {
		data, _ := json.Marshal(map[string]any{"order_id": "ord_1", "status": s, "courier_id": "c1", "at": now})
		return &event{Type: eventOrderStatus, ID: "ev_" + s, At: now, Data: data}
	}
	rule := p[eventOrderStatus]
	for _, tt := range []struct {
		status, titleKey string
		ttl              time.Duration
	}{
		{"picked_up", "order_picked_up_title", 2 * time.Hour},
		{"on_the_way", "order_on_the_way_title", 2 * time.Hour},
		{"delivered", "order_delivered_title", 24 * time.Hour},
		{"cancelled", "order_delivery_cancelled_title", 24 * time.Hour},
	} {
		n, ok := rule.notification("buyer", status(tt.status), now)
		if !ok || n.TitleKey != tt.titleKey || n.CollapseID != "ord_1" || n.Data["order_id"] != "ord_1" ||
			n.Data["type"] != eventOrderStatus || !n.Expiry.Equal(now.Add(tt.ttl)) || n.Title == "" || n.Category != "delivery" {
			t.Errorf("%s: %v %+v", tt.status, ok, n)
		}
	}
	for _, s := range []string{"assigned", "", "lost"} {
		if n, ok := rule.notification("buyer", status(s), now); ok {
			t.Errorf("status %q pushed: %+v", s, n)
		}
	}
	data := json.RawMessage(`{"order_id":"ord_1","courier_id":"c1","distance_meters":179,"eta_seconds":23}`)
	arriving := p[eventOrderArriving]
	n, ok := arriving.notification("buyer", &event{Type: eventOrderArriving, ID: "ev_a", At: now, Data: data}, now)
	if !ok || n.Body != "Kurir sekitar 179 meter lagi dari alamatmu." || n.BodyArgs[0] != "179" ||
		n.CollapseID != "ord_1" || !n.Expiry.Equal(now.Add(15*time.Minute)) {
		t.Fatalf("order.arriving: %v %+v", ok, n)
	}
}
