package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/centrifugal/protocol"

	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/protoclient"
)

const (
	testSecret = "main-test-secret-0123456789abcdef"
	testKey    = "main-test-api-key"
)

// lockedBuffer is a bytes.Buffer safe for the logger's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// getenv serves vars, and nothing else: the test never reads the real environment.
func getenv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func baseEnv() map[string]string {
	return map[string]string{
		"LIVEHUB_JWT_SECRET":     testSecret,
		"LIVEHUB_API_KEY":        testKey,
		"LIVEHUB_SHUTDOWN_GRACE": "100ms",
		"LIVEHUB_LOG_LEVEL":      "error",
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// closeWithin calls m.Close and fails the test if it panics or does not
// return in time.
func closeWithin(t testing.TB, m *Main, d time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	panicked := make(chan any, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				panicked <- p
			}
		}()
		done <- m.Close()
	}()
	select {
	case err := <-done:
		return err
	case p := <-panicked:
		t.Errorf("Close panicked: %v", p)
		return nil
	case <-time.After(d):
		t.Errorf("Close did not return within %v", d)
		return nil
	}
}

// startMain builds and runs a Main on a loopback port. The context given to
// Run lives as long as the test; Close is a cleanup.
func startMain(t *testing.T, vars map[string]string, stdout io.Writer) *Main {
	t.Helper()
	if stdout == nil {
		stdout = io.Discard
	}
	m, err := NewMain([]string{"-http-addr", "127.0.0.1:0"}, getenv(vars), stdout, &lockedBuffer{})
	if err != nil {
		t.Fatalf("NewMain: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.Run(ctx); err != nil {
		cancel()
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = closeWithin(t, m, 30*time.Second)
	})
	return m
}

func httpGet(t testing.TB, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func apiPublish(t testing.TB, addr, key, channel, data string) (int, string) {
	t.Helper()
	body := fmt.Sprintf(`{"channel":%q,"data":%s}`, channel, data)
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, "http://"+addr+"/api/publish", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// mintToken runs `livehub token` and returns the token it prints.
func mintToken(t testing.TB, vars map[string]string, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(append([]string{"token"}, args...), getenv(vars), &out, &errOut); err != nil {
		t.Fatalf("token %v: %v (%s)", args, err, errOut.String())
	}
	tok := strings.TrimSpace(out.String())
	if strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \n") {
		t.Fatalf("token %v printed %q, not one JWT", args, out.String())
	}
	return tok
}

func dial(t testing.TB, addr string) *protoclient.Conn {
	t.Helper()
	c, err := protoclient.Dial(ctxT(t), "ws://"+addr+"/connection/websocket", protoclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseNow)
	return c
}

func nextPub(t testing.TB, c *protoclient.Conn, channel string) *protocol.Publication {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case p, ok := <-c.Pushes():
			if !ok {
				code, reason := c.CloseStatus()
				t.Fatalf("connection closed (%d %s) while waiting for a publication on %s", code, reason, channel)
			}
			if p.Channel == channel && p.Pub != nil {
				return p.Pub
			}
		case <-timeout:
			t.Fatalf("no publication on %s within 5s (the connection has read %d frames)", channel, c.Frames.Load())
		}
	}
}

func TestMain_ServesTokenHoldersAndClosesThemOnShutdown(t *testing.T) {
	vars := baseEnv()
	m, err := NewMain([]string{"-http-addr", "127.0.0.1:0"}, getenv(vars), io.Discard, &lockedBuffer{})
	if err != nil {
		t.Fatal(err)
	}
	// Run's context is cancelled only if Close fails to return by itself.
	runCtx, cancelRun := context.WithCancel(context.Background())
	t.Cleanup(cancelRun)
	if err := m.Run(runCtx); err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			cancelRun()
			_ = closeWithin(t, m, 30*time.Second)
		}
	})
	addr := m.Addr()
	if host, port, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr() = %q, want 127.0.0.1 and a real port", addr)
	}

	if status, body := httpGet(t, "http://"+addr+"/readyz"); status != http.StatusOK {
		t.Fatalf("/readyz: %d %s", status, body)
	}
	if status, _ := httpGet(t, "http://"+addr+"/healthz"); status != http.StatusOK {
		t.Fatalf("/healthz: %d", status)
	}

	tok := mintToken(t, vars, "--sub", "u1", "--roles", "admin")
	c := dial(t, addr)
	res, err := c.Connect(ctxT(t), tok)
	if err != nil {
		t.Fatalf("connect with the minted token: %v", err)
	}
	if res.Client == "" {
		t.Fatalf("connect result %+v", res)
	}
	if _, ok := res.Subs["user:#u1"]; !ok {
		t.Fatalf("the token's subject is not the connection's user: subs %v", res.Subs)
	}
	// studio:* is open to admins by role: the role in the token reached the hub.
	if _, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "studio:1"}); err != nil {
		t.Fatalf("admin role not honoured: %v", err)
	}
	if _, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:1"}); err != nil {
		t.Fatal(err)
	}

	if status, body := apiPublish(t, addr, "wrong-key", "live:1", `{"n":0}`); status != http.StatusUnauthorized {
		t.Fatalf("publish with a wrong key: %d %s", status, body)
	}
	if status, body := apiPublish(t, addr, testKey, "live:1", `{"n":1}`); status != http.StatusOK || !strings.Contains(body, `"result"`) {
		t.Fatalf("publish: %d %s", status, body)
	}
	if p := nextPub(t, c, "live:1"); string(p.Data) != `{"n":1}` {
		t.Fatalf("received %s", p.Data)
	}

	status, metrics := httpGet(t, "http://"+addr+"/metrics")
	if status != http.StatusOK || !regexp.MustCompile(`(?m)^livehub_hub_connections 1$`).MatchString(metrics) {
		t.Fatalf("/metrics: %d, livehub_hub_connections 1 not found", status)
	}
	if !strings.Contains(metrics, "go_goroutines") {
		t.Fatal("/metrics lacks the Go runtime collector")
	}

	// Close with Run's context still live, as a caller that owns Main does.
	done := make(chan error, 1)
	go func() { done <- m.Close() }()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("client still connected 10s after Close")
	}
	if code, reason := c.CloseStatus(); code != 3001 {
		t.Fatalf("client closed with %d %q, want 3001 shutdown", code, reason)
	}
	select {
	case err := <-done:
		closed = true
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Close did not return while Run's context was live")
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("still listening after Close")
	}
}

func TestMain_ServesWebUI(t *testing.T) {
	m := startMain(t, baseEnv(), nil)
	status, body := httpGet(t, "http://"+m.Addr()+"/")
	if status != http.StatusOK || !strings.Contains(strings.ToLower(body), "<html") {
		t.Fatalf("GET /: %d %.100q", status, body)
	}
}

func TestNewMain_RequiresSecretOutsideDev(t *testing.T) {
	vars := baseEnv()
	delete(vars, "LIVEHUB_JWT_SECRET")
	m, err := NewMain([]string{"-http-addr", "127.0.0.1:0"}, getenv(vars), io.Discard, io.Discard)
	if err == nil {
		_ = m.Close()
		t.Fatal("NewMain without a secret succeeded")
	}
	if !strings.Contains(err.Error(), "LIVEHUB_JWT_SECRET") {
		t.Fatalf("error %q does not name LIVEHUB_JWT_SECRET", err)
	}
}

func TestNewMain_RefusesThreeSecrets(t *testing.T) {
	vars := baseEnv()
	vars["LIVEHUB_JWT_SECRET"] = "a-secret-one,a-secret-two,a-secret-three"
	m, err := NewMain(nil, getenv(vars), io.Discard, io.Discard)
	if err == nil {
		_ = m.Close()
		t.Fatal("three secrets accepted")
	}
	if !strings.Contains(err.Error(), "LIVEHUB_JWT_SECRET") {
		t.Fatalf("error %q does not name LIVEHUB_JWT_SECRET", err)
	}
}

func TestNewMain_ConfigErrorsReported(t *testing.T) {
	vars := baseEnv()
	vars["LIVEHUB_PING_INTERVAL"] = "often"
	_, err := NewMain(nil, getenv(vars), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "LIVEHUB_PING_INTERVAL") {
		t.Fatalf("bad ping interval: %v", err)
	}
}

var hexRe = regexp.MustCompile(`[0-9a-f]{32,}`)

func TestNewMain_DevGeneratesSecretAndKey(t *testing.T) {
	vars := map[string]string{"LIVEHUB_DEV": "true", "LIVEHUB_SHUTDOWN_GRACE": "100ms", "LIVEHUB_LOG_LEVEL": "error"}
	var out lockedBuffer
	m := startMain(t, vars, &out)
	secrets, key := m.Config.JWTSecrets, m.Config.APIKey
	if len(secrets) != 1 || len(secrets[0]) < 32 || key == "" {
		t.Fatalf("dev mode: secrets %q key %q", secrets, key)
	}
	printed := out.String()
	if !strings.Contains(printed, secrets[0]) || !strings.Contains(printed, key) {
		t.Fatalf("stdout does not show the generated secret and key:\n%s", printed)
	}
	if !strings.Contains(printed, "livehub token") {
		t.Fatalf("stdout does not say how to mint a token:\n%s", printed)
	}

	// What was printed works.
	tok := mintToken(t, map[string]string{"LIVEHUB_JWT_SECRET": secrets[0]}, "--sub", "dev-user")
	c := dial(t, m.Addr())
	if _, err := c.Connect(ctxT(t), tok); err != nil {
		t.Fatalf("connect with a token of the printed secret: %v", err)
	}
	if _, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:dev"}); err != nil {
		t.Fatal(err)
	}
	if status, body := apiPublish(t, m.Addr(), key, "live:dev", `"hi"`); status != http.StatusOK {
		t.Fatalf("publish with the printed key: %d %s", status, body)
	}
	if p := nextPub(t, c, "live:dev"); string(p.Data) != `"hi"` {
		t.Fatalf("received %s", p.Data)
	}

	t.Run("each session its own secret", func(t *testing.T) {
		var out2 lockedBuffer
		m2 := startMain(t, vars, &out2)
		if m2.Config.JWTSecrets[0] == secrets[0] || m2.Config.APIKey == key {
			t.Fatal("a second dev session generated the same secret or key")
		}
	})
	t.Run("configured values kept", func(t *testing.T) {
		v := baseEnv()
		v["LIVEHUB_DEV"] = "true"
		var out3 lockedBuffer
		m3 := startMain(t, v, &out3)
		if len(m3.Config.JWTSecrets) != 1 || m3.Config.JWTSecrets[0] != testSecret || m3.Config.APIKey != testKey {
			t.Fatalf("dev mode replaced configured values: %q %q", m3.Config.JWTSecrets, m3.Config.APIKey)
		}
		if hexRe.MatchString(out3.String()) {
			t.Fatalf("dev mode printed a generated value although both were configured:\n%s", out3.String())
		}
	})
}

// "-dev" is how the error message and the docs spell development mode.
func TestNewMain_DevFlag(t *testing.T) {
	var out lockedBuffer
	m, err := NewMain([]string{"-dev", "-http-addr", "127.0.0.1:0"}, getenv(map[string]string{"LIVEHUB_SHUTDOWN_GRACE": "100ms"}), &out, io.Discard)
	if err != nil {
		t.Fatalf("livehub -dev: %v", err)
	}
	t.Cleanup(func() { _ = closeWithin(t, m, 30*time.Second) })
	if !m.Config.Dev || len(m.Config.JWTSecrets) != 1 || m.Config.APIKey == "" {
		t.Fatalf("-dev: dev=%v secrets=%d key=%q", m.Config.Dev, len(m.Config.JWTSecrets), m.Config.APIKey)
	}
}

func TestRun_BusyAddressFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	m, err := NewMain([]string{"-http-addr", ln.Addr().String()}, getenv(baseEnv()), io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeWithin(t, m, 30*time.Second) })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := m.Run(ctx); err == nil {
		t.Fatalf("Run on %s, already taken, succeeded", ln.Addr())
	}
}

func TestToken_MintsVerifiableTokens(t *testing.T) {
	verifier, err := auth.NewVerifier(auth.VerifierConfig{Secrets: [][]byte{[]byte(testSecret)}})
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"LIVEHUB_JWT_SECRET": testSecret}

	t.Run("connection token", func(t *testing.T) {
		tok := mintToken(t, vars, "--sub", "u1", "--name", "Ayu", "--roles", "host, moderator", "--ttl", "1h")
		c, err := verifier.VerifyConnect(tok)
		if err != nil {
			t.Fatal(err)
		}
		if c.Subject != "u1" || c.Name != "Ayu" || !c.HasRole(auth.RoleHost) || !c.HasRole(auth.RoleModerator) || len(c.Roles) != 2 {
			t.Fatalf("claims %+v", c)
		}
		if left := time.Until(c.ExpiresAt); left < 55*time.Minute || left > 61*time.Minute {
			t.Fatalf("expires in %v, want about 1h", left)
		}
	})
	t.Run("default role is customer", func(t *testing.T) {
		c, err := verifier.VerifyConnect(mintToken(t, vars, "--sub", "u2"))
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Roles) != 1 || c.Roles[0] != auth.RoleCustomer {
			t.Fatalf("roles %v, want [customer]", c.Roles)
		}
	})
	t.Run("subscription token", func(t *testing.T) {
		tok := mintToken(t, vars, "--sub", "buyer", "--channel", "order:o1")
		if _, err := verifier.VerifySubscribe(tok, "buyer", "order:o1"); err != nil {
			t.Fatal(err)
		}
		if _, err := verifier.VerifyConnect(tok); err == nil {
			t.Fatal("a subscription token opened a connection")
		}
	})
	t.Run("first of two secrets signs", func(t *testing.T) {
		tok := mintToken(t, map[string]string{"LIVEHUB_JWT_SECRET": testSecret + ",old-secret-old-secret-old-secret"}, "--sub", "u3")
		if _, err := verifier.VerifyConnect(tok); err != nil {
			t.Fatalf("not signed with the first secret: %v", err)
		}
	})
	t.Run("--secret overrides the variable", func(t *testing.T) {
		other := "another-secret-another-secret-00"
		tok := mintToken(t, vars, "--sub", "u4", "--secret", other)
		if _, err := verifier.VerifyConnect(tok); err == nil {
			t.Fatal("token verified with the variable's secret")
		}
		v2, _ := auth.NewVerifier(auth.VerifierConfig{Secrets: [][]byte{[]byte(other)}})
		if _, err := v2.VerifyConnect(tok); err != nil {
			t.Fatal(err)
		}
	})
}

func TestToken_Refusals(t *testing.T) {
	vars := map[string]string{"LIVEHUB_JWT_SECRET": testSecret}
	tests := []struct {
		name string
		args []string
		vars map[string]string
		want string
	}{
		{"no sub", []string{"--roles", "host"}, vars, "--sub"},
		{"empty sub", []string{"--sub", ""}, vars, "--sub"},
		{"unknown role", []string{"--sub", "u1", "--roles", "host,wizard"}, vars, "wizard"},
		{"role in the wrong case", []string{"--sub", "u1", "--roles", "Admin"}, vars, "Admin"},
		{"no secret", []string{"--sub", "u1"}, nil, "LIVEHUB_JWT_SECRET"},
		{"unknown flag", []string{"--sub", "u1", "--forever"}, vars, "forever"},
		{"bad ttl", []string{"--sub", "u1", "--ttl", "a day"}, vars, "ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(append([]string{"token"}, tt.args...), getenv(tt.vars), &out, &errOut)
			if err == nil {
				t.Fatalf("accepted; printed %q", out.String())
			}
			if msg := err.Error() + errOut.String(); !strings.Contains(msg, tt.want) {
				t.Fatalf("error %q (stderr %q) does not mention %s", err, errOut.String(), tt.want)
			}
			if out.Len() != 0 {
				t.Fatalf("printed %q on stdout despite the error", out.String())
			}
		})
	}
}

func TestRun_Version(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"version"}, getenv(nil), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out.String()) != version {
		t.Fatalf("version printed %q, want %q", out.String(), version)
	}
}

// Whatever engine a Redis URL selects, a Redis that is not there is either
// an error from NewMain or a Main that closes cleanly; never a panic or a hang.
func TestNewMain_UnreachableRedis(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	vars := baseEnv()
	vars["LIVEHUB_REDIS_URL"] = "redis://" + addr

	type result struct {
		m     *Main
		err   error
		panic any
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{panic: p}
			}
		}()
		m, err := NewMain([]string{"-http-addr", "127.0.0.1:0"}, getenv(vars), io.Discard, &lockedBuffer{})
		done <- result{m: m, err: err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("NewMain with an unreachable Redis did not return within 30s")
	}
	if r.panic != nil {
		t.Fatalf("NewMain panicked: %v", r.panic)
	}
	if r.err != nil {
		if r.m != nil {
			t.Fatal("NewMain returned both a Main and an error")
		}
		if strings.TrimSpace(r.err.Error()) == "" {
			t.Fatal("empty error")
		}
		t.Logf("NewMain refused: %v", r.err)
		return
	}
	if r.m == nil {
		t.Fatal("NewMain returned neither a Main nor an error")
	}
	t.Logf("NewMain accepted an unreachable Redis; closing")
	if err := closeWithin(t, r.m, 30*time.Second); err != nil {
		t.Logf("Close: %v", err)
	}
}
