// Package notifytest holds the suite every notify.PendingStore passes.
package notifytest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/notify"
)

// RunPendingStoreTests runs the PendingStore suite. newStore returns an
// empty store for each test.
func RunPendingStoreTests(t *testing.T, newStore func(t *testing.T) notify.PendingStore) {
	tests := []struct {
		name string
		f    func(t *testing.T, s notify.PendingStore)
	}{
		{"AddTakeOnce", testAddTakeOnce},
		{"AddTwice", testAddTwice},
		{"AckWinsOverTake", testAckWinsOverTake},
		{"AckSeveral", testAckSeveral},
		{"AckIsPerUser", testAckIsPerUser},
		{"Expiry", testExpiry},
		{"InvalidKeys", testInvalidKeys},
		{"AckRacesWindowEnd", testAckRacesWindowEnd},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.f(t, newStore(t)) })
	}
}

func add(t *testing.T, s notify.PendingStore, user, event string, ttl time.Duration) bool {
	t.Helper()
	ok, err := s.Add(t.Context(), user, event, ttl)
	if err != nil {
		t.Fatalf("Add(%s, %s): %v", user, event, err)
	}
	return ok
}

func take(t *testing.T, s notify.PendingStore, user, event string) bool {
	t.Helper()
	ok, err := s.Take(t.Context(), user, event)
	if err != nil {
		t.Fatalf("Take(%s, %s): %v", user, event, err)
	}
	return ok
}

func ack(t *testing.T, s notify.PendingStore, user string, events ...string) int {
	t.Helper()
	n, err := s.Ack(t.Context(), user, events)
	if err != nil {
		t.Fatalf("Ack(%s, %v): %v", user, events, err)
	}
	return n
}

func testAddTakeOnce(t *testing.T, s notify.PendingStore) {
	if !add(t, s, "u1", "ev_1", time.Minute) {
		t.Fatal("Add of a new window reported it open already")
	}
	if !take(t, s, "u1", "ev_1") {
		t.Fatal("Take of an open window found it closed")
	}
	if take(t, s, "u1", "ev_1") {
		t.Fatal("a window was taken twice")
	}
	if take(t, s, "u1", "ev_never") {
		t.Fatal("Take of an unknown window found it open")
	}
}

func testAddTwice(t *testing.T, s notify.PendingStore) {
	add(t, s, "u1", "ev_1", time.Minute)
	if add(t, s, "u1", "ev_1", time.Minute) {
		t.Fatal("Add of an open window reported it new")
	}
	if !take(t, s, "u1", "ev_1") {
		t.Fatal("the window closed by the second Add")
	}
	if !add(t, s, "u1", "ev_1", time.Minute) {
		t.Fatal("a closed window could not be opened again")
	}
}

func testAckWinsOverTake(t *testing.T, s notify.PendingStore) {
	add(t, s, "u1", "ev_1", time.Minute)
	if n := ack(t, s, "u1", "ev_1"); n != 1 {
		t.Fatalf("Ack of an open window: %d, want 1", n)
	}
	if take(t, s, "u1", "ev_1") {
		t.Fatal("Take found an acknowledged window open")
	}
	if n := ack(t, s, "u1", "ev_1"); n != 0 {
		t.Fatalf("a second Ack: %d, want 0", n)
	}
}

func testAckSeveral(t *testing.T, s notify.PendingStore) {
	for i := range 5 {
		add(t, s, "u1", fmt.Sprintf("ev_%d", i), time.Minute)
	}
	if n := ack(t, s, "u1", "ev_0", "ev_2", "ev_4", "ev_9", "ev_2"); n != 3 {
		t.Fatalf("Ack of 3 open, 1 unknown and 1 repeated: %d, want 3", n)
	}
	for i, want := range []bool{false, true, false, true, false} {
		if got := take(t, s, "u1", fmt.Sprintf("ev_%d", i)); got != want {
			t.Errorf("Take(ev_%d) = %v, want %v", i, got, want)
		}
	}
	if n := ack(t, s, "u1"); n != 0 {
		t.Fatalf("Ack of no ids: %d", n)
	}
}

func testAckIsPerUser(t *testing.T, s notify.PendingStore) {
	add(t, s, "u1", "ev_1", time.Minute)
	if n := ack(t, s, "u2", "ev_1"); n != 0 {
		t.Fatalf("another user acknowledged u1's event: %d", n)
	}
	if !take(t, s, "u1", "ev_1") {
		t.Fatal("another user's Ack closed the window")
	}
}

func testExpiry(t *testing.T, s notify.PendingStore) {
	add(t, s, "u1", "ev_1", 50*time.Millisecond)
	time.Sleep(150 * time.Millisecond)
	if take(t, s, "u1", "ev_1") {
		t.Fatal("Take found a window open past its ttl")
	}
	if !add(t, s, "u1", "ev_1", time.Minute) {
		t.Fatal("an expired window blocks a new one")
	}
}

func testInvalidKeys(t *testing.T, s notify.PendingStore) {
	ctx := t.Context()
	if _, err := s.Add(ctx, "", "ev_1", time.Minute); err == nil {
		t.Error("Add without a user succeeded")
	}
	if _, err := s.Add(ctx, "u1", "", time.Minute); err == nil {
		t.Error("Add without an event succeeded")
	}
	if _, err := s.Add(ctx, "u1", "ev_1", 0); err == nil {
		t.Error("Add without a ttl succeeded")
	}
	if _, err := s.Take(ctx, "", "ev_1"); err == nil {
		t.Error("Take without a user succeeded")
	}
}

// testAckRacesWindowEnd runs an Ack and a Take on one window at the same
// moment, many times: exactly one of them must find it open.
func testAckRacesWindowEnd(t *testing.T, s notify.PendingStore) {
	const rounds = 100
	acked, pushed := 0, 0
	for i := range rounds {
		event := fmt.Sprintf("ev_race_%d", i)
		add(t, s, "racer", event, time.Minute)
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			n     int
			open  bool
			errs  [2]error
		)
		wg.Go(func() {
			<-start
			n, errs[0] = s.Ack(t.Context(), "racer", []string{event})
		})
		wg.Go(func() {
			<-start
			open, errs[1] = s.Take(t.Context(), "racer", event)
		})
		close(start)
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("round %d: %v %v", i, errs[0], errs[1])
		}
		switch {
		case n == 1 && !open:
			acked++
		case n == 0 && open:
			pushed++
		default:
			t.Fatalf("round %d: ack won %d and window end found it open %v: want exactly one winner", i, n, open)
		}
	}
	t.Logf("%d rounds: ack won %d, window end won %d", rounds, acked, pushed)
}
