package redisengine

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// defaultURL is where the engine looks for Redis when Options.URL is empty.
const defaultURL = "redis://127.0.0.1:6379"

// newClient builds the go-redis client for a URL in one of the schemes listed
// on Options.URL. cluster is non-nil for Redis Cluster.
func newClient(rawURL string, timeout time.Duration) (client redis.UniversalClient, cluster *redis.ClusterClient, err error) {
	scheme, _, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, nil, fmt.Errorf("redis URL %q has no scheme", redactURL(rawURL))
	}
	switch scheme {
	case "redis", "rediss", "unix":
		opt, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, nil, err
		}
		applyClientDefaults(opt, timeout)
		return redis.NewClient(opt), nil, nil
	case "redis+cluster", "rediss+cluster":
		opt, err := parseClusterURL(rawURL)
		if err != nil {
			return nil, nil, err
		}
		clientDefaults{&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.PoolTimeout,
			&opt.Protocol, &opt.ContextTimeoutEnabled, &opt.MaxRetries, &opt.DialerRetries}.apply(timeout)
		c := redis.NewClusterClient(opt)
		return c, c, nil
	case "redis+sentinel", "rediss+sentinel":
		opt, err := parseSentinelURL(rawURL)
		if err != nil {
			return nil, nil, err
		}
		clientDefaults{&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.PoolTimeout,
			&opt.Protocol, &opt.ContextTimeoutEnabled, &opt.MaxRetries, &opt.DialerRetries}.apply(timeout)
		return redis.NewFailoverClient(opt), nil, nil
	default:
		return nil, nil, fmt.Errorf("redis URL scheme %q is not one of redis, rediss, unix, redis+cluster, rediss+cluster, redis+sentinel, rediss+sentinel", scheme)
	}
}

// applyClientDefaults sets what the URL left unset. Commands are not retried
// (MaxRetries -1): a publish whose reply was lost may have been applied, and
// sending it again would publish it twice; the caller gets ErrUnavailable and
// the client retries instead. Connections are health-checked when taken from
// the pool, so a restarted Redis does not fail commands on stale connections.
// A failed dial is not retried either (go-redis tries 5 times by default),
// so calls fail fast while Redis is down.
//
// The protocol is RESP2 unless the URL asks for protocol=3: the engine uses
// nothing RESP3 adds, and a RESP3 client looks for push notifications
// around every command it sends, work the engine has no use for.
func applyClientDefaults(opt *redis.Options, timeout time.Duration) {
	clientDefaults{&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.PoolTimeout,
		&opt.Protocol, &opt.ContextTimeoutEnabled, &opt.MaxRetries, &opt.DialerRetries}.apply(timeout)
}

// clientDefaults points at the fields the engine sets alike in the options
// of every kind of client (single, Cluster, Sentinel).
type clientDefaults struct {
	dial, read, write, pool *time.Duration
	protocol                *int
	contextTimeout          *bool
	maxRetries, dialRetries *int
}

func (d clientDefaults) apply(timeout time.Duration) {
	setDurations(timeout, d.dial, d.read, d.write, d.pool)
	*d.protocol = resp(*d.protocol)
	*d.contextTimeout = true
	if *d.maxRetries == 0 {
		*d.maxRetries = -1
	}
	if *d.dialRetries == 0 {
		*d.dialRetries = 1
	}
}

// resp returns the protocol version to speak: the URL's protocol=, else 2.
func resp(fromURL int) int {
	if fromURL == 0 {
		return 2
	}
	return fromURL
}

func setDurations(d time.Duration, fields ...*time.Duration) {
	for _, f := range fields {
		if *f == 0 {
			*f = d
		}
	}
}

// multiHostURL is a URL with a comma-separated host list, which net/url does
// not parse.
type multiHostURL struct {
	scheme   string // without the +cluster or +sentinel suffix
	userinfo string // "user:pass@" or ""
	addrs    []string
	path     string // without the leading slash
	query    url.Values
}

func parseMultiHost(rawURL string) (multiHostURL, error) {
	var u multiHostURL
	scheme, rest, _ := strings.Cut(rawURL, "://")
	u.scheme, _, _ = strings.Cut(scheme, "+")
	rest, rawQuery, _ := strings.Cut(rest, "?")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return u, fmt.Errorf("redis URL query: %w", err)
	}
	u.query = q
	hosts, path, _ := strings.Cut(rest, "/")
	u.path = path
	if i := strings.LastIndexByte(hosts, '@'); i >= 0 {
		u.userinfo, hosts = hosts[:i+1], hosts[i+1:]
	}
	for _, h := range strings.Split(hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			u.addrs = append(u.addrs, h)
		}
	}
	if len(u.addrs) == 0 {
		return u, errors.New("redis URL has no host")
	}
	return u, nil
}

// parseClusterURL turns redis+cluster://[user:pass@]h1:p1,h2:p2[?opts] into
// go-redis's cluster URL form: the first host, the others as addr parameters.
func parseClusterURL(rawURL string) (*redis.ClusterOptions, error) {
	u, err := parseMultiHost(rawURL)
	if err != nil {
		return nil, err
	}
	if u.path != "" {
		return nil, errors.New("redis cluster URL takes no path (cluster has no databases)")
	}
	for _, a := range u.addrs[1:] {
		u.query.Add("addr", a)
	}
	return redis.ParseClusterURL(u.scheme + "://" + u.userinfo + u.addrs[0] + "?" + u.query.Encode())
}

// parseSentinelURL reads
// redis+sentinel://[user:pass@]h1:p1,h2:p2/mastername[?db=N&sentinel_username=..&sentinel_password=..&opts].
// The user and password are the master's; the remaining options are those of
// a redis:// URL.
func parseSentinelURL(rawURL string) (*redis.FailoverOptions, error) {
	u, err := parseMultiHost(rawURL)
	if err != nil {
		return nil, err
	}
	if u.path == "" || strings.Contains(u.path, "/") {
		return nil, errors.New("redis sentinel URL needs the master name as its only path element")
	}
	sentinelUser, sentinelPass := u.query.Get("sentinel_username"), u.query.Get("sentinel_password")
	u.query.Del("sentinel_username")
	u.query.Del("sentinel_password")
	db := u.query.Get("db")
	u.query.Del("db")
	// Reuse the single-server parser for the common options.
	common := u.scheme + "://" + u.userinfo + u.addrs[0] + "/" + db + "?" + u.query.Encode()
	if db == "" {
		common = u.scheme + "://" + u.userinfo + u.addrs[0] + "?" + u.query.Encode()
	}
	o, err := redis.ParseURL(common)
	if err != nil {
		return nil, err
	}
	return &redis.FailoverOptions{
		MasterName:       u.path,
		SentinelAddrs:    u.addrs,
		SentinelUsername: sentinelUser,
		SentinelPassword: sentinelPass,
		Username:         o.Username,
		Password:         o.Password,
		DB:               o.DB,
		Protocol:         o.Protocol,
		ClientName:       o.ClientName,
		MaxRetries:       o.MaxRetries,
		MinRetryBackoff:  o.MinRetryBackoff,
		MaxRetryBackoff:  o.MaxRetryBackoff,
		DialTimeout:      o.DialTimeout,
		ReadTimeout:      o.ReadTimeout,
		WriteTimeout:     o.WriteTimeout,
		PoolFIFO:         o.PoolFIFO,
		PoolSize:         o.PoolSize,
		PoolTimeout:      o.PoolTimeout,
		MinIdleConns:     o.MinIdleConns,
		MaxIdleConns:     o.MaxIdleConns,
		MaxActiveConns:   o.MaxActiveConns,
		ConnMaxIdleTime:  o.ConnMaxIdleTime,
		ConnMaxLifetime:  o.ConnMaxLifetime,
		TLSConfig:        o.TLSConfig,
	}, nil
}

// redactURL hides the password, and the query that may hold the sentinel's,
// before a URL goes into an error or a log.
func redactURL(rawURL string) string {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return "(unparsable URL)"
	}
	rest, _, _ = strings.Cut(rest, "?")
	hosts, tail, hasTail := strings.Cut(rest, "/")
	if i := strings.LastIndexByte(hosts, '@'); i >= 0 {
		user, _, _ := strings.Cut(hosts[:i], ":")
		hosts = user + ":xxxxx" + hosts[i:]
	}
	if hasTail {
		return scheme + "://" + hosts + "/" + tail
	}
	return scheme + "://" + hosts
}
