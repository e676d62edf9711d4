package tracking_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/centrifugal/protocol"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/internal/protoclient"
	"github.com/livehub/livehub/internal/tracking"
)

func TestSubscribe_OnlyBuyerCourierMerchantAndAdmin(t *testing.T) {
	stateKinds(t, func(t *testing.T, newState func(*testing.T) tracking.State) {
		e := newEnv(t, newState(t))
		e.assignCourier(t, courierID)
		for _, user := range []string{buyerID, courierID, merchantID, adminID} {
			e.follow(t, user)
		}
		for _, user := range []string{otherBuyer, otherCour, otherHost} {
			_, err := trySubscribe(t, e.connect(t, user), "order:"+orderID)
			wantCode(t, err, hub.ErrorPermissionDenied.Code, "permission denied")
		}
	})
}

func TestPublish_OnlyTheAssignedCourier(t *testing.T) {
	e := newEnv(t, tracking.NewMemoryState())
	e.assignCourier(t, courierID)
	buyer := e.follow(t, buyerID)
	wantCode(t, publish(t, buyer, point(0)), hub.ErrorPermissionDenied.Code, "permission denied")
	merchant := e.follow(t, merchantID)
	wantCode(t, publish(t, merchant, point(0)), hub.ErrorPermissionDenied.Code, "permission denied")

	courier := e.follow(t, courierID)
	if err := publish(t, courier, point(0)); err != nil {
		t.Fatalf("assigned courier publishes: %v", err)
	}
	loc := decode[tracking.Location](t, nextEvent(t, buyer, "order:"+orderID, tracking.EventCourierLocation))
	if loc.DeviceTime != baseDeviceTime || loc.DistanceMeters < 1900 || loc.DistanceMeters > 2100 {
		t.Fatalf("location %+v", loc)
	}
	// Reassigned before pickup: the first courier's socket is refused.
	e.assignCourier(t, otherCour)
	e.clock.advance(3 * time.Second)
	wantCode(t, publish(t, courier, point(10)), hub.ErrorPermissionDenied.Code, "only the courier assigned")
}

func TestPublish_BadPointsAreRefusedWithTheReason(t *testing.T) {
	e := newEnv(t, tracking.NewMemoryState())
	e.assignCourier(t, courierID)
	courier := e.follow(t, courierID)
	if err := publish(t, courier, point(0)); err != nil {
		t.Fatal(err)
	}
	e.clock.advance(3 * time.Second)
	with := func(k string, v any) map[string]any {
		p := point(10)
		if v == nil {
			delete(p, k)
		} else {
			p[k] = v
		}
		return p
	}
	tests := []struct {
		name   string
		data   any
		reason string
	}{
		{"missing lat", with("lat", nil), "lat: is required"},
		{"missing device time", with("device_time", nil), "device_time: is required"},
		{"unknown field", with("altitude", 12), `unknown field "altitude"`},
		{"lat as text", with("lat", "north"), "lat: must be a number"},
		{"not an object", []int{1, 2}, "JSON object"},
		{"lat out of range", with("lat", 91), "lat: must be between -90 and 90"},
		{"lng out of range", with("lng", -181), "lng: must be between -180 and 180"},
		{"accuracy too large", with("accuracy", 6000), "accuracy: must be between 0 and 5000"},
		{"accuracy negative", with("accuracy", -1), "accuracy: must be between 0 and 5000"},
		{"heading out of range", with("heading", 361), "heading: must be between 0 and 360"},
		{"speed negative", with("speed", -3), "speed: must not be negative"},
		{"device time in seconds", with("device_time", 1_750_000_000), "device_time: must be Unix milliseconds"},
		{"device time not after the last", with("device_time", baseDeviceTime), "device_time: must be after the last accepted point"},
		{"device time before the last", with("device_time", baseDeviceTime-1000), "device_time: must be after"},
		{"implausible speed", with("lat", startLat+0.1), "implausible speed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, publish(t, courier, tc.data), hub.ErrorBadRequest.Code, tc.reason)
		})
	}
	// None of them counted against the throttle or the path.
	if err := publish(t, courier, point(10)); err != nil {
		t.Fatalf("a good point after bad ones: %v", err)
	}
	code, view := e.call(t, buyerID, "GET", "/v1/orders/"+orderID+"/tracking", "")
	if code != http.StatusOK || view["path_length"] != float64(2) {
		t.Fatalf("tracking: %d %v", code, view)
	}
}

func TestPublish_ThrottledToMinInterval(t *testing.T) {
	stateKinds(t, func(t *testing.T, newState func(*testing.T) tracking.State) {
		e := newEnv(t, newState(t))
		e.assignCourier(t, courierID)
		courier := e.follow(t, courierID)
		if err := publish(t, courier, point(0)); err != nil {
			t.Fatal(err)
		}
		e.clock.advance(500 * time.Millisecond)
		err := publish(t, courier, point(1))
		wantCode(t, err, hub.ErrorTooManyRequests.Code, "wait ")
		if !strings.Contains(err.Error(), "wait 1500 ms") && !strings.Contains(err.Error(), "wait 149") {
			t.Fatalf("throttle says %v, want about 1500 ms to wait", err)
		}
		e.clock.advance(1500 * time.Millisecond)
		if err := publish(t, courier, point(2)); err != nil {
			t.Fatalf("after the interval: %v", err)
		}
	})
}

func TestSubscribe_LastKnownPositionFromHistoryAndTracking(t *testing.T) {
	stateKinds(t, func(t *testing.T, newState func(*testing.T) tracking.State) {
		e := newEnv(t, newState(t))
		e.assignCourier(t, courierID)
		courier := e.follow(t, courierID)
		for i, dt := range []int{0, 10, 20} {
			if i > 0 {
				e.clock.advance(2 * time.Second)
			}
			if err := publish(t, courier, point(dt)); err != nil {
				t.Fatal(err)
			}
		}
		// The buyer opens the app afterwards: history holds the last position.
		buyer := e.follow(t, buyerID)
		h, err := buyer.History(ctxT(t), &protocol.HistoryRequest{Channel: "order:" + orderID, Limit: 1, Reverse: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Publications) != 1 {
			t.Fatalf("history: %d publications", len(h.Publications))
		}
		var ev struct {
			Type string
			Data tracking.Location
		}
		if err := json.Unmarshal(h.Publications[0].Data, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type != tracking.EventCourierLocation || ev.Data.DeviceTime != baseDeviceTime+20000 {
			t.Fatalf("last publication: %s", h.Publications[0].Data)
		}
		if ev.Data.ETASeconds == nil || *ev.Data.ETASeconds < 150 || *ev.Data.ETASeconds > 210 {
			t.Fatalf("eta %v, want about 180 s (1.8 km at 10 m/s)", ev.Data.ETASeconds)
		}
		// And the tracking view says the same.
		code, view := e.call(t, buyerID, "GET", "/v1/orders/"+orderID+"/tracking", "")
		if code != http.StatusOK {
			t.Fatalf("tracking: %d %v", code, view)
		}
		last, _ := view["last_point"].(map[string]any)
		if view["status"] != "assigned" || view["courier_id"] != courierID || view["path_length"] != float64(3) ||
			last["device_time"] != float64(baseDeviceTime+20000) || view["eta_seconds"] == nil {
			t.Fatalf("tracking view: %v", view)
		}
		for _, user := range []string{courierID, merchantID, adminID} {
			if code, _ := e.call(t, user, "GET", "/v1/orders/"+orderID+"/tracking", ""); code != http.StatusOK {
				t.Fatalf("%s reads tracking: %d", user, code)
			}
		}
		for _, user := range []string{otherBuyer, otherCour} {
			if code, _ := e.call(t, user, "GET", "/v1/orders/"+orderID+"/tracking", ""); code != http.StatusNotFound {
				t.Fatalf("%s reads tracking: %d, want 404", user, code)
			}
		}
	})
}

func TestBatch_OnlyNewestFannedOutAndPathKeepsAll(t *testing.T) {
	stateKinds(t, func(t *testing.T, newState func(*testing.T) tracking.State) {
		e := newEnv(t, newState(t))
		e.assignCourier(t, courierID)
		buyer := e.follow(t, buyerID)
		bad := point(15)
		bad["lat"] = startLat + 0.2 // 22 km in 5 s
		pts := []any{point(0), point(5), bad, point(10), point(10), point(20)}
		body, _ := json.Marshal(map[string]any{"points": pts})
		code, out := e.call(t, courierID, "POST", "/v1/orders/"+orderID+"/locations", string(body))
		if code != http.StatusOK || out["accepted"] != float64(4) || out["rejected"] != float64(2) {
			t.Fatalf("batch: %d %v", code, out)
		}
		rej := out["rejections"].([]any)
		if r := rej[0].(map[string]any); r["index"] != float64(2) || !strings.Contains(r["reason"].(string), "implausible speed") {
			t.Fatalf("rejection 0: %v", r)
		}
		if r := rej[1].(map[string]any); r["index"] != float64(4) || r["field"] != "device_time" {
			t.Fatalf("rejection 1: %v", r)
		}
		loc := decode[tracking.Location](t, nextEvent(t, buyer, "order:"+orderID, tracking.EventCourierLocation))
		if loc.DeviceTime != baseDeviceTime+20000 {
			t.Fatalf("fanned out %d, want the newest", loc.DeviceTime)
		}
		noEvent(t, buyer, "order:"+orderID, tracking.EventCourierLocation, 300*time.Millisecond)
		_, view := e.call(t, buyerID, "GET", "/v1/orders/"+orderID+"/tracking", "")
		if view["path_length"] != float64(4) {
			t.Fatalf("path length %v, want 4", view["path_length"])
		}
		// A malformed point refuses the request, naming it.
		code, out = e.call(t, courierID, "POST", "/v1/orders/"+orderID+"/locations", `{"points":[{"lat":1,"lng":2,"device_time":1750000100000},{"lng":2}]}`)
		if code != http.StatusBadRequest || out["field"] != "points[1].lat" {
			t.Fatalf("malformed batch: %d %v", code, out)
		}
		// Only the assigned courier posts a batch.
		if code, _ := e.call(t, otherCour, "POST", "/v1/orders/"+orderID+"/locations", string(body)); code != http.StatusForbidden {
			t.Fatalf("another courier's batch: %d, want 403", code)
		}
	})
}

func TestArriving_FiresOnceEvenWithConcurrentPoints(t *testing.T) {
	stateKinds(t, func(t *testing.T, newState func(*testing.T) tracking.State) {
		e := newEnv(t, newState(t), func(c *tracking.Config) { c.MinInterval = time.Millisecond })
		e.assignCourier(t, courierID)
		buyer := e.connect(t, buyerID) // user:#buyer1 is subscribed on connect
		watcher := e.follow(t, merchantID)
		c1, c2 := e.follow(t, courierID), e.follow(t, courierID)
		near := func(dt int) map[string]any {
			p := point(dt)
			p["lat"] = addrLat - 0.0005 // about 55 m short
			return p
		}
		far := point(0)
		if err := publish(t, c1, far); err != nil {
			t.Fatal(err)
		}
		// Reaching the address from 2 km away takes a while at 36 km/h.
		time.Sleep(5 * time.Millisecond)
		var wg sync.WaitGroup
		for i, conn := range []*protoclient.Conn{c1, c2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Either may be refused for its device time; neither fires twice.
				_ = publish(t, conn, near(200+i))
			}()
		}
		wg.Wait()
		time.Sleep(5 * time.Millisecond)
		if err := publish(t, c1, near(300)); err != nil {
			t.Fatalf("a later point near the address: %v", err)
		}
		ev := nextEvent(t, buyer, "user:#"+buyerID, tracking.EventOrderArriving)
		data := decode[map[string]any](t, ev)
		if data["order_id"] != orderID || data["courier_id"] != courierID {
			t.Fatalf("arriving: %v", data)
		}
		nextEvent(t, watcher, "order:"+orderID, tracking.EventOrderArriving)
		noEvent(t, buyer, "user:#"+buyerID, tracking.EventOrderArriving, 300*time.Millisecond)
		noEvent(t, watcher, "order:"+orderID, tracking.EventOrderArriving, 100*time.Millisecond)
	})
}

func TestStatus_ForwardOnlyAndNoLocationAfterDelivered(t *testing.T) {
	stateKinds(t, func(t *testing.T, newState func(*testing.T) tracking.State) {
		e := newEnv(t, newState(t))
		buyer := e.connect(t, buyerID)
		e.assignCourier(t, courierID)
		ev := decode[tracking.StatusEvent](t, nextEvent(t, buyer, "user:#"+buyerID, tracking.EventOrderStatus))
		if ev.Status != tracking.StatusAssigned || ev.CourierID != courierID {
			t.Fatalf("assigned event %+v", ev)
		}
		courier := e.follow(t, courierID)
		if code, out := e.setStatus(t, buyerID, "picked_up"); code != http.StatusForbidden {
			t.Fatalf("buyer sets status: %d %v", code, out)
		}
		if code, out := e.setStatus(t, merchantID, "picked_up"); code != http.StatusForbidden {
			t.Fatalf("merchant sets picked_up: %d %v", code, out)
		}
		if code, out := e.setStatus(t, courierID, "flying"); code != http.StatusBadRequest || out["field"] != "status" {
			t.Fatalf("unknown status: %d %v", code, out)
		}
		for _, st := range []string{"picked_up", "on_the_way"} {
			if code, out := e.setStatus(t, courierID, st); code != http.StatusOK || out["status"] != st {
				t.Fatalf("%s: %d %v", st, code, out)
			}
			if ev := decode[tracking.StatusEvent](t, nextEvent(t, buyer, "user:#"+buyerID, tracking.EventOrderStatus)); string(ev.Status) != st {
				t.Fatalf("event %+v, want %s", ev, st)
			}
		}
		if code, out := e.setStatus(t, courierID, "picked_up"); code != http.StatusConflict || !strings.Contains(out["detail"].(string), "already on_the_way") {
			t.Fatalf("backward: %d %v", code, out)
		}
		if err := publish(t, courier, point(0)); err != nil {
			t.Fatalf("location on the way: %v", err)
		}
		code, out := e.call(t, courierID, "POST", "/v1/orders/"+orderID+"/status", `{"status":"delivered","proof_photo_url":"https://img.example/door.jpg"}`)
		if code != http.StatusOK || out["proof_photo_url"] != "https://img.example/door.jpg" {
			t.Fatalf("delivered: %d %v", code, out)
		}
		ev = decode[tracking.StatusEvent](t, nextEvent(t, buyer, "user:#"+buyerID, tracking.EventOrderStatus))
		if ev.Status != tracking.StatusDelivered || ev.ProofPhotoURL != "https://img.example/door.jpg" {
			t.Fatalf("delivered event %+v", ev)
		}
		e.clock.advance(3 * time.Second)
		wantCode(t, publish(t, courier, point(10)), hub.ErrorPermissionDenied.Code, "tracking has ended")
		body, _ := json.Marshal(map[string]any{"points": []any{point(20)}})
		if code, out := e.call(t, courierID, "POST", "/v1/orders/"+orderID+"/locations", string(body)); code != http.StatusConflict || out["detail"] != "tracking has ended" {
			t.Fatalf("batch after delivered: %d %v", code, out)
		}
		if code, _ := e.setStatus(t, courierID, "cancelled"); code != http.StatusConflict {
			t.Fatalf("cancel after delivered: %d", code)
		}
	})
}

func TestAssign_OnlyTheMerchantOrAdminAndOnlyPaidOrders(t *testing.T) {
	e := newEnv(t, tracking.NewMemoryState())
	good := `{"courier_id":"courier1","address":{"lat":-6.2,"lng":106.8,"text":"Jl. Sudirman 1"}}`
	tests := []struct {
		name, user, order, body string
		status                  int
		field                   string
	}{
		{"buyer", buyerID, orderID, good, http.StatusForbidden, ""},
		{"another merchant", otherHost, orderID, good, http.StatusForbidden, ""},
		{"unpaid order", merchantID, unpaidID, good, http.StatusConflict, ""},
		{"no such order", merchantID, "nope", good, http.StatusNotFound, ""},
		{"no courier", merchantID, orderID, `{"address":{"lat":1,"lng":2}}`, http.StatusBadRequest, "courier_id"},
		{"no address", merchantID, orderID, `{"courier_id":"c"}`, http.StatusBadRequest, "address"},
		{"no lng", merchantID, orderID, `{"courier_id":"c","address":{"lat":1}}`, http.StatusBadRequest, "address.lng"},
		{"bad lat", merchantID, orderID, `{"courier_id":"c","address":{"lat":95,"lng":2}}`, http.StatusBadRequest, "address.lat"},
		{"unknown field", merchantID, orderID, `{"courier_id":"c","courier":"x"}`, http.StatusBadRequest, "courier"},
		{"admin", adminID, orderID, good, http.StatusOK, ""},
		{"merchant", merchantID, orderID, good, http.StatusOK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out := e.call(t, tc.user, "POST", "/v1/orders/"+tc.order+"/courier", tc.body)
			if code != tc.status || (tc.field != "" && out["field"] != tc.field) {
				t.Fatalf("%d %v, want %d field %q", code, out, tc.status, tc.field)
			}
		})
	}
	// After pickup the courier cannot be changed.
	if code, _ := e.setStatus(t, courierID, "picked_up"); code != http.StatusOK {
		t.Fatalf("picked_up: %d", code)
	}
	if code, out := e.call(t, merchantID, "POST", "/v1/orders/"+orderID+"/courier", good); code != http.StatusConflict {
		t.Fatalf("reassign after pickup: %d %v", code, out)
	}
	// The merchant may cancel; locations stop.
	if code, out := e.setStatus(t, merchantID, "cancelled"); code != http.StatusOK {
		t.Fatalf("merchant cancels: %d %v", code, out)
	}
}
