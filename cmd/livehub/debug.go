package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// debugHandler serves the Go profiler under /debug/pprof/ and nothing else.
// It has its own mux: net/http/pprof also registers on http.DefaultServeMux,
// which no server of the node serves, so the profiler never reaches the
// public address. /debug/pprof/cmdline is left out on purpose: secrets such
// as -jwt-secret or -api-key may be on the command line.
func debugHandler() http.Handler {
	mux := http.NewServeMux()
	// The index also serves every named profile: heap, goroutine, allocs,
	// block, mutex, threadcreate.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/cmdline", http.NotFound)
	return mux
}

// newDebugServer is the server of LIVEHUB_DEBUG_ADDR. It has no write
// timeout: a CPU profile or a trace streams for as many seconds as asked.
func newDebugServer(logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           debugHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// listenDebug opens the debug listener when LIVEHUB_DEBUG_ADDR is set.
func (m *Main) listenDebug() error {
	if m.debugServer == nil {
		return nil
	}
	ln, err := net.Listen("tcp", m.Config.DebugAddr)
	if err != nil {
		return fmt.Errorf("-debug-addr (LIVEHUB_DEBUG_ADDR): %w", err)
	}
	m.debugListener = ln
	return nil
}

// serveDebug serves the debug listener until Close; its goroutine belongs
// to m.wg.
func (m *Main) serveDebug() {
	if m.debugListener == nil {
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.debugServer.Serve(m.debugListener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.errc <- fmt.Errorf("debug listener: %w", err)
		}
	}()
	addr := m.debugListener.Addr().String()
	m.Logger.Info("debug listener started", "addr", addr, "path", "/debug/pprof/")
	if host, _, _ := net.SplitHostPort(m.Config.DebugAddr); host == "" || net.ParseIP(host).IsUnspecified() {
		m.Logger.Warn("debug listener is on every interface; the profiler has no authentication, keep its port off public networks", "addr", addr)
	}
}

// DebugAddr is the address of the debug listener, or "" when there is none.
func (m *Main) DebugAddr() string {
	if m.debugListener == nil {
		return ""
	}
	return m.debugListener.Addr().String()
}

// shutdownHTTP lets the requests in progress on srv finish for at most
// httpDrainTimeout (and never past ctx), then closes what is still open.
func shutdownHTTP(ctx context.Context, srv *http.Server) error {
	hctx, cancel := context.WithTimeout(ctx, httpDrainTimeout)
	defer cancel()
	err := srv.Shutdown(hctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close()
	}
	return err
}
