package rest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/ratelimit"
	"github.com/livehub/livehub/rest"
)

// checkoutFrom posts a checkout of one unit with an X-Forwarded-For header.
func (s *v1Server) checkoutFrom(t *testing.T, token, sale, idem, forwardedFor string) (int, problem, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("POST", s.url+"/v1/checkout", strings.NewReader(fmt.Sprintf(`{"flash_sale_id":%q,"quantity":1}`, sale)))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Idempotency-Key", idem)
	if forwardedFor != "" {
		req.Header.Set("X-Forwarded-For", forwardedFor)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var p problem
	if resp.StatusCode >= 400 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("%d with Content-Type %q: %s", resp.StatusCode, ct, b)
		}
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, p, resp.Header
}

func refusedCount(t *testing.T, g prometheus.Gatherer, scope string) float64 {
	t.Helper()
	return counterValue(t, g, "livehub_rest_rate_limited_total", "scope", scope)
}

func TestCheckout_PerUserLimit429WithRetryAfterAndNothingReserved(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newV1Server(t, time.Minute, func(o *rest.Options) {
		o.Registerer = reg
		o.V1.CheckoutLimits = rest.CheckoutLimits{
			Limiter: ratelimit.NewMemory(), PerUser: ratelimit.Limit{Rate: 0.001, Burst: 2},
		}
	})
	host := v1Token(t, "host1", auth.RoleHost)
	sale := s.sale(t, host, s.stream(t, host), 100, 100, 0)
	buyer := v1Token(t, "bot")
	for i := range 2 {
		if code, p, _ := s.checkoutFrom(t, buyer, sale, fmt.Sprint("k", i), ""); code != http.StatusCreated {
			t.Fatalf("checkout %d within the burst: %d %+v", i+1, code, p)
		}
	}
	code, p, h := s.checkoutFrom(t, buyer, sale, "k2", "")
	if code != http.StatusTooManyRequests || p.Code != "rate_limited" {
		t.Fatalf("checkout past the burst: %d %+v, want 429 rate_limited", code, p)
	}
	if ra, err := strconv.Atoi(h.Get("Retry-After")); err != nil || ra < 1 || ra > 1000 {
		t.Fatalf("Retry-After %q, want whole seconds within the 1000 s interval", h.Get("Retry-After"))
	}
	if got := refusedCount(t, reg, "user"); got != 1 {
		t.Fatalf("livehub_rest_rate_limited_total{scope=user} = %v, want 1", got)
	}
	var fs idOnly
	if code, b, _ := s.call(t, "GET", "/v1/flash-sales/"+sale, buyer, "", ""); code != http.StatusOK || json.Unmarshal(b, &fs) != nil {
		t.Fatalf("GET sale: %d %s", code, b)
	}
	if fs.StockLeft != 98 {
		t.Fatalf("stock left %d after 2 checkouts and 1 refused, want 98", fs.StockLeft)
	}
	if code, p, _ := s.checkoutFrom(t, v1Token(t, "human"), sale, "h1", ""); code != http.StatusCreated {
		t.Fatalf("another buyer refused by the first buyer's limit: %d %+v", code, p)
	}
}

func TestCheckout_PerIPLimitTrustsForwardedForOnlyFromTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		name    string
		proxies []string
		// wantCreated is how many of 4 checkouts from 4 buyers, each claiming
		// its own X-Forwarded-For address, pass a per-IP burst of 2.
		wantCreated int
	}{
		{"untrusted peer: the header is ignored, one address", nil, 2},
		{"trusted load balancer: four addresses", []string{"127.0.0.1"}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			s := newV1Server(t, time.Minute, func(o *rest.Options) {
				o.TrustedProxies = tc.proxies
				o.Registerer = reg
				o.V1.CheckoutLimits = rest.CheckoutLimits{
					Limiter: ratelimit.NewMemory(), PerIP: ratelimit.Limit{Rate: 0.001, Burst: 2},
				}
			})
			host := v1Token(t, "host1", auth.RoleHost)
			sale := s.sale(t, host, s.stream(t, host), 100, 100, 0)
			created := 0
			for i := range 4 {
				code, p, _ := s.checkoutFrom(t, v1Token(t, fmt.Sprint("buyer", i)), sale, "k", fmt.Sprintf("203.0.113.%d", i+1))
				switch code {
				case http.StatusCreated:
					created++
				case http.StatusTooManyRequests:
				default:
					t.Fatalf("checkout %d: %d %+v", i, code, p)
				}
			}
			if created != tc.wantCreated {
				t.Fatalf("%d checkouts created, want %d", created, tc.wantCreated)
			}
			if got := refusedCount(t, reg, "ip"); got != float64(4-tc.wantCreated) {
				t.Fatalf("refusals counted for scope ip: %v, want %d", got, 4-tc.wantCreated)
			}
		})
	}
}

func TestCheckout_LimiterDownLetsCheckoutsThrough(t *testing.T) {
	// A Redis that is not there: the guard fails open and the checkout decides.
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = dead.Close() })
	s := newV1Server(t, time.Minute, func(o *rest.Options) {
		o.V1.CheckoutLimits = rest.CheckoutLimits{
			Limiter: ratelimit.NewRedis(dead, "t:"), PerUser: ratelimit.Limit{Rate: 0.001, Burst: 1},
		}
	})
	host := v1Token(t, "host1", auth.RoleHost)
	sale := s.sale(t, host, s.stream(t, host), 10, 10, 0)
	for i := range 3 {
		if code, p, _ := s.checkoutFrom(t, v1Token(t, "buyer"), sale, fmt.Sprint("k", i), ""); code != http.StatusCreated {
			t.Fatalf("checkout %d with the limiter down: %d %+v", i, code, p)
		}
	}
}
