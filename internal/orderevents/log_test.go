package orderevents_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/orderevents"
	"github.com/livehub/livehub/internal/redistest"
)

// testClaimIdle is the claim idle time of the logs under test: long enough
// that a read right after another does not reclaim, short enough to wait for.
const testClaimIdle = 300 * time.Millisecond

// newLogFunc returns a fresh, empty Log with the given claim idle time.
type newLogFunc func(t *testing.T, claimIdle time.Duration) orderevents.Log

func newMemoryLog(t *testing.T, claimIdle time.Duration) orderevents.Log {
	return orderevents.NewMemoryLog(orderevents.MemoryOptions{ClaimIdle: claimIdle})
}

func newRedisLog(t *testing.T, claimIdle time.Duration) orderevents.Log {
	t.Helper()
	srv := redistest.Start(t)
	l, err := orderevents.NewRedisLog(orderevents.RedisOptions{
		URL:       srv.URL,
		Key:       "t.orderevents",
		ClaimIdle: claimIdle,
		Logger:    slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	if err := l.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	return l
}

// logs are the implementations every shared test runs against.
var logs = []struct {
	name string
	new  newLogFunc
}{
	{"memory", newMemoryLog},
	{"redis", newRedisLog},
}

func TestLogs(t *testing.T) {
	for _, impl := range logs {
		t.Run(impl.name, func(t *testing.T) {
			runLogTests(t, impl.new)
		})
	}
}

// runLogTests is the suite every Log implementation passes.
func runLogTests(t *testing.T, newLog newLogFunc) {
	t.Run("AppendThenReadDeliversInOrder", func(t *testing.T) {
		l := newLog(t, testClaimIdle)
		var want []orderevents.Event
		for i := range 3 {
			e := testEvent(t, i)
			want = append(want, e)
			mustAppend(t, l, e)
		}
		ds := mustRead(t, l, "g", "c1", 10, 0)
		if len(ds) != 3 {
			t.Fatalf("read %d deliveries, want 3", len(ds))
		}
		for i, d := range ds {
			if d.ID == "" {
				t.Errorf("delivery %d has no id", i)
			}
			assertEvent(t, d.Event, want[i])
		}
	})

	t.Run("AppendFillsIDAndTimeAndRefusesIncompleteEvents", func(t *testing.T) {
		l := newLog(t, testClaimIdle)
		before := time.Now()
		mustAppend(t, l, orderevents.Event{Type: orderevents.TypeOrderPaid, OrderID: "ord_1"})
		ds := mustRead(t, l, "g", "c1", 1, 0)
		if len(ds) != 1 || ds[0].Event.ID == "" || ds[0].Event.At.Before(before.Add(-time.Second)) {
			t.Fatalf("deliveries %+v", ds)
		}
		for _, e := range []orderevents.Event{
			{OrderID: "ord_1"},
			{Type: "order.paid"},
			{Type: "order.paid", OrderID: "ord_1", Data: []byte("{not json")},
		} {
			if err := l.Append(context.Background(), e); commerce.ErrorCode(err) != commerce.EINVALID {
				t.Errorf("Append(%+v) = %v, want EINVALID", e, err)
			}
		}
	})

	t.Run("ReadReturnsAtMostCount", func(t *testing.T) {
		l := newLog(t, testClaimIdle)
		for i := range 5 {
			mustAppend(t, l, testEvent(t, i))
		}
		first := mustRead(t, l, "g", "c1", 2, 0)
		second := mustRead(t, l, "g", "c1", 2, 0)
		third := mustRead(t, l, "g", "c1", 2, 0)
		if len(first) != 2 || len(second) != 2 || len(third) != 1 {
			t.Fatalf("read %d, %d, %d; want 2, 2, 1", len(first), len(second), len(third))
		}
		if first[0].Event.OrderID != "ord_0" || second[0].Event.OrderID != "ord_2" || third[0].Event.OrderID != "ord_4" {
			t.Errorf("out of order: %s %s %s", first[0].Event.OrderID, second[0].Event.OrderID, third[0].Event.OrderID)
		}
	})

	t.Run("UnackedDeliveryRedeliveredAfterIdleTime", func(t *testing.T) {
		l := newLog(t, testClaimIdle)
		e := testEvent(t, 0)
		mustAppend(t, l, e)
		first := mustRead(t, l, "g", "c1", 1, 0)
		if len(first) != 1 {
			t.Fatalf("read %d", len(first))
		}
		// Pending on c1 and not idle yet: nobody else gets it.
		if ds := mustRead(t, l, "g", "c2", 1, 0); len(ds) != 0 {
			t.Fatalf("c2 got %+v while c1 holds it", ds)
		}
		time.Sleep(testClaimIdle + 50*time.Millisecond)
		again := mustRead(t, l, "g", "c2", 1, 0)
		if len(again) != 1 || again[0].ID != first[0].ID {
			t.Fatalf("after the idle time c2 got %+v, want %s", again, first[0].ID)
		}
		assertEvent(t, again[0].Event, e)
		if err := l.Ack(context.Background(), "g", again[0].ID); err != nil {
			t.Fatal(err)
		}
		time.Sleep(testClaimIdle + 50*time.Millisecond)
		if ds := mustRead(t, l, "g", "c3", 1, 0); len(ds) != 0 {
			t.Fatalf("acked delivery came back: %+v", ds)
		}
	})

	t.Run("AckedDeliveryNotRedelivered", func(t *testing.T) {
		l := newLog(t, testClaimIdle)
		mustAppend(t, l, testEvent(t, 0))
		mustAppend(t, l, testEvent(t, 1))
		ds := mustRead(t, l, "g", "c1", 2, 0)
		if err := l.Ack(context.Background(), "g", ds[0].ID); err != nil {
			t.Fatal(err)
		}
		// Unknown ids and groups are ignored.
		if err := l.Ack(context.Background(), "g", "999999-0"); err != nil {
			t.Errorf("Ack of an unknown id: %v", err)
		}
		if err := l.Ack(context.Background(), "nogroup", ds[1].ID); err != nil {
			t.Errorf("Ack in an unknown group: %v", err)
		}
		time.Sleep(testClaimIdle + 50*time.Millisecond)
		again := mustRead(t, l, "g", "c2", 10, 0)
		if len(again) != 1 || again[0].ID != ds[1].ID {
			t.Fatalf("redelivered %+v, want only %s", again, ds[1].ID)
		}
	})

	t.Run("TouchKeepsDeliveryFromOtherConsumers", func(t *testing.T) {
		l := newLog(t, testClaimIdle)
		mustAppend(t, l, testEvent(t, 0))
		ds := mustRead(t, l, "g", "c1", 1, 0)
		deadline := time.Now().Add(3 * testClaimIdle)
		for time.Now().Before(deadline) {
			if err := l.Touch(context.Background(), "g", "c1", ds[0].ID); err != nil {
				t.Fatal(err)
			}
			time.Sleep(testClaimIdle / 4)
			if got := mustRead(t, l, "g", "c2", 1, 0); len(got) != 0 {
				t.Fatalf("touched delivery handed to c2: %+v", got)
			}
		}
		time.Sleep(testClaimIdle + 50*time.Millisecond)
		if got := mustRead(t, l, "g", "c2", 1, 0); len(got) != 1 || got[0].ID != ds[0].ID {
			t.Fatalf("untouched delivery not redelivered: %+v", got)
		}
		// Touching an acked delivery does not bring it back.
		if err := l.Ack(context.Background(), "g", ds[0].ID); err != nil {
			t.Fatal(err)
		}
		if err := l.Touch(context.Background(), "g", "c1", ds[0].ID); err != nil {
			t.Fatal(err)
		}
		time.Sleep(testClaimIdle + 50*time.Millisecond)
		if got := mustRead(t, l, "g", "c2", 1, 0); len(got) != 0 {
			t.Fatalf("touch revived an acked delivery: %+v", got)
		}
	})

	t.Run("GroupsEachReceiveEveryEvent", func(t *testing.T) {
		l := newLog(t, testClaimIdle)
		mustAppend(t, l, testEvent(t, 0))
		a := mustRead(t, l, "a", "c1", 10, 0)
		mustAppend(t, l, testEvent(t, 1))
		// A group read for the first time starts at the oldest event.
		b := mustRead(t, l, "b", "c1", 10, 0)
		a2 := mustRead(t, l, "a", "c1", 10, 0)
		if len(a) != 1 || len(a2) != 1 || len(b) != 2 {
			t.Fatalf("group a read %d then %d, group b %d", len(a), len(a2), len(b))
		}
	})

	t.Run("BlockingReadWakesOnAppend", func(t *testing.T) {
		l := newLog(t, testClaimIdle)
		mustRead(t, l, "g", "c1", 1, 0) // creates the group
		appended := make(chan error, 1)
		go func() {
			time.Sleep(100 * time.Millisecond)
			appended <- l.Append(context.Background(), testEvent(t, 7))
		}()
		defer func() {
			if err := <-appended; err != nil {
				t.Errorf("Append: %v", err)
			}
		}()
		start := time.Now()
		ds := mustRead(t, l, "g", "c1", 1, 5*time.Second)
		if len(ds) != 1 || ds[0].Event.OrderID != "ord_7" {
			t.Fatalf("read %+v", ds)
		}
		if waited := time.Since(start); waited > 2*time.Second {
			t.Errorf("read returned after %v, long after the append", waited)
		}
	})

	t.Run("BlockingReadTimesOutEmpty", func(t *testing.T) {
		l := newLog(t, testClaimIdle)
		start := time.Now()
		ds := mustRead(t, l, "g", "c1", 1, 150*time.Millisecond)
		if len(ds) != 0 {
			t.Fatalf("read %+v from an empty log", ds)
		}
		if waited := time.Since(start); waited < 100*time.Millisecond {
			t.Errorf("read returned after %v, before its block time", waited)
		}
	})

	t.Run("CapDropsOldestEvents", func(t *testing.T) {
		l := newLog(t, testClaimIdle)
		for i := range 3 {
			mustAppend(t, l, testEvent(t, i))
		}
		ds := mustRead(t, l, "g", "c1", 10, 0)
		if len(ds) != 3 {
			t.Fatalf("read %d, want 3", len(ds))
		}
	})
}

func TestMemoryLog_CapDropsOldestEventsPendingOrNot(t *testing.T) {
	l := orderevents.NewMemoryLog(orderevents.MemoryOptions{MaxLen: 3, ClaimIdle: 10 * time.Millisecond})
	mustAppend(t, l, testEvent(t, 0))
	if ds := mustRead(t, l, "g", "c1", 1, 0); len(ds) != 1 {
		t.Fatal("no delivery")
	}
	for i := 1; i < 6; i++ {
		mustAppend(t, l, testEvent(t, i))
	}
	if l.Len() != 3 {
		t.Fatalf("Len = %d, want 3", l.Len())
	}
	time.Sleep(20 * time.Millisecond)
	ds := mustRead(t, l, "g", "c2", 10, 0)
	var got []string
	for _, d := range ds {
		got = append(got, d.Event.OrderID)
	}
	if strings.Join(got, ",") != "ord_3,ord_4,ord_5" {
		t.Fatalf("read %v, want the three newest (the trimmed pending one gone)", got)
	}
}

func TestMemoryLog_ReadEndsWithContext(t *testing.T) {
	l := orderevents.NewMemoryLog(orderevents.MemoryOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := l.Read(ctx, "g", "c", 1, time.Minute); err != context.DeadlineExceeded {
		t.Fatalf("Read = %v, want context.DeadlineExceeded", err)
	}
}

func TestRedisLog_StreamIsCapped(t *testing.T) {
	srv := redistest.Start(t)
	l, err := orderevents.NewRedisLog(orderevents.RedisOptions{URL: srv.URL, Key: "capped", MaxLen: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	for i := range 1000 {
		mustAppend(t, l, testEvent(t, i))
	}
	n, err := srv.Do("XLEN", "capped")
	if err != nil {
		t.Fatal(err)
	}
	// MAXLEN ~ trims whole stream nodes (100 entries by default).
	if got := atoi(t, n); got > 10+100 || got < 10 {
		t.Fatalf("XLEN = %d, want about 10", got)
	}
}

func TestRedisLog_RecoversLostGroupAfterRestart(t *testing.T) {
	srv := redistest.Start(t)
	l, err := orderevents.NewRedisLog(orderevents.RedisOptions{URL: srv.URL, Key: "k", ClaimIdle: testClaimIdle})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	mustAppend(t, l, testEvent(t, 0))
	mustRead(t, l, "g", "c1", 1, 0)
	srv.Restart() // no persistence: the stream and the group are gone
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := l.Append(context.Background(), testEvent(t, 1))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Append after restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ds, err := l.Read(context.Background(), "g", "c1", 1, 0)
	if err != nil || len(ds) != 1 || ds[0].Event.OrderID != "ord_1" {
		t.Fatalf("Read after restart = %+v, %v", ds, err)
	}
}

func TestRedisLog_DropsUndecodableEntries(t *testing.T) {
	srv := redistest.Start(t)
	l, err := orderevents.NewRedisLog(orderevents.RedisOptions{
		URL: srv.URL, Key: "k", Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	mustRead(t, l, "g", "c1", 1, 0)
	if _, err := srv.Do("XADD", "k", "*", "e", "not json"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, testEvent(t, 1))
	ds := mustRead(t, l, "g", "c1", 10, 0)
	if len(ds) != 1 || ds[0].Event.OrderID != "ord_1" {
		t.Fatalf("read %+v", ds)
	}
	if pending, _ := srv.Do("XPENDING", "k", "g"); !strings.HasPrefix(pending, "1\n") {
		t.Errorf("XPENDING = %q, want only the good entry pending", pending)
	}
}

func TestNewRedisLog_RefusesOtherSchemes(t *testing.T) {
	for _, u := range []string{"http://x", "redis+cluster://a:1,b:2", "nonsense"} {
		if _, err := orderevents.NewRedisLog(orderevents.RedisOptions{URL: u}); err == nil {
			t.Errorf("URL %q accepted", u)
		}
	}
}

func testEvent(t testing.TB, i int) orderevents.Event {
	t.Helper()
	o := commerce.Order{ID: fmt.Sprintf("ord_%d", i), Amount: 49000, Quantity: 1, Status: commerce.OrderPendingPayment}
	e, err := orderevents.NewEvent(orderevents.TypeOrderPlaced, o, time.Date(2026, 3, 1, 10, 0, i, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func assertEvent(t *testing.T, got, want orderevents.Event) {
	t.Helper()
	if got.ID != want.ID || got.Type != want.Type || got.OrderID != want.OrderID || !got.At.Equal(want.At) {
		t.Errorf("event %+v, want %+v", got, want)
	}
	var g, w any
	if err := json.Unmarshal(got.Data, &g); err != nil {
		t.Fatalf("data %s: %v", got.Data, err)
	}
	_ = json.Unmarshal(want.Data, &w)
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Errorf("data %s, want %s", gb, wb)
	}
}

func mustAppend(t testing.TB, l orderevents.Log, e orderevents.Event) {
	t.Helper()
	if err := l.Append(context.Background(), e); err != nil {
		t.Errorf("Append: %v", err)
	}
}

func mustRead(t testing.TB, l orderevents.Log, group, consumer string, count int, block time.Duration) []orderevents.Delivery {
	t.Helper()
	ds, err := l.Read(context.Background(), group, consumer, count, block)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return ds
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}

// testWriter sends log lines to the test's log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
