package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/centrifugal/protocol"

	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/protoclient"
)

// role is a column of the authorization matrix: who asks.
type role int

const (
	anonymous    role = iota // no token at all
	customer                 // the buyer of {order}, owner of user:#{customer}
	otherCust                // another customer, with an order of their own
	host                     // the host of {stream}
	otherHost                // the host of another stream
	moderator                // appointed moderator of {stream} (token role moderator)
	courier                  // the courier assigned to {order}
	otherCourier             // the courier assigned to another order
	admin                    // role admin
	numRoles
)

var roleNames = [numRoles]string{
	"anonymous", "customer", "another customer", "host of this stream", "host of another stream",
	"moderator of this stream", "courier of this order", "courier of another order", "admin",
}

// roleShort are the column headings of the matrix in docs/security.md.
var roleShort = [numRoles]string{"anon", "customer", "other cust.", "host", "other host", "moderator", "courier", "other courier", "admin"}

// actorIDs are the users behind the roles.
var actorIDs = [numRoles]string{
	"", "authz-buyer", "authz-buyer-2", "authz-host-a", "authz-host-b",
	"authz-mod-a", "authz-courier-1", "authz-courier-2", "authz-admin",
}

var actorRoles = [numRoles][]auth.Role{
	nil, {auth.RoleCustomer}, {auth.RoleCustomer}, {auth.RoleHost}, {auth.RoleHost},
	{auth.RoleModerator}, {auth.RoleCourier}, {auth.RoleCourier}, {auth.RoleAdmin},
}

// want is one row of expectations, one cell per role, in the order of
// the role constants. A cell is "ok" for a protocol command that succeeds,
// a protocol error code ("103"), or an HTTP status ("200", "403").
type want [numRoles]string

// authzRule is one row of the matrix: one action on one object, and what
// each role gets.
type authzRule struct {
	// Object is a channel ("order:{order}") or a request ("GET /v1/orders/{order}").
	Object string
	// Action is the protocol command for channels: subscribe, publish,
	// history, presence, presence_stats; for requests it says what the
	// body does, or is empty.
	Action string
	// Body is the JSON body of a request, with placeholders.
	Body string
	// Fresh names the placeholder that cells expecting success replace
	// with a freshly made object, so that changing it harms no other row
	// ("stream", "sale", "pending", "paid", "assigned", "device").
	Fresh string
	// Leaks lists placeholders whose values must not appear in the
	// answer of a cell of any role but the one given.
	Leaks map[string]role
	Want  want
}

func (r authzRule) isChannel() bool { return !strings.Contains(r.Object, " ") }

// authzFixture is the running node and the objects the rules act on.
type authzFixture struct {
	t      *testing.T
	ctx    context.Context
	srv    *server
	base   string
	ws     string
	http   *http.Client
	tokens [numRoles]string
	ids    map[string]string // placeholder name → id
	seq    atomic.Int64
}

func newAuthzFixture(ctx context.Context, t *testing.T) *authzFixture {
	t.Helper()
	bin := buildServer(t, moduleRoot(t))
	srv := startServer(ctx, t, bin,
		"LIVEHUB_LOG_LEVEL=warn",
		// The matrix checks out more often than a buyer may per second;
		// the checkout rate limit has its own tests.
		"LIVEHUB_CHECKOUT_USER_LIMIT=0",
		"LIVEHUB_CHECKOUT_IP_LIMIT=0",
	)
	f := &authzFixture{
		t: t, ctx: ctx, srv: srv,
		base: "http://" + srv.addr,
		ws:   "ws://" + srv.addr + "/connection/websocket",
		http: &http.Client{Timeout: 10 * time.Second},
		ids:  map[string]string{},
	}
	for r := customer; r < numRoles; r++ {
		tok, err := auth.Mint([]byte(jwtSecret), auth.Claims{Subject: actorIDs[r], Name: roleNames[r], Roles: actorRoles[r]}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[r] = tok
	}
	for r := customer; r < numRoles; r++ {
		f.ids[fmt.Sprintf("user_%d", r)] = actorIDs[r]
	}
	f.ids["customer"] = actorIDs[customer]
	f.ids["host"] = actorIDs[host]

	f.ids["stream"] = f.newStream(host)
	f.ids["other_stream"] = f.newStream(otherHost)
	f.mustDo(host, "POST", "/v1/streams/{stream}/moderation/moderators", `{"user_id":"`+actorIDs[moderator]+`"}`, 200)
	f.ids["sale"] = f.newSale()
	f.ids["order"] = f.newAssigned(customer, courier)
	f.ids["other_order"] = f.newAssigned(otherCust, otherCourier)
	f.ids["pending"] = f.newPending(customer)
	f.ids["paid"] = f.newPaid(customer)
	f.ids["device"] = f.newDevice(customer)
	var campaign struct{ ID string }
	f.mustDecode(f.mustDo(host, "POST", "/v1/streams/{stream}/notify-followers", `{"title":"live now"}`, 202), &campaign)
	f.ids["campaign"] = campaign.ID
	return f
}

// expand replaces {name} placeholders with the fixture's IDs.
func (f *authzFixture) expand(s string, ids map[string]string) string {
	return placeholderRE.ReplaceAllStringFunc(s, func(m string) string {
		name := m[1 : len(m)-1]
		if v, ok := ids[name]; ok {
			return v
		}
		if v, ok := f.ids[name]; ok {
			return v
		}
		if name == "now_ms" {
			return strconv.FormatInt(time.Now().UnixMilli(), 10)
		}
		if name == "seq" {
			return strconv.FormatInt(f.seq.Add(1), 10)
		}
		f.t.Fatalf("unknown placeholder %s", m)
		return m
	})
}

var placeholderRE = regexp.MustCompile(`\{[a-z_0-9]+\}`)

// do sends one request as r and returns the status and body.
func (f *authzFixture) do(r role, method, path, body string, ids map[string]string) (int, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(f.expand(body, ids))
	}
	req, err := http.NewRequestWithContext(f.ctx, method, f.base+f.expand(path, ids), rd)
	if err != nil {
		return 0, nil, err
	}
	if f.tokens[r] != "" {
		req.Header.Set("Authorization", "Bearer "+f.tokens[r])
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if method == "POST" && strings.HasSuffix(path, "/checkout") {
		req.Header.Set("Idempotency-Key", "authz-"+strconv.FormatInt(f.seq.Add(1), 10))
	}
	resp, err := f.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

func (f *authzFixture) mustDo(r role, method, path, body string, status int) []byte {
	f.t.Helper()
	code, data, err := f.do(r, method, path, body, nil)
	if err != nil || code != status {
		f.t.Fatalf("setup %s %s as %s: %d %s %v (want %d)", method, path, roleNames[r], code, data, err, status)
	}
	return data
}

func (f *authzFixture) mustDecode(data []byte, v any) {
	f.t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		f.t.Fatalf("decode %s: %v", data, err)
	}
}

func (f *authzFixture) id(data []byte) string {
	f.t.Helper()
	var v struct{ ID string }
	f.mustDecode(data, &v)
	if v.ID == "" {
		f.t.Fatalf("no id in %s", data)
	}
	return v.ID
}

func (f *authzFixture) newStream(r role) string {
	return f.id(f.mustDo(r, "POST", "/v1/streams", `{"title":"authz {seq}"}`, 201))
}

func (f *authzFixture) newSale() string {
	return f.id(f.mustDo(host, "POST", "/v1/streams/{stream}/flash-sales", `{"product":{"id":"p-{seq}","name":"Hijab"},"price":75000,`+
		`"quantity":1000,"per_user_limit":100,"countdown_seconds":0,"duration_seconds":3600}`, 201))
}

func (f *authzFixture) newPending(buyer role) string {
	return f.id(f.mustDo(buyer, "POST", "/v1/checkout", `{"flash_sale_id":"{sale}","quantity":1}`, 201))
}

func (f *authzFixture) newPaid(buyer role) string {
	id := f.newPending(buyer)
	f.mustDo(buyer, "POST", "/v1/payments/simulated/"+id+"/pay", "", 200)
	return id
}

func (f *authzFixture) newAssigned(buyer, courierRole role) string {
	id := f.newPaid(buyer)
	f.mustDo(host, "POST", "/v1/orders/"+id+"/courier",
		`{"courier_id":"`+actorIDs[courierRole]+`","address":{"lat":-6.2297,"lng":106.8295,"text":"Jl. Sudirman 1"}}`, 200)
	return id
}

func (f *authzFixture) newDevice(r role) string {
	tok := "fcm-authz-" + strconv.FormatInt(f.seq.Add(1), 10)
	f.mustDo(r, "POST", "/v1/devices", `{"platform":"android","token":"`+tok+`"}`, 201)
	return tok
}

// fresh makes a new object for a cell expected to change it.
func (f *authzFixture) fresh(kind string) string {
	switch kind {
	case "stream":
		return f.newStream(host)
	case "sale":
		return f.newSale()
	case "pending":
		return f.newPending(customer)
	case "paid":
		return f.newPaid(customer)
	case "order":
		return f.newAssigned(customer, courier)
	case "device":
		return f.newDevice(customer)
	}
	f.t.Fatalf("no fresh %q", kind)
	return ""
}

func success(w string) bool {
	return w == "ok" || len(w) == 3 && w[0] == '2'
}

// run executes one cell and returns what it got, in the cell's notation.
func (f *authzFixture) run(rule authzRule, r role) (string, error) {
	ids := map[string]string{}
	if rule.Fresh != "" && success(rule.Want[r]) {
		ids[rule.Fresh] = f.fresh(rule.Fresh)
	}
	if rule.isChannel() {
		return f.runChannel(rule, r, ids)
	}
	method, path, _ := strings.Cut(rule.Object, " ")
	code, body, err := f.do(r, method, path, rule.Body, ids)
	if err != nil {
		return "", err
	}
	got := strconv.Itoa(code)
	for name, owner := range rule.Leaks {
		if owner != r && bytes.Contains(body, []byte(f.expand("{"+name+"}", ids))) {
			return got, fmt.Errorf("the answer to %s shows {%s} (%s): %s", roleNames[r], name, f.expand("{"+name+"}", ids), body)
		}
	}
	return got, nil
}

// runChannel opens a connection as r, subscribes (for every action: a
// command on a channel one may not subscribe to must fail as well), and
// runs the action.
func (f *authzFixture) runChannel(rule authzRule, r role, ids map[string]string) (string, error) {
	ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
	defer cancel()
	conn, err := protoclient.Dial(ctx, f.ws, protoclient.Options{})
	if err != nil {
		return "", err
	}
	defer conn.CloseNow()
	res, err := conn.Connect(ctx, f.tokens[r])
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	channel := f.expand(rule.Object, ids)
	_, serverSide := res.Subs[channel]
	subReq := &protocol.SubscribeRequest{Channel: channel}
	action, withToken, _ := strings.Cut(rule.Action, " with ")
	if withToken != "" {
		// "with the customer's token": a subscription token for this
		// channel minted for the customer, presented by r.
		tok, err := auth.Mint([]byte(jwtSecret), auth.Claims{Subject: actorIDs[customer], Channel: channel}, time.Hour)
		if err != nil {
			return "", err
		}
		subReq.Token = tok
	}
	_, subErr := conn.Subscribe(ctx, subReq)
	if serverSide && code(subErr) == "105" {
		subErr = nil // subscribed by the server at connect
	}
	var cmdErr error
	switch action {
	case "subscribe":
		cmdErr = subErr
	case "publish":
		cmdErr = conn.Publish(ctx, channel, []byte(f.expand(rule.Body, ids)))
	case "history":
		_, cmdErr = conn.History(ctx, &protocol.HistoryRequest{Channel: channel, Limit: 10})
	case "presence":
		_, cmdErr = conn.Presence(ctx, channel)
	case "presence_stats":
		_, cmdErr = conn.PresenceStats(ctx, channel)
	default:
		return "", fmt.Errorf("unknown action %q", rule.Action)
	}
	return code(cmdErr), nil
}

// code renders a command's outcome: "ok", the protocol error code, or the
// error itself when it is not a protocol error.
func code(err error) string {
	if err == nil {
		return "ok"
	}
	var re *protoclient.ReplyError
	if errors.As(err, &re) {
		return strconv.Itoa(int(re.Code))
	}
	return err.Error()
}

// renderMatrix writes the matrix as the Markdown of docs/security.md.
func renderMatrix(rules []authzRule) string {
	var b strings.Builder
	b.WriteString("| Object | Action |")
	for _, h := range roleShort {
		b.WriteString(" " + h + " |")
	}
	b.WriteString("\n|---|---|")
	for range roleShort {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, r := range rules {
		action := r.Action
		if action == "" {
			action = "—"
		}
		fmt.Fprintf(&b, "| `%s` | %s |", r.Object, action)
		for _, w := range r.Want {
			b.WriteString(" " + cell(r, w) + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func cell(r authzRule, w string) string {
	switch {
	case w == "ok":
		return "✓"
	case success(w):
		return "✓ " + w
	}
	return "✗ " + w
}

const (
	matrixBegin = "<!-- authz-matrix:begin (generated by go test ./internal/e2e -run TestSecurityDoc -update; do not edit) -->"
	matrixEnd   = "<!-- authz-matrix:end -->"
)

func securityDocPath(t *testing.T) string {
	return filepath.Join(moduleRoot(t), "docs", "security.md")
}

// matrixSection returns the text between the markers of doc, and where it is.
func matrixSection(doc string) (string, int, int, bool) {
	i := strings.Index(doc, matrixBegin)
	j := strings.Index(doc, matrixEnd)
	if i < 0 || j < i {
		return "", 0, 0, false
	}
	start := i + len(matrixBegin) + 1
	if start > j {
		start = j
	}
	return doc[start:j], start, j, true
}

// testNames returns the names of every Test and Fuzz function of the module.
func testNames(t *testing.T) map[string]bool {
	t.Helper()
	root := moduleRoot(t)
	names := map[string]bool{}
	re := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz)[A-Za-z0-9_]*)\(`)
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllStringSubmatch(string(data), -1) {
			names[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// sortedKeys is for stable messages.
func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
