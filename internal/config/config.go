// Package config reads LiveHub's settings from flags and LIVEHUB_*
// environment variables. A flag wins over its variable; both are listed in
// docs/configuration.md, which a test keeps in step with this file.
package config

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/internal/ratelimit"
)

// Config is every setting of the livehub binary.
type Config struct {
	HTTPAddr       string
	DebugAddr      string // profiling listener (net/http/pprof); empty means none
	RedisURL       string
	RedisPrefix    string
	JWTSecrets     []string
	JWTAudience    string
	JWTIssuer      string
	JWTLeeway      time.Duration
	JWTJWKSURL     string
	APIKey         string
	AllowedOrigins []string
	AllowAnonymous bool
	Dev            bool
	LogLevel       slog.Level
	NamespacesFile string
	Namespaces     []hub.NamespaceOptions

	PingInterval          time.Duration
	PongTimeout           time.Duration
	ConnectTimeout        time.Duration
	WriteTimeout          time.Duration
	ShutdownGrace         time.Duration
	ShutdownTimeout       time.Duration
	MaxFrameBytes         int
	MaxQueueBytes         int
	MaxChannelsPerConn    int
	CommandRate           float64
	CommandBurst          int
	MaxAPIBodyBytes       int
	TrustedProxies        []string
	WSMaxConnsPerIP       int
	MaxConnsPerUser       int
	LowPriorityQueueBytes int
	WSConnectIPLimit      ratelimit.Limit
	CheckoutUserLimit     ratelimit.Limit
	CheckoutIPLimit       ratelimit.Limit
	CheckoutMaxInFlight   int
	CheckoutMaxWait       time.Duration

	// WSCompression and WSCompressionThreshold set permessage-deflate.
	WSCompression          hub.Compression
	WSCompressionThreshold int

	PaymentGateway      string
	MidtransServerKey   string
	MidtransBaseURL     string
	PaymentExpiry       time.Duration
	ReservationTTL      time.Duration
	StockEventInterval  time.Duration
	OrderTickerInterval time.Duration
	WebhookURL          string
	WebhookSecret       string

	APNsKeyFile        string
	APNsKeyID          string
	APNsTeamID         string
	APNsBundleID       string
	APNsProduction     bool
	FCMCredentialsFile string
	PushAckWindow      time.Duration

	TLSCert           string
	TLSKey            string
	TLSReloadInterval time.Duration
	HTTPGzipMinBytes  int
}

// Setting describes one setting: its flag, its variable, its default and what it does.
type Setting struct {
	Flag, Env, Default, Usage string
	set                       func(c *Config, v string) error
}

// Settings lists every setting in documentation order.
func Settings() []Setting {
	return []Setting{
		{"http-addr", "LIVEHUB_HTTP_ADDR", ":8080", "Address the HTTP server (WebSocket, REST, server API, metrics) listens on.",
			addrSetter(func(c *Config) *string { return &c.HTTPAddr })},
		{"debug-addr", "LIVEHUB_DEBUG_ADDR", "", "Address of a separate listener serving net/http/pprof under /debug/pprof/, for profiling. Bind it to loopback or a private interface. Empty turns it off.",
			addrSetter(func(c *Config) *string { return &c.DebugAddr })},
		{"redis-url", "LIVEHUB_REDIS_URL", "", "Redis for the distributed engine: redis://, rediss://, unix://, redis+sentinel://, redis+cluster://. Empty runs one node on the memory engine.",
			func(c *Config, v string) error { c.RedisURL = v; return nil }},
		{"redis-prefix", "LIVEHUB_REDIS_PREFIX", "livehub", "Prefix of every Redis key and channel, so several clusters can share a Redis.",
			func(c *Config, v string) error { c.RedisPrefix = v; return nil }},
		{"jwt-secret", "LIVEHUB_JWT_SECRET", "", "HS256 secret of connection and subscription tokens. Two secrets separated by a comma are both accepted, for rotation. Empty with -dev generates one for the session.",
			func(c *Config, v string) error { c.JWTSecrets = splitList(v); return nil }},
		{"jwt-audience", "LIVEHUB_JWT_AUDIENCE", "", "When set, tokens must list this value in their aud claim.",
			func(c *Config, v string) error { c.JWTAudience = v; return nil }},
		{"jwt-issuer", "LIVEHUB_JWT_ISSUER", "", "When set, tokens must carry this value as their iss claim.",
			func(c *Config, v string) error { c.JWTIssuer = v; return nil }},
		{"jwt-leeway", "LIVEHUB_JWT_LEEWAY", "5s", "Clock skew tolerated on the exp, nbf and iat claims of tokens.",
			durationSetter(func(c *Config) *time.Duration { return &c.JWTLeeway })},
		{"jwt-jwks-url", "LIVEHUB_JWT_JWKS_URL", "", "JSON Web Key Set URL of an identity provider: tokens signed RS256 or ES256 with its keys are accepted besides HS256 ones. May replace LIVEHUB_JWT_SECRET.",
			func(c *Config, v string) error {
				if v != "" && !strings.HasPrefix(v, "https://") && !strings.HasPrefix(v, "http://") {
					return errors.New("must be an http:// or https:// URL")
				}
				c.JWTJWKSURL = v
				return nil
			}},
		{"api-key", "LIVEHUB_API_KEY", "", "Key of the server API (/api), sent as X-API-Key or Authorization: apikey KEY. Empty disables the server API (and with -dev generates one).",
			func(c *Config, v string) error { c.APIKey = v; return nil }},
		{"allowed-origins", "LIVEHUB_ALLOWED_ORIGINS", "", "Comma-separated host patterns of web pages allowed to open sockets (\"shop.example.com,*.example.id\"). Empty allows the same host only. Apps without an Origin header are always allowed.",
			func(c *Config, v string) error { c.AllowedOrigins = splitList(v); return nil }},
		{"allow-anonymous", "LIVEHUB_ALLOW_ANONYMOUS", "true", "Accept connections without a token; they may only watch namespaces marked anonymous.",
			func(c *Config, v string) error { return parseBool(&c.AllowAnonymous, v) }},
		{"dev", "LIVEHUB_DEV", "false", "Development mode: generate a JWT secret and API key when unset and print how to mint tokens.",
			func(c *Config, v string) error { return parseBool(&c.Dev, v) }},
		{"log-level", "LIVEHUB_LOG_LEVEL", "info", "debug, info, warn or error.",
			func(c *Config, v string) error { return c.LogLevel.UnmarshalText([]byte(v)) }},
		{"namespaces", "LIVEHUB_NAMESPACES", "", "JSON file with the channel namespaces, replacing the built-in ones (see docs/configuration.md).",
			func(c *Config, v string) error { c.NamespacesFile = v; return nil }},
		{"ping-interval", "LIVEHUB_PING_INTERVAL", "25s", "How often the server pings each connection.",
			durationSetter(func(c *Config) *time.Duration { return &c.PingInterval })},
		{"pong-timeout", "LIVEHUB_PONG_TIMEOUT", "10s", "How long a ping may wait for its pong before the socket is closed (3012).",
			durationSetter(func(c *Config) *time.Duration { return &c.PongTimeout })},
		{"connect-timeout", "LIVEHUB_CONNECT_TIMEOUT", "10s", "How long a socket may stay open without a connect command (then 3502).",
			durationSetter(func(c *Config) *time.Duration { return &c.ConnectTimeout })},
		{"write-timeout", "LIVEHUB_WRITE_TIMEOUT", "10s", "Deadline of one write to a socket; a client that cannot take a write in time is closed.",
			durationSetter(func(c *Config) *time.Duration { return &c.WriteTimeout })},
		{"shutdown-grace", "LIVEHUB_SHUTDOWN_GRACE", "10s", "At shutdown, closes of connections (3001, reconnect elsewhere) are spread over this long.",
			durationSetter(func(c *Config) *time.Duration { return &c.ShutdownGrace })},
		{"shutdown-timeout", "LIVEHUB_SHUTDOWN_TIMEOUT", "30s", "Longest a shutdown may take; what is left is cut.",
			durationSetter(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
		{"max-frame-bytes", "LIVEHUB_MAX_FRAME_BYTES", "65536", "Largest WebSocket message a client may send; larger closes the socket with 1009.",
			intSetter(func(c *Config) *int { return &c.MaxFrameBytes })},
		{"ws-compression", "LIVEHUB_WS_COMPRESSION", "no_context_takeover", "WebSocket permessage-deflate with clients that offer it: off, no_context_takeover (each message compressed alone) or context_takeover (a 32 KiB window kept per connection: smaller messages, more memory).",
			func(c *Config, v string) error {
				m, err := hub.ParseCompression(v)
				c.WSCompression = m
				return err
			}},
		{"ws-compression-threshold", "LIVEHUB_WS_COMPRESSION_THRESHOLD", "512", "Messages smaller than this many bytes are sent uncompressed on a compressed connection.",
			intSetter(func(c *Config) *int { return &c.WSCompressionThreshold })},
		{"max-queue-bytes", "LIVEHUB_MAX_QUEUE_BYTES", "1048576", "Bytes that may wait to be written to one connection; past it the client is closed as slow (3008).",
			intSetter(func(c *Config) *int { return &c.MaxQueueBytes })},
		{"low-priority-queue-bytes", "LIVEHUB_LOW_PRIORITY_QUEUE_BYTES", "262144", "Queued bytes past which a connection drops low-priority publications (likes, viewer counts, chat, courier positions) while still queueing stock and order events.",
			intSetter(func(c *Config) *int { return &c.LowPriorityQueueBytes })},
		{"max-channels", "LIVEHUB_MAX_CHANNELS", "128", "Subscriptions one connection may hold (error 106 past it).",
			intSetter(func(c *Config) *int { return &c.MaxChannelsPerConn })},
		{"command-rate", "LIVEHUB_COMMAND_RATE", "50", "Commands per second one connection may send on average (error 111 past it).",
			func(c *Config, v string) error {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil || f <= 0 {
					return errors.New("must be a positive number")
				}
				c.CommandRate = f
				return nil
			}},
		{"command-burst", "LIVEHUB_COMMAND_BURST", "100", "Commands one connection may send in a burst above the rate.",
			intSetter(func(c *Config) *int { return &c.CommandBurst })},
		{"max-api-body-bytes", "LIVEHUB_MAX_API_BODY_BYTES", "1048576", "Largest request body the HTTP APIs accept (413 past it).",
			intSetter(func(c *Config) *int { return &c.MaxAPIBodyBytes })},
		{"trusted-proxies", "LIVEHUB_TRUSTED_PROXIES", "", "Comma-separated addresses or CIDRs of load balancers whose X-Forwarded-For names the client IP. Empty trusts none: the client IP is the TCP peer.",
			func(c *Config, v string) error {
				c.TrustedProxies = splitList(v)
				for _, p := range c.TrustedProxies {
					if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
						return fmt.Errorf("%q is not an IP address or CIDR", p)
					}
				}
				return nil
			}},
		{"ws-max-conns-per-ip", "LIVEHUB_WS_MAX_CONNS_PER_IP", "2000", "Sockets one client IP may hold open on a node (429 at the handshake past it). 0 disables.",
			countSetter(func(c *Config) *int { return &c.WSMaxConnsPerIP })},
		{"max-conns-per-user", "LIVEHUB_MAX_CONNS_PER_USER", "20", "Connections one signed-in user may hold on a node; the next connect is closed with 3504. 0 disables.",
			countSetter(func(c *Config) *int { return &c.MaxConnsPerUser })},
		{"ws-connect-ip-limit", "LIVEHUB_WS_CONNECT_IP_LIMIT", "100:1000", "WebSocket handshakes one client IP may start: RATE:BURST, RATE per second (429 with Retry-After past it). 0 disables.",
			limitSetter(func(c *Config) *ratelimit.Limit { return &c.WSConnectIPLimit })},
		{"checkout-user-limit", "LIVEHUB_CHECKOUT_USER_LIMIT", "2:5", "Checkouts one buyer may send: RATE:BURST, RATE per second (429 with Retry-After past it). 0 disables.",
			limitSetter(func(c *Config) *ratelimit.Limit { return &c.CheckoutUserLimit })},
		{"checkout-ip-limit", "LIVEHUB_CHECKOUT_IP_LIMIT", "50:200", "Checkouts one client IP may send: RATE:BURST. Mobile carriers put many buyers behind one address; keep it generous. 0 disables.",
			limitSetter(func(c *Config) *ratelimit.Limit { return &c.CheckoutIPLimit })},
		{"checkout-max-in-flight", "LIVEHUB_CHECKOUT_MAX_IN_FLIGHT", "1024", "Checkouts one node works on at once; as many more may wait for a place. Past that a checkout gets 503 with Retry-After at once, and nothing is reserved. 0 disables.",
			countSetter(func(c *Config) *int { return &c.CheckoutMaxInFlight })},
		{"checkout-max-wait", "LIVEHUB_CHECKOUT_MAX_WAIT", "500ms", "How long a checkout waits for a place among those in flight before it gets 503 with Retry-After.",
			func(c *Config, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil || d < 0 {
					return errors.New("must be a duration such as 500ms, 0 to refuse without waiting")
				}
				c.CheckoutMaxWait = d
				return nil
			}},
		{"payment-gateway", "LIVEHUB_PAYMENT_GATEWAY", "simulated", "simulated (a pay endpoint settles orders; for development) or midtrans.",
			func(c *Config, v string) error {
				if v != "simulated" && v != "midtrans" {
					return errors.New("must be simulated or midtrans")
				}
				c.PaymentGateway = v
				return nil
			}},
		{"midtrans-server-key", "LIVEHUB_MIDTRANS_SERVER_KEY", "", "Midtrans server key: authenticates Snap calls and verifies notification signatures. Required with -payment-gateway midtrans.",
			func(c *Config, v string) error { c.MidtransServerKey = v; return nil }},
		{"midtrans-base-url", "LIVEHUB_MIDTRANS_BASE_URL", "https://app.sandbox.midtrans.com", "Snap API base URL; https://app.midtrans.com in production.",
			func(c *Config, v string) error { c.MidtransBaseURL = v; return nil }},
		{"payment-expiry", "LIVEHUB_PAYMENT_EXPIRY", "15m", "How long the buyer has to pay a charge at the gateway.",
			durationSetter(func(c *Config) *time.Duration { return &c.PaymentExpiry })},
		{"reservation-ttl", "LIVEHUB_RESERVATION_TTL", "16m", "How long checked-out units stay reserved for payment; never shorter than the payment expiry.",
			durationSetter(func(c *Config) *time.Duration { return &c.ReservationTTL })},
		{"stock-event-interval", "LIVEHUB_STOCK_EVENT_INTERVAL", "250ms", "Least time between two flash_sale.stock events of a sale; the change to zero is sent at once.",
			durationSetter(func(c *Config) *time.Duration { return &c.StockEventInterval })},
		{"order-ticker-interval", "LIVEHUB_ORDER_TICKER_INTERVAL", "1s", "Least time between two order.placed events of a sale; purchases in between are folded into one event.",
			durationSetter(func(c *Config) *time.Duration { return &c.OrderTickerInterval })},
		{"webhook-url", "LIVEHUB_WEBHOOK_URL", "", "URL that receives order events as signed POSTs. Empty sends none.",
			func(c *Config, v string) error { c.WebhookURL = v; return nil }},
		{"webhook-secret", "LIVEHUB_WEBHOOK_SECRET", "", "HMAC-SHA256 secret of the X-LiveHub-Signature header on webhook POSTs.",
			func(c *Config, v string) error { c.WebhookSecret = v; return nil }},
		{"apns-key-file", "LIVEHUB_APNS_KEY_FILE", "", "APNs provider token signing key: the .p8 file from the Apple developer account. Needs -apns-key-id, -apns-team-id and -apns-bundle-id. Empty turns pushes to iOS off.",
			func(c *Config, v string) error { c.APNsKeyFile = v; return nil }},
		{"apns-key-id", "LIVEHUB_APNS_KEY_ID", "", "Key ID of the APNs signing key.",
			func(c *Config, v string) error { c.APNsKeyID = v; return nil }},
		{"apns-team-id", "LIVEHUB_APNS_TEAM_ID", "", "Apple developer Team ID that owns the APNs signing key.",
			func(c *Config, v string) error { c.APNsTeamID = v; return nil }},
		{"apns-bundle-id", "LIVEHUB_APNS_BUNDLE_ID", "", "iOS app bundle ID: the APNs topic for devices registered without an app_id.",
			func(c *Config, v string) error { c.APNsBundleID = v; return nil }},
		{"apns-production", "LIVEHUB_APNS_PRODUCTION", "false", "Send through the production APNs (api.push.apple.com) instead of the sandbox, for App Store and TestFlight builds.",
			func(c *Config, v string) error { return parseBool(&c.APNsProduction, v) }},
		{"fcm-credentials-file", "LIVEHUB_FCM_CREDENTIALS_FILE", "", "Firebase service account key (JSON) for FCM; its project_id is the Firebase project. Empty turns pushes to Android off.",
			func(c *Config, v string) error { c.FCMCredentialsFile = v; return nil }},
		{"push-ack-window", "LIVEHUB_PUSH_ACK_WINDOW", "10s", "How long an app in the foreground has to acknowledge (RPC event.ack) an event of its user:# channel before it is sent as a push notification too.",
			durationSetter(func(c *Config) *time.Duration { return &c.PushAckWindow })},
		{"tls-cert", "LIVEHUB_TLS_CERT", "", "PEM certificate chain (leaf first). With -tls-key the node serves HTTPS (HTTP/2, and WebSocket over TLS) instead of plain HTTP. Reloaded when the files change.",
			func(c *Config, v string) error { c.TLSCert = v; return nil }},
		{"tls-key", "LIVEHUB_TLS_KEY", "", "PEM private key of -tls-cert.",
			func(c *Config, v string) error { c.TLSKey = v; return nil }},
		{"tls-reload-interval", "LIVEHUB_TLS_RELOAD_INTERVAL", "30s", "How often the certificate and key files are read for a new pair (SIGHUP reads them at once).",
			durationSetter(func(c *Config) *time.Duration { return &c.TLSReloadInterval })},
		{"http-gzip-min-bytes", "LIVEHUB_HTTP_GZIP_MIN_BYTES", "1024", "Smallest HTTP response body gzipped for clients that accept gzip. 0 turns compression off.",
			func(c *Config, v string) error {
				i, err := strconv.Atoi(v)
				if err != nil || i < 0 {
					return errors.New("must be a byte count, or 0 to turn compression off")
				}
				c.HTTPGzipMinBytes = i
				return nil
			}},
	}
}

// addrSetter takes a listen address, HOST:PORT as net.Listen reads it: an
// empty host is every interface, port 0 a free port. Checking it here turns
// a typo into an error naming the setting instead of a failed listen later.
func addrSetter(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v != "" {
			if err := checkListenAddr(v); err != nil {
				return err
			}
		}
		*field(c) = v
		return nil
	}
}

func checkListenAddr(v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return errors.New("must be HOST:PORT such as 127.0.0.1:6060 or :6060")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port %q must be a number from 0 to 65535", port)
	}
	if ip, _, _ := strings.Cut(host, "%"); host != "" && net.ParseIP(ip) == nil && !isHostname(host) {
		return fmt.Errorf("host %q is neither an IP address nor a host name", host)
	}
	return nil
}

func isHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// sharePort reports whether listeners on a and b would fight over a port:
// the same fixed port, on the same host or with either on every interface.
func sharePort(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	if pa != pb || pa == "0" {
		return false
	}
	return ha == hb || isEveryInterface(ha) || isEveryInterface(hb)
}

func isEveryInterface(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || ip != nil && ip.IsUnspecified()
}

func durationSetter(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return errors.New("must be a positive duration such as 10s")
		}
		*field(c) = d
		return nil
	}
}

// limitSetter parses RATE:BURST (RATE per second; BURST defaults to 1) or 0.
func limitSetter(field func(*Config) *ratelimit.Limit) func(*Config, string) error {
	return func(c *Config, v string) error {
		rate, burst, hasBurst := strings.Cut(strings.TrimSpace(v), ":")
		r, err := strconv.ParseFloat(rate, 64)
		if err != nil || r < 0 {
			return errors.New("must be RATE:BURST such as 2:5, or 0 to disable")
		}
		l := ratelimit.Limit{Rate: r, Burst: 1}
		if hasBurst {
			b, err := strconv.Atoi(burst)
			if err != nil || b <= 0 {
				return errors.New("the burst after the colon must be a positive integer")
			}
			l.Burst = b
		}
		*field(c) = l
		return nil
	}
}

// countSetter parses a whole number, 0 meaning the limit is off.
func countSetter(field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		i, err := strconv.Atoi(v)
		if err != nil || i < 0 {
			return errors.New("must be a whole number, 0 to disable")
		}
		*field(c) = i
		return nil
	}
}

func intSetter(field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		i, err := strconv.Atoi(v)
		if err != nil || i <= 0 {
			return errors.New("must be a positive integer")
		}
		*field(c) = i
		return nil
	}
}

func parseBool(dst *bool, v string) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return errors.New("must be true or false")
	}
	*dst = b
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Load reads the settings: defaults, then environment (getenv), then flags
// in args. Errors name the flag and variable at fault.
func Load(args []string, getenv func(string) string, stderr io.Writer) (*Config, error) {
	fs := flag.NewFlagSet("livehub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	settings := Settings()
	values := make([]*string, len(settings))
	for i, s := range settings {
		def := s.Default
		if v, ok := lookup(getenv, s.Env); ok {
			def = v
		}
		v := &flagValue{s: def, isBool: s.Default == "true" || s.Default == "false"}
		values[i] = &v.s
		fs.Var(v, s.Flag, s.Usage+" ("+s.Env+")")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c := &Config{}
	for i, s := range settings {
		if err := s.set(c, *values[i]); err != nil {
			return nil, fmt.Errorf("-%s (%s) = %q: %w", s.Flag, s.Env, *values[i], err)
		}
	}
	if c.ReservationTTL < c.PaymentExpiry {
		return nil, errors.New("-reservation-ttl (LIVEHUB_RESERVATION_TTL) must not be shorter than -payment-expiry (LIVEHUB_PAYMENT_EXPIRY): a buyer could pay for units already back on sale")
	}
	if c.PaymentGateway == "midtrans" && c.MidtransServerKey == "" {
		return nil, errors.New("-payment-gateway midtrans needs -midtrans-server-key (LIVEHUB_MIDTRANS_SERVER_KEY)")
	}
	if c.WebhookURL != "" && c.WebhookSecret == "" {
		return nil, errors.New("-webhook-url (LIVEHUB_WEBHOOK_URL) needs -webhook-secret (LIVEHUB_WEBHOOK_SECRET)")
	}
	if c.DebugAddr != "" && sharePort(c.DebugAddr, c.HTTPAddr) {
		return nil, errors.New("-debug-addr (LIVEHUB_DEBUG_ADDR) must not share the port of -http-addr (LIVEHUB_HTTP_ADDR): the profiling endpoints live on their own listener, away from the public API")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return nil, errors.New("-tls-cert (LIVEHUB_TLS_CERT) and -tls-key (LIVEHUB_TLS_KEY) go together: set both to serve TLS, or neither")
	}
	if c.NamespacesFile != "" {
		ns, err := readNamespaces(c.NamespacesFile)
		if err != nil {
			return nil, fmt.Errorf("-namespaces (LIVEHUB_NAMESPACES): %w", err)
		}
		c.Namespaces = ns
	}
	return c, nil
}

func lookup(getenv func(string) string, key string) (string, bool) {
	v := getenv(key)
	return v, v != ""
}

func readNamespaces(path string) ([]hub.NamespaceOptions, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ns []hub.NamespaceOptions
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ns); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ns, nil
}

// flagValue holds a setting's text; boolean settings accept a bare flag
// ("-dev" means "-dev=true").
type flagValue struct {
	s      string
	isBool bool
}

func (f *flagValue) String() string     { return f.s }
func (f *flagValue) Set(v string) error { f.s = v; return nil }
func (f *flagValue) IsBoolFlag() bool   { return f.isBool }
