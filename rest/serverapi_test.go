package rest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/centrifugal/protocol"
	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/rest"
)

type publishResult struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

func TestServerAPI_Auth(t *testing.T) {
	s := newTestServer(t, nil)
	tests := []struct {
		name   string
		header http.Header
		status int
	}{
		{"no key", nil, http.StatusUnauthorized},
		{"wrong X-API-Key", http.Header{"X-Api-Key": {"wrong"}}, http.StatusUnauthorized},
		{"key prefix", http.Header{"X-Api-Key": {testAPIKey[:len(testAPIKey)-1]}}, http.StatusUnauthorized},
		{"key with suffix", http.Header{"X-Api-Key": {testAPIKey + "x"}}, http.StatusUnauthorized},
		{"wrong apikey authorization", http.Header{"Authorization": {"apikey wrong"}}, http.StatusUnauthorized},
		{"bearer scheme", http.Header{"Authorization": {"Bearer " + testAPIKey}}, http.StatusUnauthorized},
		{"bare key in authorization", http.Header{"Authorization": {testAPIKey}}, http.StatusUnauthorized},
		{"X-API-Key", http.Header{"X-Api-Key": {testAPIKey}}, http.StatusOK},
		{"apikey authorization", http.Header{"Authorization": {"apikey " + testAPIKey}}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, raw := s.post(t, "/api/info", []byte(`{}`), tt.header)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, raw)
			}
			var r apiReply
			if err := json.Unmarshal(raw, &r); err != nil {
				t.Fatalf("not JSON: %q", raw)
			}
			if tt.status == http.StatusUnauthorized && (r.Error == nil || r.Error.Code != 101 || r.Result != nil) {
				t.Fatalf("want error 101 and no result, got %s", raw)
			}
			if tt.status == http.StatusOK && (r.Error != nil || r.Result == nil) {
				t.Fatalf("want a result, got %s", raw)
			}
		})
	}
	t.Run("unauthorized caller cannot probe methods", func(t *testing.T) {
		if status, raw := s.post(t, "/api/nope", []byte(`{}`), nil); status != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401: %s", status, raw)
		}
	})
	t.Run("unauthorized publish does not publish", func(t *testing.T) {
		c, _ := s.connect(t, "watcher")
		subscribe(t, c, "live:auth")
		if status, _ := s.post(t, "/api/publish", []byte(`{"channel":"live:auth","data":1}`), http.Header{"X-Api-Key": {"wrong"}}); status != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", status)
		}
		noPub(t, c, "live:auth", 100*time.Millisecond)
	})
}

func TestServerAPI_EmptyConfiguredKeyRefusesEverything(t *testing.T) {
	s := newTestServer(t, func(o *rest.Options) { o.APIKey = "" })
	headers := []http.Header{
		nil,
		{"X-Api-Key": {""}},
		{"Authorization": {"apikey "}},
		{"Authorization": {"apikey"}},
		{"X-Api-Key": {testAPIKey}},
		{"Authorization": {"apikey " + testAPIKey}},
	}
	for _, method := range []string{"info", "publish", "channels"} {
		for _, h := range headers {
			status, raw := s.post(t, "/api/"+method, []byte(`{"channel":"live:1","data":1}`), h)
			if status != http.StatusUnauthorized || !strings.Contains(string(raw), `"code":101`) {
				t.Fatalf("%s with %v: %d %s, want 401 code 101", method, h, status, raw)
			}
		}
	}
}

func TestServerAPI_RequestErrors(t *testing.T) {
	s := newTestServer(t, nil)
	longReason := strings.Repeat("r", 101)
	manyChannels := make([]string, 1001)
	for i := range manyChannels {
		manyChannels[i] = fmt.Sprintf("live:%d", i)
	}
	tooMany, _ := json.Marshal(map[string]any{"channels": manyChannels, "data": 1})

	tests := []struct {
		name   string
		method string
		body   string
		status int      // 0: not checked
		code   uint32   // the error code
		want   []string // substrings of the error message
	}{
		{"unknown method", "nope", `{}`, 404, 104, nil},
		{"method names are case-sensitive", "Publish", `{"channel":"live:1","data":1}`, 404, 104, nil},
		{"malformed JSON", "publish", `{"channel":`, 400, 107, []string{"malformed JSON"}},
		{"empty body", "publish", ``, 400, 107, nil},
		{"not an object", "publish", `"live:1"`, 400, 107, nil},
		{"trailing data", "publish", `{"channel":"live:1","data":1} {}`, 400, 107, []string{"trailing"}},
		{"invalid data JSON", "publish", `{"channel":"live:1","data":{bad}}`, 400, 107, nil},
		{"unknown field", "publish", `{"channel":"live:1","data":1,"colour":"red"}`, 400, 107, []string{`"colour"`}},
		{"unknown nested field", "disconnect", `{"user":"u","disconnect":{"code":3000,"why":"x"}}`, 400, 107, []string{`"why"`}},
		{"wrong type channel", "publish", `{"channel":1,"data":1}`, 400, 107, []string{`"channel"`}},
		{"wrong type tags", "publish", `{"channel":"live:1","data":1,"tags":{"k":1}}`, 400, 107, []string{`tags`}},
		{"wrong type limit", "history", `{"channel":"live:1","limit":"ten"}`, 400, 107, []string{`"limit"`}},
		{"wrong type reverse", "history", `{"channel":"live:1","reverse":"yes"}`, 400, 107, []string{`"reverse"`}},
		{"wrong type nested", "disconnect", `{"user":"u","disconnect":{"code":"x"}}`, 400, 107, []string{`"disconnect.code"`}},
		{"wrong type channels", "broadcast", `{"channels":"live:1","data":1}`, 400, 107, []string{`"channels"`}},
		{"wrong type pattern", "channels", `{"pattern":5}`, 400, 107, []string{`"pattern"`}},
		{"missing channel publish", "publish", `{"data":1}`, 400, 107, []string{`"channel"`}},
		{"missing data publish", "publish", `{"channel":"live:1"}`, 400, 107, []string{`"data"`}},
		{"missing channels broadcast", "broadcast", `{"data":1}`, 400, 107, []string{`"channels"`}},
		{"empty channels broadcast", "broadcast", `{"channels":[],"data":1}`, 400, 107, []string{`"channels"`}},
		{"missing data broadcast", "broadcast", `{"channels":["live:1"]}`, 400, 107, []string{`"data"`}},
		{"too many channels broadcast", "broadcast", string(tooMany), 400, 107, []string{`"channels"`, "1000"}},
		{"missing channel subscribe", "subscribe", `{"user":"u"}`, 400, 107, []string{`"channel"`}},
		{"missing user subscribe", "subscribe", `{"channel":"live:1"}`, 400, 107, []string{`"user"`}},
		{"missing both subscribe", "subscribe", `{}`, 400, 107, []string{`"user"`, `"channel"`}},
		{"missing channel unsubscribe", "unsubscribe", `{"user":"u"}`, 400, 107, []string{`"channel"`}},
		{"missing user unsubscribe", "unsubscribe", `{"channel":"live:1"}`, 400, 107, []string{`"user"`}},
		{"missing user disconnect", "disconnect", `{}`, 400, 107, []string{`"user"`}},
		{"disconnect code below range", "disconnect", `{"user":"u","disconnect":{"code":1000}}`, 400, 107, []string{`"disconnect.code"`}},
		{"disconnect code above range", "disconnect", `{"user":"u","disconnect":{"code":5000}}`, 400, 107, []string{`"disconnect.code"`}},
		{"disconnect reason too long", "disconnect", `{"user":"u","disconnect":{"code":4000,"reason":"` + longReason + `"}}`, 400, 107, []string{`"disconnect.reason"`}},
		{"missing channel presence", "presence", `{}`, 400, 107, []string{`"channel"`}},
		{"missing channel presence_stats", "presence_stats", `{}`, 400, 107, []string{`"channel"`}},
		{"missing channel history", "history", `{}`, 400, 107, []string{`"channel"`}},
		{"missing channel history_remove", "history_remove", `{}`, 400, 107, []string{`"channel"`}},
		{"unknown namespace publish", "publish", `{"channel":"nope:1","data":1}`, 200, 102, nil},
		{"unknown namespace subscribe", "subscribe", `{"user":"u","channel":"nope:1"}`, 200, 102, nil},
		{"unknown namespace unsubscribe", "unsubscribe", `{"user":"u","channel":"nope:1"}`, 200, 102, nil},
		{"unknown namespace presence", "presence", `{"channel":"nope:1"}`, 200, 102, nil},
		{"unknown namespace presence_stats", "presence_stats", `{"channel":"nope:1"}`, 200, 102, nil},
		{"unknown namespace history", "history", `{"channel":"nope:1","limit":1}`, 200, 102, nil},
		{"unknown namespace history_remove", "history_remove", `{"channel":"nope:1"}`, 200, 102, nil},
		{"channel without namespace", "publish", `{"channel":"lobby","data":1}`, 200, 102, nil},
		{"bad channel name", "publish", `{"channel":"live:a b","data":1}`, 0, 107, nil},
		{"no history in namespace", "history", `{"channel":"plain:1","limit":1}`, 200, 108, nil},
		{"no presence in namespace", "presence", `{"channel":"plain:1"}`, 200, 108, nil},
		{"no presence stats in namespace", "presence_stats", `{"channel":"plain:1"}`, 200, 108, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, r := s.call(t, tt.method, tt.body)
			if tt.status != 0 && status != tt.status {
				t.Fatalf("status %d, want %d (error %+v)", status, tt.status, r.Error)
			}
			if r.Error == nil || r.Result != nil {
				t.Fatalf("want an error and no result, got result %s", r.Result)
			}
			if r.Error.Code != tt.code {
				t.Fatalf("code %d (%s), want %d", r.Error.Code, r.Error.Message, tt.code)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.Error.Message, w) {
					t.Fatalf("message %q does not name %s", r.Error.Message, w)
				}
			}
		})
	}
}

// Error messages are for the backend developer: they name JSON fields and
// types, never this server's Go types.
func TestServerAPI_ErrorsDoNotLeakGoTypes(t *testing.T) {
	s := newTestServer(t, nil)
	cases := []struct{ method, body string }{
		{"publish", `[1]`},
		{"disconnect", `{"user":"u","disconnect":[]}`},
		{"history", `{"channel":"live:1","since":5}`},
		{"channels", `"x"`},
	}
	for _, tc := range cases {
		status, r := s.call(t, tc.method, tc.body)
		if status != http.StatusBadRequest || r.Error == nil || r.Error.Code != 107 {
			t.Fatalf("%s %s: %d %+v, want 400 code 107", tc.method, tc.body, status, r.Error)
		}
		for _, leak := range []string{"rest.", "hub.", "struct {"} {
			if strings.Contains(r.Error.Message, leak) {
				t.Errorf("%s %s: message %q shows a Go type (%q)", tc.method, tc.body, r.Error.Message, leak)
			}
		}
	}
}

// bodyOfSize is a valid publish request of exactly n bytes.
func bodyOfSize(t testing.TB, n int) []byte {
	t.Helper()
	const head, tail = `{"channel":"live:big","data":"`, `"}`
	pad := n - len(head) - len(tail)
	if pad < 0 {
		t.Fatalf("a publish body cannot be %d bytes", n)
	}
	return []byte(head + strings.Repeat("x", pad) + tail)
}

func TestServerAPI_BodyLimit(t *testing.T) {
	t.Run("configured", func(t *testing.T) {
		s := newTestServer(t, func(o *rest.Options) { o.MaxBodyBytes = 256 })
		key := http.Header{"X-Api-Key": {testAPIKey}}
		if status, raw := s.post(t, "/api/publish", bodyOfSize(t, 256), key); status != http.StatusOK {
			t.Fatalf("body at the limit: %d %s", status, raw)
		}
		status, raw := s.post(t, "/api/publish", bodyOfSize(t, 257), key)
		if status != http.StatusRequestEntityTooLarge {
			t.Fatalf("body over the limit: %d %s, want 413", status, raw)
		}
		var r apiReply
		if err := json.Unmarshal(raw, &r); err != nil || r.Error == nil || r.Error.Code != 107 || !strings.Contains(r.Error.Message, "256") {
			t.Fatalf("413 body %s: want code 107 naming the limit", raw)
		}
	})
	t.Run("default is 1 MiB", func(t *testing.T) {
		s := newTestServer(t, nil)
		key := http.Header{"X-Api-Key": {testAPIKey}}
		if status, raw := s.post(t, "/api/publish", bodyOfSize(t, 1<<20+1), key); status != http.StatusRequestEntityTooLarge {
			t.Fatalf("body over 1 MiB: %d %.200s, want 413", status, raw)
		}
		if status, raw := s.post(t, "/api/publish", bodyOfSize(t, 64<<10), key); status != http.StatusOK {
			t.Fatalf("64 KiB body: %d %.200s", status, raw)
		}
	})
}

func TestServerAPI_PublishArrivesOnSubscribedSocket(t *testing.T) {
	s := newTestServer(t, nil)
	c, _ := s.connect(t, "viewer")
	sub := subscribe(t, c, "live:1")

	tests := []struct {
		name, data string
		tags       map[string]string
	}{
		{"object", `{"n":1}`, nil},
		{"string is a JSON value", `"hello"`, nil},
		{"number", `42`, nil},
		{"array with tags", `[1,2]`, map[string]string{"kind": "chat"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"channel": "live:1", "data": json.RawMessage(tt.data), "tags": tt.tags})
			var res publishResult
			s.ok(t, "publish", string(body), &res)
			if want := sub.Offset + uint64(i) + 1; res.Offset != want || res.Epoch != sub.Epoch {
				t.Fatalf("result %+v, want offset %d epoch %s", res, want, sub.Epoch)
			}
			p := nextPub(t, c, "live:1")
			if string(p.Data) != tt.data || p.Offset != res.Offset {
				t.Fatalf("socket got %s at %d, want %s at %d", p.Data, p.Offset, tt.data, res.Offset)
			}
			for k, v := range tt.tags {
				if p.Tags[k] != v {
					t.Fatalf("tags %v, want %v", p.Tags, tt.tags)
				}
			}
		})
	}

	t.Run("idempotency key publishes once", func(t *testing.T) {
		body := `{"channel":"live:1","data":{"once":true},"idempotency_key":"k1"}`
		var first, second publishResult
		s.ok(t, "publish", body, &first)
		s.ok(t, "publish", body, &second)
		if first != second {
			t.Fatalf("retried publish returned %+v, first %+v", second, first)
		}
		if p := nextPub(t, c, "live:1"); p.Offset != first.Offset {
			t.Fatalf("got offset %d, want %d", p.Offset, first.Offset)
		}
		noPub(t, c, "live:1", 100*time.Millisecond)
	})
}

type broadcastReply struct {
	Responses []struct {
		Result *publishResult `json:"result"`
		Error  *struct {
			Code uint32 `json:"code"`
		} `json:"error"`
	} `json:"responses"`
}

func TestServerAPI_BroadcastAnswersPerChannel(t *testing.T) {
	s := newTestServer(t, nil)
	a, _ := s.connect(t, "a")
	b, _ := s.connect(t, "b")
	subscribe(t, a, "live:a")
	subscribe(t, b, "live:b")

	var res broadcastReply
	s.ok(t, "broadcast", `{"channels":["live:a","nope:1","live:b","live:bad name"],"data":{"sale":true}}`, &res)
	if len(res.Responses) != 4 {
		t.Fatalf("%d responses, want 4", len(res.Responses))
	}
	wantCodes := []uint32{0, 102, 0, 107}
	for i, r := range res.Responses {
		switch {
		case wantCodes[i] == 0 && (r.Result == nil || r.Error != nil || r.Result.Offset != 1):
			t.Fatalf("response %d: result %+v error %+v, want offset 1", i, r.Result, r.Error)
		case wantCodes[i] != 0 && (r.Error == nil || r.Error.Code != wantCodes[i] || r.Result != nil):
			t.Fatalf("response %d: error %+v result %+v, want code %d", i, r.Error, r.Result, wantCodes[i])
		}
	}
	if p := nextPub(t, a, "live:a"); string(p.Data) != `{"sale":true}` {
		t.Fatalf("live:a got %s", p.Data)
	}
	if p := nextPub(t, b, "live:b"); string(p.Data) != `{"sale":true}` {
		t.Fatalf("live:b got %s", p.Data)
	}
}

func TestServerAPI_SubscribeAndUnsubscribePushToSocket(t *testing.T) {
	s := newTestServer(t, nil)
	c, _ := s.connect(t, "buyer", auth.RoleCustomer)
	other, _ := s.connect(t, "someone-else", auth.RoleCustomer)

	// order:* needs a subscription token from a client; the backend needs none.
	s.ok(t, "subscribe", `{"user":"buyer","channel":"order:o1"}`, nil)
	push := nextPush(t, c, "order:o1", "subscribe push", func(p *protocol.Push) bool { return p.Subscribe != nil })
	if !push.Subscribe.Recoverable || push.Subscribe.Epoch == "" {
		t.Fatalf("subscribe push %+v: order channels are recoverable", push.Subscribe)
	}

	var res publishResult
	s.ok(t, "publish", `{"channel":"order:o1","data":{"status":"paid"}}`, &res)
	if res.Epoch != push.Subscribe.Epoch {
		t.Fatalf("publish epoch %s, subscribe push epoch %s", res.Epoch, push.Subscribe.Epoch)
	}
	if p := nextPub(t, c, "order:o1"); string(p.Data) != `{"status":"paid"}` {
		t.Fatalf("got %s", p.Data)
	}
	noPub(t, other, "order:o1", 100*time.Millisecond)

	s.ok(t, "unsubscribe", `{"user":"buyer","channel":"order:o1"}`, nil)
	un := nextPush(t, c, "order:o1", "unsubscribe push", func(p *protocol.Push) bool { return p.Unsubscribe != nil })
	if un.Unsubscribe.Code < 2000 || un.Unsubscribe.Code > 2499 {
		t.Fatalf("unsubscribe code %d, want a server unsubscribe (2000-2499)", un.Unsubscribe.Code)
	}
	s.ok(t, "publish", `{"channel":"order:o1","data":{"status":"shipped"}}`, nil)
	noPub(t, c, "order:o1", 200*time.Millisecond)

	t.Run("user without connections", func(t *testing.T) {
		s.ok(t, "subscribe", `{"user":"nobody","channel":"live:1"}`, nil)
		s.ok(t, "unsubscribe", `{"user":"nobody","channel":"live:1"}`, nil)
	})
}

func TestServerAPI_DisconnectClosesWithRequestedCode(t *testing.T) {
	s := newTestServer(t, nil)
	tests := []struct {
		name       string
		disconnect string // the "disconnect" member, empty for none
		code       websocket.StatusCode
		reason     string
	}{
		{"default is force disconnect", "", 3503, "force disconnect"},
		{"custom code and reason", `{"code":4001,"reason":"bye"}`, 4001, "bye"},
		{"highest code", `{"code":4999,"reason":"high"}`, 4999, "high"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := fmt.Sprintf("d%d", i)
			c, _ := s.connect(t, user)
			body := fmt.Sprintf(`{"user":%q}`, user)
			if tt.disconnect != "" {
				body = fmt.Sprintf(`{"user":%q,"disconnect":%s}`, user, tt.disconnect)
			}
			s.ok(t, "disconnect", body, nil)
			if code, reason := waitClosed(t, c); code != tt.code || reason != tt.reason {
				t.Fatalf("closed with %d %q, want %d %q", code, reason, tt.code, tt.reason)
			}
		})
	}

	// The API may refuse codes the server keeps for itself, but a code it
	// accepts is the code the socket sees.
	t.Run("every accepted code reaches the socket", func(t *testing.T) {
		for _, code := range []uint32{3000, 3001, 3008, 3012, 3500, 3503, 4000, 4500} {
			user := fmt.Sprintf("code-%d", code)
			c, _ := s.connect(t, user)
			status, r := s.call(t, "disconnect", fmt.Sprintf(`{"user":%q,"disconnect":{"code":%d,"reason":"r%d"}}`, user, code, code))
			if status == http.StatusBadRequest && r.Error != nil && strings.Contains(r.Error.Message, `"disconnect.code"`) {
				continue
			}
			if status != http.StatusOK || r.Error != nil {
				t.Fatalf("code %d: status %d error %+v", code, status, r.Error)
			}
			if got, reason := waitClosed(t, c); got != websocket.StatusCode(code) || reason != fmt.Sprintf("r%d", code) {
				t.Errorf("disconnect accepted with code %d, socket closed with %d %q", code, got, reason)
			}
		}
	})

	t.Run("one client of a user", func(t *testing.T) {
		a, ra := s.connect(t, "two-devices")
		b, _ := s.connect(t, "two-devices")
		bystander, _ := s.connect(t, "bystander")
		s.ok(t, "disconnect", fmt.Sprintf(`{"user":"two-devices","client":%q}`, ra.Client), nil)
		if code, _ := waitClosed(t, a); code != 3503 {
			t.Fatalf("targeted client closed with %d, want 3503", code)
		}
		if _, err := b.Call(ctxT(t), &protocol.Command{Ping: &protocol.PingRequest{}}); err != nil {
			t.Fatalf("the user's other client was closed: %v", err)
		}
		if _, err := bystander.Call(ctxT(t), &protocol.Command{Ping: &protocol.PingRequest{}}); err != nil {
			t.Fatalf("another user's client was closed: %v", err)
		}
	})
}

type clientInfoJSON struct {
	User   string `json:"user"`
	Client string `json:"client"`
}

func TestServerAPI_PresenceMatchesSockets(t *testing.T) {
	s := newTestServer(t, nil)
	host, hres := s.connect(t, "h1", auth.RoleHost)
	v1, r1 := s.connect(t, "v1")
	v2, r2 := s.connect(t, "v1") // the same user on a second device
	subscribe(t, host, "live:9")
	subscribe(t, v1, "live:9")
	subscribe(t, v2, "live:9")

	var pres struct {
		Presence map[string]clientInfoJSON `json:"presence"`
	}
	s.ok(t, "presence", `{"channel":"live:9"}`, &pres)
	want := map[string]string{hres.Client: "h1", r1.Client: "v1", r2.Client: "v1"}
	if len(pres.Presence) != len(want) {
		t.Fatalf("presence %+v, want %v", pres.Presence, want)
	}
	for id, user := range want {
		got, ok := pres.Presence[id]
		if !ok || got.User != user || got.Client != id {
			t.Fatalf("presence[%s] = %+v (present %v), want user %s", id, got, ok, user)
		}
	}
	// The host's socket sees the same list.
	hp, err := host.Presence(ctxT(t), "live:9")
	if err != nil {
		t.Fatal(err)
	}
	if keys(hp.Presence) != keys(pres.Presence) {
		t.Fatalf("socket presence %s, API presence %s", keys(hp.Presence), keys(pres.Presence))
	}

	var stats struct {
		NumClients int `json:"num_clients"`
		NumUsers   int `json:"num_users"`
	}
	s.ok(t, "presence_stats", `{"channel":"live:9"}`, &stats)
	if stats.NumClients != 3 || stats.NumUsers != 2 {
		t.Fatalf("presence_stats %+v, want 3 clients 2 users", stats)
	}
	ss, err := v1.PresenceStats(ctxT(t), "live:9")
	if err != nil {
		t.Fatal(err)
	}
	if int(ss.NumClients) != stats.NumClients || int(ss.NumUsers) != stats.NumUsers {
		t.Fatalf("socket stats %+v, API stats %+v", ss, stats)
	}

	var empty struct {
		Presence map[string]clientInfoJSON `json:"presence"`
	}
	s.ok(t, "presence", `{"channel":"live:empty"}`, &empty)
	if empty.Presence == nil || len(empty.Presence) != 0 {
		t.Fatalf("presence of an empty channel: %v, want {}", empty.Presence)
	}
}

func keys[V any](m map[string]V) string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

type historyReply struct {
	Publications []struct {
		Data   json.RawMessage   `json:"data"`
		Offset uint64            `json:"offset"`
		Tags   map[string]string `json:"tags"`
		Info   *clientInfoJSON   `json:"info"`
	} `json:"publications"`
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

func TestServerAPI_HistoryMatchesSocketHistory(t *testing.T) {
	s := newTestServer(t, nil)
	c, _ := s.connect(t, "v1")
	sub := subscribe(t, c, "live:h")
	for i := 1; i <= 5; i++ {
		s.ok(t, "publish", fmt.Sprintf(`{"channel":"live:h","data":{"n":%d},"tags":{"i":"%d"}}`, i, i), nil)
	}
	if err := c.Publish(ctxT(t), "live:h", []byte(`{"n":6}`)); err != nil {
		t.Fatal(err)
	}

	var h historyReply
	s.ok(t, "history", `{"channel":"live:h","limit":3}`, &h)
	if h.Epoch != sub.Epoch || h.Offset != 6 || len(h.Publications) != 3 {
		t.Fatalf("history: epoch %s offset %d %d pubs, want epoch %s offset 6 3 pubs", h.Epoch, h.Offset, len(h.Publications), sub.Epoch)
	}
	for i, p := range h.Publications {
		if want := fmt.Sprintf(`{"n":%d}`, i+1); string(p.Data) != want || p.Offset != uint64(i+1) || p.Tags["i"] != fmt.Sprint(i+1) {
			t.Fatalf("publication %d: %s offset %d tags %v", i, p.Data, p.Offset, p.Tags)
		}
	}
	sh, err := c.History(ctxT(t), &protocol.HistoryRequest{Channel: "live:h", Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range sh.Publications {
		if string(sh.Publications[i].Data) != string(h.Publications[i].Data) || sh.Publications[i].Offset != h.Publications[i].Offset {
			t.Fatalf("socket history[%d] %s, API history %s", i, sh.Publications[i].Data, h.Publications[i].Data)
		}
	}

	t.Run("client publication carries its author", func(t *testing.T) {
		var all historyReply
		s.ok(t, "history", `{"channel":"live:h","limit":-1}`, &all)
		last := all.Publications[len(all.Publications)-1]
		if last.Info == nil || last.Info.User != "v1" {
			t.Fatalf("last publication info %+v, want user v1", last.Info)
		}
	})
	t.Run("no limit gives the position only", func(t *testing.T) {
		var pos historyReply
		s.ok(t, "history", `{"channel":"live:h"}`, &pos)
		if len(pos.Publications) != 0 || pos.Offset != 6 || pos.Epoch != sub.Epoch {
			t.Fatalf("history without limit: %+v", pos)
		}
	})
	t.Run("reverse", func(t *testing.T) {
		var rev historyReply
		s.ok(t, "history", `{"channel":"live:h","limit":2,"reverse":true}`, &rev)
		if len(rev.Publications) != 2 || rev.Publications[0].Offset != 6 || rev.Publications[1].Offset != 5 {
			t.Fatalf("reverse history: %+v", rev.Publications)
		}
	})
	t.Run("since", func(t *testing.T) {
		var since historyReply
		s.ok(t, "history", fmt.Sprintf(`{"channel":"live:h","limit":-1,"since":{"offset":3,"epoch":%q}}`, sub.Epoch), &since)
		if len(since.Publications) != 3 || since.Publications[0].Offset != 4 {
			t.Fatalf("history since 3: %+v", since.Publications)
		}
	})
	t.Run("since another epoch", func(t *testing.T) {
		status, r := s.call(t, "history", `{"channel":"live:h","limit":1,"since":{"offset":3,"epoch":"other"}}`)
		if status != http.StatusOK || r.Error == nil || r.Error.Code != 112 {
			t.Fatalf("status %d error %+v, want 200 code 112", status, r.Error)
		}
	})
	t.Run("history_remove", func(t *testing.T) {
		s.ok(t, "history_remove", `{"channel":"live:h"}`, nil)
		var after historyReply
		s.ok(t, "history", `{"channel":"live:h","limit":-1}`, &after)
		if len(after.Publications) != 0 || after.Offset != 6 || after.Epoch != sub.Epoch {
			t.Fatalf("after history_remove: %d pubs, offset %d epoch %s; want none at offset 6 same epoch", len(after.Publications), after.Offset, after.Epoch)
		}
		sh, err := c.History(ctxT(t), &protocol.HistoryRequest{Channel: "live:h", Limit: -1})
		if err != nil || len(sh.Publications) != 0 {
			t.Fatalf("socket history after remove: %+v %v", sh, err)
		}
		// The stream goes on from where it was.
		var res publishResult
		s.ok(t, "publish", `{"channel":"live:h","data":7}`, &res)
		if res.Offset != 7 {
			t.Fatalf("offset after remove %d, want 7", res.Offset)
		}
	})
}

func TestServerAPI_ChannelsListsSubscribedChannels(t *testing.T) {
	s := newTestServer(t, nil)
	a, _ := s.connect(t, "ua")
	b, _ := s.connect(t, "ub")
	subscribe(t, a, "live:1")
	subscribe(t, b, "live:1")
	subscribe(t, a, "live:10")
	if _, err := b.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "nope:x"}); err == nil {
		t.Fatal("subscribed to an unknown namespace")
	}

	type channelsReply struct {
		Channels map[string]struct {
			NumClients int `json:"num_clients"`
		} `json:"channels"`
	}
	var all channelsReply
	s.ok(t, "channels", ``, &all)
	want := map[string]int{"live:1": 2, "live:10": 1, "user:#ua": 1, "user:#ub": 1}
	if len(all.Channels) != len(want) {
		t.Fatalf("channels %+v, want %v", all.Channels, want)
	}
	for ch, n := range want {
		if all.Channels[ch].NumClients != n {
			t.Fatalf("channels[%s] = %d clients, want %d (all %+v)", ch, all.Channels[ch].NumClients, n, all.Channels)
		}
	}

	tests := []struct {
		pattern string
		want    string
	}{
		{"live:*", "live:1,live:10"},
		{"user:*", "user:#ua,user:#ub"},
		{"*", "live:1,live:10,user:#ua,user:#ub"},
		{"nothing:*", ""},
		// Without a wildcard a pattern names one channel.
		{"live:1", "live:1"},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			var got channelsReply
			s.ok(t, "channels", fmt.Sprintf(`{"pattern":%q}`, tt.pattern), &got)
			if keys(got.Channels) != tt.want {
				t.Fatalf("pattern %q: %s, want %s", tt.pattern, keys(got.Channels), tt.want)
			}
		})
	}
}

func TestServerAPI_InfoListsThisNode(t *testing.T) {
	s := newTestServer(t, nil)
	c, _ := s.connect(t, "u1")
	subscribe(t, c, "live:info")
	type infoReply struct {
		Nodes []struct {
			UID        string `json:"uid"`
			Version    string `json:"version"`
			NumClients int    `json:"num_clients"`
			NumUsers   int    `json:"num_users"`
			NumSubs    int    `json:"num_subs"`
		} `json:"nodes"`
	}
	// The node reports itself periodically; wait for a report that counts the socket.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var info infoReply
		s.ok(t, "info", `{}`, &info)
		if len(info.Nodes) != 1 {
			t.Fatalf("%d nodes, want 1: %+v", len(info.Nodes), info.Nodes)
		}
		n := info.Nodes[0]
		if n.UID != s.node.ID() || n.Version != "test-version" {
			t.Fatalf("node %+v, want uid %s version test-version", n, s.node.ID())
		}
		if n.NumClients == 1 && n.NumUsers == 1 && n.NumSubs == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node figures %+v, want 1 client, 1 user, 2 subscriptions", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var fuzzMethods = []string{
	"publish", "broadcast", "subscribe", "unsubscribe", "disconnect", "presence",
	"presence_stats", "history", "history_remove", "channels", "info", "nope",
}

// FuzzServerAPIDecode sends arbitrary bodies to every method: the answer is
// always a JSON envelope with a result or an error, never a server error.
func FuzzServerAPIDecode(f *testing.F) {
	seeds := []string{
		``, `{}`, `null`, `[]`, `"x"`, `0`, `{"channel":`, `{}{}`, "\xff\xfe",
		`{"channel":"live:1","data":{"n":1},"tags":{"a":"b"},"idempotency_key":"k"}`,
		`{"channel":"live:1","data":"str"}`,
		`{"channels":["live:1","nope:1",""],"data":[1]}`,
		`{"user":"u","channel":"order:1"}`,
		`{"user":"u","client":"c","disconnect":{"code":4000,"reason":"r"}}`,
		`{"user":"u","disconnect":{"code":0}}`,
		`{"channel":"live:1","limit":-1,"since":{"offset":18446744073709551615,"epoch":""},"reverse":true}`,
		`{"channel":"live:1","limit":99999999999999999999}`,
		`{"pattern":"live:*"}`,
		`{"channel":"user:#","data":null}`,
		`{"channel":"` + strings.Repeat("a:", 200) + `"}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	reg := prometheus.NewRegistry()
	n := newNode(f, reg)
	h := rest.New(rest.Options{Node: n, APIKey: testAPIKey, MaxBodyBytes: 4096, Gatherer: reg, Logger: quietLogger()})
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, m := range fuzzMethods {
			req := httptest.NewRequest(http.MethodPost, "/api/"+m, bytes.NewReader(body))
			req.Header.Set("X-API-Key", testAPIKey)
			rec := httptest.NewRecorder()
			start := time.Now()
			h.ServeHTTP(rec, req)
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("%s %q took %v", m, body, d)
			}
			if rec.Code >= 500 {
				t.Fatalf("%s %q: status %d %s", m, body, rec.Code, rec.Body.Bytes())
			}
			var r apiReply
			if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
				t.Fatalf("%s %q: status %d, body not JSON: %q", m, body, rec.Code, rec.Body.Bytes())
			}
			if (r.Error == nil) == (r.Result == nil) {
				t.Fatalf("%s %q: want exactly one of result and error: %s", m, body, rec.Body.Bytes())
			}
			if rec.Code != http.StatusOK && r.Error == nil {
				t.Fatalf("%s %q: status %d without an error", m, body, rec.Code)
			}
			if r.Error != nil && r.Error.Code == 100 {
				t.Fatalf("%s %q: internal error for a client's body: %s", m, body, rec.Body.Bytes())
			}
		}
	})
}
