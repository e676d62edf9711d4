package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/livehub/livehub/internal/tlsreload"
)

// setupTLS prepares HTTPS when a certificate and key are configured: the
// pair must load now, and is then reloaded while the node runs.
func (m *Main) setupTLS() error {
	cfg := m.Config
	if cfg.TLSCert == "" {
		return nil
	}
	r, err := tlsreload.New(tlsreload.Options{
		CertFile:   cfg.TLSCert,
		KeyFile:    cfg.TLSKey,
		Interval:   cfg.TLSReloadInterval,
		Logger:     m.Logger,
		Registerer: m.registry,
	})
	if err != nil {
		return fmt.Errorf("LIVEHUB_TLS_CERT, LIVEHUB_TLS_KEY: %w", err)
	}
	m.tls = r
	m.server.TLSConfig = r.ServerConfig()
	return nil
}

// serve serves ln: HTTPS (HTTP/2 and HTTP/1.1 by ALPN) with a certificate,
// plain HTTP/1.1 without.
func (m *Main) serve(ln net.Listener) error {
	if m.tls == nil {
		return m.server.Serve(ln)
	}
	return m.server.ServeTLS(ln, "", "")
}

// runTLS reloads the certificate every LIVEHUB_TLS_RELOAD_INTERVAL and on
// SIGHUP until ctx ends. Its goroutines belong to m.wg.
func (m *Main) runTLS(ctx context.Context) {
	if m.tls == nil {
		return
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		m.tls.Run(ctx)
	}()
	go func() {
		defer m.wg.Done()
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				m.Logger.Info("SIGHUP: reading the tls certificate files")
				m.tls.Poke()
			}
		}
	}()
}
