package hub_test

import (
	"bytes"
	"fmt"
	"runtime/pprof"
	"strings"
	"testing"

	"github.com/centrifugal/protocol"

	"github.com/livehub/livehub/internal/protoclient"
)

// goroutinesWith counts the goroutines running fn (somewhere in their stack,
// not counting the function that started them).
func goroutinesWith(t *testing.T, fn string) int {
	t.Helper()
	var b bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&b, 2); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range strings.Split(b.String(), "\n\n") {
		for _, line := range strings.Split(g, "\n") {
			if strings.Contains(line, fn) && !strings.HasPrefix(line, "created by") {
				n++
				break
			}
		}
	}
	return n
}

// An idle connection runs one goroutine, its reader: no writer waits on an
// empty queue and the HTTP server's goroutine has returned after the
// upgrade. A publication starts writers that deliver it and end.
func TestIdleConnection_RunsOnlyItsReader(t *testing.T) {
	h := newTestHub(t, nil)
	const conns = 20
	clients := make([]*protoclient.Conn, conns)
	for i := range clients {
		c, _ := h.connect(t, fmt.Sprintf("idle-%d", i))
		if _, err := c.Subscribe(ctxT(t), &protocol.SubscribeRequest{Channel: "live:idle"}); err != nil {
			t.Fatal(err)
		}
		clients[i] = c
		defer c.CloseNow()
	}
	h.publish(t, "live:idle", `{"n":1}`)
	for i, c := range clients {
		if p := nextPub(t, c, "live:idle"); string(p.Data) != `{"n":1}` {
			t.Fatalf("client %d got %s", i, p.Data)
		}
	}
	waitFor(t, func() bool {
		return goroutinesWith(t, "hub.(*Client).runWriter(") == 0
	}, "the writers to end once the publication was delivered")
	if n := goroutinesWith(t, "hub.(*Client).serve("); n != conns {
		t.Fatalf("%d connection readers, want %d", n, conns)
	}
	if n := goroutinesWith(t, "hub.(*WebSocketHandler).ServeHTTP("); n != 0 {
		t.Fatalf("%d HTTP handler goroutines still held by open sockets, want 0", n)
	}
}
