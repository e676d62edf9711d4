package hub

import (
	"context"
	"time"
)

// After an engine lost its pub/sub connection and subscribed again,
// publications of those channels may have been missed. The node compares each
// recoverable subscriber's position with the stream's and tells those behind
// to recover (3010), without waiting for the channel's next publication,
// which may never come.

// HandleResubscribe queues the channels for a position check; it never
// blocks, as engines call it from their delivery goroutine.
func (n *Node) HandleResubscribe(channels []string) {
	n.resubMu.Lock()
	for _, ch := range channels {
		n.resubPending[ch] = struct{}{}
	}
	n.resubMu.Unlock()
	select {
	case n.resubReady <- struct{}{}:
	default:
	}
}

// resubscribeLoop runs the position checks; it is one of the node's
// background goroutines.
func (n *Node) resubscribeLoop() {
	for {
		select {
		case <-n.runCtx.Done():
			return
		case <-n.resubReady:
		}
		n.resubMu.Lock()
		channels := make([]string, 0, len(n.resubPending))
		for ch := range n.resubPending {
			channels = append(channels, ch)
		}
		clear(n.resubPending)
		n.resubMu.Unlock()
		for _, ch := range channels {
			n.checkPositions(ch)
		}
	}
}

func (n *Node) checkPositions(channel string) {
	ctx, cancel := context.WithTimeout(n.runCtx, 5*time.Second)
	defer cancel()
	_, sp, err := n.cfg.Broker.History(ctx, channel, HistoryOptions{})
	if err != nil {
		// Still unreachable: the next publication's offset check catches it.
		return
	}
	s := n.subShard(channel)
	s.mu.RLock()
	var behind []*Client
	for c := range s.channels[channel] {
		c.mu.Lock()
		sub, ok := c.subs[channel]
		if ok && sub.recoverable && !sub.pending && (sub.epoch != sp.Epoch || sub.offset < sp.Offset) {
			behind = append(behind, c)
		}
		c.mu.Unlock()
	}
	s.mu.RUnlock()
	for _, c := range behind {
		c.close(DisconnectInsufficientState)
	}
}
