package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/campaign"
	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/memstore"
	"github.com/livehub/livehub/push"
	"github.com/livehub/livehub/rest"
)

// The cast of the campaign tests: stream live1 is hosted by star, ended1 is
// over; fan follows; rival hosts other streams; boss is an admin.
const (
	cmpLive  = "live1"
	cmpEnded = "ended1"
	cmpHost  = "star"
	cmpFan   = "fan"
	cmpRival = "rival"
	cmpAdmin = "boss"
)

type cmpServer struct {
	url   string
	node  *hub.Node
	queue *push.MemoryQueue
	svc   *campaign.Service
}

func newCmpServer(t *testing.T, window time.Duration) *cmpServer {
	t.Helper()
	v, err := auth.NewVerifier(auth.VerifierConfig{Secrets: [][]byte{testSecret}})
	if err != nil {
		t.Fatal(err)
	}
	streams := memstore.New(memstore.Options{})
	now := time.Now()
	for _, st := range []commerce.Stream{
		{ID: cmpLive, HostID: cmpHost, Title: "Live", State: commerce.StreamLive, CreatedAt: now},
		{ID: cmpEnded, HostID: cmpHost, Title: "Over", State: commerce.StreamEnded, CreatedAt: now, EndedAt: &now},
	} {
		if err := streams.CreateStream(context.Background(), st); err != nil {
			t.Fatal(err)
		}
	}
	node := newNode(t, prometheus.NewRegistry())
	queue := push.NewMemoryQueue(push.MemoryQueueOptions{})
	svc, err := campaign.New(campaign.Config{
		Streams: streams, Follows: campaign.NewMemoryFollows(), Store: campaign.NewMemoryStore(),
		Queue: queue, Hub: node, Window: window, BatchSize: 50, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	rest.MountCampaigns(r, rest.CampaignOptions{Campaigns: svc, Tokens: v, Logger: quietLogger()})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &cmpServer{url: srv.URL, node: node, queue: queue, svc: svc}
}

func cmpToken(t *testing.T, user string) string {
	switch user {
	case "":
		return ""
	case cmpHost, cmpRival:
		return token(t, user, auth.RoleHost)
	case cmpAdmin:
		return token(t, user, auth.RoleAdmin)
	}
	return token(t, user, auth.RoleCustomer)
}

// do sends a request as user (no token when empty) and returns the status,
// the decoded JSON body and the headers.
func (s *cmpServer) do(t *testing.T, user, method, path, body string) (int, map[string]any, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctxT(t), method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if tok := cmpToken(t, user); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: body is not a JSON object: %s", method, path, raw)
		}
	}
	if res.StatusCode >= 400 && res.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%s %s: error %d is %q, not problem JSON", method, path, res.StatusCode, res.Header.Get("Content-Type"))
	}
	return res.StatusCode, out, res.Header
}

func (s *cmpServer) must(t *testing.T, want int, user, method, path, body string) map[string]any {
	t.Helper()
	status, out, _ := s.do(t, user, method, path, body)
	if status != want {
		t.Fatalf("%s %s as %q: %d, want %d: %v", method, path, user, status, want, out)
	}
	return out
}

func (s *cmpServer) followers(t *testing.T, host string) float64 {
	t.Helper()
	return s.must(t, http.StatusOK, cmpFan, "GET", "/v1/hosts/"+host+"/followers/count", "")["followers"].(float64)
}

func TestCampaignAPI_FollowAndUnfollowAreIdempotent(t *testing.T) {
	s := newCmpServer(t, time.Minute)
	if n := s.followers(t, cmpHost); n != 0 {
		t.Fatalf("followers before = %v", n)
	}
	for range 2 {
		s.must(t, http.StatusNoContent, cmpFan, "POST", "/v1/hosts/"+cmpHost+"/follow", "")
	}
	s.must(t, http.StatusNoContent, cmpRival, "POST", "/v1/hosts/"+cmpHost+"/follow", "")
	if n := s.followers(t, cmpHost); n != 2 {
		t.Fatalf("followers after following twice = %v, want 2", n)
	}
	if out := s.must(t, http.StatusOK, cmpFan, "GET", "/v1/hosts/"+cmpHost+"/follow", ""); out["following"] != true {
		t.Fatalf("following = %v", out)
	}
	for range 2 {
		s.must(t, http.StatusNoContent, cmpFan, "DELETE", "/v1/hosts/"+cmpHost+"/follow", "")
	}
	if n := s.followers(t, cmpHost); n != 1 {
		t.Fatalf("followers after unfollowing twice = %v, want 1", n)
	}
	if out := s.must(t, http.StatusOK, cmpFan, "GET", "/v1/hosts/"+cmpHost+"/follow", ""); out["following"] != false {
		t.Fatalf("following = %v", out)
	}
	// Unfollowing a host one never followed is fine too.
	s.must(t, http.StatusNoContent, cmpFan, "DELETE", "/v1/hosts/nobody/follow", "")
}

func TestCampaignAPI_FollowRefusals(t *testing.T) {
	s := newCmpServer(t, time.Minute)
	if status, out, _ := s.do(t, "", "POST", "/v1/hosts/"+cmpHost+"/follow", ""); status != http.StatusUnauthorized || out["code"] != "unauthorized" {
		t.Fatalf("without a token: %d %v", status, out)
	}
	out := s.must(t, http.StatusBadRequest, cmpHost, "POST", "/v1/hosts/"+cmpHost+"/follow", "")
	if out["field"] != "host_id" || out["code"] != "invalid" {
		t.Fatalf("self follow: %v", out)
	}
	long := strings.Repeat("h", 200)
	if out := s.must(t, http.StatusBadRequest, cmpFan, "POST", "/v1/hosts/"+long+"/follow", ""); out["field"] != "host_id" {
		t.Fatalf("long host id: %v", out)
	}
}

func TestCampaignAPI_NotifyFollowersQueuesAndReportsProgress(t *testing.T) {
	s := newCmpServer(t, time.Minute)
	const fans = 120
	for i := range fans {
		s.must(t, http.StatusNoContent, fmt.Sprintf("fan-%03d", i), "POST", "/v1/hosts/"+cmpHost+"/follow", "")
	}
	status, out, hdr := s.do(t, cmpHost, "POST", "/v1/streams/"+cmpLive+"/notify-followers", `{"title":"Live now","body":"Sneaker drop at 8"}`)
	if status != http.StatusAccepted {
		t.Fatalf("notify: %d %v", status, out)
	}
	id, _ := out["id"].(string)
	if id == "" || out["stream_id"] != cmpLive || out["host_id"] != cmpHost || out["total"] != float64(fans) || out["state"] != "running" {
		t.Fatalf("campaign = %v", out)
	}
	if hdr.Get("Location") != "/v1/campaigns/"+id {
		t.Fatalf("Location = %q", hdr.Get("Location"))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out = s.must(t, http.StatusOK, cmpHost, "GET", "/v1/campaigns/"+id, "")
		if out["state"] == "done" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("campaign never done: %v", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out["queued"] != float64(fans) || out["total"] != float64(fans) {
		t.Fatalf("done campaign = %v", out)
	}
	s.must(t, http.StatusOK, cmpAdmin, "GET", "/v1/campaigns/"+id, "")
	s.must(t, http.StatusForbidden, cmpRival, "GET", "/v1/campaigns/"+id, "")
	s.must(t, http.StatusNotFound, cmpHost, "GET", "/v1/campaigns/cmp_nope", "")

	ds, err := s.queue.Read(ctxT(t), "test", 1000, 0)
	if err != nil || len(ds) != fans {
		t.Fatalf("queue holds %d jobs, %v; want %d", len(ds), err, fans)
	}
	n := ds[0].Job.Notification
	if n.Title != "Live now" || n.Body != "Sneaker drop at 8" || n.Data["type"] != "stream.promo" || n.CollapseID != "stream:"+cmpLive {
		t.Fatalf("notification = %+v", n)
	}

	pubs, _, err := s.node.History(ctxT(t), "studio:"+cmpLive, -1, nil, false)
	if err != nil || len(pubs) == 0 {
		t.Fatalf("studio history: %d, %v", len(pubs), err)
	}
	var ev commerce.Event
	if err := json.Unmarshal(pubs[len(pubs)-1].Data, &ev); err != nil {
		t.Fatal(err)
	}
	var p campaign.Progress
	if err := json.Unmarshal(ev.Data, &p); err != nil || ev.Type != "campaign.progress" {
		t.Fatalf("last studio event %s: %s", ev.Type, ev.Data)
	}
	if p != (campaign.Progress{CampaignID: id, Queued: fans, Total: fans, State: campaign.StateDone}) {
		t.Fatalf("last progress = %+v", p)
	}
}

func TestCampaignAPI_NotifyRefusals(t *testing.T) {
	s := newCmpServer(t, 90*time.Second)
	path := "/v1/streams/" + cmpLive + "/notify-followers"
	const msg = `{"body":"Live now"}`
	cases := []struct {
		name   string
		user   string
		path   string
		body   string
		status int
		code   string
		field  string
	}{
		{"not the host", cmpRival, path, msg, http.StatusForbidden, "forbidden", ""},
		{"a viewer", cmpFan, path, msg, http.StatusForbidden, "forbidden", ""},
		{"ended stream", cmpHost, "/v1/streams/" + cmpEnded + "/notify-followers", msg, http.StatusConflict, "conflict", ""},
		{"unknown stream", cmpHost, "/v1/streams/nope/notify-followers", msg, http.StatusNotFound, "not_found", ""},
		{"no text", cmpHost, path, `{}`, http.StatusBadRequest, "invalid", "body"},
		{"body too long", cmpHost, path, `{"body":"` + strings.Repeat("é", 201) + `"}`, http.StatusBadRequest, "invalid", "body"},
		{"title too long", cmpHost, path, `{"title":"` + strings.Repeat("t", 101) + `","body":"x"}`, http.StatusBadRequest, "invalid", "title"},
		{"markup", cmpHost, path, `{"body":"<script>x</script>"}`, http.StatusBadRequest, "invalid", "body"},
		{"unknown field", cmpHost, path, `{"body":"x","url":"http://x"}`, http.StatusBadRequest, "invalid", "url"},
		{"wrong type", cmpHost, path, `{"body":5}`, http.StatusBadRequest, "invalid", "body"},
		{"bad key", cmpHost, path, `{"body_key":"no spaces please"}`, http.StatusBadRequest, "invalid", "body_key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, out, _ := s.do(t, c.user, "POST", c.path, c.body)
			if status != c.status || out["code"] != c.code {
				t.Fatalf("%d %v, want %d %s", status, out, c.status, c.code)
			}
			if c.field != "" && out["field"] != c.field {
				t.Fatalf("field %v, want %s: %v", out["field"], c.field, out)
			}
			if detail, _ := out["detail"].(string); detail == "" {
				t.Fatalf("no detail: %v", out)
			}
		})
	}

	// A 200-character body is the longest allowed; the refusals above
	// used no window.
	s.must(t, http.StatusAccepted, cmpHost, "POST", path, `{"body":"`+strings.Repeat("é", 200)+`"}`)
	status, out, hdr := s.do(t, cmpAdmin, "POST", path, msg)
	if status != http.StatusTooManyRequests || out["code"] != "rate_limited" {
		t.Fatalf("second campaign: %d %v", status, out)
	}
	secs, err := strconv.Atoi(hdr.Get("Retry-After"))
	if err != nil || secs < 85 || secs > 90 {
		t.Fatalf("Retry-After = %q, want about 90 seconds", hdr.Get("Retry-After"))
	}
	// Another stream has a window of its own: it is refused only for being over.
	s.must(t, http.StatusConflict, cmpHost, "POST", "/v1/streams/"+cmpEnded+"/notify-followers", msg)
}
