package tracking_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/livehub/livehub/internal/redistest"
	"github.com/livehub/livehub/internal/tracking"
)

func keyPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

func newRedisClient(t testing.TB, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opts.PoolSize = 64
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestState(t *testing.T) {
	srv := redistest.Start(t)
	impls := map[string]func(t *testing.T) tracking.State{
		"memory": func(*testing.T) tracking.State { return tracking.NewMemoryState() },
		"redis": func(t *testing.T) tracking.State {
			return tracking.NewRedisState(newRedisClient(t, srv.URL), tracking.RedisStateOptions{Prefix: keyPrefix()})
		},
	}
	for name, newState := range impls {
		t.Run(name, func(t *testing.T) { runStateTests(t, newState) })
	}
}

// runStateTests is the suite every State passes.
func runStateTests(t *testing.T, newState func(t *testing.T) tracking.State) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s tracking.State)
	}{
		{"Assign_RecordsAndAllowsReassignUntilPickedUp", testAssign},
		{"Status_OnlyForwardAndCancelledEnds", testStatusForward},
		{"Append_CompareAndSetThrottleAndCap", testAppend},
		{"Append_RefusedAfterDelivered", testAppendEnded},
		{"Append_OneWinnerUnderConcurrency", testAppendConcurrent},
		{"MarkArriving_TrueExactlyOnce", testArrivingOnce},
		{"Orders_AreSeparateEvenWithBracesInIDs", testOrdersSeparate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newState(t))
		})
	}
}

func bg() context.Context { return context.Background() }

var t0 = time.UnixMilli(1_750_000_000_000).UTC()

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func assign(t *testing.T, s tracking.State, order, courier string) tracking.Assignment {
	t.Helper()
	a, err := s.Assign(bg(), tracking.Assignment{
		OrderID: order, CourierID: courier, BuyerID: "b1", MerchantID: "m1",
		Address: tracking.Address{Lat: -6.2, Lng: 106.8, Text: "Jl. Sudirman 1"}, AssignedAt: t0,
	})
	must(t, err)
	return a
}

func pt(dt int64) tracking.Point {
	return tracking.Point{Lat: -6.2, Lng: 106.8, Accuracy: 5, DeviceTime: dt}
}

func testAssign(t *testing.T, s tracking.State) {
	if _, err := s.Get(bg(), "o1"); !errors.Is(err, tracking.ErrNotAssigned) {
		t.Fatalf("Get before assign: %v, want ErrNotAssigned", err)
	}
	a := assign(t, s, "o1", "c1")
	if a.CourierID != "c1" || a.Status != tracking.StatusAssigned || a.BuyerID != "b1" || a.MerchantID != "m1" ||
		a.Address.Text != "Jl. Sudirman 1" || !a.AssignedAt.Equal(t0) {
		t.Fatalf("assignment %+v", a)
	}
	a = assign(t, s, "o1", "c2")
	if a.CourierID != "c2" {
		t.Fatalf("reassigned to %q, want c2", a.CourierID)
	}
	_, _, err := s.SetStatus(bg(), "o1", tracking.StatusPickedUp, "", t0.Add(time.Minute))
	must(t, err)
	if _, err := s.Assign(bg(), tracking.Assignment{OrderID: "o1", CourierID: "c3", AssignedAt: t0}); !errors.Is(err, tracking.ErrBackward) {
		t.Fatalf("reassign after pickup: %v, want ErrBackward", err)
	}
	snap, err := s.Get(bg(), "o1")
	must(t, err)
	if snap.CourierID != "c2" || snap.Status != tracking.StatusPickedUp || !snap.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("snapshot %+v", snap)
	}
}

func testStatusForward(t *testing.T, s tracking.State) {
	if _, _, err := s.SetStatus(bg(), "none", tracking.StatusPickedUp, "", t0); !errors.Is(err, tracking.ErrNotAssigned) {
		t.Fatalf("status of unassigned: %v", err)
	}
	assign(t, s, "o1", "c1")
	step := func(to tracking.Status, wantChanged bool, wantErr error) {
		t.Helper()
		_, changed, err := s.SetStatus(bg(), "o1", to, "", t0)
		if !errors.Is(err, wantErr) || changed != wantChanged {
			t.Fatalf("-> %s: changed %v err %v, want %v %v", to, changed, err, wantChanged, wantErr)
		}
	}
	step(tracking.StatusOnTheWay, true, nil)
	step(tracking.StatusOnTheWay, false, nil)
	step(tracking.StatusPickedUp, false, tracking.ErrBackward)
	a, changed, err := s.SetStatus(bg(), "o1", tracking.StatusDelivered, "https://img.example/p.jpg", t0)
	if err != nil || !changed || a.ProofPhotoURL != "https://img.example/p.jpg" {
		t.Fatalf("delivered: %+v %v %v", a, changed, err)
	}
	step(tracking.StatusCancelled, false, tracking.ErrBackward)

	assign(t, s, "o2", "c1")
	step2 := func(to tracking.Status, wantErr error) {
		t.Helper()
		if _, _, err := s.SetStatus(bg(), "o2", to, "", t0); !errors.Is(err, wantErr) {
			t.Fatalf("o2 -> %s: %v, want %v", to, err, wantErr)
		}
	}
	step2(tracking.StatusCancelled, nil)
	step2(tracking.StatusDelivered, tracking.ErrBackward)
	step2(tracking.StatusOnTheWay, tracking.ErrBackward)
}

func testAppend(t *testing.T, s tracking.State) {
	req := func(prev int64, now time.Time, pts ...tracking.Point) tracking.AppendRequest {
		return tracking.AppendRequest{OrderID: "o1", PrevDeviceTime: prev, Points: pts, Now: now, Throttle: 2 * time.Second, PathMax: 3}
	}
	if err := s.Append(bg(), req(0, t0, pt(1))); !errors.Is(err, tracking.ErrNotAssigned) {
		t.Fatalf("append unassigned: %v", err)
	}
	assign(t, s, "o1", "c1")
	must(t, s.Append(bg(), req(0, t0, pt(1000))))
	if err := s.Append(bg(), req(0, t0.Add(5*time.Second), pt(2000))); !errors.Is(err, tracking.ErrStale) {
		t.Fatalf("append with a stale prev: %v", err)
	}
	var te *tracking.ThrottledError
	if err := s.Append(bg(), req(1000, t0.Add(500*time.Millisecond), pt(2000))); !errors.As(err, &te) || te.Wait != 1500*time.Millisecond {
		t.Fatalf("append too soon: %v, want wait 1500ms", err)
	}
	must(t, s.Append(bg(), req(1000, t0.Add(2*time.Second), pt(2000))))
	// A batch: no throttle, every point joins the path, the newest is last.
	batch := req(2000, t0.Add(2100*time.Millisecond), pt(3000), pt(4000), pt(5000))
	batch.Throttle = 0
	must(t, s.Append(bg(), batch))
	snap, err := s.Get(bg(), "o1")
	must(t, err)
	if snap.Last == nil || snap.Last.DeviceTime != 5000 || snap.PathLen != 3 || !snap.LastAt.Equal(t0.Add(2100*time.Millisecond)) {
		t.Fatalf("snapshot after batch: last %+v len %d at %v", snap.Last, snap.PathLen, snap.LastAt)
	}
	path, err := s.Path(bg(), "o1", 0)
	must(t, err)
	if len(path) != 3 || path[0].DeviceTime != 3000 || path[2].DeviceTime != 5000 || path[2].Accuracy != 5 {
		t.Fatalf("path capped at 3: %+v", path)
	}
	path, err = s.Path(bg(), "o1", 2)
	must(t, err)
	if len(path) != 2 || path[0].DeviceTime != 4000 {
		t.Fatalf("last 2 of path: %+v", path)
	}
}

func testAppendEnded(t *testing.T, s tracking.State) {
	assign(t, s, "o1", "c1")
	_, _, err := s.SetStatus(bg(), "o1", tracking.StatusDelivered, "", t0)
	must(t, err)
	err = s.Append(bg(), tracking.AppendRequest{OrderID: "o1", Points: []tracking.Point{pt(1000)}, Now: t0})
	if !errors.Is(err, tracking.ErrEnded) {
		t.Fatalf("append after delivered: %v, want ErrEnded", err)
	}
}

func testAppendConcurrent(t *testing.T, s tracking.State) {
	assign(t, s, "o1", "c1")
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Append(bg(), tracking.AppendRequest{OrderID: "o1", Points: []tracking.Point{pt(int64(1000 + i))}, Now: t0, Throttle: time.Second, PathMax: 10})
			if err == nil {
				wins.Add(1)
			} else if !errors.Is(err, tracking.ErrStale) {
				t.Errorf("append %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d points accepted against the same last point, want 1", wins.Load())
	}
}

func testArrivingOnce(t *testing.T, s tracking.State) {
	if _, err := s.MarkArriving(bg(), "o1"); !errors.Is(err, tracking.ErrNotAssigned) {
		t.Fatalf("mark unassigned: %v", err)
	}
	assign(t, s, "o1", "c1")
	var firsts atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first, err := s.MarkArriving(bg(), "o1")
			if err != nil {
				t.Error(err)
			}
			if first {
				firsts.Add(1)
			}
		}()
	}
	wg.Wait()
	if firsts.Load() != 1 {
		t.Fatalf("arriving set first %d times, want 1", firsts.Load())
	}
	snap, err := s.Get(bg(), "o1")
	must(t, err)
	if !snap.Arriving {
		t.Fatal("snapshot does not show arriving")
	}
}

func testOrdersSeparate(t *testing.T, s tracking.State) {
	ids := []string{"a", "{a}", "a}", "x{y"}
	for i, id := range ids {
		assign(t, s, id, fmt.Sprintf("c%d", i))
		must(t, s.Append(bg(), tracking.AppendRequest{OrderID: id, Points: []tracking.Point{pt(int64(1000 * (i + 1)))}, Now: t0}))
	}
	for i, id := range ids {
		snap, err := s.Get(bg(), id)
		must(t, err)
		if snap.CourierID != fmt.Sprintf("c%d", i) || snap.Last.DeviceTime != int64(1000*(i+1)) || snap.PathLen != 1 || snap.OrderID != id {
			t.Fatalf("order %q: %+v", id, snap)
		}
	}
}
