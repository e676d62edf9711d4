package pushtest

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/push"
)

// RunDeviceStoreTests runs the suite every push.DeviceStore passes.
// newStore returns an empty store private to the (sub)test it is given.
func RunDeviceStoreTests(t *testing.T, newStore func(t *testing.T) push.DeviceStore) {
	t.Run("RegisterList", func(t *testing.T) { testRegisterList(t, newStore(t)) })
	t.Run("RegisterReplaces", func(t *testing.T) { testRegisterReplaces(t, newStore(t)) })
	t.Run("TokenMovesToNewUser", func(t *testing.T) { testTokenMoves(t, newStore(t)) })
	t.Run("Unregister", func(t *testing.T) { testUnregister(t, newStore(t)) })
	t.Run("Remove", func(t *testing.T) { testRemove(t, newStore(t)) })
	t.Run("Invalid", func(t *testing.T) { testInvalidDevice(t, newStore(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrentRegister(t, newStore(t)) })
}

func mustNoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func list(t *testing.T, s push.DeviceStore, user string) []push.Device {
	t.Helper()
	ds, err := s.List(t.Context(), user)
	mustNoErr(t, err)
	if ds == nil {
		t.Fatalf("List(%q) = nil, want an empty slice", user)
	}
	return ds
}

func tokensOf(ds []push.Device) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Token
	}
	return out
}

func wantTokens(t *testing.T, s push.DeviceStore, user string, want ...string) {
	t.Helper()
	got := tokensOf(list(t, s, user))
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("List(%q) tokens = %q, want %q", user, got, want)
	}
}

func testRegisterList(t *testing.T, s push.DeviceStore) {
	wantTokens(t, s, "nobody")
	at := time.Date(2030, 5, 17, 19, 0, 0, 123456789, time.FixedZone("WIB", 7*3600))
	d := push.Device{UserID: "u1", Platform: push.PlatformIOS, Token: IOSToken(2), AppID: "com.example.live", Locale: "id-ID", AppVersion: "3.1.0", UpdatedAt: at}
	mustNoErr(t, s.Register(t.Context(), d))
	before := time.Now().Add(-time.Second)
	mustNoErr(t, s.Register(t.Context(), push.Device{UserID: "u1", Platform: push.PlatformAndroid, Token: AndroidToken(1)}))
	mustNoErr(t, s.Register(t.Context(), push.Device{UserID: "u2", Platform: push.PlatformIOS, Token: IOSToken(9)}))

	ds := list(t, s, "u1")
	if len(ds) != 2 {
		t.Fatalf("u1 has %d devices, want 2: %+v", len(ds), ds)
	}
	if !slices.IsSortedFunc(ds, func(a, b push.Device) int { return strings.Compare(a.Token, b.Token) }) {
		t.Fatalf("devices not ordered by token: %q", tokensOf(ds))
	}
	var got push.Device
	for _, x := range ds {
		if x.Token == d.Token {
			got = x
		}
	}
	want := d
	want.UpdatedAt = at.UTC().Truncate(time.Millisecond)
	if got != want {
		t.Fatalf("device = %+v, want %+v", got, want)
	}
	for _, x := range ds {
		if x.Token == AndroidToken(1) && (x.UpdatedAt.Before(before) || x.UpdatedAt.Location() != time.UTC) {
			t.Fatalf("zero UpdatedAt became %v, want now in UTC", x.UpdatedAt)
		}
	}
	wantTokens(t, s, "u2", IOSToken(9))
}

func testRegisterReplaces(t *testing.T, s push.DeviceStore) {
	tok := IOSToken(1)
	mustNoErr(t, s.Register(t.Context(), push.Device{UserID: "u1", Platform: push.PlatformIOS, Token: tok, AppVersion: "1.0"}))
	mustNoErr(t, s.Register(t.Context(), push.Device{UserID: "u1", Platform: push.PlatformIOS, Token: tok, AppVersion: "2.0", Locale: "en-US"}))
	ds := list(t, s, "u1")
	if len(ds) != 1 || ds[0].AppVersion != "2.0" || ds[0].Locale != "en-US" {
		t.Fatalf("after re-registering: %+v, want one device at 2.0 en-US", ds)
	}
}

func testTokenMoves(t *testing.T, s push.DeviceStore) {
	tok := AndroidToken(1)
	mustNoErr(t, s.Register(t.Context(), push.Device{UserID: "alice", Platform: push.PlatformAndroid, Token: tok}))
	mustNoErr(t, s.Register(t.Context(), push.Device{UserID: "alice", Platform: push.PlatformAndroid, Token: AndroidToken(2)}))
	mustNoErr(t, s.Register(t.Context(), push.Device{UserID: "bob", Platform: push.PlatformAndroid, Token: tok}))
	wantTokens(t, s, "alice", AndroidToken(2))
	wantTokens(t, s, "bob", tok)
	// Alice logging out of a phone Bob now uses leaves Bob's entry alone.
	mustNoErr(t, s.Unregister(t.Context(), "alice", tok))
	wantTokens(t, s, "bob", tok)
}

func testUnregister(t *testing.T, s push.DeviceStore) {
	mustNoErr(t, s.Register(t.Context(), push.Device{UserID: "u1", Platform: push.PlatformIOS, Token: IOSToken(1)}))
	mustNoErr(t, s.Register(t.Context(), push.Device{UserID: "u1", Platform: push.PlatformIOS, Token: IOSToken(2)}))
	mustNoErr(t, s.Unregister(t.Context(), "u2", IOSToken(1)))
	wantTokens(t, s, "u1", sortedStrings(IOSToken(1), IOSToken(2))...)
	mustNoErr(t, s.Unregister(t.Context(), "u1", IOSToken(1)))
	wantTokens(t, s, "u1", IOSToken(2))
	mustNoErr(t, s.Unregister(t.Context(), "u1", "unknown"))
	mustNoErr(t, s.Unregister(t.Context(), "u1", IOSToken(2)))
	wantTokens(t, s, "u1")
	// A token unregistered can be registered again.
	mustNoErr(t, s.Register(t.Context(), push.Device{UserID: "u1", Platform: push.PlatformIOS, Token: IOSToken(2)}))
	wantTokens(t, s, "u1", IOSToken(2))
}

func testRemove(t *testing.T, s push.DeviceStore) {
	mustNoErr(t, s.Register(t.Context(), push.Device{UserID: "u1", Platform: push.PlatformIOS, Token: IOSToken(1)}))
	mustNoErr(t, s.Register(t.Context(), push.Device{UserID: "u1", Platform: push.PlatformAndroid, Token: AndroidToken(1)}))
	mustNoErr(t, s.Remove(t.Context(), IOSToken(1)))
	wantTokens(t, s, "u1", AndroidToken(1))
	mustNoErr(t, s.Remove(t.Context(), IOSToken(1)))
	mustNoErr(t, s.Remove(t.Context(), "never-registered"))
	wantTokens(t, s, "u1", AndroidToken(1))
}

func testInvalidDevice(t *testing.T, s push.DeviceStore) {
	for _, tc := range []struct {
		field string
		d     push.Device
	}{
		{"user_id", push.Device{Platform: push.PlatformIOS, Token: IOSToken(1)}},
		{"token", push.Device{UserID: "u1", Platform: push.PlatformIOS}},
		{"platform", push.Device{UserID: "u1", Platform: "windows", Token: IOSToken(1)}},
	} {
		err := s.Register(t.Context(), tc.d)
		var e *commerce.Error
		if commerce.ErrorCode(err) != commerce.EINVALID || !errors.As(err, &e) || e.Field != tc.field {
			t.Errorf("Register(%+v) = %v, want EINVALID on %s", tc.d, err, tc.field)
		}
	}
	wantTokens(t, s, "u1")
}

func testConcurrentRegister(t *testing.T, s push.DeviceStore) {
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- s.Register(t.Context(), push.Device{UserID: "u1", Platform: push.PlatformIOS, Token: IOSToken(i)})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		mustNoErr(t, err)
	}
	want := make([]string, n)
	for i := range n {
		want[i] = IOSToken(i)
	}
	wantTokens(t, s, "u1", sortedStrings(want...)...)
}

func sortedStrings(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
