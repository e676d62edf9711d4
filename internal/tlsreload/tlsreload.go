// Package tlsreload serves a TLS certificate read from a pair of PEM files
// and picks up a new pair without a restart.
//
// A Reloader holds the parsed pair in memory and hands it to every TLS
// handshake through GetCertificate. Reload reads the files again and, when
// their content changed, swaps in the new pair; Run does so at an interval
// (and whenever it is poked, for example on SIGHUP). A new pair that does not
// load (a torn write, a key that does not match the certificate, garbage)
// leaves the old pair in service, is logged and is counted in
// livehub_tls_reload_errors_total.
package tlsreload

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Reloader.
type Options struct {
	// CertFile is the PEM certificate chain, leaf first; KeyFile its
	// private key. Both are required.
	CertFile, KeyFile string
	// Interval is how often Run reads the files. Zero means 10 seconds.
	Interval time.Duration
	// Logger receives reloads and failed reloads. Nil means slog.Default().
	Logger *slog.Logger
	// Registerer, when set, receives the reload metrics.
	Registerer prometheus.Registerer
}

// Reloader serves the current certificate of a pair of files.
type Reloader struct {
	o   Options
	log *slog.Logger

	cert atomic.Pointer[tls.Certificate]

	// mu serialises reloads; sum is the digest of the pair in service and
	// failed names the last failure (the digest of a pair that did not
	// load, or a read error), so that one bad state is reported once rather
	// than at every poll.
	mu     sync.Mutex
	sum    [sha256.Size]byte
	failed string

	poke chan struct{}

	reloads  prometheus.Counter
	errs     prometheus.Counter
	notAfter prometheus.Gauge
}

// New loads the pair, failing when it does not load: a node does not start
// with a broken certificate.
func New(o Options) (*Reloader, error) {
	if o.CertFile == "" || o.KeyFile == "" {
		return nil, errors.New("tlsreload: both a certificate file and a key file are required")
	}
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	r := &Reloader{
		o:    o,
		log:  o.Logger,
		poke: make(chan struct{}, 1),
		reloads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "livehub_tls_reloads_total",
			Help: "New TLS certificates taken into service after the start.",
		}),
		errs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "livehub_tls_reload_errors_total",
			Help: "Changed TLS certificate files that did not load; the previous certificate stays in service.",
		}),
		notAfter: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "livehub_tls_certificate_not_after_seconds",
			Help: "Expiry (NotAfter, Unix seconds) of the TLS certificate in service.",
		}),
	}
	certPEM, keyPEM, err := r.read()
	if err != nil {
		return nil, err
	}
	cert, err := parse(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tlsreload: %s, %s: %w", o.CertFile, o.KeyFile, err)
	}
	r.install(cert, digest(certPEM, keyPEM))
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{r.reloads, r.errs, r.notAfter} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("tlsreload: %w", err)
			}
		}
	}
	return r, nil
}

// GetCertificate is the tls.Config hook: it returns the pair in service.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cert.Load(), nil
}

// Certificate is the pair in service; its Leaf is parsed.
func (r *Reloader) Certificate() *tls.Certificate { return r.cert.Load() }

// Reload reads the files and takes a changed pair into service. It reports
// whether the pair changed; an error means the files changed but did not
// load, and the previous pair is still served.
func (r *Reloader) Reload() (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	certPEM, keyPEM, err := r.read()
	if err != nil {
		return false, r.fail(err, "read: "+err.Error())
	}
	sum := digest(certPEM, keyPEM)
	if sum == r.sum {
		r.failed = ""
		return false, nil
	}
	cert, err := parse(certPEM, keyPEM)
	if err != nil {
		return false, r.fail(err, string(sum[:]))
	}
	r.install(cert, sum)
	r.failed = ""
	r.reloads.Inc()
	r.log.Info("tls certificate reloaded",
		"subject", cert.Leaf.Subject.String(), "serial", cert.Leaf.SerialNumber.String(),
		"not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return true, nil
}

// fail counts and logs a pair that did not load, once per distinct failure.
func (r *Reloader) fail(err error, key string) error {
	err = fmt.Errorf("tlsreload: %s, %s: %w", r.o.CertFile, r.o.KeyFile, err)
	if key == r.failed {
		return err
	}
	r.failed = key
	r.errs.Inc()
	r.log.Error("tls certificate reload failed; keeping the previous certificate", "err", err)
	return err
}

func (r *Reloader) install(cert *tls.Certificate, sum [sha256.Size]byte) {
	r.cert.Store(cert)
	r.sum = sum
	r.notAfter.Set(float64(cert.Leaf.NotAfter.Unix()))
}

func (r *Reloader) read() (certPEM, keyPEM []byte, err error) {
	if certPEM, err = os.ReadFile(r.o.CertFile); err != nil {
		return nil, nil, err
	}
	if keyPEM, err = os.ReadFile(r.o.KeyFile); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// Poke asks a running Run to reload now. It never blocks.
func (r *Reloader) Poke() {
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

// Run reloads every Interval and on each Poke until ctx is done.
func (r *Reloader) Run(ctx context.Context) {
	t := time.NewTicker(r.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.poke:
		}
		_, _ = r.Reload()
	}
}

// ServerConfig is a server tls.Config serving r's certificate with modern
// settings: TLS 1.2 or later, forward-secret AEAD suites only for TLS 1.2
// (TLS 1.3's are all AEAD), X25519 and P-256 key exchange (with the hybrid
// post-quantum X25519MLKEM768 first for clients that offer it), and ALPN
// offering HTTP/2 then HTTP/1.1, so that plain HTTPS clients get HTTP/2
// and WebSocket clients, which ask for http/1.1, get the upgrade they need.
func (r *Reloader) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256},
		NextProtos:       []string{"h2", "http/1.1"},
		GetCertificate:   r.GetCertificate,
	}
}

func parse(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, err
		}
	}
	return &cert, nil
}

func digest(certPEM, keyPEM []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write(certPEM)
	h.Write([]byte{0})
	h.Write(keyPEM)
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	return sum
}
