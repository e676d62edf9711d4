package tlsreload_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/livehub/livehub/internal/tlsreload"
	"github.com/livehub/livehub/internal/tlsreload/tlstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// pair is a generated self-signed certificate for 127.0.0.1 and its key,
// PEM-encoded.
type pair struct {
	serial          int64
	cert            *x509.Certificate
	certPEM, keyPEM []byte
}

func newPair(t testing.TB, serial int64) pair {
	p := tlstest.SelfSigned(t, serial)
	return pair{serial: p.Serial, cert: p.Cert, certPEM: p.CertPEM, keyPEM: p.KeyPEM}
}

// files is where a test keeps its certificate and key.
type files struct{ cert, key string }

func newFiles(t testing.TB) files {
	dir := t.TempDir()
	return files{cert: filepath.Join(dir, "tls.crt"), key: filepath.Join(dir, "tls.key")}
}

func (f files) write(t testing.TB, certPEM, keyPEM []byte) {
	t.Helper()
	tlstest.WriteAtomic(t, f.key, keyPEM)
	tlstest.WriteAtomic(t, f.cert, certPEM)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newReloader(t testing.TB, f files, interval time.Duration, reg prometheus.Registerer) *tlsreload.Reloader {
	t.Helper()
	r, err := tlsreload.New(tlsreload.Options{CertFile: f.cert, KeyFile: f.key, Interval: interval, Logger: quiet(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// run runs r until the test ends, and waits for Run to return.
func run(t testing.TB, r *tlsreload.Reloader) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// serve runs an HTTPS server with r's configuration on loopback.
func serve(t testing.TB, r *tlsreload.Reloader) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			_, _ = io.WriteString(w, req.Proto)
		}),
		TLSConfig:         r.ServerConfig(),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0), // refused handshakes are expected
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ServeTLS: %v", err)
		}
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// trusting is a client configuration that trusts the given certificates.
func trusting(ps ...pair) *tls.Config {
	pool := x509.NewCertPool()
	for _, p := range ps {
		pool.AddCert(p.cert)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// handshake connects to addr and returns the serial number of the
// certificate the server presented.
func handshake(t testing.TB, addr string, cfg *tls.Config) (int64, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	certs := conn.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		t.Fatal("no peer certificate")
	}
	return certs[0].SerialNumber.Int64(), nil
}

func mustHandshake(t testing.TB, addr string, cfg *tls.Config) int64 {
	t.Helper()
	s, err := handshake(t, addr, cfg)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	return s
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReloader_NextHandshakeAfterAChangePresentsTheNewCertificate(t *testing.T) {
	f := newFiles(t)
	old, renewed := newPair(t, 1001), newPair(t, 1002)
	f.write(t, old.certPEM, old.keyPEM)
	reg := prometheus.NewRegistry()
	r := newReloader(t, f, 20*time.Millisecond, reg)
	run(t, r)
	addr := serve(t, r)
	client := trusting(old, renewed)

	if got := mustHandshake(t, addr, client); got != old.serial {
		t.Fatalf("first handshake presented serial %d, want %d", got, old.serial)
	}
	f.write(t, renewed.certPEM, renewed.keyPEM)
	eventually(t, "new certificate presented", func() bool {
		return mustHandshake(t, addr, client) == renewed.serial
	})
	// Every later handshake presents it too, and a client that trusts only
	// the new certificate connects.
	for range 3 {
		if got := mustHandshake(t, addr, trusting(renewed)); got != renewed.serial {
			t.Fatalf("handshake after the reload presented serial %d, want %d", got, renewed.serial)
		}
	}
	if got := r.Certificate().Leaf.SerialNumber.Int64(); got != renewed.serial {
		t.Fatalf("Certificate() serial %d, want %d", got, renewed.serial)
	}
	if n := value(t, reg, "livehub_tls_reloads_total"); n != 1 {
		t.Fatalf("livehub_tls_reloads_total = %v, want 1", n)
	}
	if n := value(t, reg, "livehub_tls_reload_errors_total"); n != 0 {
		t.Fatalf("livehub_tls_reload_errors_total = %v, want 0", n)
	}
	if n := value(t, reg, "livehub_tls_certificate_not_after_seconds"); n != float64(renewed.cert.NotAfter.Unix()) {
		t.Fatalf("livehub_tls_certificate_not_after_seconds = %v, want %d", n, renewed.cert.NotAfter.Unix())
	}
}

func TestReloader_CorruptReplacementKeepsTheOldCertificate(t *testing.T) {
	f := newFiles(t)
	old, other := newPair(t, 2001), newPair(t, 2002)
	f.write(t, old.certPEM, old.keyPEM)
	reg := prometheus.NewRegistry()
	r := newReloader(t, f, 20*time.Millisecond, reg)
	run(t, r)
	addr := serve(t, r)
	client := trusting(old)
	errs := func() float64 { return value(t, reg, "livehub_tls_reload_errors_total") }

	// Garbage in place of the certificate.
	tlstest.WriteAtomic(t, f.cert, []byte("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"))
	eventually(t, "the corrupt certificate counted", func() bool { return errs() >= 1 })
	if got := mustHandshake(t, addr, client); got != old.serial {
		t.Fatalf("after a corrupt replacement the server presented serial %d, want the old %d", got, old.serial)
	}
	// The same bad content is reported once, not at every poll: let a few
	// polls pass (each Reload call is one) and count again.
	for range 3 {
		if changed, err := r.Reload(); changed || err == nil {
			t.Fatalf("Reload of the corrupt pair = %v, %v; want false and an error", changed, err)
		}
	}
	if n := errs(); n != 1 {
		t.Fatalf("livehub_tls_reload_errors_total = %v after repeated polls of one bad pair, want 1", n)
	}

	// A valid certificate with the wrong key: refused as well.
	tlstest.WriteAtomic(t, f.cert, other.certPEM)
	eventually(t, "the mismatched pair counted", func() bool { return errs() >= 2 })
	if got := mustHandshake(t, addr, client); got != old.serial {
		t.Fatalf("after a mismatched pair the server presented serial %d, want the old %d", got, old.serial)
	}
	// A missing key file.
	if err := os.Remove(f.key); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the missing key counted", func() bool { return errs() >= 3 })
	if got := mustHandshake(t, addr, client); got != old.serial {
		t.Fatalf("with the key file missing the server presented serial %d, want the old %d", got, old.serial)
	}
	if n := value(t, reg, "livehub_tls_reloads_total"); n != 0 {
		t.Fatalf("livehub_tls_reloads_total = %v, want 0", n)
	}

	// The complete pair arrives: it is taken.
	tlstest.WriteAtomic(t, f.key, other.keyPEM)
	eventually(t, "the repaired pair presented", func() bool {
		return mustHandshake(t, addr, trusting(old, other)) == other.serial
	})
}

func TestReloader_PokeReloadsAtOnce(t *testing.T) {
	f := newFiles(t)
	old, renewed := newPair(t, 3001), newPair(t, 3002)
	f.write(t, old.certPEM, old.keyPEM)
	r := newReloader(t, f, time.Hour, nil) // no poll within the test
	run(t, r)
	addr := serve(t, r)
	client := trusting(old, renewed)

	f.write(t, renewed.certPEM, renewed.keyPEM)
	if got := mustHandshake(t, addr, client); got != old.serial {
		t.Fatalf("before the poke the server presented serial %d, want %d", got, old.serial)
	}
	r.Poke()
	eventually(t, "new certificate after Poke", func() bool {
		return mustHandshake(t, addr, client) == renewed.serial
	})
}

func TestReloader_ReloadReportsChange(t *testing.T) {
	f := newFiles(t)
	a, b := newPair(t, 4001), newPair(t, 4002)
	f.write(t, a.certPEM, a.keyPEM)
	r := newReloader(t, f, 0, nil)
	if changed, err := r.Reload(); changed || err != nil {
		t.Fatalf("Reload of unchanged files = %v, %v; want false, nil", changed, err)
	}
	f.write(t, b.certPEM, b.keyPEM)
	if changed, err := r.Reload(); !changed || err != nil {
		t.Fatalf("Reload of a new pair = %v, %v; want true, nil", changed, err)
	}
	cert, err := r.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || cert.Leaf.SerialNumber.Int64() != b.serial {
		t.Fatalf("GetCertificate = serial %v, %v; want %d", cert.Leaf.SerialNumber, err, b.serial)
	}
}

func TestNew_RefusesWhatDoesNotLoad(t *testing.T) {
	good, other := newPair(t, 5001), newPair(t, 5002)
	tests := []struct {
		name            string
		certPEM, keyPEM []byte
		noFiles         bool
		want            string
	}{
		{"missing files", nil, nil, true, "no such file"},
		{"garbage certificate", []byte("hello"), good.keyPEM, false, "certificate"},
		{"key of another certificate", good.certPEM, other.keyPEM, false, "private key does not match"},
		{"key where the certificate goes", good.keyPEM, good.keyPEM, false, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFiles(t)
			if !tt.noFiles {
				f.write(t, tt.certPEM, tt.keyPEM)
			}
			_, err := tlsreload.New(tlsreload.Options{CertFile: f.cert, KeyFile: f.key, Logger: quiet()})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := tlsreload.New(tlsreload.Options{CertFile: "x.crt"}); err == nil {
		t.Fatal("New without a key file accepted")
	}
}

func TestServerConfig_ModernSettingsAndALPN(t *testing.T) {
	f := newFiles(t)
	p := newPair(t, 6001)
	f.write(t, p.certPEM, p.keyPEM)
	r := newReloader(t, f, 0, nil)
	addr := serve(t, r)

	refused := []struct {
		name string
		cfg  func(*tls.Config)
	}{
		{"TLS 1.1", func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 }},
		{"TLS 1.2 with CBC suites only", func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}
		}},
		{"TLS 1.3 with P-384 only", func(c *tls.Config) {
			c.MinVersion = tls.VersionTLS13
			c.CurvePreferences = []tls.CurveID{tls.CurveP384}
		}},
	}
	for _, tt := range refused {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			cfg := trusting(p)
			tt.cfg(cfg)
			if _, err := handshake(t, addr, cfg); err == nil {
				t.Fatalf("%s handshake accepted", tt.name)
			}
		})
	}
	accepted := []struct {
		name    string
		cfg     func(*tls.Config)
		version uint16
	}{
		{"TLS 1.2 with AES-GCM", func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
		}, tls.VersionTLS12},
		{"TLS 1.2 with ChaCha20-Poly1305 on P-256", func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}
			c.CurvePreferences = []tls.CurveID{tls.CurveP256}
		}, tls.VersionTLS12},
		{"TLS 1.3 on X25519", func(c *tls.Config) { c.CurvePreferences = []tls.CurveID{tls.X25519} }, tls.VersionTLS13},
	}
	for _, tt := range accepted {
		t.Run("accepts "+tt.name, func(t *testing.T) {
			cfg := trusting(p)
			tt.cfg(cfg)
			conn, err := tls.Dial("tcp", addr, cfg)
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer conn.Close()
			if v := conn.ConnectionState().Version; v != tt.version {
				t.Fatalf("version %x, want %x", v, tt.version)
			}
		})
	}

	// ALPN: an HTTPS client offering h2 gets HTTP/2; one offering only
	// http/1.1 (as WebSocket clients do) gets HTTP/1.1.
	for _, tt := range []struct {
		name, want string
		h2         bool
	}{{"h2", "HTTP/2.0", true}, {"http/1.1", "HTTP/1.1", false}} {
		t.Run("ALPN "+tt.name, func(t *testing.T) {
			tr := &http.Transport{TLSClientConfig: trusting(p), ForceAttemptHTTP2: tt.h2}
			defer tr.CloseIdleConnections()
			if !tt.h2 {
				tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
			}
			resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.Proto != tt.want || string(body) != tt.want {
				t.Fatalf("proto %q (server saw %q), want %q", resp.Proto, body, tt.want)
			}
		})
	}
}

// value is the value of the single-series counter or gauge name in reg.
func value(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) != 1 {
			continue
		}
		m := mf.GetMetric()[0]
		if g := m.GetGauge(); g != nil {
			return g.GetValue()
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}
