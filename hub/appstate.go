package hub

import (
	"context"
	"encoding/json"
)

// An app tells the hub when it goes to the background or comes back with the
// RPC "app.state" ({"state":"background"} or {"state":"foreground"}). A new
// connection counts as foreground; a closed one as background. Foreground
// connections are kept as presence in an internal channel per user, so every
// node knows whether the user has one anywhere in the cluster.

// AppStateMethod is the RPC method name apps call.
const AppStateMethod = "app.state"

func foregroundChannel(userID string) string { return "$fg:" + userID }

type appState struct {
	State string `json:"state"`
}

func (c *Client) handleAppState(ctx context.Context, data []byte) ([]byte, error) {
	var req appState
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, ErrorBadRequest.WithMessage(`data must be {"state":"foreground"|"background"}`)
	}
	var fg bool
	switch req.State {
	case "foreground":
		fg = true
	case "background":
	default:
		return nil, ErrorBadRequest.WithMessage(`state must be "foreground" or "background"`)
	}
	if err := c.setForeground(ctx, fg); err != nil {
		return nil, err
	}
	return json.Marshal(req)
}

// setForeground records the app state of the connection in presence.
func (c *Client) setForeground(ctx context.Context, fg bool) error {
	c.mu.Lock()
	user := c.cred.UserID
	c.foreground = fg
	c.mu.Unlock()
	if user == "" {
		return nil
	}
	ch := foregroundChannel(user)
	if fg {
		return c.node.cfg.Presence.AddPresence(ctx, ch, c.id, c.clientInfo())
	}
	return c.node.cfg.Presence.RemovePresence(ctx, ch, c.id, user)
}

// UserForeground reports whether the user has a connection in the foreground
// on any node.
func (n *Node) UserForeground(ctx context.Context, userID string) (bool, error) {
	st, err := n.cfg.Presence.PresenceStats(ctx, foregroundChannel(userID))
	if err != nil {
		return false, err
	}
	return st.NumClients > 0, nil
}
