package redisengine_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/hub/hubtest"
	"github.com/livehub/livehub/hub/redisengine"
	"github.com/livehub/livehub/internal/redistest"
)

// stallingHandler holds its first publication until gate is closed: a
// node too busy to read its pub/sub connection.
type stallingHandler struct {
	*hubtest.Recorder
	gate    chan struct{}
	stalled chan struct{}
	once    sync.Once
}

func (s *stallingHandler) HandlePublication(ch string, p *hub.Publication, sp hub.StreamPosition) error {
	s.once.Do(func() {
		close(s.stalled)
		<-s.gate
	})
	return s.Recorder.HandlePublication(ch, p, sp)
}

// A node that stops reading its pub/sub connection builds no backlog of
// its own: publications wait in the sockets and in Redis's output buffer
// for the connection, and past Redis's client-output-buffer-limit Redis
// drops the connection. The node reconnects, subscribes again, reports the
// channels as possibly missing publications (its subscribers then compare
// positions and recover), and delivers what comes next.
func TestEngine_StalledNodeIsCutByRedisAndComesBack(t *testing.T) {
	srv := redistest.Start(t, redistest.WithArgs("--client-output-buffer-limit", "pubsub 1mb 512kb 1"))
	var resub resubscribes
	e := newEngine(t, srv.URL, func(o *redisengine.Options) { o.OnResubscribe = resub.record })
	h := &stallingHandler{Recorder: hubtest.NewRecorder(), gate: make(chan struct{}), stalled: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- e.Run(ctx, h) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.gate:
		default:
			close(h.gate)
		}
		<-ran
	})
	// Run delivers once a control message comes back, as hubtest.StartRun
	// waits for.
	hello := "hello-" + hubtest.RandomName()
	hubtest.WaitFor(t, func() bool {
		_ = e.PublishControl(ctx, []byte(hello))
		return h.CountControl(hello) > 0
	}, "the engine to deliver")
	ch := "stall-" + hubtest.RandomName()
	if err := e.Subscribe(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Publish(ctx, ch, []byte(`"first"`), historyOpts()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.stalled:
	case <-time.After(hubtest.WaitTimeout):
		t.Fatal("the first publication never reached the handler")
	}

	// 32 MiB of publications while the node does not read: far more than
	// the sockets hold and than the 1 MiB Redis keeps for one subscriber.
	payload := []byte(`"` + string(bytes.Repeat([]byte("x"), 1022)) + `"`)
	const perBatch, batches = 512, 64
	items := make([]hub.BatchItem, perBatch)
	for i := range items {
		items[i] = hub.BatchItem{Channel: ch, Data: payload}
	}
	for range batches {
		for i, r := range e.PublishBatch(ctx, items) {
			if r.Err != nil {
				t.Fatalf("publish %d: %v", i, r.Err)
			}
		}
	}
	close(h.gate)

	hubtest.WaitFor(t, func() bool { return resub.has(ch) }, "the node to subscribe again and report %s", ch)
	got := len(h.Publications(ch))
	if got >= perBatch*batches {
		t.Fatalf("the stalled node received all %d publications: Redis did not cut it", got)
	}
	t.Logf("the stalled node received %d of %d publications before Redis cut it", got, perBatch*batches+1)
	after, _, err := e.Publish(ctx, ch, []byte(`"after"`), historyOpts())
	if err != nil {
		t.Fatal(err)
	}
	hubtest.WaitFor(t, func() bool {
		pubs := h.Publications(ch)
		return len(pubs) > 0 && pubs[len(pubs)-1].SP == after
	}, "the publication after the reconnection")
}
