package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/centrifugal/protocol"

	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/orderevents"
	"github.com/livehub/livehub/internal/protoclient"
)

// A buyer checks out and pays through the simulated gateway: the buyer's
// socket hears order.created then order.paid on its personal channel, and
// the merchant's webhook receives both, signed.
func TestOrderFlow_BuyerSocketAndSignedWebhook(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end order flow: skipped with -short")
	}
	const secret = "merchant-webhook-secret"
	var (
		mu     sync.Mutex
		events []string
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := orderevents.Verify(secret, r.Header.Get(orderevents.HeaderTimestamp), string(body),
			r.Header.Get(orderevents.HeaderSignature), time.Minute, time.Now()); err != nil {
			t.Errorf("webhook signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		events = append(events, r.Header.Get(orderevents.HeaderEvent))
		mu.Unlock()
	}))
	defer receiver.Close()

	bin := buildServer(t, moduleRoot(t))
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	srv := startServer(ctx, t, bin, "LIVEHUB_WEBHOOK_URL="+receiver.URL, "LIVEHUB_WEBHOOK_SECRET="+secret)
	api := &apiClient{http: &http.Client{Timeout: 10 * time.Second}}
	base := "http://" + srv.addr
	host := mint(t, "host-of", "Host", auth.RoleHost)
	buyer := mint(t, "buyer-of", "Siti Aminah", auth.RoleCustomer)

	conn, err := protoclient.Dial(ctx, "ws://"+srv.addr+"/connection/websocket", protoclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	if _, err := conn.Connect(ctx, buyer); err != nil {
		t.Fatal(err)
	}

	var stream, sale, order struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if code, body, err := api.do(ctx, "POST", base+"/v1/streams", host, "", map[string]any{"title": "Live"}, &stream); err != nil || code != 201 {
		t.Fatalf("create stream: %d %s %v", code, body, err)
	}
	if code, body, err := api.do(ctx, "POST", base+"/v1/streams/"+stream.ID+"/flash-sales", host, "", map[string]any{
		"product": map[string]any{"id": "p", "name": "Hijab"}, "price": 75000, "quantity": 5,
		"per_user_limit": 1, "countdown_seconds": 0, "duration_seconds": 60,
	}, &sale); err != nil || code != 201 {
		t.Fatalf("create sale: %d %s %v", code, body, err)
	}
	if code, body, err := api.do(ctx, "POST", base+"/v1/checkout", buyer, "once", map[string]any{"flash_sale_id": sale.ID, "quantity": 1}, &order); err != nil || code != 201 {
		t.Fatalf("checkout: %d %s %v", code, body, err)
	}
	if code, body, err := api.do(ctx, "POST", base+"/v1/payments/simulated/"+order.ID+"/pay", buyer, "", nil, &order); err != nil || code != 200 || order.Status != "paid" {
		t.Fatalf("pay: %d %s %v", code, body, err)
	}

	var seen []string
	timeout := time.After(10 * time.Second)
	for len(seen) < 2 {
		select {
		case p := <-conn.Pushes():
			if p.Channel == "user:#buyer-of" && p.Pub != nil {
				seen = append(seen, eventType(p.Pub))
			}
		case <-timeout:
			t.Fatalf("buyer socket saw %v, want order.created and order.paid", seen)
		}
	}
	if seen[0] != "order.created" || seen[1] != "order.paid" {
		t.Fatalf("buyer socket saw %v", seen)
	}
	waitFor(t, "both webhooks", func() bool { mu.Lock(); defer mu.Unlock(); return len(events) >= 2 })
	mu.Lock()
	got := append([]string(nil), events...)
	mu.Unlock()
	if !contains(got, "order.created") || !contains(got, "order.paid") {
		t.Fatalf("webhook events %v", got)
	}
	srv.stop(t)
}

func eventType(p *protocol.Publication) string {
	var ev struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(p.Data, &ev)
	return ev.Type
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
