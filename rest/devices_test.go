package rest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/push"
	"github.com/livehub/livehub/push/pushtest"
	"github.com/livehub/livehub/rest"
)

const devSecret = "devices-test-secret-0123456789ab"

type devServer struct {
	url   string
	store push.DeviceStore
}

func newDevServer(t *testing.T, maxPerUser int) *devServer {
	t.Helper()
	v, err := auth.NewVerifier(auth.VerifierConfig{Secrets: [][]byte{[]byte(devSecret)}})
	if err != nil {
		t.Fatal(err)
	}
	store := push.NewMemoryDeviceStore()
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	rest.MountDevices(r, rest.DevicesOptions{Store: store, Tokens: v, MaxPerUser: maxPerUser, Logger: quietLogger()})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &devServer{url: srv.URL, store: store}
}

func devToken(t *testing.T, user string) string {
	t.Helper()
	tok, err := auth.Mint([]byte(devSecret), auth.Claims{Subject: user}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// do calls the API as user (anonymous when empty).
func (s *devServer) do(t *testing.T, user, method, path, body string) (int, []byte, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+devToken(t, user))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func (s *devServer) register(t *testing.T, user, body string, want int) {
	t.Helper()
	if code, b, _ := s.do(t, user, "POST", "/v1/devices", body); code != want {
		t.Fatalf("register %s: %d %s, want %d", body, code, b, want)
	}
}

type devView struct {
	Platform   string    `json:"platform"`
	Token      string    `json:"token"`
	AppID      string    `json:"app_id"`
	Locale     string    `json:"locale"`
	AppVersion string    `json:"app_version"`
	UpdatedAt  time.Time `json:"updated_at"`
}

func (s *devServer) list(t *testing.T, user string) []devView {
	t.Helper()
	code, b, _ := s.do(t, user, "GET", "/v1/devices", "")
	if code != http.StatusOK {
		t.Fatalf("list: %d %s", code, b)
	}
	var out struct {
		Devices []devView `json:"devices"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out.Devices
}

func devTokens(ds []devView) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Token
	}
	return out
}

func iosBody(token, locale string) string {
	return `{"platform":"ios","token":"` + token + `","app_id":"com.example.live","locale":"` + locale + `","app_version":"2.4.1 (310)"}`
}

func TestDevices_RegisterListDelete(t *testing.T) {
	s := newDevServer(t, 0)
	ios, android := pushtest.IOSToken(1), pushtest.AndroidToken(1)

	code, b, _ := s.do(t, "u1", "POST", "/v1/devices", iosBody(ios, "id-ID"))
	if code != http.StatusCreated {
		t.Fatalf("first registration: %d %s", code, b)
	}
	var d devView
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.Token != ios || d.Platform != "ios" || d.AppID != "com.example.live" || d.Locale != "id-ID" || d.AppVersion != "2.4.1 (310)" || d.UpdatedAt.IsZero() {
		t.Fatalf("registered %+v", d)
	}
	// The same token again updates it.
	s.register(t, "u1", iosBody(ios, "en-US"), http.StatusOK)
	s.register(t, "u1", `{"platform":"android","token":"`+android+`"}`, http.StatusCreated)

	ds := s.list(t, "u1")
	if len(ds) != 2 {
		t.Fatalf("devices %+v, want 2", ds)
	}
	for _, d := range ds {
		if d.Token == ios && d.Locale != "en-US" {
			t.Fatalf("update not kept: %+v", d)
		}
	}
	if got := s.list(t, "u2"); len(got) != 0 {
		t.Fatalf("u2 sees %+v", got)
	}
	// What the worker sees.
	stored, err := s.store.List(t.Context(), "u1")
	if err != nil || len(stored) != 2 || stored[0].UserID != "u1" {
		t.Fatalf("store %+v %v", stored, err)
	}

	if code, b, _ := s.do(t, "u1", "DELETE", "/v1/devices/"+ios, ""); code != http.StatusNoContent {
		t.Fatalf("delete own: %d %s", code, b)
	}
	if got := devTokens(s.list(t, "u1")); len(got) != 1 || got[0] != android {
		t.Fatalf("after delete %v", got)
	}
	if code, _, _ := s.do(t, "u1", "DELETE", "/v1/devices/"+ios, ""); code != http.StatusNotFound {
		t.Fatalf("delete twice: %d, want 404", code)
	}
}

func TestDevices_DeleteOthersTokenIsNotFound(t *testing.T) {
	s := newDevServer(t, 0)
	tok := pushtest.AndroidToken(7)
	s.register(t, "u1", `{"platform":"android","token":"`+tok+`"}`, http.StatusCreated)

	code, b, h := s.do(t, "u2", "DELETE", "/v1/devices/"+tok, "")
	if code != http.StatusNotFound || h.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("delete another's device: %d %s %s", code, h.Get("Content-Type"), b)
	}
	var p problem
	if err := json.Unmarshal(b, &p); err != nil || p.Code != "not_found" {
		t.Fatalf("problem %s %v", b, err)
	}
	if got := devTokens(s.list(t, "u1")); len(got) != 1 || got[0] != tok {
		t.Fatalf("owner's devices after another's delete: %v", got)
	}
}

// A token registered by another user moves to them: the phone changed
// hands or accounts.
func TestDevices_TokenMovesToTheNewUser(t *testing.T) {
	s := newDevServer(t, 0)
	tok := pushtest.IOSToken(9)
	s.register(t, "u1", iosBody(tok, "id-ID"), http.StatusCreated)
	s.register(t, "u2", iosBody(tok, "id-ID"), http.StatusCreated)
	if got := s.list(t, "u1"); len(got) != 0 {
		t.Fatalf("u1 still has %v", devTokens(got))
	}
	if got := s.list(t, "u2"); len(got) != 1 {
		t.Fatalf("u2 has %v", devTokens(got))
	}
}

func TestDevices_OldestReplacedPastTheLimit(t *testing.T) {
	s := newDevServer(t, 3)
	for i := range 3 {
		s.register(t, "u1", iosBody(pushtest.IOSToken(i), "id-ID"), http.StatusCreated)
		time.Sleep(2 * time.Millisecond)
	}
	// Registering a known token again refreshes it and evicts nothing.
	s.register(t, "u1", iosBody(pushtest.IOSToken(0), "id-ID"), http.StatusOK)
	time.Sleep(2 * time.Millisecond)
	if n := len(s.list(t, "u1")); n != 3 {
		t.Fatalf("%d devices, want 3", n)
	}
	// A fourth replaces the least recently registered: token 1.
	s.register(t, "u1", iosBody(pushtest.IOSToken(3), "id-ID"), http.StatusCreated)
	got := map[string]bool{}
	for _, tok := range devTokens(s.list(t, "u1")) {
		got[tok] = true
	}
	if len(got) != 3 || got[pushtest.IOSToken(1)] || !got[pushtest.IOSToken(0)] || !got[pushtest.IOSToken(3)] {
		t.Fatalf("devices after the fourth: %v", got)
	}
}

func TestDevices_ValidationErrorsNameTheField(t *testing.T) {
	s := newDevServer(t, 0)
	ios := pushtest.IOSToken(1)
	for _, tt := range []struct {
		name, body, field string
	}{
		{"no platform", `{"token":"` + ios + `"}`, "platform"},
		{"unknown platform", `{"platform":"windows","token":"` + ios + `"}`, "platform"},
		{"no token", `{"platform":"ios"}`, "token"},
		{"token with a space", `{"platform":"android","token":"abc def"}`, "token"},
		{"token too long", `{"platform":"android","token":"` + strings.Repeat("a", 4097) + `"}`, "token"},
		{"ios token not hex", `{"platform":"ios","token":"` + strings.Repeat("z", 64) + `"}`, "token"},
		{"ios token too short", `{"platform":"ios","token":"abcd"}`, "token"},
		{"app id with a slash", `{"platform":"ios","token":"` + ios + `","app_id":"com/example"}`, "app_id"},
		{"locale with a space", `{"platform":"ios","token":"` + ios + `","locale":"id ID"}`, "locale"},
		{"app version with a newline", `{"platform":"ios","token":"` + ios + `","app_version":"1.0\n"}`, "app_version"},
		{"token of the wrong type", `{"platform":"ios","token":42}`, "token"},
		{"unknown field", `{"platform":"ios","token":"` + ios + `","user_id":"u2"}`, "user_id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, b, h := s.do(t, "u1", "POST", "/v1/devices", tt.body)
			if code != http.StatusBadRequest || h.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d %s %s, want 400 problem", code, h.Get("Content-Type"), b)
			}
			var p problem
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatal(err)
			}
			if p.Code != "invalid" || p.Field != tt.field || p.Detail == "" || p.Status != http.StatusBadRequest {
				t.Fatalf("problem %+v, want field %q", p, tt.field)
			}
		})
	}
	if got := s.list(t, "u1"); len(got) != 0 {
		t.Fatalf("invalid registrations kept: %v", devTokens(got))
	}
	code, _, _ := s.do(t, "u1", "POST", "/v1/devices", `{"platform":"android","token":"`+strings.Repeat("a", 20<<10)+`"}`)
	if code != http.StatusBadRequest {
		t.Fatalf("oversized body: %d", code)
	}
}

func TestDevices_NeedASignedInUser(t *testing.T) {
	s := newDevServer(t, 0)
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/v1/devices", iosBody(pushtest.IOSToken(1), "id-ID")},
		{"GET", "/v1/devices", ""},
		{"DELETE", "/v1/devices/" + pushtest.IOSToken(1), ""},
	} {
		code, b, _ := s.do(t, "", r.method, r.path, r.body)
		var p problem
		_ = json.Unmarshal(b, &p)
		if code != http.StatusUnauthorized || p.Code != "unauthorized" {
			t.Fatalf("%s %s without a token: %d %s", r.method, r.path, code, b)
		}
	}
}

// FuzzDevicesRegister: whatever the body, the answer is a 2xx or a 400
// problem, and what was accepted is listed back as sent.
func FuzzDevicesRegister(f *testing.F) {
	f.Add(iosBody(pushtest.IOSToken(1), "id-ID"))
	f.Add(`{"platform":"android","token":"` + pushtest.AndroidToken(1) + `"}`)
	f.Add(`{"platform":"ios","token":"zz"}`)
	f.Add(`{"platform":1}`)
	f.Add(`{} {}`)
	f.Add(`{"platform":"android","token":"a","locale":"\u0000"}`)
	v, err := auth.NewVerifier(auth.VerifierConfig{Secrets: [][]byte{[]byte(devSecret)}})
	if err != nil {
		f.Fatal(err)
	}
	tok, err := auth.Mint([]byte(devSecret), auth.Claims{Subject: "u1"}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	store := push.NewMemoryDeviceStore()
	r := gin.New()
	rest.MountDevices(r, rest.DevicesOptions{Store: store, Tokens: v, MaxPerUser: 1000, Logger: quietLogger()})
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", "/v1/devices", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusOK, http.StatusCreated:
			var d devView
			if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
				t.Fatalf("accepted %q but answered %s", body, w.Body)
			}
			ds, err := store.List(t.Context(), "u1")
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, s := range ds {
				found = found || (s.Token == d.Token && s.Platform == d.Platform && s.Locale == d.Locale)
			}
			if !found {
				t.Fatalf("accepted %q but not stored as answered: %+v", body, d)
			}
		case http.StatusBadRequest:
			var p problem
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Code != "invalid" {
				t.Fatalf("400 for %q without an invalid problem: %s", body, w.Body)
			}
		default:
			t.Fatalf("%q: status %d %s", body, w.Code, w.Body)
		}
	})
}
