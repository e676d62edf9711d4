package config_test

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/internal/config"
	"github.com/livehub/livehub/internal/ratelimit"
)

// env is a getenv over a fixed map.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func load(t *testing.T, args []string, vars map[string]string) *config.Config {
	t.Helper()
	c, err := config.Load(args, env(vars), io.Discard)
	if err != nil {
		t.Fatalf("Load(%q, %v): %v", args, vars, err)
	}
	return c
}

func TestLoad_DefaultsWhenNothingSet(t *testing.T) {
	c := load(t, nil, nil)
	tests := []struct {
		name      string
		got, want any
	}{
		{"HTTPAddr", c.HTTPAddr, ":8080"},
		{"DebugAddr", c.DebugAddr, ""},
		{"RedisURL", c.RedisURL, ""},
		{"RedisPrefix", c.RedisPrefix, "livehub"},
		{"JWTSecrets", len(c.JWTSecrets), 0},
		{"JWTAudience", c.JWTAudience, ""},
		{"JWTIssuer", c.JWTIssuer, ""},
		{"JWTLeeway", c.JWTLeeway, 5 * time.Second},
		{"JWTJWKSURL", c.JWTJWKSURL, ""},
		{"APIKey", c.APIKey, ""},
		{"AllowedOrigins", len(c.AllowedOrigins), 0},
		{"AllowAnonymous", c.AllowAnonymous, true},
		{"Dev", c.Dev, false},
		{"LogLevel", c.LogLevel, slog.LevelInfo},
		{"NamespacesFile", c.NamespacesFile, ""},
		{"Namespaces", len(c.Namespaces), 0},
		{"PingInterval", c.PingInterval, 25 * time.Second},
		{"PongTimeout", c.PongTimeout, 10 * time.Second},
		{"ConnectTimeout", c.ConnectTimeout, 10 * time.Second},
		{"WriteTimeout", c.WriteTimeout, 10 * time.Second},
		{"ShutdownGrace", c.ShutdownGrace, 10 * time.Second},
		{"ShutdownTimeout", c.ShutdownTimeout, 30 * time.Second},
		{"MaxFrameBytes", c.MaxFrameBytes, 65536},
		{"MaxQueueBytes", c.MaxQueueBytes, 1 << 20},
		{"MaxChannelsPerConn", c.MaxChannelsPerConn, 128},
		{"CommandRate", c.CommandRate, 50.0},
		{"CommandBurst", c.CommandBurst, 100},
		{"MaxAPIBodyBytes", c.MaxAPIBodyBytes, 1 << 20},
		{"PaymentGateway", c.PaymentGateway, "simulated"},
		{"MidtransServerKey", c.MidtransServerKey, ""},
		{"MidtransBaseURL", c.MidtransBaseURL, "https://app.sandbox.midtrans.com"},
		{"PaymentExpiry", c.PaymentExpiry, 15 * time.Minute},
		{"ReservationTTL", c.ReservationTTL, 16 * time.Minute},
		{"StockEventInterval", c.StockEventInterval, 250 * time.Millisecond},
		{"WebhookURL", c.WebhookURL, ""},
		{"WebhookSecret", c.WebhookSecret, ""},
		{"TLSCert", c.TLSCert, ""},
		{"TLSKey", c.TLSKey, ""},
		{"TLSReloadInterval", c.TLSReloadInterval, 30 * time.Second},
		{"HTTPGzipMinBytes", c.HTTPGzipMinBytes, 1024},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("default %s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

// Each documented default is what Load applies when nothing is set.
func TestLoad_SettingDefaultsAreApplied(t *testing.T) {
	none := load(t, nil, nil)
	for _, s := range config.Settings() {
		if s.Default == "" {
			continue
		}
		if got := load(t, []string{"-" + s.Flag + "=" + s.Default}, nil); !reflect.DeepEqual(got, none) {
			t.Errorf("-%s=%s differs from not setting it:\n got %+v\nwant %+v", s.Flag, s.Default, got, none)
		}
	}
}

// An empty variable is an unset one, so `LIVEHUB_X=` in a compose file
// does not turn a default into an error.
func TestLoad_EmptyVariableKeepsDefault(t *testing.T) {
	vars := map[string]string{}
	for _, s := range config.Settings() {
		vars[s.Env] = ""
	}
	if got, want := load(t, nil, vars), load(t, nil, nil); !reflect.DeepEqual(got, want) {
		t.Fatalf("empty variables changed the configuration:\n got %+v\nwant %+v", got, want)
	}
}

func TestLoad_EnvOverridesDefaultAndFlagOverridesEnv(t *testing.T) {
	tests := []struct {
		flag, env    string
		envV, flagV  string
		get          func(*config.Config) any
		fromEnv, all any
		extra        map[string]string // variables the value needs
	}{
		{"http-addr", "LIVEHUB_HTTP_ADDR", "127.0.0.1:9000", "127.0.0.1:9001",
			func(c *config.Config) any { return c.HTTPAddr }, "127.0.0.1:9000", "127.0.0.1:9001", nil},
		{"debug-addr", "LIVEHUB_DEBUG_ADDR", "127.0.0.1:6060", "10.0.0.5:6061",
			func(c *config.Config) any { return c.DebugAddr }, "127.0.0.1:6060", "10.0.0.5:6061", nil},
		{"redis-url", "LIVEHUB_REDIS_URL", "redis://a:6379", "redis://b:6379",
			func(c *config.Config) any { return c.RedisURL }, "redis://a:6379", "redis://b:6379", nil},
		{"redis-prefix", "LIVEHUB_REDIS_PREFIX", "env", "flag",
			func(c *config.Config) any { return c.RedisPrefix }, "env", "flag", nil},
		{"api-key", "LIVEHUB_API_KEY", "k-env", "k-flag",
			func(c *config.Config) any { return c.APIKey }, "k-env", "k-flag", nil},
		{"jwt-secret", "LIVEHUB_JWT_SECRET", "s-env", "s-flag",
			func(c *config.Config) any { return c.JWTSecrets }, []string{"s-env"}, []string{"s-flag"}, nil},
		{"jwt-audience", "LIVEHUB_JWT_AUDIENCE", "aud-env", "aud-flag",
			func(c *config.Config) any { return c.JWTAudience }, "aud-env", "aud-flag", nil},
		{"jwt-issuer", "LIVEHUB_JWT_ISSUER", "https://a.example", "https://b.example",
			func(c *config.Config) any { return c.JWTIssuer }, "https://a.example", "https://b.example", nil},
		{"jwt-leeway", "LIVEHUB_JWT_LEEWAY", "2s", "30s",
			func(c *config.Config) any { return c.JWTLeeway }, 2 * time.Second, 30 * time.Second, nil},
		{"jwt-jwks-url", "LIVEHUB_JWT_JWKS_URL", "https://a.example/jwks.json", "http://127.0.0.1:9/jwks",
			func(c *config.Config) any { return c.JWTJWKSURL }, "https://a.example/jwks.json", "http://127.0.0.1:9/jwks", nil},
		{"allowed-origins", "LIVEHUB_ALLOWED_ORIGINS", "a.example", "b.example",
			func(c *config.Config) any { return c.AllowedOrigins }, []string{"a.example"}, []string{"b.example"}, nil},
		{"allow-anonymous", "LIVEHUB_ALLOW_ANONYMOUS", "false", "true",
			func(c *config.Config) any { return c.AllowAnonymous }, false, true, nil},
		{"dev", "LIVEHUB_DEV", "true", "false",
			func(c *config.Config) any { return c.Dev }, true, false, nil},
		{"log-level", "LIVEHUB_LOG_LEVEL", "debug", "error",
			func(c *config.Config) any { return c.LogLevel }, slog.LevelDebug, slog.LevelError, nil},
		{"ping-interval", "LIVEHUB_PING_INTERVAL", "5s", "7s",
			func(c *config.Config) any { return c.PingInterval }, 5 * time.Second, 7 * time.Second, nil},
		{"pong-timeout", "LIVEHUB_PONG_TIMEOUT", "3s", "4s",
			func(c *config.Config) any { return c.PongTimeout }, 3 * time.Second, 4 * time.Second, nil},
		{"connect-timeout", "LIVEHUB_CONNECT_TIMEOUT", "1m", "90s",
			func(c *config.Config) any { return c.ConnectTimeout }, time.Minute, 90 * time.Second, nil},
		{"write-timeout", "LIVEHUB_WRITE_TIMEOUT", "2s", "500ms",
			func(c *config.Config) any { return c.WriteTimeout }, 2 * time.Second, 500 * time.Millisecond, nil},
		{"shutdown-grace", "LIVEHUB_SHUTDOWN_GRACE", "1s", "2s",
			func(c *config.Config) any { return c.ShutdownGrace }, time.Second, 2 * time.Second, nil},
		{"shutdown-timeout", "LIVEHUB_SHUTDOWN_TIMEOUT", "5s", "6s",
			func(c *config.Config) any { return c.ShutdownTimeout }, 5 * time.Second, 6 * time.Second, nil},
		{"max-frame-bytes", "LIVEHUB_MAX_FRAME_BYTES", "1024", "2048",
			func(c *config.Config) any { return c.MaxFrameBytes }, 1024, 2048, nil},
		{"ws-compression", "LIVEHUB_WS_COMPRESSION", "off", "context_takeover",
			func(c *config.Config) any { return c.WSCompression }, hub.CompressionOff, hub.CompressionContextTakeover, nil},
		{"ws-compression-threshold", "LIVEHUB_WS_COMPRESSION_THRESHOLD", "100", "2048",
			func(c *config.Config) any { return c.WSCompressionThreshold }, 100, 2048, nil},
		{"max-queue-bytes", "LIVEHUB_MAX_QUEUE_BYTES", "4096", "8192",
			func(c *config.Config) any { return c.MaxQueueBytes }, 4096, 8192, nil},
		{"max-channels", "LIVEHUB_MAX_CHANNELS", "8", "9",
			func(c *config.Config) any { return c.MaxChannelsPerConn }, 8, 9, nil},
		{"command-rate", "LIVEHUB_COMMAND_RATE", "2.5", "10",
			func(c *config.Config) any { return c.CommandRate }, 2.5, 10.0, nil},
		{"command-burst", "LIVEHUB_COMMAND_BURST", "3", "4",
			func(c *config.Config) any { return c.CommandBurst }, 3, 4, nil},
		{"max-api-body-bytes", "LIVEHUB_MAX_API_BODY_BYTES", "512", "1024",
			func(c *config.Config) any { return c.MaxAPIBodyBytes }, 512, 1024, nil},
		{"trusted-proxies", "LIVEHUB_TRUSTED_PROXIES", "10.0.0.0/8", "10.1.2.3, 192.168.0.0/16",
			func(c *config.Config) any { return c.TrustedProxies }, []string{"10.0.0.0/8"}, []string{"10.1.2.3", "192.168.0.0/16"}, nil},
		{"ws-max-conns-per-ip", "LIVEHUB_WS_MAX_CONNS_PER_IP", "0", "10",
			func(c *config.Config) any { return c.WSMaxConnsPerIP }, 0, 10, nil},
		{"low-priority-queue-bytes", "LIVEHUB_LOW_PRIORITY_QUEUE_BYTES", "1000", "2000",
			func(c *config.Config) any { return c.LowPriorityQueueBytes }, 1000, 2000, nil},
		{"max-conns-per-user", "LIVEHUB_MAX_CONNS_PER_USER", "3", "0",
			func(c *config.Config) any { return c.MaxConnsPerUser }, 3, 0, nil},
		{"ws-connect-ip-limit", "LIVEHUB_WS_CONNECT_IP_LIMIT", "5:50", "0",
			func(c *config.Config) any { return c.WSConnectIPLimit }, ratelimit.Limit{Rate: 5, Burst: 50}, ratelimit.Limit{Burst: 1}, nil},
		{"checkout-user-limit", "LIVEHUB_CHECKOUT_USER_LIMIT", "0", "3.5:7",
			func(c *config.Config) any { return c.CheckoutUserLimit }, ratelimit.Limit{Burst: 1}, ratelimit.Limit{Rate: 3.5, Burst: 7}, nil},
		{"checkout-ip-limit", "LIVEHUB_CHECKOUT_IP_LIMIT", "100", "20:40",
			func(c *config.Config) any { return c.CheckoutIPLimit }, ratelimit.Limit{Rate: 100, Burst: 1}, ratelimit.Limit{Rate: 20, Burst: 40}, nil},
		{"checkout-max-in-flight", "LIVEHUB_CHECKOUT_MAX_IN_FLIGHT", "64", "0",
			func(c *config.Config) any { return c.CheckoutMaxInFlight }, 64, 0, nil},
		{"checkout-max-wait", "LIVEHUB_CHECKOUT_MAX_WAIT", "2s", "0",
			func(c *config.Config) any { return c.CheckoutMaxWait }, 2 * time.Second, time.Duration(0), nil},
		{"payment-gateway", "LIVEHUB_PAYMENT_GATEWAY", "midtrans", "simulated",
			func(c *config.Config) any { return c.PaymentGateway }, "midtrans", "simulated",
			map[string]string{"LIVEHUB_MIDTRANS_SERVER_KEY": "server-key"}},
		{"midtrans-server-key", "LIVEHUB_MIDTRANS_SERVER_KEY", "k-env", "k-flag",
			func(c *config.Config) any { return c.MidtransServerKey }, "k-env", "k-flag", nil},
		{"midtrans-base-url", "LIVEHUB_MIDTRANS_BASE_URL", "https://a.example", "https://b.example",
			func(c *config.Config) any { return c.MidtransBaseURL }, "https://a.example", "https://b.example", nil},
		{"payment-expiry", "LIVEHUB_PAYMENT_EXPIRY", "5m", "10m",
			func(c *config.Config) any { return c.PaymentExpiry }, 5 * time.Minute, 10 * time.Minute, nil},
		{"reservation-ttl", "LIVEHUB_RESERVATION_TTL", "20m", "30m",
			func(c *config.Config) any { return c.ReservationTTL }, 20 * time.Minute, 30 * time.Minute, nil},
		{"stock-event-interval", "LIVEHUB_STOCK_EVENT_INTERVAL", "1s", "100ms",
			func(c *config.Config) any { return c.StockEventInterval }, time.Second, 100 * time.Millisecond, nil},
		{"order-ticker-interval", "LIVEHUB_ORDER_TICKER_INTERVAL", "2s", "500ms",
			func(c *config.Config) any { return c.OrderTickerInterval }, 2 * time.Second, 500 * time.Millisecond, nil},
		{"webhook-url", "LIVEHUB_WEBHOOK_URL", "https://a.example/hook", "https://b.example/hook",
			func(c *config.Config) any { return c.WebhookURL }, "https://a.example/hook", "https://b.example/hook",
			map[string]string{"LIVEHUB_WEBHOOK_SECRET": "hook-secret"}},
		{"webhook-secret", "LIVEHUB_WEBHOOK_SECRET", "s-env", "s-flag",
			func(c *config.Config) any { return c.WebhookSecret }, "s-env", "s-flag", nil},
		{"apns-key-file", "LIVEHUB_APNS_KEY_FILE", "/etc/a.p8", "/etc/b.p8",
			func(c *config.Config) any { return c.APNsKeyFile }, "/etc/a.p8", "/etc/b.p8", nil},
		{"apns-key-id", "LIVEHUB_APNS_KEY_ID", "KEYA", "KEYB",
			func(c *config.Config) any { return c.APNsKeyID }, "KEYA", "KEYB", nil},
		{"apns-team-id", "LIVEHUB_APNS_TEAM_ID", "TEAMA", "TEAMB",
			func(c *config.Config) any { return c.APNsTeamID }, "TEAMA", "TEAMB", nil},
		{"apns-bundle-id", "LIVEHUB_APNS_BUNDLE_ID", "com.example.a", "com.example.b",
			func(c *config.Config) any { return c.APNsBundleID }, "com.example.a", "com.example.b", nil},
		{"apns-production", "LIVEHUB_APNS_PRODUCTION", "true", "false",
			func(c *config.Config) any { return c.APNsProduction }, true, false, nil},
		{"fcm-credentials-file", "LIVEHUB_FCM_CREDENTIALS_FILE", "/etc/a.json", "/etc/b.json",
			func(c *config.Config) any { return c.FCMCredentialsFile }, "/etc/a.json", "/etc/b.json", nil},
		{"push-ack-window", "LIVEHUB_PUSH_ACK_WINDOW", "5s", "30s",
			func(c *config.Config) any { return c.PushAckWindow }, 5 * time.Second, 30 * time.Second, nil},
		{"tls-cert", "LIVEHUB_TLS_CERT", "/etc/a.crt", "/etc/b.crt",
			func(c *config.Config) any { return c.TLSCert }, "/etc/a.crt", "/etc/b.crt",
			map[string]string{"LIVEHUB_TLS_KEY": "/etc/tls.key"}},
		{"tls-key", "LIVEHUB_TLS_KEY", "/etc/a.key", "/etc/b.key",
			func(c *config.Config) any { return c.TLSKey }, "/etc/a.key", "/etc/b.key",
			map[string]string{"LIVEHUB_TLS_CERT": "/etc/tls.crt"}},
		{"tls-reload-interval", "LIVEHUB_TLS_RELOAD_INTERVAL", "1m", "5s",
			func(c *config.Config) any { return c.TLSReloadInterval }, time.Minute, 5 * time.Second, nil},
		{"http-gzip-min-bytes", "LIVEHUB_HTTP_GZIP_MIN_BYTES", "0", "2048",
			func(c *config.Config) any { return c.HTTPGzipMinBytes }, 0, 2048, nil},
	}
	covered := map[string]bool{"namespaces": true} // TestLoad_Namespaces
	for _, tt := range tests {
		covered[tt.flag] = true
		t.Run(tt.flag, func(t *testing.T) {
			vars := map[string]string{tt.env: tt.envV}
			for k, v := range tt.extra {
				vars[k] = v
			}
			if got := tt.get(load(t, nil, vars)); !reflect.DeepEqual(got, tt.fromEnv) {
				t.Fatalf("%s=%s: got %v, want %v", tt.env, tt.envV, got, tt.fromEnv)
			}
			if got := tt.get(load(t, []string{"-" + tt.flag + "=" + tt.flagV}, vars)); !reflect.DeepEqual(got, tt.all) {
				t.Fatalf("-%s=%s over %s=%s: got %v, want %v", tt.flag, tt.flagV, tt.env, tt.envV, got, tt.all)
			}
			if tt.flag == "dev" || tt.flag == "allow-anonymous" || tt.flag == "apns-production" {
				return // switches take their value after '=' only
			}
			if got := tt.get(load(t, []string{"--" + tt.flag, tt.flagV}, tt.extra)); !reflect.DeepEqual(got, tt.all) {
				t.Fatalf("--%s %s: got %v, want %v", tt.flag, tt.flagV, got, tt.all)
			}
		})
	}
	for _, s := range config.Settings() {
		if !covered[s.Flag] {
			t.Errorf("setting -%s (%s) has no case in this table: add one", s.Flag, s.Env)
		}
	}
}

func TestLoad_BadValueNamesFlagAndVariable(t *testing.T) {
	tests := []struct {
		name, flag, env, value string
	}{
		{"address without port", "http-addr", "LIVEHUB_HTTP_ADDR", "127.0.0.1"},
		{"debug address without port", "debug-addr", "LIVEHUB_DEBUG_ADDR", "localhost"},
		{"bad duration", "ping-interval", "LIVEHUB_PING_INTERVAL", "soon"},
		{"duration without unit", "pong-timeout", "LIVEHUB_PONG_TIMEOUT", "10"},
		{"zero duration", "connect-timeout", "LIVEHUB_CONNECT_TIMEOUT", "0s"},
		{"negative duration", "write-timeout", "LIVEHUB_WRITE_TIMEOUT", "-1s"},
		{"bad grace", "shutdown-grace", "LIVEHUB_SHUTDOWN_GRACE", "1 minute"},
		{"bad shutdown timeout", "shutdown-timeout", "LIVEHUB_SHUTDOWN_TIMEOUT", "x"},
		{"negative int", "max-frame-bytes", "LIVEHUB_MAX_FRAME_BYTES", "-1"},
		{"zero int", "max-queue-bytes", "LIVEHUB_MAX_QUEUE_BYTES", "0"},
		{"unknown compression", "ws-compression", "LIVEHUB_WS_COMPRESSION", "gzip"},
		{"zero compression threshold", "ws-compression-threshold", "LIVEHUB_WS_COMPRESSION_THRESHOLD", "0"},
		{"int with unit", "max-api-body-bytes", "LIVEHUB_MAX_API_BODY_BYTES", "1MiB"},
		{"fractional int", "max-channels", "LIVEHUB_MAX_CHANNELS", "1.5"},
		{"negative burst", "command-burst", "LIVEHUB_COMMAND_BURST", "-5"},
		{"bad rate", "command-rate", "LIVEHUB_COMMAND_RATE", "fast"},
		{"zero leeway", "jwt-leeway", "LIVEHUB_JWT_LEEWAY", "0s"},
		{"JWKS URL not http", "jwt-jwks-url", "LIVEHUB_JWT_JWKS_URL", "file:///etc/jwks.json"},
		{"proxy not an address", "trusted-proxies", "LIVEHUB_TRUSTED_PROXIES", "lb.example.com"},
		{"negative connections per ip", "ws-max-conns-per-ip", "LIVEHUB_WS_MAX_CONNS_PER_IP", "-1"},
		{"limit without rate", "checkout-user-limit", "LIVEHUB_CHECKOUT_USER_LIMIT", ":5"},
		{"limit with zero burst", "checkout-ip-limit", "LIVEHUB_CHECKOUT_IP_LIMIT", "5:0"},
		{"negative limit", "checkout-ip-limit", "LIVEHUB_CHECKOUT_IP_LIMIT", "-1:5"},
		{"zero rate", "command-rate", "LIVEHUB_COMMAND_RATE", "0"},
		{"negative rate", "command-rate", "LIVEHUB_COMMAND_RATE", "-1"},
		{"negative checkouts in flight", "checkout-max-in-flight", "LIVEHUB_CHECKOUT_MAX_IN_FLIGHT", "-1"},
		{"negative checkout wait", "checkout-max-wait", "LIVEHUB_CHECKOUT_MAX_WAIT", "-1s"},
		{"checkout wait not a duration", "checkout-max-wait", "LIVEHUB_CHECKOUT_MAX_WAIT", "500"},
		{"bad bool", "allow-anonymous", "LIVEHUB_ALLOW_ANONYMOUS", "maybe"},
		{"bad dev bool", "dev", "LIVEHUB_DEV", "yes please"},
		{"bad log level", "log-level", "LIVEHUB_LOG_LEVEL", "loud"},
		{"unknown gateway", "payment-gateway", "LIVEHUB_PAYMENT_GATEWAY", "paypal"},
		{"zero payment expiry", "payment-expiry", "LIVEHUB_PAYMENT_EXPIRY", "0"},
		{"bad reservation ttl", "reservation-ttl", "LIVEHUB_RESERVATION_TTL", "a while"},
		{"negative stock interval", "stock-event-interval", "LIVEHUB_STOCK_EVENT_INTERVAL", "-1ms"},
		{"negative order ticker interval", "order-ticker-interval", "LIVEHUB_ORDER_TICKER_INTERVAL", "-1s"},
		{"zero tls reload interval", "tls-reload-interval", "LIVEHUB_TLS_RELOAD_INTERVAL", "0s"},
		{"negative gzip threshold", "http-gzip-min-bytes", "LIVEHUB_HTTP_GZIP_MIN_BYTES", "-1"},
		{"gzip threshold with unit", "http-gzip-min-bytes", "LIVEHUB_HTTP_GZIP_MIN_BYTES", "1KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(how string, err error) {
				t.Helper()
				if err == nil {
					t.Fatalf("%s %q accepted", how, tt.value)
				}
				for _, w := range []string{"-" + tt.flag, tt.env} {
					if !strings.Contains(err.Error(), w) {
						t.Fatalf("%s: error %q does not name %s", how, err, w)
					}
				}
			}
			_, err := config.Load(nil, env(map[string]string{tt.env: tt.value}), io.Discard)
			check("variable", err)
			_, err = config.Load([]string{"-" + tt.flag + "=" + tt.value}, env(nil), io.Discard)
			check("flag", err)
		})
	}
}

// Settings that only make sense together are checked together, and the
// error names every flag and variable involved.
func TestLoad_RulesAcrossSettings(t *testing.T) {
	tests := []struct {
		name string
		args []string
		vars map[string]string
		want []string // empty: accepted
	}{
		{"reservation shorter than payment", nil, map[string]string{"LIVEHUB_RESERVATION_TTL": "10m"},
			[]string{"-reservation-ttl", "LIVEHUB_RESERVATION_TTL", "-payment-expiry", "LIVEHUB_PAYMENT_EXPIRY"}},
		{"payment longer than reservation", []string{"-payment-expiry=1h"}, nil,
			[]string{"-reservation-ttl", "-payment-expiry"}},
		{"reservation equal to payment", []string{"-payment-expiry=20m", "-reservation-ttl=20m"}, nil, nil},
		{"midtrans without key", []string{"-payment-gateway=midtrans"}, nil,
			[]string{"-midtrans-server-key", "LIVEHUB_MIDTRANS_SERVER_KEY"}},
		{"midtrans with key", []string{"-payment-gateway=midtrans"}, map[string]string{"LIVEHUB_MIDTRANS_SERVER_KEY": "k"}, nil},
		{"webhook without secret", nil, map[string]string{"LIVEHUB_WEBHOOK_URL": "https://shop.example/hook"},
			[]string{"-webhook-url", "LIVEHUB_WEBHOOK_URL", "-webhook-secret", "LIVEHUB_WEBHOOK_SECRET"}},
		{"secret without webhook", []string{"-webhook-secret=s"}, nil, nil},
		{"tls certificate without key", []string{"-tls-cert=/etc/tls.crt"}, nil,
			[]string{"-tls-cert", "LIVEHUB_TLS_CERT", "-tls-key", "LIVEHUB_TLS_KEY"}},
		{"tls key without certificate", nil, map[string]string{"LIVEHUB_TLS_KEY": "/etc/tls.key"},
			[]string{"-tls-cert", "-tls-key"}},
		{"tls certificate and key", []string{"-tls-cert=/etc/tls.crt", "-tls-key=/etc/tls.key"}, nil, nil},
		{"debug on the public address", []string{"-http-addr=127.0.0.1:8080", "-debug-addr=127.0.0.1:8080"}, nil,
			[]string{"-debug-addr", "LIVEHUB_DEBUG_ADDR", "-http-addr", "LIVEHUB_HTTP_ADDR"}},
		{"debug on the public port of every interface", nil, map[string]string{"LIVEHUB_DEBUG_ADDR": "127.0.0.1:8080"},
			[]string{"-debug-addr", "-http-addr"}},
		{"debug on the public port, public on every interface", []string{"-http-addr=0.0.0.0:9000", "-debug-addr=10.0.0.5:9000"}, nil,
			[]string{"-debug-addr", "-http-addr"}},
		{"debug on loopback, public on another port", []string{"-debug-addr=127.0.0.1:6060"}, nil, nil},
		{"debug and public on the same port of two hosts", []string{"-http-addr=10.0.0.5:8080", "-debug-addr=127.0.0.1:8080"}, nil, nil},
		{"debug and public both on free ports", []string{"-http-addr=127.0.0.1:0", "-debug-addr=127.0.0.1:0"}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(tt.args, env(tt.vars), io.Discard)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not name %s", err, w)
				}
			}
		})
	}
}

// Listen addresses are checked when the settings are read, so a typo stops
// the node with a message naming the setting rather than a failed listen.
func TestLoad_ListenAddresses(t *testing.T) {
	tests := []struct {
		value string
		want  string // in the error; empty: accepted
	}{
		{"127.0.0.1:6060", ""},
		{":6060", ""},
		{"localhost:6060", ""},
		{"10.0.0.5:0", ""},
		{"[::1]:6060", ""},
		{"[fe80::1%eth0]:6060", ""},
		{"127.0.0.1", "HOST:PORT"},
		{"6060", "HOST:PORT"},
		{"http://127.0.0.1:6060", "HOST:PORT"},
		{"::1:6060", "HOST:PORT"},
		{"127.0.0.1:", "port"},
		{"127.0.0.1:pprof", "port"},
		{"127.0.0.1:65536", "port"},
		{"127.0.0.1:-1", "port"},
		{"local host:6060", "host"},
		{"127.0.0.1/8:6060", "host"},
	}
	for _, s := range []struct{ flag, env string }{{"debug-addr", "LIVEHUB_DEBUG_ADDR"}, {"http-addr", "LIVEHUB_HTTP_ADDR"}} {
		for _, tt := range tests {
			t.Run(s.flag+"="+tt.value, func(t *testing.T) {
				_, err := config.Load([]string{"-" + s.flag + "=" + tt.value}, env(nil), io.Discard)
				if tt.want == "" {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					return
				}
				if err == nil {
					t.Fatal("accepted")
				}
				for _, w := range []string{"-" + s.flag, s.env, tt.value, tt.want} {
					if !strings.Contains(err.Error(), w) {
						t.Fatalf("error %q does not mention %q", err, w)
					}
				}
			})
		}
	}
}

func TestLoad_FlagErrors(t *testing.T) {
	if _, err := config.Load([]string{"-no-such-flag=1"}, env(nil), io.Discard); err == nil {
		t.Fatal("unknown flag accepted")
	}
	_, err := config.Load([]string{"serve-me"}, env(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "serve-me") {
		t.Fatalf("positional argument: %v, want an error naming it", err)
	}
	if _, err := config.Load([]string{"-h"}, env(nil), io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v, want flag.ErrHelp", err)
	}
}

// Boolean settings work as switches on the command line: "-dev" alone, as
// the messages and docs write it.
func TestLoad_BoolFlagsWithoutValue(t *testing.T) {
	c, err := config.Load([]string{"-dev"}, env(nil), io.Discard)
	if err != nil {
		t.Fatalf("-dev: %v", err)
	}
	if !c.Dev {
		t.Fatal("-dev did not turn development mode on")
	}
	c, err = config.Load([]string{"-dev", "-http-addr", "127.0.0.1:0"}, env(nil), io.Discard)
	if err != nil {
		t.Fatalf("-dev -http-addr 127.0.0.1:0: %v", err)
	}
	if !c.Dev || c.HTTPAddr != "127.0.0.1:0" {
		t.Fatalf("-dev followed by a flag: dev=%v http-addr=%q", c.Dev, c.HTTPAddr)
	}
	c, err = config.Load([]string{"-allow-anonymous=false"}, env(nil), io.Discard)
	if err != nil || c.AllowAnonymous {
		t.Fatalf("-allow-anonymous=false: %v anonymous=%v", err, c != nil && c.AllowAnonymous)
	}
}

func TestLoad_JWTSecretList(t *testing.T) {
	tests := []struct {
		value string
		want  []string
	}{
		{"only-one", []string{"only-one"}},
		{"new-secret,old-secret", []string{"new-secret", "old-secret"}},
		{" new-secret , old-secret ", []string{"new-secret", "old-secret"}},
		{"new-secret,,", []string{"new-secret"}},
	}
	for _, tt := range tests {
		c := load(t, nil, map[string]string{"LIVEHUB_JWT_SECRET": tt.value})
		if !reflect.DeepEqual(c.JWTSecrets, tt.want) {
			t.Errorf("LIVEHUB_JWT_SECRET=%q: %q, want %q", tt.value, c.JWTSecrets, tt.want)
		}
	}
}

func TestLoad_AllowedOriginsTrimmed(t *testing.T) {
	c := load(t, nil, map[string]string{"LIVEHUB_ALLOWED_ORIGINS": " shop.example.com ,*.example.id,, \t"})
	if want := []string{"shop.example.com", "*.example.id"}; !reflect.DeepEqual(c.AllowedOrigins, want) {
		t.Fatalf("origins %q, want %q", c.AllowedOrigins, want)
	}
	c = load(t, []string{"-allowed-origins", " , "}, nil)
	if len(c.AllowedOrigins) != 0 {
		t.Fatalf("blank list gave %q", c.AllowedOrigins)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad_Namespaces(t *testing.T) {
	t.Run("read from the file", func(t *testing.T) {
		p := writeFile(t, "ns.json", `[
			{"name": "live", "anonymous": true, "presence": true, "history_size": 10, "history_ttl": "90s", "history": true},
			{"name": "order", "subscription_token": true, "publish_roles": ["courier"]}
		]`)
		c := load(t, nil, map[string]string{"LIVEHUB_NAMESPACES": p})
		want := []hub.NamespaceOptions{
			{Name: "live", Anonymous: true, Presence: true, HistorySize: 10, HistoryTTL: hub.Duration(90 * time.Second), History: true},
			{Name: "order", SubscriptionToken: true, PublishRoles: []string{"courier"}},
		}
		if c.NamespacesFile != p || !reflect.DeepEqual(c.Namespaces, want) {
			t.Fatalf("namespaces %+v from %q, want %+v", c.Namespaces, c.NamespacesFile, want)
		}
	})
	t.Run("flag over variable", func(t *testing.T) {
		a := writeFile(t, "a.json", `[{"name":"a"}]`)
		b := writeFile(t, "b.json", `[{"name":"b"}]`)
		c := load(t, []string{"-namespaces", b}, map[string]string{"LIVEHUB_NAMESPACES": a})
		if len(c.Namespaces) != 1 || c.Namespaces[0].Name != "b" {
			t.Fatalf("namespaces %+v, want those of the flag's file", c.Namespaces)
		}
	})
	t.Run("none without a file", func(t *testing.T) {
		if c := load(t, nil, nil); c.Namespaces != nil {
			t.Fatalf("namespaces %+v without a file", c.Namespaces)
		}
	})
	bad := []struct {
		name, content string
		want          []string
	}{
		{"unknown field", `[{"name":"live","histroy_size":10}]`, []string{"histroy_size"}},
		{"malformed", `[{"name":`, nil},
		{"wrong type", `[{"name":"live","history_size":"ten"}]`, []string{"history_size"}},
		{"bad duration", `[{"name":"live","history_ttl":"forever"}]`, nil},
		{"not a list", `{"name":"live"}`, nil},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, "ns.json", tt.content)
			_, err := config.Load(nil, env(map[string]string{"LIVEHUB_NAMESPACES": p}), io.Discard)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range append([]string{"-namespaces", "LIVEHUB_NAMESPACES", p}, tt.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not name %s", err, w)
				}
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "absent.json")
		_, err := config.Load([]string{"-namespaces=" + p}, env(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "LIVEHUB_NAMESPACES") || !strings.Contains(err.Error(), "absent.json") {
			t.Fatalf("missing file: %v", err)
		}
	})
}

func TestSettings_FlagAndVariableNamesAgree(t *testing.T) {
	flags, envs := map[string]bool{}, map[string]bool{}
	for _, s := range config.Settings() {
		if flags[s.Flag] || envs[s.Env] {
			t.Errorf("setting -%s (%s) listed twice", s.Flag, s.Env)
		}
		flags[s.Flag], envs[s.Env] = true, true
		if want := "LIVEHUB_" + strings.ToUpper(strings.ReplaceAll(s.Flag, "-", "_")); s.Env != want {
			t.Errorf("-%s reads %s, want %s", s.Flag, s.Env, want)
		}
		if s.Usage == "" {
			t.Errorf("-%s has no usage", s.Flag)
		}
	}
}

// The usage text printed by -h names each variable next to its flag.
func TestLoad_HelpNamesVariables(t *testing.T) {
	var out strings.Builder
	_, _ = config.Load([]string{"-h"}, env(nil), &out)
	for _, s := range config.Settings() {
		if !strings.Contains(out.String(), "-"+s.Flag) || !strings.Contains(out.String(), s.Env) {
			t.Errorf("help lacks -%s or %s", s.Flag, s.Env)
		}
	}
}

// TestDocsListEverySetting keeps docs/configuration.md in step with
// Settings: every variable is documented, and next to it its default.
func TestDocsListEverySetting(t *testing.T) {
	const path = "../../docs/configuration.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	doc := string(b)
	settings := config.Settings()
	envRe := make([]*regexp.Regexp, len(settings))
	for i, s := range settings {
		envRe[i] = regexp.MustCompile(`\b` + regexp.QuoteMeta(s.Env) + `\b`)
	}
	for i, s := range settings {
		locs := envRe[i].FindAllStringIndex(doc, -1)
		if len(locs) == 0 {
			t.Errorf("%s does not mention %s (-%s)", path, s.Env, s.Flag)
			continue
		}
		if s.Default == "" {
			continue
		}
		def := valueRe(s.Default)
		found := false
		for _, loc := range locs {
			if def.MatchString(entry(doc, loc, envRe, i)) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("%s does not give %s's default %q next to it", path, s.Env, s.Default)
		}
	}
}

// valueRe matches v as a whole value: "50" does not match inside "1500".
func valueRe(v string) *regexp.Regexp {
	expr := regexp.QuoteMeta(v)
	if isWord(v[0]) {
		expr = `(?:^|[^\w.])` + expr
	}
	if isWord(v[len(v)-1]) {
		expr += `(?:$|[^\w])`
	}
	return regexp.MustCompile(expr)
}

func isWord(b byte) bool {
	return b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

// entry is the text about the variable mentioned at loc: from the start of
// its line to the next mention of another setting's variable.
func entry(doc string, loc []int, envRe []*regexp.Regexp, self int) string {
	start := strings.LastIndexByte(doc[:loc[0]], '\n') + 1
	end := len(doc)
	for j, re := range envRe {
		if j == self {
			continue
		}
		if next := re.FindStringIndex(doc[loc[1]:]); next != nil && loc[1]+next[0] < end {
			end = loc[1] + next[0]
		}
	}
	return doc[start:end]
}
