// Package rest is LiveHub's HTTP edge: the server API for backends under
// /api, health and readiness probes, Prometheus metrics, and the WebSocket
// endpoint mounted beside them.
package rest

import (
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/livehub/livehub/hub"
)

// Options configure the HTTP edge.
type Options struct {
	// Node serves the server API.
	Node *hub.Node
	// WebSocket is mounted at /connection/websocket.
	WebSocket http.Handler
	// APIKey protects /api. Empty disables the server API (every call gets 401).
	APIKey string
	// MaxBodyBytes bounds request bodies. Zero means 1 MiB.
	MaxBodyBytes int64
	// Gatherer serves /metrics. Nil means the default registry.
	Gatherer prometheus.Gatherer
	// Registerer receives the HTTP edge's own metrics (limits that fired,
	// payment notifications). Nil registers nowhere.
	Registerer prometheus.Registerer
	// Static, when set, serves everything no route claims (the web UI).
	Static http.Handler
	// Logger receives request errors. Nil means slog.Default().
	Logger *slog.Logger
	// V1 mounts the commerce API under /v1 when its Shop is set.
	V1 V1Options
	// Room mounts the live room's moderation API when its Room is set.
	Room RoomOptions
	// Tracking mounts the courier tracking API when its Tracker is set.
	Tracking TrackingOptions
	// Devices mounts the push device registry when its Store is set.
	Devices DevicesOptions
	// Campaigns mounts follows and follower campaigns when its Campaigns is set.
	Campaigns CampaignOptions
	// ConnLimits bound the WebSocket handshakes per client IP.
	ConnLimits ConnLimits
	// TrustedProxies are the addresses or CIDRs of load balancers whose
	// X-Forwarded-For names the client; empty trusts none, so the client IP
	// used by per-IP limits is the TCP peer and cannot be forged by a header.
	TrustedProxies []string
	// DevTokenSecret, in development mode only, mounts POST /dev/token,
	// which mints demo tokens for the browser pages.
	DevTokenSecret []byte
	// GzipMinBytes, when positive, gzips responses of at least this many
	// bytes (REST, metrics, web pages) for clients that accept it; see Gzip.
	GzipMinBytes int
}

// New returns the HTTP handler.
func New(o Options) http.Handler {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.Gatherer == nil {
		o.Gatherer = prometheus.DefaultGatherer
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	if err := r.SetTrustedProxies(o.TrustedProxies); err != nil {
		// Validated with the configuration; a bad entry trusts nobody.
		o.Logger.Error("bad trusted proxies; trusting none", "err", err)
		_ = r.SetTrustedProxies(nil)
	}
	if o.GzipMinBytes > 0 {
		r.Use(Gzip(o.GzipMinBytes)) // outside Recovery, so a 500 goes through it too
	}
	r.Use(gin.Recovery())
	r.HandleMethodNotAllowed = true

	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", func(c *gin.Context) {
		if o.Node.Draining() {
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "draining"})
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "ready"})
	})
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{})))
	if o.WebSocket != nil {
		r.GET("/connection/websocket", newConnGuard(o.ConnLimits, o.Registerer).handle, gin.WrapH(o.WebSocket))
	}
	api := &serverAPI{node: o.Node, key: o.APIKey, maxBody: o.MaxBodyBytes, log: o.Logger}
	r.POST("/api/:method", api.handle)
	if o.V1.Shop != nil {
		if o.V1.Logger == nil {
			o.V1.Logger = o.Logger
		}
		if o.V1.Registerer == nil {
			o.V1.Registerer = o.Registerer
		}
		if o.V1.MaxBodyBytes == 0 {
			o.V1.MaxBodyBytes = o.MaxBodyBytes
		}
		mountV1(r, o.V1)
	}
	if o.Room.Room != nil {
		if o.Room.Logger == nil {
			o.Room.Logger = o.Logger
		}
		MountRoom(r, o.Room)
	}
	if o.Tracking.Tracker != nil {
		if o.Tracking.Logger == nil {
			o.Tracking.Logger = o.Logger
		}
		MountTracking(r, o.Tracking)
	}
	if o.Devices.Store != nil {
		if o.Devices.Logger == nil {
			o.Devices.Logger = o.Logger
		}
		MountDevices(r, o.Devices)
	}
	if o.Campaigns.Campaigns != nil {
		if o.Campaigns.Logger == nil {
			o.Campaigns.Logger = o.Logger
		}
		MountCampaigns(r, o.Campaigns)
	}
	if len(o.DevTokenSecret) > 0 {
		MountDevTokens(r, o.DevTokenSecret)
	}
	if o.Static != nil {
		// gin presets 404 for unmatched routes; the static handler decides.
		r.NoRoute(func(c *gin.Context) {
			c.Status(http.StatusOK)
			o.Static.ServeHTTP(c.Writer, c.Request)
		})
	}
	return r
}
