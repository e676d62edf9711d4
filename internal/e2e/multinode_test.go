package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/centrifugal/protocol"
	"go.uber.org/goleak"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/hub/redisengine"
	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/hubauth"
	"github.com/livehub/livehub/internal/protoclient"
	"github.com/livehub/livehub/internal/redistest"
)

var nodeSecret = []byte("multi-node-secret-0123456789abcd")

// hubNode is one LiveHub node on a shared Redis, behind its own HTTP server.
type hubNode struct {
	node   *hub.Node
	engine *redisengine.Engine
	srv    *httptest.Server
	url    string
	once   sync.Once
}

func (h *hubNode) stop(t testing.TB) {
	h.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.node.Shutdown(ctx); err != nil {
			t.Errorf("node shutdown: %v", err)
		}
		h.srv.Close()
		if err := h.engine.Close(); err != nil {
			t.Errorf("engine close: %v", err)
		}
	})
}

func startNode(t testing.TB, redisURL, prefix string) *hubNode {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := redisengine.New(redisengine.Options{URL: redisURL, Prefix: prefix, Logger: logger, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{Secrets: [][]byte{nodeSecret}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := hub.New(hub.Config{
		Broker: e, Presence: e, Registry: e,
		Tokens: hubauth.New(v), AllowAnonymous: true,
		Logger: logger, ShutdownGrace: 20 * time.Millisecond,
		NodeInfoInterval: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Run(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(hub.NewWebSocketHandler(n, hub.HandlerOptions{}))
	h := &hubNode{node: n, engine: e, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http")}
	t.Cleanup(func() { h.stop(t) })
	return h
}

func connectTo(t testing.TB, h *hubNode, user string) *protoclient.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := protoclient.Dial(ctx, h.url, protoclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseNow)
	tok, err := auth.Mint(nodeSecret, auth.Claims{Subject: user}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Connect(ctx, tok); err != nil {
		t.Fatalf("connect %s: %v", user, err)
	}
	return c
}

func subscribe(t testing.TB, c *protoclient.Conn, req *protocol.SubscribeRequest) *protocol.SubscribeResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Right after a node starts, its subscription may race Redis being
	// reachable; a temporary error is retried as the SDKs do.
	for {
		res, err := c.Subscribe(ctx, req)
		var re *protoclient.ReplyError
		if errors.As(err, &re) && re.Code == hub.ErrorInternal.Code && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("subscribe %s: %v", req.Channel, err)
		}
		return res
	}
}

func recvPub(t testing.TB, c *protoclient.Conn, channel string) *protocol.Publication {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case p, ok := <-c.Pushes():
			if !ok {
				t.Fatalf("connection closed while waiting on %s", channel)
			}
			if p.Channel == channel && p.Pub != nil {
				return p.Pub
			}
		case <-timeout:
			t.Fatalf("no publication on %s within 10s", channel)
		}
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func bg() context.Context { return context.Background() }

func TestMultiNode_ThreeNodesOnOneRedisActAsOne(t *testing.T) {
	redis := redistest.Start(t)
	nodes := []*hubNode{startNode(t, redis.URL, "mn"), startNode(t, redis.URL, "mn"), startNode(t, redis.URL, "mn")}

	watcher := connectTo(t, nodes[0], "watcher")
	res := subscribe(t, watcher, &protocol.SubscribeRequest{Channel: "live:show"})

	// Publications made on nodes 2 and 3 arrive on node 1 in order.
	for i := 1; i <= 30; i++ {
		if _, err := nodes[1+i%2].node.Publish(bg(), "live:show", []byte(fmt.Sprintf(`{"n":%d}`, i)), hub.PublishRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 30; i++ {
		p := recvPub(t, watcher, "live:show")
		if want := fmt.Sprintf(`{"n":%d}`, i); string(p.Data) != want || p.Offset != res.Offset+uint64(i) {
			t.Fatalf("publication %d: %s offset %d, want %s offset %d", i, p.Data, p.Offset, want, res.Offset+uint64(i))
		}
	}

	// A client publication on node 3 reaches node 1.
	viewer3 := connectTo(t, nodes[2], "viewer3")
	subscribe(t, viewer3, &protocol.SubscribeRequest{Channel: "live:show"})
	if err := viewer3.Publish(bg(), "live:show", []byte(`{"chat":"dari node 3"}`)); err != nil {
		t.Fatal(err)
	}
	if p := recvPub(t, watcher, "live:show"); string(p.Data) != `{"chat":"dari node 3"}` || p.Info.User != "viewer3" {
		t.Fatalf("client publication from node 3: %s %+v", p.Data, p.Info)
	}

	// Presence sums over nodes.
	viewer2 := connectTo(t, nodes[1], "viewer2")
	subscribe(t, viewer2, &protocol.SubscribeRequest{Channel: "live:show"})
	waitFor(t, "presence of 3 clients seen from every node", func() bool {
		for _, n := range nodes {
			st, err := n.node.PresenceStats(bg(), "live:show")
			if err != nil || st.NumClients != 3 || st.NumUsers != 3 {
				return false
			}
		}
		return true
	})

	// Every node is in the registry.
	waitFor(t, "three nodes in the registry", func() bool {
		infos, err := nodes[0].node.Nodes(bg())
		return err == nil && len(infos) == 3
	})

	// A viewer drops off node 1 and comes back on node 3: it recovers.
	last := res.Offset + 31
	watcher.CloseNow()
	for i := 1; i <= 5; i++ {
		if _, err := nodes[1].node.Publish(bg(), "live:show", []byte(fmt.Sprintf(`{"missed":%d}`, i)), hub.PublishRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	back := connectTo(t, nodes[2], "watcher")
	rec := subscribe(t, back, &protocol.SubscribeRequest{Channel: "live:show", Recover: true, Offset: last, Epoch: res.Epoch})
	if !rec.WasRecovering || !rec.Recovered || len(rec.Publications) != 5 {
		t.Fatalf("recovery on another node: recovered=%v with %d publications", rec.Recovered, len(rec.Publications))
	}
	for i, p := range rec.Publications {
		if want := fmt.Sprintf(`{"missed":%d}`, i+1); string(p.Data) != want {
			t.Fatalf("recovered[%d] = %s, want %s", i, p.Data, want)
		}
	}

	// A disconnect asked on node 2 reaches the user's connection on node 3.
	if err := nodes[1].node.DisconnectUser(bg(), "watcher", "", hub.DisconnectForceReconnect); err != nil {
		t.Fatal(err)
	}
	select {
	case <-back.Done():
		if code, _ := back.CloseStatus(); code != 3011 {
			t.Fatalf("close code %d, want 3011", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("disconnect did not cross nodes")
	}
}

// Redis dies while a sale's stock updates flow and comes back empty (no
// persistence): the nodes reconnect by themselves, and a client either saw
// every publication or is told to recover and learns that its position is
// gone (recovered=false), never a silent gap.
func TestMultiNode_RedisRestartRecoversByItself(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	redis := redistest.Start(t)
	pubNode := startNode(t, redis.URL, "rr")
	subNode := startNode(t, redis.URL, "rr")

	c := connectTo(t, subNode, "buyer")
	res := subscribe(t, c, &protocol.SubscribeRequest{Channel: "live:sale"})

	var (
		mu        sync.Mutex
		published []uint64
		failures  int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(bg(), 2*time.Second)
			sp, err := pubNode.node.Publish(ctx, "live:sale", []byte(fmt.Sprintf(`{"stock":%d}`, i)), hub.PublishRequest{})
			cancel()
			mu.Lock()
			if err != nil {
				failures++
			} else {
				published = append(published, sp.Offset)
			}
			mu.Unlock()
		}
	}()

	// Let some flow, then crash Redis for a moment.
	waitFor(t, "publications before the crash", func() bool { mu.Lock(); defer mu.Unlock(); return len(published) > 20 })
	redis.Kill()
	time.Sleep(300 * time.Millisecond)
	redis.Restart()
	waitFor(t, "publications after the restart", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return failures > 0 && len(published) > 40
	})
	close(stop)
	wg.Wait()

	// The client saw a gap-free sequence up to the crash and was then told
	// to recover, or (if nothing was lost on its way) kept receiving.
	expect := res.Offset + 1
	epoch := res.Epoch
	told := false
	timeout := time.After(15 * time.Second)
	for !told {
		select {
		case p, ok := <-c.Pushes():
			if !ok {
				code, _ := c.CloseStatus()
				if code != 3010 {
					t.Fatalf("closed with %d, want 3010 insufficient state", code)
				}
				told = true
				continue
			}
			if p.Pub == nil {
				continue
			}
			if p.Pub.Offset != expect {
				t.Fatalf("silent gap: offset %d after %d", p.Pub.Offset, expect-1)
			}
			expect++
		case <-timeout:
			t.Fatal("after Redis lost the stream, the client was never told to recover")
		}
	}

	// Recovering with the old position says recovered=false: Redis came
	// back empty, so the epoch changed.
	again := connectTo(t, subNode, "buyer")
	rec := subscribe(t, again, &protocol.SubscribeRequest{Channel: "live:sale", Recover: true, Offset: expect - 1, Epoch: epoch})
	if rec.Recovered || rec.Epoch == epoch {
		t.Fatalf("recovered=%v epoch %q (old %q): want a new epoch and recovered=false", rec.Recovered, rec.Epoch, epoch)
	}
	// And the cluster works again end to end.
	if _, err := pubNode.node.Publish(bg(), "live:sale", []byte(`{"stock":0}`), hub.PublishRequest{}); err != nil {
		t.Fatal(err)
	}
	if p := recvPub(t, again, "live:sale"); string(p.Data) != `{"stock":0}` {
		t.Fatalf("after restart got %s", p.Data)
	}

	again.CloseNow()
	c.CloseNow()
	pubNode.stop(t)
	subNode.stop(t)
	redis.Stop()
}

func TestMultiNode_RedisCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	url := "redis+cluster://" + strings.Join(cluster.Addrs, ",")
	nodes := []*hubNode{startNode(t, url, "cl"), startNode(t, url, "cl"), startNode(t, url, "cl")}

	// Channels spread over the slots of all three masters.
	channels := make([]string, 12)
	for i := range channels {
		channels[i] = fmt.Sprintf("live:stream-%d", i)
	}
	watcher := connectTo(t, nodes[0], "w")
	positions := make(map[string]*protocol.SubscribeResult)
	for _, ch := range channels {
		positions[ch] = subscribe(t, watcher, &protocol.SubscribeRequest{Channel: ch})
	}
	for round := 1; round <= 3; round++ {
		for i, ch := range channels {
			if _, err := nodes[1+i%2].node.Publish(bg(), ch, []byte(fmt.Sprintf(`{"round":%d}`, round)), hub.PublishRequest{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := make(map[string]int)
	for len(got) < len(channels) || !allAt(got, 3) {
		select {
		case p := <-watcher.Pushes():
			if p.Pub == nil {
				continue
			}
			got[p.Channel]++
			if want := fmt.Sprintf(`{"round":%d}`, got[p.Channel]); string(p.Pub.Data) != want {
				t.Fatalf("%s: got %s, want %s", p.Channel, p.Pub.Data, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("sharded pub/sub delivered %v", got)
		}
	}

	// Recovery across nodes on the cluster.
	watcher.CloseNow()
	ch := channels[5]
	if _, err := nodes[2].node.Publish(bg(), ch, []byte(`{"missed":true}`), hub.PublishRequest{}); err != nil {
		t.Fatal(err)
	}
	back := connectTo(t, nodes[1], "w")
	pos := positions[ch]
	rec := subscribe(t, back, &protocol.SubscribeRequest{Channel: ch, Recover: true, Offset: pos.Offset + 3, Epoch: pos.Epoch})
	if !rec.Recovered || len(rec.Publications) != 1 || string(rec.Publications[0].Data) != `{"missed":true}` {
		t.Fatalf("cluster recovery: recovered=%v %d publications", rec.Recovered, len(rec.Publications))
	}
}

func allAt(m map[string]int, n int) bool {
	for _, v := range m {
		if v != n {
			return false
		}
	}
	return true
}
