package notify

import (
	"context"
	"encoding/json"

	"github.com/livehub/livehub/hub"
)

// AckMethod is the RPC an app calls with the ids of the events it received
// on its personal channel: {"ids":["ev_..."]}. It answers {"acked":n}, n
// being the ids whose window was still open.
const AckMethod = "event.ack"

// Bounds of one acknowledgement.
const (
	maxAckIDs   = 100
	maxAckIDLen = 128
)

type ackRequest struct {
	IDs []string `json:"ids"`
}

type ackReply struct {
	Acked int `json:"acked"`
}

// RPC returns the Notifier's RPC handlers by method, for hub.Hooks.RPC.
func (n *Notifier) RPC() map[string]hub.RPCHandler {
	return map[string]hub.RPCHandler{AckMethod: n.Ack}
}

// Hooks returns next with the Notifier's RPC handlers added.
func (n *Notifier) Hooks(next hub.Hooks) hub.Hooks {
	out := next
	out.RPC = make(map[string]hub.RPCHandler, len(next.RPC)+1)
	for k, v := range next.RPC {
		out.RPC[k] = v
	}
	for k, v := range n.RPC() {
		out.RPC[k] = v
	}
	return out
}

// Ack is the event.ack RPC handler: it closes the windows of the calling
// user's events. A user acknowledges only their own events: the windows
// are keyed by the connection's user.
func (n *Notifier) Ack(ctx context.Context, c *hub.Client, data []byte) ([]byte, error) {
	user := c.UserID()
	if user == "" {
		return nil, hub.ErrorPermissionDenied.WithMessage("sign in to acknowledge events")
	}
	var req ackRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, hub.ErrorBadRequest.WithMessage(`data must be {"ids":["ev_..."]}`)
	}
	if len(req.IDs) == 0 || len(req.IDs) > maxAckIDs {
		return nil, hub.ErrorBadRequest.WithMessage("ids must hold 1 to 100 event ids")
	}
	for _, id := range req.IDs {
		if !validID(id) {
			return nil, hub.ErrorBadRequest.WithMessage("ids must be event ids of 1 to 128 printable characters")
		}
	}
	won, err := n.pending.Ack(ctx, user, req.IDs)
	if err != nil {
		n.metrics.errors.WithLabelValues(opPending).Inc()
		n.log.Warn("notify: acknowledging events", "user", user, "events", len(req.IDs), "err", err)
		return nil, hub.ErrorInternal
	}
	n.metrics.acks.Add(float64(won))
	return json.Marshal(ackReply{Acked: won})
}

// validID reports whether id can be an event id: printable ASCII without
// space, as the ids the shop makes ("ev_3f9a...").
func validID(id string) bool {
	if id == "" || len(id) > maxAckIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}
