package hub

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/centrifugal/protocol"
	"github.com/coder/websocket"
)

// Client is one connection. Its reader goroutine (the HTTP handler's) reads
// and answers commands in order; its writer goroutine owns all writes to the
// socket, fed through a queue bounded in bytes.
type Client struct {
	node  *Node
	id    string
	conn  *websocket.Conn
	queue *writeQueue
	// enc is the wire encoding chosen at the handshake.
	enc encoding
	// ctx is cancelled when the connection is gone; engine calls made for
	// this client use it.
	ctx    context.Context
	cancel context.CancelFunc

	limiter      tokenBucket
	limitedInRow int

	awaitingPong atomic.Bool
	// writerDone is closed by the writer that sent the close frame (or
	// found the socket broken): the last one of the connection.
	writerDone chan struct{}
	// writeDeadline cuts the socket when one write outlasts WriteTimeout.
	// One timer per connection, reset per write: a context with a timeout
	// per write cost a timer, a context and a registration each time.
	// Only the running writer uses it.
	writeDeadline *time.Timer
	// pingTimer sends the next ping; pongTimer closes the connection when
	// the pong to the last one is late. Timers, not a goroutine: an idle
	// connection runs no code of its own between pings.
	pingTimer *time.Timer
	pongTimer *time.Timer

	// mu guards the fields below.
	mu            sync.Mutex
	authenticated bool
	cred          Credentials
	subs          map[string]*subscription
	closed        bool
	disconnect    Disconnect
	expireTimer   *time.Timer
	staleTimer    *time.Timer
	foreground    bool
	// expiring counts subscription expiries under way; cleanup waits for
	// them. It is only incremented while the client is not closed.
	expiring sync.WaitGroup
}

// subscription is a client's state in one channel.
type subscription struct {
	ns          *NamespaceOptions
	recoverable bool
	joinLeave   bool
	// offset and epoch are the position of the last publication queued to
	// the client; a publication that does not follow it means something was
	// lost between broker and node, and the client must recover.
	offset uint64
	epoch  string
	// pending subscriptions buffer publications until the subscribe reply is
	// queued, then flush the ones the reply did not already include.
	pending  bool
	buffered []bufferedPush
	// delta is set when the subscription negotiated fossil deltas.
	// deltaReady says the client holds the data of the publication at
	// offset, so the next one may be sent as a delta against it; it is
	// false until the first publication after subscribing was sent whole.
	delta      bool
	deltaReady bool
	// tokenGrant is set when a subscription token opened the subscription:
	// only then may the client send sub_refresh for it. expireAt is when
	// that token (or the last one sent with sub_refresh) expires, zero for
	// never; expireTimer ends the subscription once it has passed.
	tokenGrant  bool
	expireAt    time.Time
	expireTimer *time.Timer
	// removed is set, under the client's lock, when the subscription
	// leaves c.subs: the node's channel map hands deliveries this pointer,
	// so a delivery racing an unsubscribe checks the flag instead of
	// looking the channel up again.
	removed bool
}

type bufferedPush struct {
	offset uint64
	epoch  string
	frames *pubFrames
	// joinLeave, when set, makes this a join or leave push instead of a
	// publication.
	joinLeave *lazyPush
}

// ID is the connection's unique id.
func (c *Client) ID() string { return c.id }

// UserID is the connection's user, empty when anonymous.
func (c *Client) UserID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cred.UserID
}

// Credentials returns a copy of who the connection is.
func (c *Client) Credentials() Credentials {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cred
}

// Context is cancelled when the connection closes.
func (c *Client) Context() context.Context { return c.ctx }

// Disconnect closes the connection with d.
func (c *Client) Disconnect(d Disconnect) { c.close(d) }

func (n *Node) newClient(conn *websocket.Conn, enc encoding) *Client {
	ctx, cancel := context.WithCancel(context.Background())
	return &Client{
		node:       n,
		id:         newID(),
		conn:       conn,
		enc:        enc,
		queue:      newWriteQueue(n.cfg.MaxQueueBytes),
		ctx:        ctx,
		cancel:     cancel,
		limiter:    newTokenBucket(n.cfg.CommandRate, n.cfg.CommandBurst),
		writerDone: make(chan struct{}),
		subs:       make(map[string]*subscription),
	}
}

// serve runs the connection until it closes; it is the reader goroutine.
func (c *Client) serve() {
	n := c.node
	n.metrics.connections.Inc()
	defer n.metrics.connections.Dec()
	c.conn.SetReadLimit(n.cfg.MaxFrameBytes)
	c.mu.Lock()
	c.staleTimer = time.AfterFunc(n.cfg.ConnectTimeout, func() {
		c.mu.Lock()
		auth := c.authenticated
		c.mu.Unlock()
		if !auth {
			c.close(DisconnectStale)
		}
	})
	c.writeDeadline = time.AfterFunc(time.Hour, func() { c.conn.CloseNow() })
	c.writeDeadline.Stop()
	c.pongTimer = time.AfterFunc(time.Hour, func() {
		if c.awaitingPong.Load() {
			c.close(DisconnectNoPong)
		}
	})
	c.pongTimer.Stop()
	c.pingTimer = time.AfterFunc(n.cfg.PingInterval, c.heartbeat)
	c.mu.Unlock()
	c.queue.setWriter(c.runWriter)
	c.readLoop()
	c.close(DisconnectConnectionClosed)
	// The writer sends the close frame; cleanup cancels the connection's
	// context, so it waits for the writer to be done.
	<-c.writerDone
	c.writeDeadline.Stop()
	c.cleanup()
}

// heartbeat pings an authenticated connection every PingInterval and
// expects its pong within PongTimeout.
func (c *Client) heartbeat() {
	n := c.node
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	auth := c.authenticated
	c.pingTimer.Reset(n.cfg.PingInterval)
	c.mu.Unlock()
	if !auth {
		return
	}
	// The pong is awaited before the ping is queued: a writer may send the
	// ping at once, and its pong must not come before the wait began.
	first := c.awaitingPong.CompareAndSwap(false, true)
	if !c.queue.push(c.enc.pingFrame()) {
		if first {
			c.awaitingPong.Store(false)
		}
		return
	}
	if first {
		c.pongTimer.Reset(n.cfg.PongTimeout)
	}
}

func (c *Client) readLoop() {
	for {
		typ, data, err := c.conn.Read(c.ctx)
		if err != nil {
			if errors.Is(err, websocket.ErrMessageTooBig) {
				// The library answered 1009 itself; count it as such.
				c.mu.Lock()
				if !c.closed {
					c.closed, c.disconnect = true, Disconnect{Code: uint32(websocket.StatusMessageTooBig), Reason: "message too big"}
					c.node.metrics.disconnects.WithLabelValues("1009").Inc()
				}
				c.mu.Unlock()
				c.queue.close()
			}
			return
		}
		c.node.metrics.bytesIn.Add(float64(len(data)))
		if typ != c.enc.messageType() {
			// JSON travels in text messages only, Protobuf in binary ones.
			c.close(DisconnectBadRequest)
			return
		}
		if !c.handleFrame(data) {
			return
		}
	}
}

// handleFrame answers every command in a frame; it returns false once the
// connection is closing.
func (c *Client) handleFrame(data []byte) bool {
	dec := protocol.GetCommandDecoder(c.enc.protoType(), data)
	defer protocol.PutCommandDecoder(c.enc.protoType(), dec)
	for {
		cmd, err := dec.Decode()
		if cmd != nil {
			if !c.handleCommand(cmd) {
				return false
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return true
			}
			c.node.log.Debug("bad frame", "client", c.id, "err", err)
			c.close(DisconnectBadRequest)
			return false
		}
	}
}

// handleCommand answers one command; it returns false once the connection is
// closing.
func (c *Client) handleCommand(cmd *protocol.Command) bool {
	n := c.node
	typ := commandType(cmd)
	if typ == "" {
		if cmd.Id == 0 {
			// An empty command is the pong to our ping.
			c.awaitingPong.Store(false)
			return true
		}
		c.close(DisconnectBadRequest)
		return false
	}
	n.metrics.commands.WithLabelValues(typ).Inc()

	c.mu.Lock()
	authenticated, closed := c.authenticated, c.closed
	c.mu.Unlock()
	if closed {
		return false
	}
	if !authenticated && cmd.Connect == nil {
		c.close(DisconnectBadRequest)
		return false
	}
	if !c.limiter.allow(time.Now()) {
		c.limitedInRow++
		if c.limitedInRow > c.node.cfg.CommandBurst {
			c.close(DisconnectTooManyRequests)
			return false
		}
		c.replyError(typ, cmd.Id, ErrorTooManyRequests)
		return true
	}
	c.limitedInRow = 0

	ctx := c.ctx
	var perr *Error
	switch {
	case cmd.Connect != nil:
		if authenticated {
			c.close(DisconnectBadRequest)
			return false
		}
		return c.handleConnect(ctx, cmd.Id, cmd.Connect)
	case cmd.Subscribe != nil:
		perr = c.handleSubscribe(ctx, cmd.Id, cmd.Subscribe)
	case cmd.Unsubscribe != nil:
		perr = c.handleUnsubscribe(ctx, cmd.Id, cmd.Unsubscribe)
	case cmd.Publish != nil:
		perr = c.handlePublish(ctx, cmd.Id, cmd.Publish)
	case cmd.Presence != nil:
		perr = c.handlePresence(ctx, cmd.Id, cmd.Presence)
	case cmd.PresenceStats != nil:
		perr = c.handlePresenceStats(ctx, cmd.Id, cmd.PresenceStats)
	case cmd.History != nil:
		perr = c.handleHistory(ctx, cmd.Id, cmd.History)
	case cmd.Ping != nil:
		c.reply(&protocol.Reply{Id: cmd.Id, Ping: &protocol.PingResult{}})
	case cmd.Rpc != nil:
		perr = c.handleRPC(ctx, cmd.Id, cmd.Rpc)
	case cmd.Refresh != nil:
		return c.handleRefresh(ctx, cmd.Id, cmd.Refresh)
	case cmd.SubRefresh != nil:
		return c.handleSubRefresh(ctx, cmd.Id, cmd.SubRefresh)
	case cmd.Send != nil:
		// Asynchronous messages have no handler: nothing to answer.
	}
	if perr != nil {
		c.replyError(typ, cmd.Id, perr)
	}
	c.mu.Lock()
	closed = c.closed
	c.mu.Unlock()
	return !closed
}

func commandType(cmd *protocol.Command) string {
	switch {
	case cmd.Connect != nil:
		return "connect"
	case cmd.Subscribe != nil:
		return "subscribe"
	case cmd.Unsubscribe != nil:
		return "unsubscribe"
	case cmd.Publish != nil:
		return "publish"
	case cmd.Presence != nil:
		return "presence"
	case cmd.PresenceStats != nil:
		return "presence_stats"
	case cmd.History != nil:
		return "history"
	case cmd.Ping != nil:
		return "ping"
	case cmd.Rpc != nil:
		return "rpc"
	case cmd.Refresh != nil:
		return "refresh"
	case cmd.SubRefresh != nil:
		return "sub_refresh"
	case cmd.Send != nil:
		return "send"
	}
	return ""
}

func (c *Client) reply(r *protocol.Reply) {
	data, err := c.enc.encodeReply(r)
	if err != nil {
		c.node.log.Error("encode reply", "err", err)
		c.close(DisconnectServerError)
		return
	}
	c.enqueue(data)
}

func (c *Client) replyError(typ string, id uint32, e *Error) {
	c.node.metrics.commandErrors.WithLabelValues(typ, codeLabel(e.Code)).Inc()
	if id == 0 {
		return
	}
	c.reply(&protocol.Reply{Id: id, Error: e.toProto()})
}

// enqueue queues a frame, closing the connection as slow when its queue is full.
func (c *Client) enqueue(data []byte) bool {
	if c.queue.push(data) {
		return true
	}
	c.closeSlow()
	return false
}

func (c *Client) closeSlow() {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if !closed {
		c.node.metrics.slowDisconnects.Inc()
		c.close(DisconnectSlow)
		// A writer that is free drops the queue and sends the close frame
		// with 3008, so a phone that is only behind learns why. One blocked
		// on a full socket cannot: cancelling the connection's context a
		// moment later ends that write and the read.
		time.AfterFunc(closeHandshakeTimeout, c.cancel)
	}
}

func (c *Client) handleConnect(ctx context.Context, id uint32, req *protocol.ConnectRequest) bool {
	n := c.node
	var cred Credentials
	switch {
	case req.Token == "" && n.cfg.AllowAnonymous:
	case req.Token == "":
		c.close(DisconnectInvalidToken)
		return false
	case n.cfg.Tokens == nil:
		c.close(DisconnectInvalidToken)
		return false
	default:
		var err error
		cred, err = n.cfg.Tokens.VerifyConnectToken(ctx, req.Token)
		if errors.Is(err, ErrTokenExpired) {
			// The SDK fetches a fresh token and connects again.
			c.replyError("connect", id, ErrorTokenExpired)
			return true
		}
		if errors.Is(err, ErrVerifierUnavailable) {
			n.log.Warn("connect: token could not be checked", "client", c.id, "err", err)
			c.close(DisconnectServerError)
			return false
		}
		if err != nil || (cred.UserID == "" && !n.cfg.AllowAnonymous) {
			n.log.Debug("connect refused", "client", c.id, "err", err)
			c.close(DisconnectInvalidToken)
			return false
		}
		if !cred.ExpireAt.IsZero() && !cred.ExpireAt.After(time.Now()) {
			// Within the verifier's clock leeway but already past: a fresh
			// token is needed, or the connection would close at once.
			c.replyError("connect", id, ErrorTokenExpired)
			return true
		}
	}
	c.mu.Lock()
	c.cred = cred
	c.mu.Unlock()
	if d := n.registerClient(c); d != nil {
		n.log.Debug("connect refused", "client", c.id, "user", cred.UserID, "reason", d.Reason)
		c.close(*d)
		return false
	}
	c.mu.Lock()
	c.authenticated = true
	if c.staleTimer != nil {
		c.staleTimer.Stop()
	}
	c.mu.Unlock()
	c.armExpiry()
	if err := c.setForeground(ctx, true); err != nil {
		n.log.Warn("app state presence failed", "err", err)
	}

	res := &protocol.ConnectResult{
		Client:  c.id,
		Version: n.cfg.Version,
		Ping:    uint32(n.cfg.PingInterval / time.Second),
		Pong:    true,
		Node:    n.id,
		Time:    time.Now().UnixMilli(),
	}
	if ttl, ok := c.ttl(); ok {
		res.Expires, res.Ttl = true, ttl
	}

	// The server subscribes every signed-in connection to its personal
	// channels; the SDK recovers them with the positions it sends back.
	var personal []string
	if cred.UserID != "" {
		for _, ns := range n.namespaces {
			if !ns.Personal {
				continue
			}
			channel := ns.Name + ":#" + cred.UserID
			subReq := &protocol.SubscribeRequest{Channel: channel}
			if r, ok := req.Subs[channel]; ok && r != nil {
				subReq.Recover, subReq.Epoch, subReq.Offset = r.Recover, r.Epoch, r.Offset
			}
			sr, err := c.subscribe(ctx, channel, ns, subReq)
			if err != nil {
				c.replyError("connect", id, toError(err))
				c.close(DisconnectServerError)
				return false
			}
			if res.Subs == nil {
				res.Subs = make(map[string]*protocol.SubscribeResult)
			}
			res.Subs[channel] = sr
			personal = append(personal, channel)
		}
	}
	c.reply(&protocol.Reply{Id: id, Connect: res})
	for _, ch := range personal {
		c.activate(ch)
	}
	return true
}

// ttl returns the seconds until the credentials expire.
func (c *Client) ttl() (uint32, bool) {
	c.mu.Lock()
	exp := c.cred.ExpireAt
	c.mu.Unlock()
	return ttlUntil(exp)
}

// ttlUntil returns the whole seconds until exp, at least one, as the
// protocol's ttl fields carry them; false when exp is zero (never).
func ttlUntil(exp time.Time) (uint32, bool) {
	if exp.IsZero() {
		return 0, false
	}
	d := time.Until(exp)
	if d < time.Second {
		d = time.Second
	}
	return uint32(d / time.Second), true
}

// armExpiry closes the connection when its credentials expire without a
// refresh (3005: the SDK reconnects with a fresh token).
func (c *Client) armExpiry() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expireTimer != nil {
		c.expireTimer.Stop()
		c.expireTimer = nil
	}
	if c.cred.ExpireAt.IsZero() || c.closed {
		return
	}
	// The close waits ExpiredCloseDelay past expiry: the SDK starts its
	// refresh near the end of the token's life and its token request to the
	// app's backend takes time.
	exp := c.cred.ExpireAt
	c.expireTimer = time.AfterFunc(time.Until(exp)+c.node.cfg.ExpiredCloseDelay, func() {
		c.mu.Lock()
		expired := !c.cred.ExpireAt.Add(c.node.cfg.ExpiredCloseDelay).After(time.Now())
		c.mu.Unlock()
		if expired {
			c.close(DisconnectExpired)
		}
	})
}

func (c *Client) handleRefresh(ctx context.Context, id uint32, req *protocol.RefreshRequest) bool {
	n := c.node
	if req.Token == "" || n.cfg.Tokens == nil {
		c.replyError("refresh", id, ErrorBadRequest)
		return true
	}
	cred, err := n.cfg.Tokens.VerifyConnectToken(ctx, req.Token)
	if errors.Is(err, ErrTokenExpired) || (err == nil && !cred.ExpireAt.IsZero() && !cred.ExpireAt.After(time.Now())) {
		c.replyError("refresh", id, ErrorExpired)
		return true
	}
	if err != nil {
		c.close(DisconnectInvalidToken)
		return false
	}
	c.mu.Lock()
	if cred.UserID != c.cred.UserID {
		c.mu.Unlock()
		c.close(DisconnectInvalidToken)
		return false
	}
	c.cred.ExpireAt = cred.ExpireAt
	c.cred.Roles = cred.Roles
	c.cred.Name = cred.Name
	c.mu.Unlock()
	c.armExpiry()
	res := &protocol.RefreshResult{Client: c.id, Version: n.cfg.Version}
	if ttl, ok := c.ttl(); ok {
		res.Expires, res.Ttl = true, ttl
	}
	c.reply(&protocol.Reply{Id: id, Refresh: res})
	return true
}

func (c *Client) handleSubscribe(ctx context.Context, id uint32, req *protocol.SubscribeRequest) *Error {
	n := c.node
	channel := req.Channel
	ns, perr := n.namespace(channel)
	if perr != nil {
		return perr
	}
	c.mu.Lock()
	_, already := c.subs[channel]
	count := len(c.subs)
	cred := c.cred
	c.mu.Unlock()
	if already {
		return ErrorAlreadySubscribed
	}
	if count >= n.cfg.MaxChannelsPerConn {
		return ErrorLimitExceeded.WithMessage("too many subscriptions")
	}
	grant, perr := c.authorizeSubscribe(ctx, ns, channel, req.Token, &cred)
	if perr != nil {
		return perr
	}
	res, err := c.subscribe(ctx, channel, ns, req)
	if err != nil {
		return toError(err)
	}
	if grant.token {
		c.mu.Lock()
		if sub, ok := c.subs[channel]; ok {
			sub.tokenGrant, sub.expireAt = true, grant.expireAt
			c.armSubExpiryLocked(channel, sub)
		}
		c.mu.Unlock()
		if ttl, ok := ttlUntil(grant.expireAt); ok {
			res.Expires, res.Ttl = true, ttl
		}
	}
	c.reply(&protocol.Reply{Id: id, Subscribe: res})
	c.activate(channel)
	return nil
}

// subGrant says how a client subscription was allowed.
type subGrant struct {
	// token is set when a subscription token allowed it; expireAt is then
	// the token's expiry, zero for never.
	token    bool
	expireAt time.Time
}

func (c *Client) authorizeSubscribe(ctx context.Context, ns *NamespaceOptions, channel, token string, cred *Credentials) (subGrant, *Error) {
	n := c.node
	if owner := personalUser(channel); owner != "" || ns.Personal {
		if owner == "" || owner != cred.UserID {
			return subGrant{}, ErrorPermissionDenied
		}
		return subGrant{}, nil
	}
	if cred.UserID == "" && !ns.Anonymous {
		return subGrant{}, ErrorPermissionDenied
	}
	if token != "" {
		if !ns.SubscriptionToken || n.cfg.Tokens == nil {
			return subGrant{}, ErrorPermissionDenied
		}
		exp, err := c.verifySubscribeToken(ctx, channel, token, cred.UserID)
		switch {
		case errors.Is(err, ErrTokenExpired):
			return subGrant{}, ErrorTokenExpired
		case err != nil:
			return subGrant{}, ErrorPermissionDenied
		}
		return subGrant{token: true, expireAt: exp}, nil
	}
	if len(ns.SubscribeRoles) > 0 && !hasAnyRole(cred.Roles, ns.SubscribeRoles) {
		// The roles refuse; the application may still grant this one user
		// this one channel (the buyer of an order, say).
		grant := n.cfg.Hooks.Grant
		if grant == nil {
			return subGrant{}, ErrorPermissionDenied
		}
		ok, err := grant(ctx, c, channel)
		if err != nil {
			return subGrant{}, toError(err)
		}
		if !ok {
			return subGrant{}, ErrorPermissionDenied
		}
	}
	if h := n.cfg.Hooks.OnSubscribe; h != nil {
		if err := h(ctx, c, channel); err != nil {
			return subGrant{}, toError(err)
		}
	}
	return subGrant{}, nil
}

// subscribe registers the subscription as pending and builds its result,
// recovering missed publications when asked. The caller queues the reply and
// then calls activate.
func (c *Client) subscribe(ctx context.Context, channel string, ns *NamespaceOptions, req *protocol.SubscribeRequest) (*protocol.SubscribeResult, error) {
	n := c.node
	sub := &subscription{
		ns:          ns,
		recoverable: ns.keepsHistory() && (ns.ForceRecovery || req.Recoverable || req.Recover),
		joinLeave:   ns.JoinLeave && req.JoinLeave,
		pending:     true,
	}
	if req.Delta != "" {
		if req.Delta != DeltaFossil {
			return nil, ErrorBadRequest.WithMessage("unsupported delta type")
		}
		// Deltas chain publications, so they need the ordered, positioned
		// stream of a recoverable subscription; elsewhere the client gets
		// full data and SubscribeResult.Delta false.
		sub.delta = sub.recoverable && ns.allowsDelta(DeltaFossil)
	}
	c.mu.Lock()
	if _, ok := c.subs[channel]; ok {
		c.mu.Unlock()
		return nil, ErrorAlreadySubscribed
	}
	if len(c.subs) >= n.cfg.MaxChannelsPerConn {
		c.mu.Unlock()
		return nil, ErrorLimitExceeded.WithMessage("too many subscriptions")
	}
	c.subs[channel] = sub
	c.mu.Unlock()
	if err := n.addSubscriber(ctx, channel, c, sub); err != nil {
		c.dropSub(channel)
		return nil, err
	}
	res := &protocol.SubscribeResult{Delta: sub.delta}
	if sub.recoverable {
		res.Recoverable, res.Positioned = true, true
		var (
			pubs []*Publication
			sp   StreamPosition
			err  error
		)
		if req.Recover {
			pubs, sp, err = n.cfg.Broker.History(ctx, channel, HistoryOptions{
				Since: &StreamPosition{Offset: req.Offset, Epoch: req.Epoch},
				Limit: -1,
			})
		} else {
			_, sp, err = n.cfg.Broker.History(ctx, channel, HistoryOptions{})
		}
		if err != nil {
			n.removeSubscriber(context.WithoutCancel(ctx), channel, c)
			c.dropSub(channel)
			return nil, err
		}
		if req.Recover {
			// Recovered means nothing is missing: either the stream has not
			// moved, or history starts right after the client's offset.
			recovered := sp.Epoch == req.Epoch && sp.Offset == req.Offset
			if sp.Epoch == req.Epoch && len(pubs) > 0 {
				recovered = pubs[0].Offset == req.Offset+1
			}
			res.WasRecovering, res.Recovered = true, recovered
			if recovered {
				res.Publications = make([]*protocol.Publication, len(pubs))
				for i, p := range pubs {
					res.Publications[i] = p.toProto()
					if sub.delta && c.enc == encodingJSON {
						// With delta negotiated, centrifuge-js reads every
						// publication's data of the subscription as a string.
						res.Publications[i].Data = jsonString(p.Data)
					}
				}
			}
			n.metrics.recoveries.WithLabelValues(boolLabel(recovered)).Inc()
		}
		res.Epoch, res.Offset = sp.Epoch, sp.Offset
		c.mu.Lock()
		sub.epoch, sub.offset = sp.Epoch, sp.Offset
		c.mu.Unlock()
	}
	if ns.Presence {
		if err := n.cfg.Presence.AddPresence(ctx, channel, c.id, c.clientInfo()); err != nil {
			n.log.Warn("add presence failed", "channel", channel, "err", err)
		}
	}
	if ns.JoinLeave {
		_ = n.cfg.Broker.PublishJoin(ctx, channel, c.clientInfo())
	}
	return res, nil
}

// activate makes a pending subscription live: publications that arrived
// while the subscribe reply was being built are queued now, except those the
// reply already carried or that precede its position.
func (c *Client) activate(channel string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sub, ok := c.subs[channel]
	if !ok || !sub.pending {
		return
	}
	sub.pending = false
	buffered := sub.buffered
	sub.buffered = nil
	for _, b := range buffered {
		if b.joinLeave != nil {
			if data := b.joinLeave.frame(c.enc); data != nil && !c.queue.push(data) {
				go c.closeSlow()
				return
			}
			continue
		}
		data := c.pubFrameLocked(sub, b.frames)
		if data == nil {
			continue
		}
		switch c.admitLocked(sub, b.offset, b.epoch) {
		case admitSkip:
			continue // the reply's position already covers it
		case admitGap:
			return
		}
		c.markSentLocked(sub)
		if !c.queue.push(data) {
			go c.closeSlow()
			return
		}
	}
}

// admission is what to do with a publication for a subscription.
type admission int

const (
	admitQueue admission = iota // the next one: queue it
	admitSkip                   // already delivered or covered: drop it
	admitGap                    // something is missing: the client must recover
)

// admitLocked checks a publication against the subscription's position and
// advances it. On a gap it also closes the connection so the client
// recovers. c.mu must be held.
func (c *Client) admitLocked(sub *subscription, offset uint64, epoch string) admission {
	if !sub.recoverable || offset == 0 {
		return admitQueue
	}
	if epoch == sub.epoch && offset <= sub.offset {
		return admitSkip // already delivered, for example in the subscribe reply
	}
	if epoch != sub.epoch || offset != sub.offset+1 {
		go c.close(DisconnectInsufficientState)
		return admitGap
	}
	sub.offset = offset
	return admitQueue
}

// pubFrameLocked picks the form of a publication this subscription gets:
// the plain push, or for a delta subscription a delta when the client holds
// the previous publication, whole data otherwise. Nil means the publication
// cannot be encoded for this client. c.mu must be held.
func (c *Client) pubFrameLocked(sub *subscription, f *pubFrames) []byte {
	if !sub.delta {
		return f.full(c.enc)
	}
	if sub.deltaReady {
		if d := f.deltaFrame(c.enc); d != nil {
			return d
		}
	}
	return f.fullForDelta(c.enc)
}

// markSentLocked records that the frame picked by pubFrameLocked is being
// queued: from now on the client holds this publication's data, so a delta
// against it can follow. c.mu must be held.
func (c *Client) markSentLocked(sub *subscription) {
	if sub.delta {
		sub.deltaReady = true
	}
}

// deliverPublication queues a publication push; it never blocks.
func (c *Client) deliverPublication(sub *subscription, offset uint64, epoch string, f *pubFrames) {
	c.mu.Lock()
	if sub.removed || c.closed {
		c.mu.Unlock()
		return
	}
	if sub.pending {
		sub.buffered = append(sub.buffered, bufferedPush{offset: offset, epoch: epoch, frames: f})
		c.mu.Unlock()
		return
	}
	if c.admitLocked(sub, offset, epoch) != admitQueue {
		c.mu.Unlock()
		return
	}
	if f.pub.Priority == PriorityLow && c.queue.pending() > c.node.cfg.LowPriorityQueueBytes {
		// Shed: the subscription's position moved on, so the next
		// publication is not taken for a gap; a delta against this one
		// could not be applied, so the next one goes out whole.
		sub.deltaReady = false
		c.mu.Unlock()
		c.node.metrics.shed.Inc()
		return
	}
	data := c.pubFrameLocked(sub, f)
	if data == nil {
		c.mu.Unlock()
		return
	}
	c.markSentLocked(sub)
	ok := c.queue.push(data)
	c.mu.Unlock()
	if !ok {
		c.closeSlow()
	}
}

func (c *Client) deliverJoinLeave(channel string, push *lazyPush) {
	c.mu.Lock()
	sub, ok := c.subs[channel]
	want := ok && sub.joinLeave && !c.closed
	if want && sub.pending {
		// The subscribe reply is not queued yet: the push follows it, as
		// publications do.
		sub.buffered = append(sub.buffered, bufferedPush{joinLeave: push})
		want = false
	}
	c.mu.Unlock()
	if want {
		if data := push.frame(c.enc); data != nil {
			c.enqueue(data)
		}
	}
}

func (c *Client) dropSub(channel string) {
	c.mu.Lock()
	if sub, ok := c.subs[channel]; ok {
		sub.removed = true
		if sub.expireTimer != nil {
			sub.expireTimer.Stop()
		}
	}
	delete(c.subs, channel)
	c.mu.Unlock()
}

func (c *Client) clientInfo() *ClientInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &ClientInfo{ClientID: c.id, UserID: c.cred.UserID, ConnInfo: c.cred.Info}
}

func (c *Client) handleUnsubscribe(ctx context.Context, id uint32, req *protocol.UnsubscribeRequest) *Error {
	c.unsubscribe(ctx, req.Channel)
	c.reply(&protocol.Reply{Id: id, Unsubscribe: &protocol.UnsubscribeResult{}})
	return nil
}

// unsubscribe removes the client from the channel; it is a no-op when the
// client is not subscribed.
func (c *Client) unsubscribe(ctx context.Context, channel string) bool {
	return c.unsubscribeSub(ctx, channel, nil)
}

// unsubscribeSub removes the client from the channel when its subscription
// there is want (any subscription when want is nil).
func (c *Client) unsubscribeSub(ctx context.Context, channel string, want *subscription) bool {
	n := c.node
	c.mu.Lock()
	sub, ok := c.subs[channel]
	if ok && want != nil && sub != want {
		ok = false
	}
	if ok {
		sub.removed = true
		delete(c.subs, channel)
		if sub.expireTimer != nil {
			sub.expireTimer.Stop()
			sub.expireTimer = nil
		}
	}
	c.mu.Unlock()
	if !ok {
		return false
	}
	n.removeSubscriber(ctx, channel, c)
	if sub.ns.Presence {
		if err := n.cfg.Presence.RemovePresence(ctx, channel, c.id, c.UserID()); err != nil {
			n.log.Warn("remove presence failed", "channel", channel, "err", err)
		}
	}
	if sub.ns.JoinLeave {
		_ = n.cfg.Broker.PublishLeave(ctx, channel, c.clientInfo())
	}
	return true
}

func (c *Client) subscribed(channel string) (*subscription, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sub, ok := c.subs[channel]
	return sub, ok
}

func (c *Client) handlePublish(ctx context.Context, id uint32, req *protocol.PublishRequest) *Error {
	n := c.node
	ns, perr := n.namespace(req.Channel)
	if perr != nil {
		return perr
	}
	cred := c.Credentials()
	if !ns.Publish || cred.UserID == "" {
		return ErrorPermissionDenied
	}
	if _, ok := c.subscribed(req.Channel); !ok {
		return ErrorPermissionDenied
	}
	if len(ns.PublishRoles) > 0 && !hasAnyRole(cred.Roles, ns.PublishRoles) {
		return ErrorPermissionDenied
	}
	data := []byte(req.Data)
	if h := n.cfg.Hooks.OnPublish; h != nil {
		var err error
		if data, err = h(ctx, c, req.Channel, data); err != nil {
			return toError(err)
		}
	}
	opts := ns.publishOptions()
	opts.ClientInfo = c.clientInfo()
	if ns.LowPriorityClientPublications {
		opts.Priority = PriorityLow
	}
	if _, _, err := n.cfg.Broker.Publish(ctx, req.Channel, data, opts); err != nil {
		n.metrics.brokerPublishErr.Inc()
		return toError(err)
	}
	c.reply(&protocol.Reply{Id: id, Publish: &protocol.PublishResult{}})
	return nil
}

func (c *Client) handlePresence(ctx context.Context, id uint32, req *protocol.PresenceRequest) *Error {
	n := c.node
	ns, perr := n.namespace(req.Channel)
	if perr != nil {
		return perr
	}
	if !ns.Presence {
		return ErrorNotAvailable
	}
	if _, ok := c.subscribed(req.Channel); !ok {
		return ErrorPermissionDenied
	}
	cred := c.Credentials()
	if len(ns.PresenceRoles) > 0 && !hasAnyRole(cred.Roles, ns.PresenceRoles) {
		return ErrorPermissionDenied
	}
	if h := n.cfg.Hooks.Presence; h != nil {
		ok, err := h(ctx, c, req.Channel)
		if err != nil {
			return toError(err)
		}
		if !ok {
			return ErrorPermissionDenied
		}
	}
	p, err := n.cfg.Presence.Presence(ctx, req.Channel)
	if err != nil {
		return toError(err)
	}
	out := make(map[string]*protocol.ClientInfo, len(p))
	for k, v := range p {
		out[k] = v.toProto()
	}
	c.reply(&protocol.Reply{Id: id, Presence: &protocol.PresenceResult{Presence: out}})
	return nil
}

func (c *Client) handlePresenceStats(ctx context.Context, id uint32, req *protocol.PresenceStatsRequest) *Error {
	n := c.node
	ns, perr := n.namespace(req.Channel)
	if perr != nil {
		return perr
	}
	if !ns.Presence {
		return ErrorNotAvailable
	}
	if _, ok := c.subscribed(req.Channel); !ok {
		return ErrorPermissionDenied
	}
	st, err := n.cfg.Presence.PresenceStats(ctx, req.Channel)
	if err != nil {
		return toError(err)
	}
	c.reply(&protocol.Reply{Id: id, PresenceStats: &protocol.PresenceStatsResult{
		NumClients: uint32(st.NumClients), NumUsers: uint32(st.NumUsers),
	}})
	return nil
}

func (c *Client) handleHistory(ctx context.Context, id uint32, req *protocol.HistoryRequest) *Error {
	n := c.node
	ns, perr := n.namespace(req.Channel)
	if perr != nil {
		return perr
	}
	if !ns.History || !ns.keepsHistory() {
		return ErrorNotAvailable
	}
	if _, ok := c.subscribed(req.Channel); !ok {
		return ErrorPermissionDenied
	}
	pubs, sp, perr := n.history(ctx, req.Channel, int(req.Limit), req.Since, req.Reverse)
	if perr != nil {
		return perr
	}
	c.reply(&protocol.Reply{Id: id, History: &protocol.HistoryResult{Publications: pubs, Epoch: sp.Epoch, Offset: sp.Offset}})
	return nil
}

// history reads a channel's history for a client or the server API, capping
// the limit and refusing a position from another epoch.
func (n *Node) history(ctx context.Context, channel string, limit int, since *protocol.StreamPosition, reverse bool) ([]*protocol.Publication, StreamPosition, *Error) {
	if limit < 0 || limit > n.cfg.HistoryMaxLimit {
		limit = n.cfg.HistoryMaxLimit
	}
	opts := HistoryOptions{Limit: limit, Reverse: reverse}
	if since != nil {
		opts.Since = &StreamPosition{Offset: since.Offset, Epoch: since.Epoch}
	}
	pubs, sp, err := n.cfg.Broker.History(ctx, channel, opts)
	if err != nil {
		return nil, sp, toError(err)
	}
	if since != nil && since.Epoch != sp.Epoch {
		return nil, sp, ErrorUnrecoverablePosition
	}
	out := make([]*protocol.Publication, len(pubs))
	for i, p := range pubs {
		out[i] = p.toProto()
	}
	return out, sp, nil
}

func (c *Client) handleRPC(ctx context.Context, id uint32, req *protocol.RPCRequest) *Error {
	h, ok := c.node.cfg.Hooks.RPC[req.Method]
	if req.Method == AppStateMethod {
		h, ok = func(ctx context.Context, c *Client, data []byte) ([]byte, error) { return c.handleAppState(ctx, data) }, true
	}
	if !ok {
		return ErrorMethodNotFound
	}
	data, err := h(ctx, c, req.Data)
	if err != nil {
		return toError(err)
	}
	c.reply(&protocol.Reply{Id: id, Rpc: &protocol.RPCResult{Data: data}})
	return nil
}

// refreshPresence re-adds the client's presence entries before they expire.
func (c *Client) refreshPresence(ctx context.Context) {
	c.mu.Lock()
	if c.closed || !c.authenticated {
		c.mu.Unlock()
		return
	}
	var channels []string
	for ch, sub := range c.subs {
		if sub.ns.Presence {
			channels = append(channels, ch)
		}
	}
	if c.foreground && c.cred.UserID != "" {
		channels = append(channels, foregroundChannel(c.cred.UserID))
	}
	c.mu.Unlock()
	info := c.clientInfo()
	for _, ch := range channels {
		if err := c.node.cfg.Presence.AddPresence(ctx, ch, c.id, info); err != nil {
			c.node.log.Warn("refresh presence failed", "channel", ch, "err", err)
			return
		}
	}
}

// close starts closing the connection with d; it is idempotent and never
// blocks. The writer sends what is queued when d lets the client reconnect
// cleanly, then the close frame.
func (c *Client) close(d Disconnect) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.disconnect = d
	if c.expireTimer != nil {
		c.expireTimer.Stop()
	}
	if c.staleTimer != nil {
		c.staleTimer.Stop()
	}
	if c.pingTimer != nil {
		c.pingTimer.Stop()
		c.pongTimer.Stop()
	}
	for _, sub := range c.subs {
		if sub.expireTimer != nil {
			sub.expireTimer.Stop()
			sub.expireTimer = nil
		}
	}
	c.mu.Unlock()
	c.node.metrics.disconnects.WithLabelValues(codeLabel(d.Code)).Inc()
	c.queue.close()
}

// cleanup removes the closed client from the node, its channels and presence.
func (c *Client) cleanup() {
	n := c.node
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The client is closed, so no subscription expiry starts any more; one
	// already under way finishes before the subscriptions are removed.
	c.expiring.Wait()
	c.mu.Lock()
	channels := make([]string, 0, len(c.subs))
	for ch := range c.subs {
		channels = append(channels, ch)
	}
	c.mu.Unlock()
	for _, ch := range channels {
		c.unsubscribe(ctx, ch)
	}
	c.mu.Lock()
	wasAuthenticated := c.authenticated
	c.mu.Unlock()
	if wasAuthenticated {
		if err := c.setForeground(ctx, false); err != nil {
			n.log.Warn("app state presence failed", "err", err)
		}
	}
	n.unregisterClient(c)
	c.cancel()
	if h := n.cfg.Hooks.OnDisconnect; h != nil {
		h(c)
	}
}

// runWriter is a writer goroutine: started by the push that finds none
// running, it owns every write to the socket, drains the queue into batched
// WebSocket messages and ends when the queue is empty. The one that finds
// the queue closed sends the close frame and is the connection's last.
func (c *Client) runWriter() {
	n := c.node
	var arr [16][]byte
	batch := arr[:0]
	for {
		var closed, idle bool
		batch, closed, idle = c.queue.next(batch[:0], n.cfg.MaxBatchBytes)
		if idle {
			return
		}
		if closed {
			c.mu.Lock()
			d := c.disconnect
			c.mu.Unlock()
			if flushBeforeClose(d) {
				for len(batch) > 0 {
					if err := c.writeBatch(batch); err != nil {
						break
					}
					clear(batch)
					batch = c.queue.take(batch[:0], n.cfg.MaxBatchBytes)
				}
			}
			clear(batch)
			c.shut(d)
			close(c.writerDone)
			return
		}
		if err := c.writeBatch(batch); err != nil {
			clear(batch)
			c.close(DisconnectWriteError)
			c.conn.CloseNow()
			close(c.writerDone)
			return
		}
		clear(batch)
	}
}

// flushBeforeClose reports whether queued frames are still worth sending
// before the close frame.
func flushBeforeClose(d Disconnect) bool {
	switch d.Code {
	case DisconnectSlow.Code, DisconnectWriteError.Code, DisconnectNoPong.Code, DisconnectConnectionClosed.Code:
		return false
	}
	return true
}

// shut sends the close frame with the disconnect's code and reason; the peer
// answers and the reader goroutine ends.
func (c *Client) shut(d Disconnect) {
	if d.Code == DisconnectConnectionClosed.Code {
		c.conn.CloseNow()
		return
	}
	// Close sends the close frame and waits for the peer's; a peer that does
	// not read (a slow one) is cut after closeHandshakeTimeout so its
	// goroutines do not linger.
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.conn.Close(websocket.StatusCode(d.Code), d.Reason)
	}()
	t := time.NewTimer(closeHandshakeTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		c.conn.CloseNow()
		<-done
	}
}

var errWriteTimeout = errors.New("write timed out")

// batchBuffers hold the messages writers build from several frames; shared,
// so an idle connection keeps no buffer of its own.
var batchBuffers = sync.Pool{New: func() any { return new([]byte) }}

// closeHandshakeTimeout bounds the wait for a peer's close frame.
const closeHandshakeTimeout = time.Second

func (c *Client) writeBatch(batch [][]byte) error {
	n := c.node
	// A batch is built into one buffer and written with one call, so the
	// compression threshold applies to the whole message. A lone JSON frame
	// is the message as it is: no copy.
	var buf []byte
	if len(batch) == 1 && c.enc == encodingJSON {
		buf = batch[0]
	} else {
		bp := batchBuffers.Get().(*[]byte)
		defer func() {
			if cap(buf) <= 4*n.cfg.MaxBatchBytes {
				*bp = buf[:0]
				batchBuffers.Put(bp)
			}
		}()
		buf = (*bp)[:0]
		for i, f := range batch {
			buf = c.enc.appendFrame(buf, i == 0, f)
		}
	}
	// No context: a write ends when it is done, when the deadline timer
	// cuts the socket, or when the reader's context is cancelled (a slow
	// client, shutdown), which closes the socket too.
	c.writeDeadline.Reset(n.cfg.WriteTimeout)
	err := c.conn.Write(context.Background(), c.enc.messageType(), buf)
	if !c.writeDeadline.Stop() && err == nil {
		// The deadline fired as the write finished: the socket is cut.
		err = errWriteTimeout
	}
	if err != nil {
		return err
	}
	n.metrics.framesOut.Inc()
	n.metrics.messagesOut.Add(float64(len(batch)))
	n.metrics.bytesOut.Add(float64(len(buf)))
	return nil
}
