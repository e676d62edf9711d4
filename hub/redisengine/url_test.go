package redisengine

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestParseClusterURL(t *testing.T) {
	opt, err := parseClusterURL("redis+cluster://user:secret@10.0.0.1:7000,10.0.0.2:7001, 10.0.0.3:7002?dial_timeout=2s&pool_size=7")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"10.0.0.1:7000", "10.0.0.2:7001", "10.0.0.3:7002"}; !reflect.DeepEqual(opt.Addrs, want) {
		t.Errorf("Addrs = %v, want %v", opt.Addrs, want)
	}
	if opt.Username != "user" || opt.Password != "secret" || opt.DialTimeout != 2*time.Second || opt.PoolSize != 7 {
		t.Errorf("options = %+v", opt)
	}
	tlsOpt, err := parseClusterURL("rediss+cluster://h1:7000,h2:7000")
	if err != nil {
		t.Fatal(err)
	}
	if tlsOpt.TLSConfig == nil {
		t.Error("rediss+cluster without TLS config")
	}
}

func TestParseSentinelURL(t *testing.T) {
	opt, err := parseSentinelURL("redis+sentinel://:masterpass@s1:26379,s2:26379/mymaster?db=2&sentinel_password=spass&read_timeout=4s")
	if err != nil {
		t.Fatal(err)
	}
	if opt.MasterName != "mymaster" || !reflect.DeepEqual(opt.SentinelAddrs, []string{"s1:26379", "s2:26379"}) {
		t.Errorf("master %q at %v", opt.MasterName, opt.SentinelAddrs)
	}
	if opt.Password != "masterpass" || opt.SentinelPassword != "spass" || opt.DB != 2 || opt.ReadTimeout != 4*time.Second {
		t.Errorf("options = %+v", opt)
	}
}

func TestNewClient_Schemes(t *testing.T) {
	for _, tc := range []struct {
		url     string
		cluster bool
		err     string
	}{
		{url: "redis://127.0.0.1:1"},
		{url: "rediss://127.0.0.1:1/3"},
		{url: "unix:///tmp/redis.sock?db=1"},
		{url: "redis+cluster://127.0.0.1:1,127.0.0.1:2", cluster: true},
		{url: "redis+sentinel://127.0.0.1:1/master"},
		{url: "127.0.0.1:6379", err: "no scheme"},
		{url: "http://127.0.0.1", err: "not one of"},
		{url: "redis+cluster://h:1/0", err: "no path"},
		{url: "redis+sentinel://h:1", err: "master name"},
		{url: "redis+cluster://", err: "no host"},
	} {
		client, cluster, err := newClient(tc.url, time.Second)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("newClient(%q) error = %v, want one saying %q", tc.url, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("newClient(%q): %v", tc.url, err)
			continue
		}
		if (cluster != nil) != tc.cluster {
			t.Errorf("newClient(%q): cluster client %v, want %v", tc.url, cluster != nil, tc.cluster)
		}
		_ = client.Close()
	}
}

func TestNewClient_Defaults(t *testing.T) {
	client, _, err := newClient("redis://127.0.0.1:1?read_timeout=7s", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	opt := client.(*redis.Client).Options()
	if opt.ReadTimeout != 7*time.Second {
		t.Errorf("ReadTimeout = %v: the URL should win", opt.ReadTimeout)
	}
	if opt.DialTimeout != 2*time.Second || opt.WriteTimeout != 2*time.Second || opt.PoolTimeout != 2*time.Second {
		t.Errorf("timeouts = dial %v, write %v, pool %v; want the engine's 2s", opt.DialTimeout, opt.WriteTimeout, opt.PoolTimeout)
	}
	if opt.MaxRetries != 0 || opt.DialerRetries != 1 || !opt.ContextTimeoutEnabled {
		t.Errorf("MaxRetries %d (want none), DialerRetries %d, ContextTimeoutEnabled %v", opt.MaxRetries, opt.DialerRetries, opt.ContextTimeoutEnabled)
	}
}

// The engine speaks RESP2 unless the URL asks for RESP3, in every mode.
func TestNewClient_ProtocolRESP2UnlessAsked(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want int
	}{
		{"redis://127.0.0.1:1", 2},
		{"redis://127.0.0.1:1?protocol=3", 3},
		{"redis+cluster://127.0.0.1:1,127.0.0.1:2", 2},
		{"redis+cluster://127.0.0.1:1?protocol=3", 3},
		{"redis+sentinel://127.0.0.1:1/master", 2},
		{"redis+sentinel://127.0.0.1:1/master?protocol=3", 3},
	} {
		client, _, err := newClient(tc.url, time.Second)
		if err != nil {
			t.Fatalf("newClient(%q): %v", tc.url, err)
		}
		var got int
		switch c := client.(type) {
		case *redis.Client:
			got = c.Options().Protocol
		case *redis.ClusterClient:
			got = c.Options().Protocol
		default:
			t.Fatalf("newClient(%q): %T", tc.url, client)
		}
		_ = client.Close()
		if got != tc.want {
			t.Errorf("newClient(%q): protocol %d, want %d", tc.url, got, tc.want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://user:secret@h:1/0":                           "redis://user:xxxxx@h:1/0",
		"redis+sentinel://:pw@h:1,h2:2/m?sentinel_password=x": "redis+sentinel://:xxxxx@h:1,h2:2/m",
		"unix:///tmp/s.sock":                                  "unix:///tmp/s.sock",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNew_RejectsBracesInPrefix(t *testing.T) {
	if _, err := New(Options{Prefix: "a{b"}); err == nil {
		t.Fatal("New accepted a prefix with a brace")
	}
}
