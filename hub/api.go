package hub

import (
	"context"
	"encoding/json"
	"sort"
	"strings"

	"github.com/centrifugal/protocol"
)

// This file is the node's server API: what backends ask through /api. Calls
// that act on connections (subscribe, unsubscribe, disconnect) travel as
// control messages so they reach the user's connections on every node.

// PublishRequest tunes a server publish.
type PublishRequest struct {
	// IdempotencyKey makes a retried publish return the first result.
	IdempotencyKey string
	// Tags travel with the publication.
	Tags map[string]string
	// Ephemeral publications skip history: counters that the next one
	// supersedes (likes, viewers) must not push the room's chat out of the
	// recovery window. They carry no offset.
	Ephemeral bool
	// Priority lets congested connections drop the publication; see Priority.
	Priority Priority
}

// options are the engine's options for the request in namespace ns.
func (req PublishRequest) options(ns *NamespaceOptions) PublishOptions {
	opts := ns.publishOptions()
	if req.Ephemeral {
		opts = PublishOptions{}
	}
	opts.IdempotencyKey = req.IdempotencyKey
	opts.Tags = req.Tags
	opts.Priority = req.Priority
	return opts
}

// Publish publishes data into a channel, keeping it in history when the
// namespace does. data must be a JSON value.
func (n *Node) Publish(ctx context.Context, channel string, data []byte, req PublishRequest) (StreamPosition, error) {
	ns, perr := n.namespace(channel)
	if perr != nil {
		return StreamPosition{}, perr
	}
	if !json.Valid(data) {
		return StreamPosition{}, ErrorBadRequest.WithMessage("data must be a JSON value")
	}
	sp, _, err := n.cfg.Broker.Publish(ctx, channel, data, req.options(ns))
	if err != nil {
		n.metrics.brokerPublishErr.Inc()
		return StreamPosition{}, err
	}
	return sp, nil
}

// BroadcastResult is the outcome of a broadcast in one channel.
type BroadcastResult struct {
	Position StreamPosition
	Err      error
}

// Broadcast publishes the same data into several channels as Publish would
// into each, with the same request. An engine that publishes in batches
// (Redis) gets them in one round trip. A channel that fails (a bad name,
// the engine refusing) fails alone: its result holds the error.
func (n *Node) Broadcast(ctx context.Context, channels []string, data []byte, req PublishRequest) []BroadcastResult {
	out := make([]BroadcastResult, len(channels))
	if !json.Valid(data) {
		for i := range out {
			out[i].Err = ErrorBadRequest.WithMessage("data must be a JSON value")
		}
		return out
	}
	items := make([]BatchItem, 0, len(channels))
	at := make([]int, 0, len(channels)) // index in channels of each item
	for i, ch := range channels {
		ns, perr := n.namespace(ch)
		if perr != nil {
			out[i].Err = perr
			continue
		}
		items = append(items, BatchItem{Channel: ch, Data: data, Options: req.options(ns)})
		at = append(at, i)
	}
	var results []BatchResult
	if bp, ok := n.cfg.Broker.(BatchPublisher); ok && len(items) > 1 {
		results = bp.PublishBatch(ctx, items)
	} else {
		results = make([]BatchResult, len(items))
		for i, it := range items {
			results[i].Position, results[i].Cached, results[i].Err = n.cfg.Broker.Publish(ctx, it.Channel, it.Data, it.Options)
		}
	}
	for j, r := range results {
		if r.Err != nil {
			n.metrics.brokerPublishErr.Inc()
		}
		out[at[j]] = BroadcastResult{Position: r.Position, Err: r.Err}
	}
	return out
}

// History returns a channel's publications for the server API.
func (n *Node) History(ctx context.Context, channel string, limit int, since *StreamPosition, reverse bool) ([]*protocol.Publication, StreamPosition, error) {
	ns, perr := n.namespace(channel)
	if perr != nil {
		return nil, StreamPosition{}, perr
	}
	if !ns.keepsHistory() {
		return nil, StreamPosition{}, ErrorNotAvailable.WithMessage("namespace keeps no history")
	}
	var ps *protocol.StreamPosition
	if since != nil {
		ps = &protocol.StreamPosition{Offset: since.Offset, Epoch: since.Epoch}
	}
	pubs, sp, perr := n.history(ctx, channel, limit, ps, reverse)
	if perr != nil {
		return nil, sp, perr
	}
	return pubs, sp, nil
}

// RemoveHistory drops a channel's history.
func (n *Node) RemoveHistory(ctx context.Context, channel string) error {
	if _, perr := n.namespace(channel); perr != nil {
		return perr
	}
	return n.cfg.Broker.RemoveHistory(ctx, channel)
}

// Presence returns a channel's connections across the cluster.
func (n *Node) Presence(ctx context.Context, channel string) (map[string]*ClientInfo, error) {
	ns, perr := n.namespace(channel)
	if perr != nil {
		return nil, perr
	}
	if !ns.Presence {
		return nil, ErrorNotAvailable.WithMessage("namespace keeps no presence")
	}
	return n.cfg.Presence.Presence(ctx, channel)
}

// PresenceStats counts a channel's connections and users across the cluster.
func (n *Node) PresenceStats(ctx context.Context, channel string) (PresenceStats, error) {
	ns, perr := n.namespace(channel)
	if perr != nil {
		return PresenceStats{}, perr
	}
	if !ns.Presence {
		return PresenceStats{}, ErrorNotAvailable.WithMessage("namespace keeps no presence")
	}
	return n.cfg.Presence.PresenceStats(ctx, channel)
}

// Nodes lists the cluster's live nodes.
func (n *Node) Nodes(ctx context.Context) ([]NodeInfo, error) {
	return n.cfg.Registry.Nodes(ctx)
}

// ChannelLister is implemented by engines that can list the channels with
// subscribers on any node.
type ChannelLister interface {
	Channels(ctx context.Context) ([]string, error)
}

// Channels returns the channels with subscribers, filtered by a prefix, with
// the number of this node's subscribers in each. With an engine that lists
// channels cluster-wide, channels held only by other nodes show 0 here.
func (n *Node) Channels(ctx context.Context, prefix string) (map[string]int, error) {
	out := make(map[string]int)
	for i := range n.subShards {
		s := &n.subShards[i]
		s.mu.RLock()
		for ch, m := range s.channels {
			if strings.HasPrefix(ch, prefix) {
				out[ch] = len(m)
			}
		}
		s.mu.RUnlock()
	}
	if l, ok := n.cfg.Broker.(ChannelLister); ok {
		all, err := l.Channels(ctx)
		if err != nil {
			return nil, err
		}
		for _, ch := range all {
			if _, ok := out[ch]; !ok && strings.HasPrefix(ch, prefix) {
				out[ch] = 0
			}
		}
	}
	return out, nil
}

// controlMessage is an instruction for every node's local connections.
type controlMessage struct {
	Op      string `json:"op"`
	User    string `json:"user,omitempty"`
	Client  string `json:"client,omitempty"`
	Channel string `json:"channel,omitempty"`
	Code    uint32 `json:"code,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

const (
	opDisconnect  = "disconnect"
	opSubscribe   = "subscribe"
	opUnsubscribe = "unsubscribe"
)

// Subscribe subscribes every connection of a user, on every node, to a
// channel, whatever the namespace rules say: the backend decided.
func (n *Node) Subscribe(ctx context.Context, user, channel string) error {
	if _, perr := n.namespace(channel); perr != nil {
		return perr
	}
	return n.sendControl(ctx, controlMessage{Op: opSubscribe, User: user, Channel: channel})
}

// Unsubscribe removes every connection of a user from a channel.
func (n *Node) Unsubscribe(ctx context.Context, user, channel string) error {
	if _, perr := n.namespace(channel); perr != nil {
		return perr
	}
	return n.sendControl(ctx, controlMessage{Op: opUnsubscribe, User: user, Channel: channel})
}

// DisconnectUser closes every connection of a user (or only the one with
// clientID, when given) with d.
func (n *Node) DisconnectUser(ctx context.Context, user, clientID string, d Disconnect) error {
	return n.sendControl(ctx, controlMessage{Op: opDisconnect, User: user, Client: clientID, Code: d.Code, Reason: d.Reason})
}

func (n *Node) sendControl(ctx context.Context, m controlMessage) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return n.cfg.Broker.PublishControl(ctx, data)
}

// HandleControl applies a control message to this node's connections.
func (n *Node) HandleControl(data []byte) error {
	var m controlMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	clients := n.userClients(m.User)
	switch m.Op {
	case opDisconnect:
		for _, c := range clients {
			if m.Client == "" || m.Client == c.id {
				c.close(Disconnect{Code: m.Code, Reason: m.Reason})
			}
		}
	case opSubscribe:
		ns, perr := n.namespace(m.Channel)
		if perr != nil {
			return perr
		}
		// Subscribing talks to the engine, which may be waiting on this very
		// delivery goroutine: run it aside.
		for _, c := range clients {
			n.goTracked(func() { c.serverSubscribe(m.Channel, ns) })
		}
	case opUnsubscribe:
		for _, c := range clients {
			n.goTracked(func() { c.serverUnsubscribe(m.Channel) })
		}
	}
	return nil
}

// serverSubscribe subscribes the client on the server's behalf and pushes
// the subscription to it.
func (c *Client) serverSubscribe(channel string, ns *NamespaceOptions) {
	if _, ok := c.subscribed(channel); ok {
		return
	}
	res, err := c.subscribe(c.ctx, channel, ns, &protocol.SubscribeRequest{Channel: channel})
	if err != nil {
		if err != ErrorAlreadySubscribed {
			c.node.log.Warn("server subscribe failed", "channel", channel, "err", err)
		}
		return
	}
	data, err := c.enc.encodeReply(&protocol.Reply{Push: &protocol.Push{
		Channel: channel,
		Subscribe: &protocol.Subscribe{
			Recoverable: res.Recoverable, Positioned: res.Positioned,
			Epoch: res.Epoch, Offset: res.Offset,
		},
	}})
	if err != nil {
		return
	}
	c.enqueue(data)
	c.activate(channel)
}

// unsubscribeServerCode tells the SDK the server ended the subscription.
const unsubscribeServerCode = 2000

func (c *Client) serverUnsubscribe(channel string) {
	if !c.unsubscribe(c.ctx, channel) {
		return
	}
	data, err := c.enc.encodeReply(&protocol.Reply{Push: &protocol.Push{
		Channel:     channel,
		Unsubscribe: &protocol.Unsubscribe{Code: unsubscribeServerCode, Reason: "server unsubscribe"},
	}})
	if err == nil {
		c.enqueue(data)
	}
}

// SortedChannels returns the keys of a Channels result in order.
func SortedChannels(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
