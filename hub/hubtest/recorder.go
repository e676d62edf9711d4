// Package hubtest holds the test suite every hub engine must pass, and the
// helpers it is built from and other packages' tests share: a recording
// BrokerEventHandler, a runner for Broker.Run tied to the test, a node run
// for the length of a test, a connected client, and polling with a
// deadline.
package hubtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"testing"
	"time"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/internal/protoclient"
)

// WaitTimeout is how long the helpers poll for something that should happen
// before they fail the test. It is generous so a loaded CI machine does not
// fail a correct engine; a broken one still fails, only later.
const WaitTimeout = 15 * time.Second

// Received is one publication as a handler got it.
type Received struct {
	Pub *hub.Publication
	SP  hub.StreamPosition
}

// Recorder is a hub.BrokerEventHandler that keeps everything it is given.
// It is safe for concurrent use.
type Recorder struct {
	mu       sync.Mutex
	pubs     map[string][]Received
	joins    map[string][]*hub.ClientInfo
	leaves   map[string][]*hub.ClientInfo
	order    map[string][]string // per channel: "pub", "join", "leave" in arrival order
	controls [][]byte
}

var _ hub.BrokerEventHandler = (*Recorder)(nil)

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{
		pubs:   make(map[string][]Received),
		joins:  make(map[string][]*hub.ClientInfo),
		leaves: make(map[string][]*hub.ClientInfo),
		order:  make(map[string][]string),
	}
}

// HandlePublication records the publication.
func (r *Recorder) HandlePublication(channel string, pub *hub.Publication, sp hub.StreamPosition) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pubs[channel] = append(r.pubs[channel], Received{Pub: pub, SP: sp})
	r.order[channel] = append(r.order[channel], "pub")
	return nil
}

// HandleJoin records the join.
func (r *Recorder) HandleJoin(channel string, info *hub.ClientInfo) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.joins[channel] = append(r.joins[channel], info)
	r.order[channel] = append(r.order[channel], "join")
	return nil
}

// HandleLeave records the leave.
func (r *Recorder) HandleLeave(channel string, info *hub.ClientInfo) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.leaves[channel] = append(r.leaves[channel], info)
	r.order[channel] = append(r.order[channel], "leave")
	return nil
}

// HandleControl records the control message.
func (r *Recorder) HandleControl(data []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.controls = append(r.controls, append([]byte(nil), data...))
	return nil
}

// Publications returns the publications received on the channel so far.
func (r *Recorder) Publications(channel string) []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Received(nil), r.pubs[channel]...)
}

// Joins returns the joins received on the channel so far.
func (r *Recorder) Joins(channel string) []*hub.ClientInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*hub.ClientInfo(nil), r.joins[channel]...)
}

// Leaves returns the leaves received on the channel so far.
func (r *Recorder) Leaves(channel string) []*hub.ClientInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*hub.ClientInfo(nil), r.leaves[channel]...)
}

// Order returns the kinds of the channel's events ("pub", "join", "leave")
// in the order they arrived.
func (r *Recorder) Order(channel string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.order[channel]...)
}

// Controls returns the control messages received so far.
func (r *Recorder) Controls() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.controls...)
}

// CountControl returns how many control messages equal to data arrived.
func (r *Recorder) CountControl(data string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.controls {
		if string(c) == data {
			n++
		}
	}
	return n
}

// WaitPublications polls until the channel has at least n publications and
// returns them; it fails the test at WaitTimeout.
func (r *Recorder) WaitPublications(t testing.TB, channel string, n int) []Received {
	t.Helper()
	var got []Received
	WaitFor(t, func() bool {
		got = r.Publications(channel)
		return len(got) >= n
	}, "%d publications on %q, have %d", n, channel, func() int { return len(r.Publications(channel)) })
	return got
}

// WaitFor polls cond every few milliseconds until it holds, failing the test
// when WaitTimeout passes first. Arguments of type func() int are called when
// the message is formatted, so it can report the last state seen.
func WaitFor(t testing.TB, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			for i, a := range args {
				if f, ok := a.(func() int); ok {
					args[i] = f()
				}
			}
			t.Fatalf("timed out after %v waiting for "+format, append([]any{WaitTimeout}, args...)...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// StartRun runs b.Run with a new Recorder until the test ends, and returns
// once the broker delivers: a control message it publishes has come back.
// At the end of the test Run must return nil within WaitTimeout.
func StartRun(t testing.TB, b hub.Broker) *Recorder {
	t.Helper()
	rec := NewRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, rec) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after its context was canceled", err)
			}
		case <-time.After(WaitTimeout):
			t.Errorf("Run did not return within %v after its context was canceled", WaitTimeout)
		}
	})
	token := "ready-" + RandomName()
	WaitFor(t, func() bool {
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		default:
		}
		if rec.CountControl(token) > 0 {
			return true
		}
		_ = b.PublishControl(ctx, []byte(token))
		// Give the message a moment before publishing again.
		for i := 0; i < 10 && rec.CountControl(token) == 0; i++ {
			time.Sleep(5 * time.Millisecond)
		}
		return rec.CountControl(token) > 0
	}, "Run to deliver a control message")
	return rec
}

// RandomName returns a short random string for channel names and ids, so
// tests sharing a backend do not see each other.
func RandomName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// StartNode makes a node with cfg and runs it until the test ends; then it
// shuts the node down, failing the test when the shutdown does.
func StartNode(t testing.TB, cfg hub.Config) *hub.Node {
	t.Helper()
	n, err := hub.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Run(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("node shutdown: %v", err)
		}
	})
	return n
}

// Connect dials url, connects with token (anonymous when empty) and closes
// the socket when the test ends.
func Connect(t testing.TB, url, token string) *protoclient.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	c, err := protoclient.Dial(ctx, url, protoclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseNow)
	if _, err := c.Connect(ctx, token); err != nil {
		t.Fatalf("connect: %v", err)
	}
	return c
}
