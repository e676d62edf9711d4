package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Modes of a run.
const (
	modeRoom      = "room"
	modeRooms     = "rooms"
	modeReconnect = "reconnect"
	modeCheckout  = "checkout"
	modeSoak      = "soak"
	modeSuite     = "suite"
	modeBytes     = "bytes"
)

// Config is one run of the tool. A zero field means what its comment says,
// or nothing (no payload padding, no workers); the flags give the defaults
// of the command line.
type Config struct {
	// URL is the WebSocket endpoint of the server.
	URL string
	// API is the HTTP base of the server API (/api/publish) and of /v1.
	API    string
	APIKey string
	// Secret mints a token per client (and the host and buyer tokens of
	// checkout); without it clients use Token, or connect anonymously.
	Secret string
	Token  string

	Mode    string
	Clients int
	// Rooms is the number of channels of rooms mode.
	Rooms int
	// Rate is publications per second; zero publishes as fast as it can.
	Rate float64
	// Count is the number of publications; zero means Rate × Duration.
	Count    int
	Payload  int
	Duration time.Duration
	// Sources are the local addresses dials are spread over; a loopback
	// address gives about 28,000 ports towards one server address, so a
	// run of more clients needs more sources.
	Sources []string
	// Workers spreads the clients over this many child processes; zero
	// keeps them in this process.
	Workers int
	// ServerPID, when set, is the server process whose RSS and CPU time
	// the report shows.
	ServerPID int
	JSON      bool
	// Timeout bounds the whole run; zero means the publishing time plus
	// five minutes.
	Timeout time.Duration
	// Drain is how long to wait for deliveries after the last publication.
	// Zero means 10s.
	Drain time.Duration
	// DialConcurrency bounds dials in flight. Zero means 128.
	DialConcurrency int
	// PublishConcurrency bounds server API calls in flight. Zero means 16.
	PublishConcurrency int

	// Units, PerUserLimit, Buyers, Quantity and Attempts shape checkout mode:
	// a sale of Units with PerUserLimit; Buyers each send Attempts checkouts
	// of Quantity units at once.
	Units        int
	PerUserLimit int
	Buyers       int
	Quantity     int
	Attempts     int
	// BuyerConns bounds the HTTP connections of the buyers. Zero means 512.
	BuyerConns int
	// SustainRate, when positive, replaces checkout mode's burst: a new
	// buyer's checkout starts every 1/SustainRate s for Duration, whether
	// the earlier ones finished or not (at most BuyerConns in flight), on
	// a sale with a unit for each.
	SustainRate float64

	// Soak mode: -clients watchers, Chatters publishing ChatRate chat
	// messages a second in all, Churn clients coming and going,
	// CheckoutRate checkouts a second, Couriers deliveries; a row every
	// Interval; the tool's own redis-server restarted every RedisRestart.
	Interval     time.Duration
	Chatters     int
	ChatRate     float64
	Churn        int
	CheckoutRate float64
	Couriers     int
	RedisRestart time.Duration

	// SpawnServer is a livehub binary the tool starts on a free loopback
	// port (with its own secrets) and runs against; SpawnRedis gives it a
	// private redis-server (RedisBin) on a unix socket.
	SpawnServer string
	SpawnRedis  bool
	RedisBin    string
	// ServerEnv are more LIVEHUB_* settings (NAME=value) of the servers
	// the tool starts, after its own (limits off).
	ServerEnv []string
	// Write is a markdown file whose generated section the run replaces.
	Write string
	// Events is the number of room events bytes mode replays.
	Events int
	// Variants selects the encodings bytes mode replays (comma-separated
	// keys); empty replays the standard six.
	Variants string
	// Quick makes suite mode smaller, for tests.
	Quick bool

	// Nodes is how many livehub nodes -spawn-server starts, all on the one
	// redis-server of -spawn-redis. URLs are the WebSocket URLs of several
	// nodes (set by -urls, or by spawn for its nodes): client g connects to
	// URLs[g % len(URLs)], and publications go through API alone, so they
	// reach the other nodes' clients only through the engine. ServerPIDs
	// are the nodes' processes, the first being ServerPID.
	Nodes      int
	URLs       []string
	ServerPIDs []int

	// workerCommand starts a worker; nil means this executable with -worker.
	workerCommand []string
	// redis is the redis-server the tool started, if any; engine names the
	// server's engine when the tool started it.
	redis  *redisProc
	engine string
	// args is the command line, for reports.
	args []string
	// notes say what normalize changed to fit the machine.
	notes []string
}

// parseFlags reads the command line. worker reports a -worker invocation.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (cfg Config, worker bool, err error) {
	fs := flag.NewFlagSet("livehub-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.URL, "url", "ws://127.0.0.1:8080/connection/websocket", "WebSocket URL of the server")
	fs.StringVar(&cfg.API, "api", "http://127.0.0.1:8080", "HTTP base URL of the server API and /v1")
	// Secrets default to the server's variables after parsing, so that -h
	// never prints them.
	fs.StringVar(&cfg.APIKey, "api-key", "", "server API key (default $LIVEHUB_API_KEY)")
	fs.StringVar(&cfg.Secret, "secret", "", "HS256 secret to mint tokens (default the first of $LIVEHUB_JWT_SECRET)")
	fs.StringVar(&cfg.Token, "token", "", "connection token shared by every client, when no -secret")
	fs.StringVar(&cfg.Mode, "mode", modeRoom, "room, rooms, reconnect, checkout, soak, bytes or suite")
	fs.IntVar(&cfg.Clients, "clients", 100, "clients (viewers in checkout mode)")
	fs.IntVar(&cfg.Rooms, "rooms", 10, "channels of rooms mode")
	fs.Float64Var(&cfg.Rate, "rate", 10, "publications per second (0: as fast as possible)")
	fs.IntVar(&cfg.Count, "count", 0, "publications (0: rate × duration)")
	fs.IntVar(&cfg.Payload, "payload", 128, "bytes of each publication's data")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "publishing time when -count is 0")
	sources := fs.String("sources", "127.0.0.1", "comma-separated local addresses to spread dials over")
	fs.IntVar(&cfg.Workers, "workers", 0, "child processes to spread clients over (0: in this process)")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "server process to read RSS and CPU time of (Linux /proc)")
	fs.BoolVar(&cfg.JSON, "json", false, "print the report as JSON")
	fs.DurationVar(&cfg.Timeout, "timeout", 0, "limit of the whole run (0: publishing time + 5m)")
	fs.DurationVar(&cfg.Drain, "drain", 10*time.Second, "wait for deliveries after the last publication")
	fs.IntVar(&cfg.DialConcurrency, "dial-concurrency", 128, "dials in flight")
	fs.IntVar(&cfg.PublishConcurrency, "publish-concurrency", 16, "server API calls in flight")
	fs.IntVar(&cfg.Units, "units", 100, "checkout: units on sale")
	fs.IntVar(&cfg.PerUserLimit, "per-user-limit", 1, "checkout: units one buyer may buy")
	fs.IntVar(&cfg.Buyers, "buyers", 1000, "checkout: concurrent buyers")
	fs.IntVar(&cfg.Quantity, "quantity", 1, "checkout: units per checkout")
	fs.IntVar(&cfg.Attempts, "attempts", 1, "checkout: checkouts per buyer, each with its own Idempotency-Key")
	fs.IntVar(&cfg.BuyerConns, "buyer-conns", 512, "checkout: HTTP connections of the buyers")
	fs.Float64Var(&cfg.SustainRate, "sustain-rate", 0, "checkout: instead of the burst, start this many checkouts a second for -duration, open loop (at most -buyer-conns in flight), each by a new buyer, on a sale with enough units (0: the burst)")
	fs.DurationVar(&cfg.Interval, "interval", 10*time.Second, "soak: time between two report rows")
	fs.IntVar(&cfg.Chatters, "chatters", 5, "soak: connections publishing numbered chat messages")
	fs.Float64Var(&cfg.ChatRate, "chat-rate", 10, "soak: chat messages per second in all")
	fs.IntVar(&cfg.Churn, "churn", 50, "soak: clients that connect, send likes and leave, over and over")
	fs.Float64Var(&cfg.CheckoutRate, "checkout-rate", 2, "soak: checkouts per second (every second one paid)")
	fs.IntVar(&cfg.Couriers, "couriers", 2, "soak: couriers publishing locations of a paid order")
	fs.DurationVar(&cfg.RedisRestart, "redis-restart", 0, "soak: restart the tool's own redis-server this often (needs -spawn-redis; 0: never)")
	fs.StringVar(&cfg.SpawnServer, "spawn-server", "", "start this livehub binary on a free loopback port and run against it")
	fs.BoolVar(&cfg.SpawnRedis, "spawn-redis", false, "give the started livehub a private redis-server on a unix socket")
	fs.StringVar(&cfg.RedisBin, "redis-server", "redis-server", "redis-server binary for -spawn-redis")
	fs.StringVar(&cfg.Write, "write", "", "soak, suite, bytes: replace the generated section of this markdown file")
	fs.IntVar(&cfg.Events, "events", 2000, "bytes: room events to replay")
	fs.StringVar(&cfg.Variants, "variants", "", "bytes: encodings to replay, comma-separated (json, json+deflate, json+deflate-takeover, protobuf, protobuf+deflate, json+delta, protobuf+delta); empty: all but json+deflate-takeover")
	fs.BoolVar(&cfg.Quick, "quick", false, "suite: a small set (for tests)")
	fs.IntVar(&cfg.Nodes, "nodes", 1, "livehub nodes -spawn-server starts on the redis-server of -spawn-redis; clients are spread over them, publications go through the first")
	serverEnv := fs.String("server-env", "", "comma-separated LIVEHUB_NAME=value settings of the livehub -spawn-server starts")
	urls := fs.String("urls", "", "comma-separated WebSocket URLs of several nodes to spread the clients over (publications go through -api)")
	fs.BoolVar(&worker, "worker", false, "run as a worker of a parent livehub-bench (commands on stdin, JSON on stdout)")
	// "livehub-bench soak -duration 10m" is "-mode soak -duration 10m".
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		args = append([]string{"-mode", args[0]}, args[1:]...)
	}
	if err := fs.Parse(args); err != nil {
		return cfg, false, err
	}
	if fs.NArg() > 0 {
		return cfg, false, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg.Sources = splitList(*sources)
	cfg.URLs = splitList(*urls)
	cfg.ServerEnv = splitList(*serverEnv)
	for _, kv := range cfg.ServerEnv {
		if name, _, ok := strings.Cut(kv, "="); !ok || !strings.HasPrefix(name, "LIVEHUB_") {
			return cfg, false, fmt.Errorf("-server-env %q: want LIVEHUB_NAME=value", kv)
		}
	}
	if len(cfg.ServerEnv) > 0 && cfg.SpawnServer == "" {
		return cfg, false, errors.New("-server-env sets the servers the tool starts: give -spawn-server")
	}
	cfg.args = args
	if cfg.APIKey == "" {
		cfg.APIKey = getenv("LIVEHUB_API_KEY")
	}
	if cfg.Secret == "" {
		cfg.Secret, _, _ = strings.Cut(getenv("LIVEHUB_JWT_SECRET"), ",")
	}
	return cfg, worker, nil
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

// normalize fills defaults and checks the configuration.
func (c *Config) normalize() error {
	if c.Mode == "" {
		c.Mode = modeRoom
	}
	if c.Clients < 0 || c.Rooms < 0 || c.Count < 0 || c.Payload < 0 || c.Workers < 0 || c.Rate < 0 {
		return errors.New("-clients, -rooms, -count, -payload, -workers and -rate must not be negative")
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Drain <= 0 {
		c.Drain = 10 * time.Second
	}
	if c.DialConcurrency <= 0 {
		c.DialConcurrency = 128
	}
	if c.PublishConcurrency <= 0 {
		c.PublishConcurrency = 16
	}
	if len(c.Sources) == 0 {
		c.Sources = []string{"127.0.0.1"}
	}
	for _, s := range c.Sources {
		if net.ParseIP(s) == nil {
			return fmt.Errorf("-sources: %q is not an IP address", s)
		}
	}
	switch c.Mode {
	case modeRoom:
		c.Rooms = 1
	case modeRooms:
		if c.Rooms <= 0 {
			return errors.New("-rooms must be positive in rooms mode")
		}
	case modeReconnect:
		c.Rooms = 1
	case modeCheckout:
		if c.Secret == "" {
			return errors.New("checkout mode mints host and buyer tokens: give -secret")
		}
		if c.Units <= 0 || c.Buyers <= 0 {
			return errors.New("-units and -buyers must be positive in checkout mode")
		}
		if c.PerUserLimit <= 0 {
			c.PerUserLimit = 1
		}
		if c.Quantity <= 0 {
			c.Quantity = 1
		}
		if c.Attempts <= 0 {
			c.Attempts = 1
		}
		if c.BuyerConns <= 0 {
			c.BuyerConns = 512
		}
	default:
		return fmt.Errorf("-mode %q: want room, rooms, reconnect or checkout", c.Mode)
	}
	if c.Mode != modeCheckout {
		if c.Clients == 0 {
			return errors.New("-clients must be positive")
		}
		if c.APIKey == "" {
			return errors.New("publishing goes through the server API: give -api-key")
		}
		if c.Count == 0 {
			if c.Rate == 0 {
				return errors.New("give -count when -rate is 0")
			}
			c.Count = max(1, int(c.Rate*c.Duration.Seconds()))
		}
		// Each client keeps a bit per publication of its channel.
		if bitsTotal := float64(c.Clients) * float64(c.Count/c.Rooms+1); bitsTotal/8 > 512<<20 {
			return fmt.Errorf("-clients × -count / -rooms needs %.0f MiB of sequence bitmaps; the limit is 512 MiB", bitsTotal/8/(1<<20))
		}
	}
	if c.Nodes > 1 && c.SpawnServer == "" {
		return errors.New("-nodes starts nodes: give -spawn-server (and -spawn-redis), or -urls for nodes started elsewhere")
	}
	if err := c.fitScale(); err != nil {
		return err
	}
	if c.Workers > c.Clients && c.Clients > 0 {
		c.Workers = c.Clients
	}
	if c.Timeout <= 0 {
		c.Timeout = c.publishTime() + 5*time.Minute
	}
	return nil
}

// publishTime is how long publishing should take at the rate.
func (c *Config) publishTime() time.Duration {
	if c.Rate <= 0 || c.Mode == modeCheckout {
		return 0
	}
	return time.Duration(float64(c.Count) / c.Rate * float64(time.Second))
}

// channels returns the channels of the run's clients.
func (c *Config) channels() []string {
	if c.Mode == modeRooms {
		out := make([]string, c.Rooms)
		for i := range out {
			out[i] = fmt.Sprintf("live:bench-%d", i)
		}
		return out
	}
	return []string{"live:bench"}
}
