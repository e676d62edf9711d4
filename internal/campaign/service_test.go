package campaign_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/hub/hubtest"
	"github.com/livehub/livehub/internal/campaign"
	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/memstore"
	"github.com/livehub/livehub/push"
)

// The cast: stream s1 is live and hosted by host1; s2 ended.
const (
	streamID = "s1"
	endedID  = "s2"
	hostID   = "host1"
)

var (
	host  = campaign.Actor{UserID: hostID, Roles: []string{"host"}}
	admin = campaign.Actor{UserID: "admin1", Roles: []string{"admin"}}
	other = campaign.Actor{UserID: "host2", Roles: []string{"host"}}
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type env struct {
	svc     *campaign.Service
	follows campaign.Follows
	store   campaign.Store
	queue   *push.MemoryQueue
	node    *hub.Node
}

func newNode(t testing.TB) *hub.Node {
	t.Helper()
	return hubtest.StartNode(t, hub.Config{Logger: quietLogger(), ShutdownGrace: 10 * time.Millisecond, NodeInfoInterval: 50 * time.Millisecond})
}

func newStreams(t testing.TB) *memstore.Store {
	t.Helper()
	s := memstore.New(memstore.Options{})
	now := time.Now()
	for _, st := range []commerce.Stream{
		{ID: streamID, HostID: hostID, Title: "Flash Friday", State: commerce.StreamLive, CreatedAt: now},
		{ID: endedID, HostID: hostID, Title: "Yesterday", State: commerce.StreamEnded, CreatedAt: now, EndedAt: &now},
	} {
		if err := s.CreateStream(context.Background(), st); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func newEnv(t *testing.T, mutate func(*campaign.Config)) *env {
	t.Helper()
	e := &env{
		follows: campaign.NewMemoryFollows(),
		store:   campaign.NewMemoryStore(),
		queue:   push.NewMemoryQueue(push.MemoryQueueOptions{}),
		node:    newNode(t),
	}
	cfg := campaign.Config{
		Streams: newStreams(t), Follows: e.follows, Store: e.store, Queue: e.queue, Hub: e.node,
		BatchSize: 100, ProgressInterval: time.Nanosecond, Logger: quietLogger(),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	e.follows, e.store = cfg.Follows, cfg.Store
	svc, err := campaign.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	e.svc = svc
	return e
}

func (e *env) addFollowers(t *testing.T, n int) []string {
	t.Helper()
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("fan-%05d", i)
		if err := e.svc.Follow(ctxT(t), campaign.Actor{UserID: users[i]}, hostID); err != nil {
			t.Fatal(err)
		}
	}
	return users
}

// waitDone polls the campaign until it is no longer running.
func (e *env) waitDone(t *testing.T, id string) campaign.Campaign {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := e.svc.GetCampaign(ctxT(t), host, id)
		if err != nil {
			t.Fatal(err)
		}
		if c.State != campaign.StateRunning {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("campaign still running: %+v", c)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// drain reads every job in the queue.
func drain(t *testing.T, q *push.MemoryQueue) []push.Job {
	t.Helper()
	var jobs []push.Job
	for {
		ds, err := q.Read(ctxT(t), "test", 500, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			return jobs
		}
		for _, d := range ds {
			jobs = append(jobs, d.Job)
		}
	}
}

// studioProgress returns the campaign.progress events in studio:{stream}'s history.
func studioProgress(t *testing.T, n *hub.Node, stream string) []campaign.Progress {
	t.Helper()
	pubs, _, err := n.History(ctxT(t), "studio:"+stream, -1, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	var out []campaign.Progress
	for _, p := range pubs {
		var ev commerce.Event
		if err := json.Unmarshal(p.Data, &ev); err != nil {
			t.Fatalf("studio publication is not an event: %s", p.Data)
		}
		if ev.Type != campaign.EventProgress {
			continue
		}
		var pr campaign.Progress
		if err := json.Unmarshal(ev.Data, &pr); err != nil {
			t.Fatal(err)
		}
		out = append(out, pr)
	}
	return out
}

func TestNotifyFollowers_QueuesOneJobPerFollower(t *testing.T) {
	for _, im := range impls(t) {
		t.Run(im.name, func(t *testing.T) {
			testQueuesOneJobPerFollower(t, newEnv(t, func(c *campaign.Config) {
				c.Follows, c.Store = im.follows(t), im.store(t)
			}))
		})
	}
}

func testQueuesOneJobPerFollower(t *testing.T, e *env) {
	users := e.addFollowers(t, 1234)
	start := time.Now()
	c, err := e.svc.NotifyFollowers(ctxT(t), host, streamID, campaign.Message{Title: "  We're live!  ", Body: "Flash sale on sneakers in 5 minutes"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Total != 1234 || c.State != campaign.StateRunning || c.StreamID != streamID || c.HostID != hostID || c.ID == "" {
		t.Fatalf("new campaign = %+v", c)
	}
	done := e.waitDone(t, c.ID)
	if done.State != campaign.StateDone || done.Queued != 1234 || done.Total != 1234 {
		t.Fatalf("finished campaign = %+v", done)
	}

	jobs := drain(t, e.queue)
	if len(jobs) != len(users) {
		t.Fatalf("queued %d jobs, want %d", len(jobs), len(users))
	}
	seen := make(map[string]bool)
	for _, j := range jobs {
		n := j.Notification
		if seen[n.UserID] {
			t.Fatalf("user %s notified twice", n.UserID)
		}
		seen[n.UserID] = true
		if n.ID != "campaign:"+c.ID+":"+n.UserID {
			t.Fatalf("notification id %q", n.ID)
		}
		if n.Title != "We're live!" || n.Body != "Flash sale on sneakers in 5 minutes" {
			t.Fatalf("text %q / %q", n.Title, n.Body)
		}
		if n.Data["stream_id"] != streamID || n.Data["type"] != "stream.promo" || len(n.Data) != 2 {
			t.Fatalf("data %v", n.Data)
		}
		if n.CollapseID != "stream:"+streamID || n.Priority != push.PriorityHigh {
			t.Fatalf("collapse %q priority %q", n.CollapseID, n.Priority)
		}
		if exp := n.Expiry.Sub(start); exp < 9*time.Minute || exp > 11*time.Minute {
			t.Fatalf("expiry %v after the start, want 10 minutes", exp)
		}
	}
	for _, u := range users {
		if !seen[u] {
			t.Fatalf("follower %s not notified", u)
		}
	}

	progress := studioProgress(t, e.node, streamID)
	if len(progress) < 2 {
		t.Fatalf("studio got %d progress events, want some during and one at the end", len(progress))
	}
	last := progress[len(progress)-1]
	if last != (campaign.Progress{CampaignID: c.ID, Queued: 1234, Total: 1234, State: campaign.StateDone}) {
		t.Fatalf("last progress = %+v", last)
	}
	for i, p := range progress[:len(progress)-1] {
		if p.State != campaign.StateRunning || p.Queued > p.Total || (i > 0 && p.Queued < progress[i-1].Queued) {
			t.Fatalf("progress %d = %+v", i, p)
		}
	}
}

func TestNotifyFollowers_ProgressAtMostOncePerInterval(t *testing.T) {
	e := newEnv(t, func(c *campaign.Config) { c.ProgressInterval = time.Hour; c.BatchSize = 10 })
	e.addFollowers(t, 95)
	c, err := e.svc.NotifyFollowers(ctxT(t), host, streamID, campaign.Message{Body: "Live now"})
	if err != nil {
		t.Fatal(err)
	}
	e.waitDone(t, c.ID)
	// One while running (the first page) and one at the end.
	if got := studioProgress(t, e.node, streamID); len(got) != 2 || got[0].Queued != 10 || got[1].State != campaign.StateDone {
		t.Fatalf("progress events = %+v", got)
	}
}

func TestNotifyFollowers_NoFollowersIsDoneAtOnce(t *testing.T) {
	e := newEnv(t, nil)
	c, err := e.svc.NotifyFollowers(ctxT(t), admin, streamID, campaign.Message{TitleKey: "promo.live", TitleArgs: []string{"Ana"}})
	if err != nil {
		t.Fatal(err)
	}
	if d := e.waitDone(t, c.ID); d.State != campaign.StateDone || d.Queued != 0 || d.Total != 0 {
		t.Fatalf("campaign = %+v", d)
	}
}

func TestNotifyFollowers_Refusals(t *testing.T) {
	e := newEnv(t, func(c *campaign.Config) { c.Window = time.Minute })
	msg := campaign.Message{Body: "Live now"}
	cases := []struct {
		name   string
		actor  campaign.Actor
		stream string
		msg    campaign.Message
		code   commerce.Code
		field  string
	}{
		{"not the host", other, streamID, msg, commerce.EFORBIDDEN, ""},
		{"unknown stream", host, "nope", msg, commerce.ENOTFOUND, ""},
		{"ended stream", host, endedID, msg, commerce.ECONFLICT, ""},
		{"empty message", host, streamID, campaign.Message{Title: "   "}, commerce.EINVALID, "body"},
		{"long body", host, streamID, campaign.Message{Body: string(make([]rune, 201))}, commerce.EINVALID, "body"},
		{"markup", host, streamID, campaign.Message{Title: "<b>hi</b>"}, commerce.EINVALID, "title"},
		{"bad key", host, streamID, campaign.Message{BodyKey: "promo live"}, commerce.EINVALID, "body_key"},
		{"args without key", host, streamID, campaign.Message{Body: "x", BodyArgs: []string{"a"}}, commerce.EINVALID, "body_args"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.svc.NotifyFollowers(ctxT(t), c.actor, c.stream, c.msg)
			var ce *commerce.Error
			if !errorsAs(err, &ce) || ce.Code != c.code || ce.Field != c.field {
				t.Fatalf("err = %v, want %s on %q", err, c.code, c.field)
			}
		})
	}
	// None of the refusals used the stream's window.
	if _, err := e.svc.NotifyFollowers(ctxT(t), host, streamID, msg); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.NotifyFollowers(ctxT(t), admin, streamID, msg)
	if commerce.ErrorCode(err) != commerce.ERATELIMIT {
		t.Fatalf("second campaign = %v, want rate limited", err)
	}
	wait, ok := campaign.RetryAfter(err)
	if !ok || wait <= 0 || wait > time.Minute {
		t.Fatalf("RetryAfter = %v, %v", wait, ok)
	}
}

func TestGetCampaign_OnlyHostOrAdmin(t *testing.T) {
	e := newEnv(t, nil)
	c, err := e.svc.NotifyFollowers(ctxT(t), host, streamID, campaign.Message{Body: "Live now"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.GetCampaign(ctxT(t), admin, c.ID); err != nil {
		t.Fatalf("admin: %v", err)
	}
	if _, err := e.svc.GetCampaign(ctxT(t), other, c.ID); commerce.ErrorCode(err) != commerce.EFORBIDDEN {
		t.Fatalf("other host: %v", err)
	}
	if _, err := e.svc.GetCampaign(ctxT(t), host, "cmp_nope"); commerce.ErrorCode(err) != commerce.ENOTFOUND {
		t.Fatalf("unknown: %v", err)
	}
}

func TestFollow_SelfRefused(t *testing.T) {
	e := newEnv(t, nil)
	err := e.svc.Follow(ctxT(t), host, hostID)
	var ce *commerce.Error
	if !errorsAs(err, &ce) || ce.Code != commerce.EINVALID || ce.Field != "host_id" {
		t.Fatalf("self follow = %v", err)
	}
}

// blockingQueue holds every Enqueue until its context ends.
type blockingQueue struct {
	entered sync.Once
	in      chan struct{}
}

func (q *blockingQueue) Enqueue(ctx context.Context, _ push.Job) error {
	q.entered.Do(func() { close(q.in) })
	<-ctx.Done()
	return ctx.Err()
}

func TestClose_StopsRunningCampaigns(t *testing.T) {
	q := &blockingQueue{in: make(chan struct{})}
	e := newEnv(t, func(c *campaign.Config) { c.Queue = q })
	e.addFollowers(t, 10)
	c, err := e.svc.NotifyFollowers(ctxT(t), host, streamID, campaign.Message{Body: "Live now"})
	if err != nil {
		t.Fatal(err)
	}
	<-q.in
	stopped := make(chan struct{})
	go func() { e.svc.Close(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the campaign")
	}
	e.svc.Close() // idempotent
	got, err := e.store.Get(ctxT(t), c.ID)
	if err != nil || got.State != campaign.StateRunning || got.Queued != 0 {
		t.Fatalf("stopped campaign = %+v, %v", got, err)
	}
	if _, err := e.svc.NotifyFollowers(ctxT(t), host, streamID, campaign.Message{Body: "x"}); commerce.ErrorCode(err) != commerce.EUNAVAILABLE {
		t.Fatalf("notify after close = %v", err)
	}
}

func errorsAs(err error, target **commerce.Error) bool { return errors.As(err, target) }
