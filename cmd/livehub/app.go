package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/internal/campaign"
	"github.com/livehub/livehub/internal/config"
	"github.com/livehub/livehub/internal/hubauth"
	"github.com/livehub/livehub/internal/orderevents"
	"github.com/livehub/livehub/internal/room"
	"github.com/livehub/livehub/internal/shop"
	"github.com/livehub/livehub/internal/tlsreload"
	"github.com/livehub/livehub/internal/tracking"
	"github.com/livehub/livehub/rest"
	"github.com/livehub/livehub/web"
)

// Main is a running livehub: configuration, engine, hub node and HTTP server,
// wired together. End-to-end tests start it on 127.0.0.1:0.
type Main struct {
	Config *config.Config
	Logger *slog.Logger
	Node   *hub.Node

	stdout    io.Writer
	registry  *prometheus.Registry
	engine    io.Closer
	events    orderevents.Log
	webhook   *orderevents.Webhook
	shop      *shop.Service
	rooms     *room.Room
	tracker   *tracking.Tracker
	push      *pushSide
	campaigns *campaign.Service
	v1        rest.V1Options
	shopStop  context.CancelFunc
	cancel    context.CancelFunc
	listener  net.Listener
	server    *http.Server
	tls       *tlsreload.Reloader
	errc      chan error
	wg        sync.WaitGroup

	// debugListener and debugServer serve the profiler on
	// LIVEHUB_DEBUG_ADDR; debugServer is nil when it is not set.
	debugListener net.Listener
	debugServer   *http.Server

	closeOnce sync.Once
	closeErr  error
}

// NewMain reads the configuration and builds the node; Run starts it.
func NewMain(args []string, getenv func(string) string, stdout, stderr io.Writer) (*Main, error) {
	cfg, err := config.Load(args, getenv, stderr)
	if err != nil {
		return nil, err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	m := &Main{Config: cfg, Logger: logger, stdout: stdout, registry: prometheus.NewRegistry(), errc: make(chan error, 3)}
	m.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := m.devDefaults(); err != nil {
		return nil, err
	}
	verifier, err := newVerifier(cfg)
	if err != nil {
		return nil, err
	}
	eng, err := openEngine(cfg, logger)
	if err != nil {
		return nil, err
	}
	m.engine, m.events = eng.closer, eng.events
	closer := eng.closer
	m.rooms, err = room.New(room.Config{Streams: eng.store, State: eng.rooms, Logger: logger, Registerer: m.registry})
	if err != nil {
		_ = closer.Close()
		return nil, err
	}
	m.tracker, err = tracking.New(tracking.Config{Orders: eng.store, State: eng.tracking, Logger: logger})
	if err != nil {
		_ = closer.Close()
		return nil, err
	}
	m.push, err = newPush(m, eng)
	if err != nil {
		_ = closer.Close()
		return nil, err
	}
	node, err := hub.New(hub.Config{
		Version:               version,
		Broker:                eng.broker,
		Presence:              eng.presence,
		Registry:              eng.registry,
		Namespaces:            cfg.Namespaces,
		Tokens:                hubauth.New(verifier),
		Hooks:                 m.push.notifier.Hooks(m.tracker.Hooks(m.rooms.Hooks(hub.Hooks{}))),
		AllowAnonymous:        cfg.AllowAnonymous,
		MaxFrameBytes:         int64(cfg.MaxFrameBytes),
		MaxQueueBytes:         cfg.MaxQueueBytes,
		WriteTimeout:          cfg.WriteTimeout,
		MaxChannelsPerConn:    cfg.MaxChannelsPerConn,
		MaxConnsPerUser:       cfg.MaxConnsPerUser,
		LowPriorityQueueBytes: cfg.LowPriorityQueueBytes,
		CommandRate:           cfg.CommandRate,
		CommandBurst:          cfg.CommandBurst,
		ConnectTimeout:        cfg.ConnectTimeout,
		PingInterval:          cfg.PingInterval,
		PongTimeout:           cfg.PongTimeout,
		ShutdownGrace:         cfg.ShutdownGrace,
		Logger:                logger,
		Registerer:            m.registry,

		Compression:          cfg.WSCompression,
		CompressionThreshold: cfg.WSCompressionThreshold,
	})
	if err != nil {
		_ = closer.Close()
		return nil, err
	}
	m.Node = node
	m.rooms.Bind(node)
	m.push.notifier.Bind(node)
	// Order status and arrival reach the buyer's channel through the
	// notifier, so a backgrounded app gets them as pushes.
	m.tracker.Bind(m.push.notifier.NodePublisher())
	m.campaigns, err = newCampaigns(m, eng)
	if err != nil {
		_ = closer.Close()
		return nil, err
	}
	m.shop, m.v1, err = newShop(m, eng.store)
	if err != nil {
		_ = closer.Close()
		return nil, err
	}
	m.v1.Tokens = verifier
	m.v1.CheckoutLimits = rest.CheckoutLimits{Limiter: eng.limiter, PerUser: cfg.CheckoutUserLimit, PerIP: cfg.CheckoutIPLimit}
	m.v1.CheckoutAdmission = rest.CheckoutAdmission{MaxInFlight: cfg.CheckoutMaxInFlight, MaxWait: cfg.CheckoutMaxWait}
	if cfg.WebhookURL != "" {
		m.webhook, err = orderevents.NewWebhook(orderevents.Options{
			URL: cfg.WebhookURL, Secret: cfg.WebhookSecret, Log: eng.events,
			Logger: logger, Registerer: m.registry,
		})
		if err != nil {
			_ = closer.Close()
			return nil, fmt.Errorf("LIVEHUB_WEBHOOK_URL: %w", err)
		}
	}
	handler := rest.New(rest.Options{
		Node:           node,
		WebSocket:      hub.NewWebSocketHandler(node, hub.HandlerOptions{AllowedOrigins: cfg.AllowedOrigins}),
		APIKey:         cfg.APIKey,
		MaxBodyBytes:   int64(cfg.MaxAPIBodyBytes),
		Gatherer:       m.registry,
		Registerer:     m.registry,
		Static:         web.Handler(),
		Logger:         logger,
		V1:             m.v1,
		Room:           rest.RoomOptions{Room: m.rooms, Tokens: verifier},
		Tracking:       rest.TrackingOptions{Tracker: m.tracker, Tokens: verifier},
		Devices:        rest.DevicesOptions{Store: m.push.devices, Tokens: verifier},
		Campaigns:      rest.CampaignOptions{Campaigns: m.campaigns, Tokens: verifier},
		DevTokenSecret: devTokenSecret(cfg),
		GzipMinBytes:   cfg.HTTPGzipMinBytes,
		TrustedProxies: cfg.TrustedProxies,
		ConnLimits:     rest.ConnLimits{PerIP: cfg.WSMaxConnsPerIP, Rate: cfg.WSConnectIPLimit, Limiter: eng.limiter},
	})
	m.server = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if err := m.setupTLS(); err != nil {
		_ = closer.Close()
		return nil, err
	}
	if cfg.DebugAddr != "" {
		m.debugServer = newDebugServer(logger)
	}
	return m, nil
}

// devDefaults fills what development mode may invent.
func (m *Main) devDefaults() error {
	cfg := m.Config
	if !cfg.Dev {
		return nil
	}
	if len(cfg.JWTSecrets) == 0 {
		cfg.JWTSecrets = []string{randomHex(32)}
		fmt.Fprintf(m.stdout, "development mode: generated a JWT secret for this session.\n"+
			"  mint a token:  LIVEHUB_JWT_SECRET=%s livehub token --sub u1 --roles host\n", cfg.JWTSecrets[0])
	}
	if cfg.APIKey == "" {
		cfg.APIKey = randomHex(16)
		fmt.Fprintf(m.stdout, "development mode: server API key for this session: %s\n", cfg.APIKey)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Run listens and starts serving; it returns once the node accepts sockets.
func (m *Main) Run(ctx context.Context) error {
	ctx, m.cancel = context.WithCancel(ctx)
	ln, err := net.Listen("tcp", m.Config.HTTPAddr)
	if err != nil {
		return err
	}
	m.listener = ln
	if err := m.listenDebug(); err != nil {
		_ = ln.Close()
		return err
	}
	if err := m.Node.Run(); err != nil {
		_ = ln.Close()
		if m.debugListener != nil {
			_ = m.debugListener.Close()
		}
		return err
	}
	shopCtx, shopStop := context.WithCancel(context.Background())
	m.shopStop = shopStop
	m.runTLS(shopCtx)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.shop.Run(shopCtx)
	}()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.rooms.Run(shopCtx)
	}()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.push.Run(shopCtx)
	}()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.campaigns.Run(shopCtx)
	}()
	if m.webhook != nil {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			if err := m.webhook.Run(shopCtx); err != nil {
				m.Logger.Error("order webhook stopped", "err", err)
			}
		}()
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.errc <- err
		}
	}()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		select {
		case err := <-m.Node.BrokerErr():
			m.errc <- fmt.Errorf("engine: %w", err)
		case <-ctx.Done():
		}
	}()
	m.Logger.Info("livehub started", "addr", ln.Addr().String(), "tls", m.tls != nil, "engine", engineName(m.Config), "version", version)
	m.serveDebug()
	return nil
}

// Addr is the address the server listens on.
func (m *Main) Addr() string { return m.listener.Addr().String() }

// Err delivers a fatal error of the running server.
func (m *Main) Err() <-chan error { return m.errc }

// Close shuts down: the node stops taking sockets and moves its clients off
// over the grace period, in-flight HTTP requests finish, the engine closes.
func (m *Main) Close() error {
	m.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
		defer cancel()
		m.Logger.Info("livehub shutting down", "grace", m.Config.ShutdownGrace.String())
		start := time.Now()
		errNode := m.Node.Shutdown(ctx)
		m.Logger.Info("node drained", "took", time.Since(start).String())
		// In-flight requests get a moment to finish; connections that never
		// sent a request would otherwise hold Shutdown for seconds.
		errHTTP := shutdownHTTP(ctx, m.server)
		m.Logger.Info("http server stopped", "took", time.Since(start).String())
		// The profiler stays up through the drain, so a slow shutdown can
		// itself be profiled; a CPU profile still running is cut here.
		if m.debugServer != nil {
			errHTTP = errors.Join(errHTTP, shutdownHTTP(ctx, m.debugServer))
		}
		if m.shopStop != nil {
			m.shopStop()
		}
		if m.cancel != nil {
			m.cancel()
		}
		m.campaigns.Close()
		m.wg.Wait()
		m.Logger.Info("background work stopped", "took", time.Since(start).String())
		errEngine := m.engine.Close()
		m.closeErr = errors.Join(errNode, errHTTP, errEngine)
		m.Logger.Info("livehub stopped")
	})
	return m.closeErr
}

// devTokenSecret is the secret /dev/token mints with: development mode only.
func devTokenSecret(cfg *config.Config) []byte {
	if !cfg.Dev {
		return nil
	}
	return []byte(cfg.JWTSecrets[0])
}

// httpDrainTimeout bounds the wait for in-flight HTTP requests at shutdown.
const httpDrainTimeout = time.Second

func engineName(cfg *config.Config) string {
	if cfg.RedisURL == "" {
		return "memory"
	}
	return "redis"
}
