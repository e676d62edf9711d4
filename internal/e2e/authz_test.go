package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/livehub/livehub/internal/protoclient"
)

var updateSecurityDoc = flag.Bool("update", false, "rewrite the authorization matrix of docs/security.md from authzMatrix")

// Cell values: "ok" a protocol command that succeeds; "102" unknown channel,
// "103" permission denied, "108" not available (protocol error codes);
// "200", "201", "202", "204" success and "400", "401", "403", "404" refusal
// (HTTP statuses).
const (
	ok   = "ok"
	e102 = "102"
	e103 = "103"
	e108 = "108"
	s200 = "200"
	s201 = "201"
	s202 = "202"
	s204 = "204"
	s400 = "400"
	s401 = "401"
	s403 = "403"
	s404 = "404"
)

// The location a courier app publishes on order:{id}; chat in live:{id}.
const (
	pointBody = `{"lat":-6.2100,"lng":106.8400,"accuracy":8,"device_time":{now_ms}}`
	chatBody  = `{"text":"halo"}`
)

// authzMatrix is the authorization of every channel namespace and every
// /v1 endpoint with a rule, for every role. Columns, in order:
//
//	anonymous, customer (the buyer of {order}), another customer, host of
//	{stream}, host of another stream, moderator of {stream}, courier of
//	{order}, courier of another order, admin.
//
// docs/security.md shows this table (TestSecurityDocMatchesMatrix).
var authzMatrix = []authzRule{
	// live:{stream}: the room. Anyone watches; signed-in users chat; the
	// viewer list is for hosts, moderators and admins.
	{Object: "live:{stream}", Action: "subscribe", Want: want{ok, ok, ok, ok, ok, ok, ok, ok, ok}},
	{Object: "live:{stream}", Action: "subscribe with the customer's token", Want: want{e103, e103, e103, e103, e103, e103, e103, e103, e103}},
	{Object: "live:{stream}", Action: "publish", Body: chatBody, Want: want{e103, ok, ok, ok, ok, ok, ok, ok, ok}},
	{Object: "live:{stream}", Action: "history", Want: want{ok, ok, ok, ok, ok, ok, ok, ok, ok}},
	{Object: "live:{stream}", Action: "presence", Want: want{e103, e103, e103, ok, e103, ok, e103, e103, ok}},
	{Object: "live:{stream}", Action: "presence_stats", Want: want{ok, ok, ok, ok, ok, ok, ok, ok, ok}},

	// order:{order}: the buyer, the merchant, the assigned courier, admins.
	{Object: "order:{order}", Action: "subscribe", Want: want{e103, ok, e103, ok, e103, e103, ok, e103, ok}},
	{Object: "order:{order}", Action: "subscribe with the customer's token", Want: want{e103, ok, e103, e103, e103, e103, e103, e103, e103}},
	{Object: "order:{order}", Action: "publish", Body: pointBody, Want: want{e103, e103, e103, e103, e103, e103, ok, e103, e103}},
	{Object: "order:{order}", Action: "history", Want: want{e103, ok, e103, ok, e103, e103, ok, e103, ok}},
	{Object: "order:{order}", Action: "presence", Want: want{e108, e108, e108, e108, e108, e108, e108, e108, e108}},
	{Object: "order:{order}", Action: "presence_stats", Want: want{e108, e108, e108, e108, e108, e108, e108, e108, e108}},

	// user:#{customer}: the customer's own events; nobody else, admins
	// included. The server subscribes it at connect.
	{Object: "user:#{customer}", Action: "subscribe", Want: want{e103, ok, e103, e103, e103, e103, e103, e103, e103}},
	{Object: "user:#{customer}", Action: "publish", Body: `{"type":"order.paid"}`, Want: want{e103, e103, e103, e103, e103, e103, e103, e103, e103}},
	{Object: "user:#{customer}", Action: "history", Want: want{e103, ok, e103, e103, e103, e103, e103, e103, e103}},
	{Object: "user:#{customer}", Action: "presence", Want: want{e108, e108, e108, e108, e108, e108, e108, e108, e108}},
	{Object: "user:#{customer}", Action: "presence_stats", Want: want{e108, e108, e108, e108, e108, e108, e108, e108, e108}},

	// studio:{stream}: the host's back office, its moderators, admins.
	{Object: "studio:{stream}", Action: "subscribe", Want: want{e103, e103, e103, ok, e103, ok, e103, e103, ok}},
	{Object: "studio:{stream}", Action: "subscribe with the customer's token", Want: want{e103, ok, e103, e103, e103, e103, e103, e103, e103}},
	{Object: "studio:{stream}", Action: "publish", Body: `{"type":"stream.summary"}`, Want: want{e103, e103, e103, e103, e103, e103, e103, e103, e103}},
	{Object: "studio:{stream}", Action: "history", Want: want{e103, e103, e103, ok, e103, ok, e103, e103, ok}},
	{Object: "studio:{stream}", Action: "presence", Want: want{e103, e103, e103, ok, e103, ok, e103, e103, ok}},
	{Object: "studio:{stream}", Action: "presence_stats", Want: want{e103, e103, e103, ok, e103, ok, e103, e103, ok}},

	// The hub's internal app-state channel and an unconfigured namespace
	// are not channels clients can reach.
	{Object: "$fg:{customer}", Action: "subscribe", Want: want{e102, e102, e102, e102, e102, e102, e102, e102, e102}},
	{Object: "$fg:{customer}", Action: "presence", Want: want{e102, e102, e102, e102, e102, e102, e102, e102, e102}},
	{Object: "private:{customer}", Action: "subscribe", Want: want{e102, e102, e102, e102, e102, e102, e102, e102, e102}},

	// Streams and flash sales.
	{Object: "POST /v1/streams", Body: `{"title":"matrix"}`, Want: want{s401, s403, s403, s201, s201, s403, s403, s403, s201}},
	{Object: "GET /v1/streams/{stream}", Want: want{s401, s200, s200, s200, s200, s200, s200, s200, s200}},
	{Object: "POST /v1/streams/{stream}/end", Fresh: "stream", Want: want{s401, s403, s403, s200, s403, s403, s403, s403, s200}},
	{Object: "POST /v1/streams/{stream}/flash-sales", Body: `{"product":{"id":"m","name":"Matrix"},"price":1000,"quantity":5,"per_user_limit":1,"countdown_seconds":0,"duration_seconds":60}`,
		Want: want{s401, s403, s403, s201, s403, s403, s403, s403, s201}},
	{Object: "GET /v1/flash-sales/{sale}", Want: want{s401, s200, s200, s200, s200, s200, s200, s200, s200}},
	{Object: "POST /v1/flash-sales/{sale}/end", Fresh: "sale", Want: want{s401, s403, s403, s200, s403, s403, s403, s403, s200}},

	// Checkout, orders, payment.
	{Object: "POST /v1/checkout", Body: `{"flash_sale_id":"{sale}","quantity":1}`, Want: want{s401, s201, s201, s201, s201, s201, s201, s201, s201}},
	{Object: "GET /v1/orders/{order}", Want: want{s401, s200, s404, s200, s404, s404, s404, s404, s200}},
	{Object: "GET /v1/orders?mine", Leaks: map[string]role{"order": customer, "other_order": otherCust},
		Want: want{s401, s200, s200, s200, s200, s200, s200, s200, s200}},
	{Object: "POST /v1/payments/simulated/{pending}/pay", Fresh: "pending", Want: want{s401, s200, s404, s403, s404, s404, s404, s404, s200}},

	// Courier tracking.
	{Object: "POST /v1/orders/{paid}/courier", Fresh: "paid", Body: `{"courier_id":"{user_7}","address":{"lat":-6.2,"lng":106.8,"text":"x"}}`,
		Want: want{s401, s403, s403, s200, s403, s403, s403, s403, s200}},
	{Object: "POST /v1/orders/{order}/status", Action: "picked_up", Fresh: "order", Body: `{"status":"picked_up"}`,
		Want: want{s401, s403, s403, s403, s403, s403, s200, s403, s200}},
	{Object: "POST /v1/orders/{order}/status", Action: "cancelled", Fresh: "order", Body: `{"status":"cancelled"}`,
		Want: want{s401, s403, s403, s200, s403, s403, s200, s403, s200}},
	{Object: "POST /v1/orders/{order}/locations", Fresh: "order", Body: `{"points":[` + pointBody + `]}`,
		Want: want{s401, s403, s403, s403, s403, s403, s200, s403, s403}},
	{Object: "GET /v1/orders/{order}/tracking", Want: want{s401, s200, s404, s200, s404, s404, s200, s404, s200}},

	// The live room and its moderation.
	{Object: "GET /v1/streams/{stream}/room", Want: want{s200, s200, s200, s200, s200, s200, s200, s200, s200}},
	{Object: "GET /v1/streams/{stream}/moderation", Want: want{s401, s403, s403, s200, s403, s200, s403, s403, s200}},
	{Object: "POST /v1/streams/{stream}/moderation/moderators", Body: `{"user_id":"authz-helper"}`, Want: want{s401, s403, s403, s200, s403, s403, s403, s403, s200}},
	{Object: "DELETE /v1/streams/{stream}/moderation/moderators/authz-helper", Want: want{s401, s403, s403, s204, s403, s403, s403, s403, s204}},
	{Object: "POST /v1/streams/{stream}/moderation/mutes", Body: `{"user_id":"authz-troll","duration_seconds":60}`, Want: want{s401, s403, s403, s200, s403, s200, s403, s403, s200}},
	{Object: "DELETE /v1/streams/{stream}/moderation/mutes/authz-troll", Want: want{s401, s403, s403, s204, s403, s204, s403, s403, s204}},
	{Object: "POST /v1/streams/{stream}/moderation/bans", Body: `{"user_id":"authz-troll"}`, Want: want{s401, s403, s403, s200, s403, s200, s403, s403, s200}},
	{Object: "DELETE /v1/streams/{stream}/moderation/bans/authz-troll", Want: want{s401, s403, s403, s204, s403, s204, s403, s403, s204}},
	{Object: "POST /v1/streams/{stream}/moderation/messages/m1/delete", Want: want{s401, s403, s403, s204, s403, s204, s403, s403, s204}},
	{Object: "PUT /v1/streams/{stream}/moderation/slow-mode", Body: `{"seconds":0}`, Want: want{s401, s403, s403, s200, s403, s200, s403, s403, s200}},
	{Object: "PUT /v1/streams/{stream}/moderation/muted-words", Body: `{"words":["spam"],"mode":"mask"}`, Want: want{s401, s403, s403, s200, s403, s200, s403, s403, s200}},
	{Object: "PUT /v1/streams/{stream}/moderation/pinned-message", Body: `{"text":"welcome"}`, Want: want{s401, s403, s403, s200, s403, s200, s403, s403, s200}},
	{Object: "DELETE /v1/streams/{stream}/moderation/pinned-message", Want: want{s401, s403, s403, s204, s403, s204, s403, s403, s204}},
	{Object: "PUT /v1/streams/{stream}/pinned-product", Body: `{"product":{"id":"p1","name":"Hijab"},"price":75000}`, Want: want{s401, s403, s403, s200, s403, s200, s403, s403, s200}},
	{Object: "DELETE /v1/streams/{stream}/pinned-product", Want: want{s401, s403, s403, s204, s403, s204, s403, s403, s204}},

	// Push devices: always the caller's own.
	{Object: "POST /v1/devices", Body: `{"platform":"android","token":"fcm-matrix-{seq}"}`, Want: want{s401, s201, s201, s201, s201, s201, s201, s201, s201}},
	{Object: "GET /v1/devices", Leaks: map[string]role{"device": customer}, Want: want{s401, s200, s200, s200, s200, s200, s200, s200, s200}},
	{Object: "DELETE /v1/devices/{device}", Fresh: "device", Want: want{s401, s204, s404, s404, s404, s404, s404, s404, s404}},

	// Follows and campaigns.
	// A host cannot follow themselves (400), anyone else may.
	{Object: "POST /v1/hosts/{host}/follow", Want: want{s401, s204, s204, s400, s204, s204, s204, s204, s204}},
	{Object: "GET /v1/hosts/{host}/follow", Want: want{s401, s200, s200, s200, s200, s200, s200, s200, s200}},
	{Object: "DELETE /v1/hosts/{host}/follow", Want: want{s401, s204, s204, s204, s204, s204, s204, s204, s204}},
	{Object: "GET /v1/hosts/{host}/followers/count", Want: want{s401, s200, s200, s200, s200, s200, s200, s200, s200}},
	{Object: "POST /v1/streams/{stream}/notify-followers", Fresh: "stream", Body: `{"title":"live now"}`, Want: want{s401, s403, s403, s202, s403, s403, s403, s403, s202}},
	{Object: "GET /v1/campaigns/{campaign}", Want: want{s401, s403, s403, s200, s403, s403, s403, s403, s200}},

	// The server API takes its key, never a user's token.
	{Object: "POST /api/publish", Body: `{"channel":"user:#{customer}","data":{"type":"order.paid"}}`, Want: want{s401, s401, s401, s401, s401, s401, s401, s401, s401}},
}

// TestAuthz_Matrix runs every cell of authzMatrix against a real node over
// loopback: real tokens, a stream, a flash sale, orders and courier
// assignments made through the REST API.
func TestAuthz_Matrix(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	start := time.Now()
	f := newAuthzFixture(ctx, t)
	cells := 0
	for _, rule := range authzMatrix {
		name := rule.Object
		if rule.Action != "" {
			name += " " + rule.Action
		}
		t.Run(name, func(t *testing.T) {
			for r := range numRoles {
				got, err := f.run(rule, r)
				cells++
				switch {
				case err != nil:
					t.Errorf("%s: %v", roleNames[r], err)
				case got != rule.Want[r]:
					t.Errorf("%s: got %s, want %s", roleNames[r], got, rule.Want[r])
				}
			}
		})
	}
	t.Logf("%d rules, %d cells in %s", len(authzMatrix), cells, time.Since(start).Round(time.Millisecond))
	if races := f.srv.races(); races != "" {
		t.Errorf("the server reported data races:\n%s", races)
	}
}

// TestAuthz_MatrixCoversEveryNamespaceAndRole keeps the table complete:
// each built-in namespace has a row for each protocol action, and each
// cell holds a value the runner understands.
func TestAuthz_MatrixCoversEveryNamespaceAndRole(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range authzMatrix {
		if r.isChannel() {
			ns, _, _ := strings.Cut(r.Object, ":")
			seen[ns+" "+r.Action] = true
		}
		for i, w := range r.Want {
			if !regexp.MustCompile(`^(ok|1\d\d|[2-5]\d\d)$`).MatchString(w) {
				t.Errorf("%s %s: cell %d is %q", r.Object, r.Action, i, w)
			}
		}
	}
	for _, ns := range []string{"live", "order", "user", "studio"} {
		for _, a := range []string{"subscribe", "publish", "history", "presence", "presence_stats"} {
			if !seen[ns+" "+a] {
				t.Errorf("no row for %s on %s:", a, ns)
			}
		}
	}
}

// TestSecurityDocMatchesMatrix fails when the matrix in docs/security.md
// differs from authzMatrix; -update rewrites it.
func TestSecurityDocMatchesMatrix(t *testing.T) {
	path := securityDocPath(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	got, start, end, found := matrixSection(doc)
	if !found {
		t.Fatalf("%s has no %q … %q section", path, matrixBegin, matrixEnd)
	}
	wantText := renderMatrix(authzMatrix)
	if got == wantText {
		return
	}
	if *updateSecurityDoc {
		if err := os.WriteFile(path, []byte(doc[:start]+wantText+doc[end:]), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote the matrix of %s", path)
		return
	}
	gl, wl := strings.Split(got, "\n"), strings.Split(wantText, "\n")
	for i := 0; i < max(len(gl), len(wl)); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Fatalf("%s: the matrix differs from authzMatrix at line %d of the section:\n doc: %s\nwant: %s\n(run go test ./internal/e2e -run TestSecurityDoc -update)", path, i+1, g, w)
		}
	}
}

// TestSecurityDocNamesExistingTests: every test docs/security.md cites as
// proof exists, except on lines marked pending.
func TestSecurityDocNamesExistingTests(t *testing.T) {
	data, err := os.ReadFile(securityDocPath(t))
	if err != nil {
		t.Fatal(err)
	}
	names := testNames(t)
	// A name after -run is a pattern, not a citation.
	re := regexp.MustCompile(`(-run\s+)?\b((?:Test|Fuzz)[A-Z][A-Za-z0-9_]*)`)
	cited := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "<!-- pending -->") {
			continue
		}
		for _, m := range re.FindAllStringSubmatch(line, -1) {
			if m[1] == "" {
				cited[m[2]] = true
			}
		}
	}
	if len(cited) < 10 {
		t.Fatalf("docs/security.md cites %d tests; expected the threats to name the tests that prove them", len(cited))
	}
	for _, name := range sortedKeys(cited) {
		if !names[name] {
			t.Errorf("docs/security.md cites %s, which is not a test of this module", name)
		}
	}
}

// TestAuthz_BadTokensAreRefusedOnSocketAndREST presents forged, expired and
// misused tokens to a real node: over the socket a connect gets 109 (only
// for a genuine token that expired) or the close 3500, and /v1 answers 401.
func TestAuthz_BadTokensAreRefusedOnSocketAndREST(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	srv := startServer(ctx, t, buildServer(t, moduleRoot(t)), "LIVEHUB_LOG_LEVEL=warn")
	now := time.Now()
	claims := func(kv ...any) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "authz-mallory", "roles": []string{"admin"}, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		for i := 0; i < len(kv); i += 2 {
			c[kv[i].(string)] = kv[i+1]
		}
		return c
	}
	signed := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		tok, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	secret := []byte(jwtSecret)
	good := signed(jwt.SigningMethodHS256, secret, claims())
	tests := []struct {
		name   string
		token  string
		socket string // "109" error, "3500" close, "ok"
	}{
		{"valid (control)", good, "ok"},
		{"alg none", b64(`{"alg":"none","typ":"JWT"}`) + "." + b64(`{"sub":"authz-mallory","roles":["admin"]}`) + ".", "3500"},
		{"alg none with the real signature", strings.Join([]string{b64(`{"alg":"none","typ":"JWT"}`), strings.Split(good, ".")[1], strings.Split(good, ".")[2]}, "."), "3500"},
		{"HS512 with the real secret", signed(jwt.SigningMethodHS512, secret, claims()), "3500"},
		{"another secret", signed(jwt.SigningMethodHS256, []byte("guessed-secret-0123456789abcdef"), claims()), "3500"},
		{"payload changed after signing", strings.Join([]string{strings.Split(good, ".")[0], b64(`{"sub":"authz-mallory","roles":["admin","host"]}`), strings.Split(good, ".")[2]}, "."), "3500"},
		{"expired", signed(jwt.SigningMethodHS256, secret, claims("exp", now.Add(-time.Hour).Unix())), "109"},
		{"not valid yet", signed(jwt.SigningMethodHS256, secret, claims("nbf", now.Add(time.Hour).Unix())), "3500"},
		{"issued in the future", signed(jwt.SigningMethodHS256, secret, claims("iat", now.Add(time.Hour).Unix())), "3500"},
		{"subscription token used to connect", signed(jwt.SigningMethodHS256, secret, claims("channel", "order:ord_1")), "3500"},
		{"unknown role", signed(jwt.SigningMethodHS256, secret, claims("roles", []string{"superuser"})), "3500"},
		{"no sub", signed(jwt.SigningMethodHS256, secret, jwt.MapClaims{"roles": []string{"admin"}}), "3500"},
		{"garbage", "not.a.jwt", "3500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := connectOutcome(ctx, t, "ws://"+srv.addr+"/connection/websocket", tt.token); got != tt.socket {
				t.Errorf("socket connect: got %s, want %s", got, tt.socket)
			}
			req, err := http.NewRequestWithContext(ctx, "GET", "http://"+srv.addr+"/v1/orders?mine", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tt.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			wantStatus := http.StatusUnauthorized
			if tt.socket == "ok" {
				wantStatus = http.StatusOK
			}
			if resp.StatusCode != wantStatus {
				t.Errorf("GET /v1/orders?mine: %d, want %d", resp.StatusCode, wantStatus)
			}
		})
	}
}

// connectOutcome connects with token and reports "ok", the error code of the
// connect reply, or the close code the server sent.
func connectOutcome(ctx context.Context, t *testing.T, url, token string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := protoclient.Dial(ctx, url, protoclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	_, err = conn.Connect(ctx, token)
	var re *protoclient.ReplyError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &re):
		return strconv.Itoa(int(re.Code))
	}
	select {
	case <-conn.Done():
	case <-ctx.Done():
		return "no close: " + err.Error()
	}
	code, _ := conn.CloseStatus()
	return strconv.Itoa(int(code))
}

// TestAuthz_CrossSiteWebSocketIsRefused: a page of another site cannot open
// a socket to the node (cross-site WebSocket hijacking); the allowed site,
// the node's own pages and apps without an Origin header can.
func TestAuthz_CrossSiteWebSocketIsRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	srv := startServer(ctx, t, buildServer(t, moduleRoot(t)), "LIVEHUB_LOG_LEVEL=warn", "LIVEHUB_ALLOWED_ORIGINS=shop.example.com")
	url := "ws://" + srv.addr + "/connection/websocket"
	tests := []struct {
		origin string
		allow  bool
	}{
		{"", true},
		{"https://shop.example.com", true},
		{"http://" + srv.addr, true},
		{"https://evil.example", false},
		{"https://shop.example.com.evil.example", false},
		{"https://evil.example/shop.example.com", false},
		{"null", false},
	}
	for _, tt := range tests {
		t.Run("origin "+tt.origin, func(t *testing.T) {
			h := http.Header{}
			if tt.origin != "" {
				h.Set("Origin", tt.origin)
			}
			c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
			if c != nil {
				defer c.CloseNow()
			}
			if tt.allow {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("a page of another site opened a socket")
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("refusal %v, want HTTP 403", err)
			}
		})
	}
}

// TestAuthz_JWKSAudienceAndIssuerOnTheNode starts the node with an identity
// provider's key set and no HS256 secret, an audience and an issuer: RS256
// and ES256 tokens of the provider connect and call /v1; tokens for another
// audience or issuer, signed by another key, or HS256 tokens (keyed with the
// public key or anything else) do not.
func TestAuthz_JWKSAudienceAndIssuerOnTheNode(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecPub, err := ecKey.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	set, _ := json.Marshal(map[string]any{"keys": []any{
		map[string]any{"kty": "RSA", "kid": "r1", "alg": "RS256", "use": "sig",
			"n": enc(rsaKey.PublicKey.N.Bytes()), "e": enc(big.NewInt(int64(rsaKey.PublicKey.E)).Bytes())},
		map[string]any{"kty": "EC", "kid": "e1", "crv": "P-256", "x": enc(ecPub[1:33]), "y": enc(ecPub[33:])},
	}})
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(set)
	}))
	defer idp.Close()

	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	srv := startServer(ctx, t, buildServer(t, moduleRoot(t)), "LIVEHUB_LOG_LEVEL=warn",
		// No HS256 secret: the key set alone (the last value of a variable wins).
		"LIVEHUB_JWT_SECRET=",
		"LIVEHUB_JWT_JWKS_URL="+idp.URL, "LIVEHUB_JWT_AUDIENCE=livehub", "LIVEHUB_JWT_ISSUER=https://id.example")
	now := time.Now()
	claims := func(kv ...any) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "authz-idp-user", "aud": "livehub", "iss": "https://id.example", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		for i := 0; i < len(kv); i += 2 {
			c[kv[i].(string)] = kv[i+1]
		}
		return c
	}
	signed := func(m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(m, c)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	der, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	tests := []struct {
		name   string
		token  string
		socket string
	}{
		{"RS256 of the provider", signed(jwt.SigningMethodRS256, rsaKey, "r1", claims()), "ok"},
		{"ES256 of the provider", signed(jwt.SigningMethodES256, ecKey, "e1", claims()), "ok"},
		{"another audience", signed(jwt.SigningMethodRS256, rsaKey, "r1", claims("aud", "another-app")), "3500"},
		{"no audience", signed(jwt.SigningMethodRS256, rsaKey, "r1", claims("aud", []string{})), "3500"},
		{"another issuer", signed(jwt.SigningMethodRS256, rsaKey, "r1", claims("iss", "https://evil.example")), "3500"},
		{"signed by another key with the provider's kid", signed(jwt.SigningMethodRS256, otherKey, "r1", claims()), "3500"},
		{"HS256 keyed with the provider's public key", signed(jwt.SigningMethodHS256, pubPEM, "r1", claims()), "3500"},
		{"HS256, no secret configured", signed(jwt.SigningMethodHS256, []byte(jwtSecret), "", claims()), "3500"},
		{"expired", signed(jwt.SigningMethodES256, ecKey, "e1", claims("exp", now.Add(-time.Hour).Unix())), "109"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := connectOutcome(ctx, t, "ws://"+srv.addr+"/connection/websocket", tt.token); got != tt.socket {
				t.Errorf("socket connect: got %s, want %s", got, tt.socket)
			}
			req, err := http.NewRequestWithContext(ctx, "GET", "http://"+srv.addr+"/v1/orders?mine", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tt.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := http.StatusUnauthorized
			if tt.socket == "ok" {
				want = http.StatusOK
			}
			if resp.StatusCode != want {
				t.Errorf("GET /v1/orders?mine: %d, want %d", resp.StatusCode, want)
			}
		})
	}
}
