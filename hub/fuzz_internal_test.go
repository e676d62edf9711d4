package hub

import (
	"errors"
	"io"
	"testing"

	"github.com/centrifugal/protocol"
)

func subscribeRequest(channel string) *protocol.SubscribeRequest {
	return &protocol.SubscribeRequest{Channel: channel}
}

// FuzzHandleFrame feeds arbitrary frames to a connection: the node must
// never panic or block, and everything it queues must be valid protocol JSON.
func FuzzHandleFrame(f *testing.F) {
	seeds := []string{
		`{"id":1,"connect":{}}`,
		`{"id":1,"connect":{}}` + "\n" + `{"id":2,"subscribe":{"channel":"live:1"}}`,
		`{"id":1,"connect":{}}` + "\n" + `{"id":2,"subscribe":{"channel":"live:1","recover":true,"offset":5,"epoch":"x"}}` + "\n" + `{"id":3,"history":{"channel":"live:1","limit":-1}}`,
		`{"id":1,"connect":{}}` + "\n" + `{"id":2,"publish":{"channel":"live:1","data":{"a":1}}}`,
		`{"id":1,"connect":{}}` + "\n" + `{"id":2,"rpc":{"method":"app.state","data":{"state":"background"}}}`,
		`{"id":1,"connect":{}}` + "\n" + `{"id":2,"presence_stats":{"channel":"live:1"}}` + "\n" + `{}`,
		`{"id":1,"subscribe":{"channel":"live:1"}}`,
		`{}`, ``, `{"id":`, "\n\n", `[1,2,3]`, `{"id":4294967295,"ping":{}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	n := newBareNode(f, nil)
	f.Fuzz(func(t *testing.T, frame []byte) {
		c := n.newClient(nil, encodingJSON)
		c.staleTimer = nil
		c.handleFrame(frame)
		for _, out := range c.queue.take(nil, 1<<30) {
			dec := protocol.NewJSONReplyDecoder(out)
			for {
				_, err := dec.Decode()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("queued invalid reply %q: %v", out, err)
				}
			}
		}
		c.close(DisconnectConnectionClosed)
		c.cleanup()
	})
}
