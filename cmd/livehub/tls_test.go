package main

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/protoclient"
	"github.com/livehub/livehub/internal/tlsreload/tlstest"
)

// testCert is a self-signed certificate for 127.0.0.1 with its key, in PEM.
type testCert struct {
	serial          int64
	x509            *x509.Certificate
	certPEM, keyPEM []byte
}

func newTestCert(t testing.TB, serial int64) testCert {
	p := tlstest.SelfSigned(t, serial)
	return testCert{serial: p.Serial, x509: p.Cert, certPEM: p.CertPEM, keyPEM: p.KeyPEM}
}

// install writes c to certFile and keyFile, each replaced by a rename.
func (c testCert) install(t testing.TB, certFile, keyFile string) {
	t.Helper()
	tlstest.WriteAtomic(t, keyFile, c.keyPEM)
	tlstest.WriteAtomic(t, certFile, c.certPEM)
}

func trust(certs ...testCert) *tls.Config {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c.x509)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// startTLSMain runs a Main serving TLS with the pair in a temporary
// directory; it returns the Main and the paths of the pair.
func startTLSMain(t *testing.T, c testCert, interval string) (m *Main, certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	c.install(t, certFile, keyFile)
	vars := baseEnv()
	vars["LIVEHUB_TLS_CERT"] = certFile
	vars["LIVEHUB_TLS_KEY"] = keyFile
	vars["LIVEHUB_TLS_RELOAD_INTERVAL"] = interval
	return startMain(t, vars, nil), certFile, keyFile
}

// presentedSerial is the serial of the certificate a fresh handshake gets.
func presentedSerial(t testing.TB, addr string, cfg *tls.Config) int64 {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// h2Client is an HTTPS client that offers HTTP/2, as browsers and mobile
// HTTP stacks do.
func h2Client(t testing.TB, cfg *tls.Config) *http.Client {
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func TestMain_ServesTLS(t *testing.T) {
	first, second := newTestCert(t, 7001), newTestCert(t, 7002)
	m, certFile, keyFile := startTLSMain(t, first, "50ms")
	addr := m.Addr()
	vars := baseEnv()

	// REST over HTTP/2, compressed.
	client := h2Client(t, trust(first))
	resp, err := client.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Proto != "HTTP/2.0" || resp.TLS == nil {
		t.Fatalf("/healthz over TLS: %d %s %s", resp.StatusCode, resp.Proto, body)
	}
	if resp.TLS.Version != tls.VersionTLS13 {
		t.Fatalf("negotiated TLS version %x, want 1.3", resp.TLS.Version)
	}
	// The client asks for gzip by itself; the web page comes back gzipped
	// over HTTP/2 and decoded.
	resp, err = client.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Proto != "HTTP/2.0" || !resp.Uncompressed || !strings.Contains(strings.ToLower(string(page)), "<html") {
		t.Fatalf("GET / over TLS: %s, uncompressed by the client %v, %.60q", resp.Proto, resp.Uncompressed, page)
	}

	// Plain HTTP on the TLS port is refused.
	if status, _ := httpGet(t, "http://"+addr+"/healthz"); status != http.StatusBadRequest {
		t.Fatalf("plain HTTP on the TLS port: %d, want 400", status)
	}

	// WebSocket over wss: the client offers http/1.1 by ALPN, the upgrade
	// works, and the connect command is answered.
	tok := mintToken(t, vars, "--sub", "u1")
	wsTLS := trust(first)
	wsTLS.NextProtos = []string{"http/1.1"}
	wsTr := &http.Transport{TLSClientConfig: wsTLS}
	t.Cleanup(wsTr.CloseIdleConnections)
	c, err := protoclient.Dial(ctxT(t), "wss://"+addr+"/connection/websocket", protoclient.Options{HTTPClient: &http.Client{Transport: wsTr}})
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	t.Cleanup(c.CloseNow)
	res, err := c.Connect(ctxT(t), tok)
	if err != nil || res.Client == "" {
		t.Fatalf("connect over wss: %+v, %v", res, err)
	}
	// A client whose HTTP stack offers h2 as well still gets its upgrade:
	// the upgrade request goes over an HTTP/1.1 connection.
	c2, err := protoclient.Dial(ctxT(t), "wss://"+addr+"/connection/websocket", protoclient.Options{HTTPClient: h2Client(t, trust(first))})
	if err != nil {
		t.Fatalf("wss dial with an h2-capable client: %v", err)
	}
	t.Cleanup(c2.CloseNow)
	if res, err := c2.Connect(ctxT(t), tok); err != nil || res.Client == "" {
		t.Fatalf("connect over wss with an h2-capable client: %+v, %v", res, err)
	}

	// A new pair in the files is served by the next handshakes, without a
	// restart; the open socket stays up.
	if got := presentedSerial(t, addr, trust(first)); got != first.serial {
		t.Fatalf("serial %d before the reload, want %d", got, first.serial)
	}
	second.install(t, certFile, keyFile)
	both := trust(first, second)
	waitFor(t, "the new certificate presented", func() bool { return presentedSerial(t, addr, both) == second.serial })
	resp, err = h2Client(t, trust(second)).Get("https://" + addr + "/readyz")
	if err != nil {
		t.Fatalf("a client trusting only the new certificate: %v", err)
	}
	resp.Body.Close()
	if resp.Proto != "HTTP/2.0" || resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz after the reload: %d %s", resp.StatusCode, resp.Proto)
	}
	select {
	case <-c.Done():
		code, reason := c.CloseStatus()
		t.Fatalf("socket closed by the reload: %d %s", code, reason)
	default:
	}
	status, metrics := tlsGet(t, h2Client(t, both), "https://"+addr+"/metrics")
	// The pair is two files: a poll between their writes sees a new
	// certificate with the old key, refuses it (one error) and takes the
	// pair at the next poll.
	errs0 := counterValue(metrics, "livehub_tls_reload_errors_total")
	if status != http.StatusOK || counterValue(metrics, "livehub_tls_reloads_total") != 1 || errs0 < 0 || errs0 > 1 {
		t.Fatalf("/metrics lacks the reload counters (reloads 1, errors 0 or 1): %d, reloads %v, errors %v", status,
			counterValue(metrics, "livehub_tls_reloads_total"), errs0)
	}

	// A corrupt pair keeps the certificate in service and is counted.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failed reload counted", func() bool {
		_, metrics := tlsGet(t, h2Client(t, both), "https://"+addr+"/metrics")
		return counterValue(metrics, "livehub_tls_reload_errors_total") == errs0+1
	})
	if got := presentedSerial(t, addr, both); got != second.serial {
		t.Fatalf("serial %d after a corrupt replacement, want %d kept", got, second.serial)
	}
}

func TestMain_TLSReloadOnSIGHUP(t *testing.T) {
	first, second := newTestCert(t, 8001), newTestCert(t, 8002)
	m, certFile, keyFile := startTLSMain(t, first, "1h") // no poll during the test
	addr := m.Addr()
	both := trust(first, second)
	second.install(t, certFile, keyFile)
	if got := presentedSerial(t, addr, both); got != first.serial {
		t.Fatalf("serial %d before SIGHUP, want %d", got, first.serial)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new certificate after SIGHUP", func() bool { return presentedSerial(t, addr, both) == second.serial })
}

func TestNewMain_RefusesBrokenTLSPair(t *testing.T) {
	good, other := newTestCert(t, 9001), newTestCert(t, 9002)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, good.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, other.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	vars := baseEnv()
	vars["LIVEHUB_TLS_CERT"], vars["LIVEHUB_TLS_KEY"] = certFile, keyFile
	_, err := NewMain([]string{"-http-addr", "127.0.0.1:0"}, getenv(vars), io.Discard, &lockedBuffer{})
	if err == nil || !strings.Contains(err.Error(), "LIVEHUB_TLS_CERT") {
		t.Fatalf("NewMain with a mismatched key: %v, want an error naming LIVEHUB_TLS_CERT", err)
	}
	delete(vars, "LIVEHUB_TLS_KEY")
	if _, err := NewMain(nil, getenv(vars), io.Discard, &lockedBuffer{}); err == nil || !strings.Contains(err.Error(), "LIVEHUB_TLS_KEY") {
		t.Fatalf("NewMain with a certificate and no key: %v", err)
	}
}

func tlsGet(t testing.TB, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// counterValue reads an unlabelled metric from a /metrics page, -1 when it
// is not there.
func counterValue(metrics, name string) float64 {
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}
