package redisengine

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livehub/livehub/hub"
	"github.com/redis/go-redis/v9"
)

// controlKey is the group key of the control subscriber; shard and slot keys
// are never negative.
const controlKey = -1

var (
	errStopped          = errors.New("broker stopped")
	errSubscribeTimeout = errors.New("subscription not confirmed in time")
)

// Run delivers the events of the subscribed channels and the control
// messages to h until ctx is done or Close is called, then closes the pub/sub
// connections and returns nil once every goroutine it started has stopped.
// It may be called once. Channels subscribed before Run are subscribed when
// it starts.
//
// Each pub/sub connection is read by one goroutine that calls h in arrival
// order, so the events of one channel reach h in publication order. A lost
// connection is re-established by itself, with backoff, and its channels are
// subscribed again (see Options.OnResubscribe). Because h runs on those
// goroutines, it must not wait on Subscribe of this engine: the confirmation
// it waits for is read by the goroutine it holds up.
func (e *Engine) Run(ctx context.Context, h hub.BrokerEventHandler) error {
	e.subMu.Lock()
	if e.state != notRunning {
		e.subMu.Unlock()
		return errors.New("redisengine: Run called twice or after Close")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	e.state, e.handler, e.runCtx, e.stopRun = running, h, ctx, cancel
	e.control = e.newSubscriberLocked(controlKey)
	// Errors are left to the reader: go-redis keeps the channel and
	// subscribes it again when it reconnects.
	e.control.add(e.keys.control(), "", false)
	_ = e.control.send(ctx, e.keys.control(), nil)
	for ch := range e.subs {
		rc := e.keys.pubsub(ch)
		g := e.groupLocked(rc)
		g.add(rc, ch, false)
		_ = g.send(ctx, rc, nil)
	}
	e.wg.Add(1)
	go e.healthLoop(ctx)
	e.subMu.Unlock()

	<-ctx.Done()

	e.subMu.Lock()
	e.state = stopped
	all := make([]*subscriber, 0, len(e.groups)+1)
	all = append(all, e.control)
	for _, s := range e.groups {
		all = append(all, s)
	}
	clear(e.groups)
	e.subMu.Unlock()
	for _, s := range all {
		s.close()
	}
	e.wg.Wait()
	close(e.runDone)
	return nil
}

// Subscribe makes this node receive the channel's events. While Run runs it
// returns once Redis confirmed the subscription, so a publication made after
// Subscribe returns is delivered; before Run it only records the channel.
func (e *Engine) Subscribe(ctx context.Context, channel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rc := e.keys.pubsub(channel)
	e.subMu.Lock()
	if _, ok := e.subs[channel]; ok {
		e.subMu.Unlock()
		return nil
	}
	switch e.state {
	case stopped:
		e.subMu.Unlock()
		return fmt.Errorf("redisengine: subscribe: %w: %w", hub.ErrUnavailable, errStopped)
	case notRunning:
		e.subs[channel] = struct{}{}
		e.subMu.Unlock()
		return nil
	}
	e.subs[channel] = struct{}{}
	s := e.groupLocked(rc)
	// Added under e.subMu, so an Unsubscribe of another channel of the group
	// in the meantime does not find it empty and close it.
	confirmed := s.add(rc, channel, true)
	e.subMu.Unlock()

	err := s.send(ctx, rc, confirmed)
	if err == nil {
		return nil
	}
	// Forget the channel so that the next Subscribe tries again, and so a
	// reconnect does not subscribe a channel the hub thinks it does not have.
	undoCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.Timeout)
	defer cancel()
	_ = e.unsubscribe(undoCtx, channel, rc)
	return e.wrap(ctx, "subscribe", err)
}

// Unsubscribe stops the channel's events to this node.
func (e *Engine) Unsubscribe(ctx context.Context, channel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return e.wrap(ctx, "unsubscribe", e.unsubscribe(ctx, channel, e.keys.pubsub(channel)))
}

func (e *Engine) unsubscribe(ctx context.Context, channel, rc string) error {
	e.subMu.Lock()
	if _, ok := e.subs[channel]; !ok {
		e.subMu.Unlock()
		return nil
	}
	delete(e.subs, channel)
	if e.state != running {
		e.subMu.Unlock()
		return nil
	}
	key := e.groupKey(rc)
	s := e.groups[key]
	if s == nil {
		e.subMu.Unlock()
		return nil
	}
	empty := s.forget(rc)
	// A cluster node holds a connection per slot in use; one left without
	// channels is closed, which also drops its subscription.
	drop := e.cluster != nil && empty
	if drop {
		delete(e.groups, key)
	}
	e.subMu.Unlock()
	if drop {
		s.close()
		return nil
	}
	return s.unsubscribe(ctx, rc)
}

// groupKey spreads channels over connections: by slot on Redis Cluster,
// because go-redis sends all of a connection's shard channels in one
// SSUBSCRIBE when it reconnects and that must not cross slots; by a hash of
// the name over PubSubShards elsewhere.
func (e *Engine) groupKey(rc string) int {
	if e.cluster != nil {
		return keySlot(rc)
	}
	if e.opts.PubSubShards == 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(rc))
	return int(h.Sum32() % uint32(e.opts.PubSubShards))
}

// groupLocked returns the subscriber for rc, creating it. e.subMu must be
// held and the engine running.
func (e *Engine) groupLocked(rc string) *subscriber {
	key := e.groupKey(rc)
	s, ok := e.groups[key]
	if !ok {
		s = e.newSubscriberLocked(key)
		e.groups[key] = s
	}
	return s
}

// newSubscriberLocked creates a subscriber and starts its reader, which
// waits for the first subscribe so the connection goes to the right node.
// e.subMu must be held and the engine running.
func (e *Engine) newSubscriberLocked(key int) *subscriber {
	s := &subscriber{
		e:        e,
		key:      key,
		control:  key == controlKey,
		sharded:  key != controlKey && e.cluster != nil,
		channels: make(map[string]string),
		waiters:  make(map[string][]chan struct{}),
		unsubs:   make(map[string]int),
		ready:    make(chan struct{}),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	s.ps = s.newPubSub()
	s.lastSeen.Store(time.Now().UnixNano())
	e.wg.Add(1)
	go s.read(e.runCtx)
	return s
}

// subscriber is one Redis pub/sub connection and the goroutine reading it.
type subscriber struct {
	e       *Engine
	key     int
	control bool // carries the control channel
	sharded bool // SSUBSCRIBE rather than SUBSCRIBE

	// opMu serializes the commands written on the connection with the
	// replacement of the connection, so none is written to a closed one.
	opMu sync.Mutex

	mu       sync.Mutex
	ps       *redis.PubSub
	channels map[string]string          // Redis channel -> hub channel
	waiters  map[string][]chan struct{} // subscriptions awaiting confirmation
	// unsubs counts our own SUNSUBSCRIBEs not yet answered, so that their
	// replies are not taken for Redis dropping a channel whose slot moved.
	unsubs map[string]int
	closed bool

	readyOnce sync.Once
	ready     chan struct{} // closed after the first subscribe
	done      chan struct{} // closed by close
	// wake cuts the reader's reconnect backoff short when a subscribe got
	// through, so its confirmation is read without delay.
	wake chan struct{}

	lastSeen    atomic.Int64 // Unix nanoseconds of the last thing read
	pingSent    atomic.Int64 // Unix nanoseconds of the last unanswered ping
	dispatching atomic.Bool  // the handler is running; the connection is not idle
}

func (s *subscriber) newPubSub() *redis.PubSub {
	// Created without channels, a PubSub connects on its first
	// (S)SUBSCRIBE, and go-redis routes that by the channel's slot.
	if s.sharded {
		return s.e.cluster.SSubscribe(context.Background())
	}
	return s.e.client.Subscribe(context.Background())
}

func (s *subscriber) pubsub() *redis.PubSub {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ps
}

// add records the channel and, with wait, returns a channel closed when
// Redis confirms its subscription.
func (s *subscriber) add(rc, channel string, wait bool) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels[rc] = channel
	if !wait {
		return nil
	}
	confirmed := make(chan struct{})
	s.waiters[rc] = append(s.waiters[rc], confirmed)
	return confirmed
}

// send writes the subscription of a channel added before and, when
// confirmed is not nil, waits until Redis confirms it.
func (s *subscriber) send(ctx context.Context, rc string, confirmed chan struct{}) error {
	s.opMu.Lock()
	err := errStopped
	if !s.isDone() {
		err = s.write(ctx, s.pubsub(), true, rc)
	}
	s.opMu.Unlock()
	s.readyOnce.Do(func() { close(s.ready) })
	if err == nil {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	if confirmed == nil {
		return err
	}
	if err != nil {
		s.dropWaiter(rc, confirmed)
		return err
	}
	timer := time.NewTimer(s.e.opts.Timeout)
	defer timer.Stop()
	select {
	case <-confirmed:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = errSubscribeTimeout
	case <-s.done:
		err = errStopped
	}
	s.dropWaiter(rc, confirmed)
	return err
}

// forget removes the channel and reports whether none is left.
func (s *subscriber) forget(rc string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.channels, rc)
	return len(s.channels) == 0
}

func (s *subscriber) unsubscribe(ctx context.Context, rc string) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.sharded {
		// Counted before the write: the reply may be read before it returns.
		s.mu.Lock()
		s.unsubs[rc]++
		s.mu.Unlock()
	}
	err := s.write(ctx, s.pubsub(), false, rc)
	if err != nil && s.sharded {
		s.ownUnsubscribe(rc)
	}
	return err
}

// ownUnsubscribe reports whether an sunsubscribe reply answers our own
// SUNSUBSCRIBE, consuming it.
func (s *subscriber) ownUnsubscribe(rc string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unsubs[rc] == 0 {
		return false
	}
	if s.unsubs[rc]--; s.unsubs[rc] == 0 {
		delete(s.unsubs, rc)
	}
	return true
}

// write sends (S)SUBSCRIBE or (S)UNSUBSCRIBE. go-redis records the channels
// even when the write fails and subscribes them when it reconnects.
func (s *subscriber) write(ctx context.Context, ps *redis.PubSub, sub bool, channels ...string) error {
	switch {
	case sub && s.sharded:
		return ps.SSubscribe(ctx, channels...)
	case sub:
		return ps.Subscribe(ctx, channels...)
	case s.sharded:
		return ps.SUnsubscribe(ctx, channels...)
	default:
		return ps.Unsubscribe(ctx, channels...)
	}
}

func (s *subscriber) dropWaiter(rc string, w chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := s.waiters[rc]
	for i, c := range ws {
		if c == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(s.waiters, rc)
	} else {
		s.waiters[rc] = ws
	}
}

func (s *subscriber) confirm(rc string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.waiters[rc] {
		close(w)
	}
	delete(s.waiters, rc)
}

// close stops the reader and closes the connection. Safe to call twice.
func (s *subscriber) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	ps := s.ps
	s.mu.Unlock()
	_ = ps.Close()
}

func (s *subscriber) isDone() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// replace closes the connection and opens a new one with the same channels,
// for a connection that stopped answering or whose slot moved to another
// node. The channels are subscribed before the new PubSub is published to
// the reader, so its first read cannot connect to a node chosen without them.
func (s *subscriber) replace(ctx context.Context) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	channels := make([]string, 0, len(s.channels))
	for rc := range s.channels {
		channels = append(channels, rc)
	}
	s.mu.Unlock()

	next := s.newPubSub()
	if len(channels) > 0 {
		// A failure is left to the reader, which reconnects.
		_ = s.write(ctx, next, true, channels...)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = next.Close()
		return
	}
	prev := s.ps
	s.ps = next
	clear(s.unsubs) // their replies went with the old connection
	s.mu.Unlock()
	s.pingSent.Store(0)
	s.lastSeen.Store(time.Now().UnixNano())
	_ = prev.Close()
}

// read is the subscriber's goroutine: it receives from the connection and
// hands each event to the handler before reading the next.
func (s *subscriber) read(ctx context.Context) {
	defer s.e.wg.Done()
	select {
	case <-s.ready:
	case <-s.done:
		return
	}
	var (
		lost    bool
		backoff time.Duration
		cur     *redis.PubSub
	)
	for {
		if s.isDone() || ctx.Err() != nil {
			return
		}
		ps := s.pubsub()
		if cur != nil && ps != cur {
			// replace gave up on the connection: what was published
			// meanwhile is lost even if the old one still yielded replies.
			lost = true
		}
		cur = ps
		msg, err := ps.Receive(ctx)
		if err != nil {
			if s.isDone() || ctx.Err() != nil {
				return
			}
			if ps != s.pubsub() {
				// replace closed it under us; the loss is already logged.
				lost = true
				continue
			}
			var rerr redis.Error
			if errors.As(err, &rerr) {
				// A reply to a command on a working connection, such as
				// MOVED to an SSUBSCRIBE after the slot moved.
				s.serverError(ctx, rerr, &lost)
				continue
			}
			if !lost {
				lost = true
				s.e.log.Warn("redis pub/sub connection lost; reconnecting", "error", err, "control", s.control, "channels", s.count())
			}
			// go-redis redials on the next Receive; pace the attempts.
			backoff = min(max(2*backoff, 50*time.Millisecond), time.Second)
			if !s.sleep(ctx, backoff) {
				return
			}
			continue
		}
		backoff = 0
		s.lastSeen.Store(time.Now().UnixNano())
		s.pingSent.Store(0)
		switch m := msg.(type) {
		case *redis.Message:
			s.dispatching.Store(true)
			s.dispatch(m)
			s.dispatching.Store(false)
			s.lastSeen.Store(time.Now().UnixNano())
		case *redis.Subscription:
			switch m.Kind {
			case "subscribe", "ssubscribe":
				s.confirm(m.Channel)
			case "sunsubscribe":
				// Redis drops the shard channels of a slot that moved to
				// another master. A channel still wanted moves with it.
				if !s.ownUnsubscribe(m.Channel) && s.wants(m.Channel) {
					s.e.log.Info("redis shard channel slot moved; resubscribing", "slot", s.key)
					s.e.cluster.ReloadState(ctx)
					s.replace(ctx)
					lost = true
					continue
				}
			}
			if lost {
				lost = false
				s.recovered()
			}
		case *redis.Pong:
			if lost {
				lost = false
				s.recovered()
			}
		}
	}
}

func (s *subscriber) serverError(ctx context.Context, err redis.Error, lost *bool) {
	msg := err.Error()
	if s.sharded && (strings.HasPrefix(msg, "MOVED") || strings.HasPrefix(msg, "ASK")) {
		s.e.log.Info("redis shard channel slot moved; resubscribing", "slot", s.key)
		s.e.cluster.ReloadState(ctx)
		if !s.sleep(ctx, 100*time.Millisecond) {
			return
		}
		s.replace(ctx)
		*lost = true
		return
	}
	s.e.log.Warn("redis pub/sub error reply", "error", err)
}

// sleep waits d and reports whether the subscriber should go on.
func (s *subscriber) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.wake:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}

func (s *subscriber) wants(rc string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.channels[rc]
	return ok
}

func (s *subscriber) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.channels)
}

// recovered reports a re-established connection: logged, and for channel
// connections passed on to OnResubscribe and a ResubscribeHandler.
func (s *subscriber) recovered() {
	s.mu.Lock()
	channels := make([]string, 0, len(s.channels))
	for _, ch := range s.channels {
		channels = append(channels, ch)
	}
	s.mu.Unlock()
	s.e.log.Info("redis pub/sub connection re-established", "control", s.control, "channels", len(channels))
	if s.control || len(channels) == 0 {
		return
	}
	if f := s.e.opts.OnResubscribe; f != nil {
		f(channels)
	}
	if rh, ok := s.e.handler.(ResubscribeHandler); ok {
		rh.HandleResubscribe(channels)
	}
}

// dispatch decodes one message and calls the handler.
func (s *subscriber) dispatch(m *redis.Message) {
	h := s.e.handler
	if s.control {
		_ = h.HandleControl([]byte(m.Payload))
		return
	}
	s.mu.Lock()
	channel, ok := s.channels[m.Channel]
	s.mu.Unlock()
	if !ok || m.Payload == "" {
		// Unsubscribed while the message was on its way.
		return
	}
	var err error
	switch m.Payload[0] {
	case kindPublication:
		var sp hub.StreamPosition
		var body string
		if sp, body, err = parsePublicationMessage(m.Payload[1:]); err == nil {
			var pub *hub.Publication
			if pub, err = decodePublication([]byte(body)); err == nil {
				pub.Offset = sp.Offset
				_ = h.HandlePublication(channel, pub, sp)
			}
		}
	case kindJoin, kindLeave:
		var info *hub.ClientInfo
		if info, err = decodeClientInfo([]byte(m.Payload[1:])); err == nil {
			if m.Payload[0] == kindJoin {
				_ = h.HandleJoin(channel, info)
			} else {
				_ = h.HandleLeave(channel, info)
			}
		}
	default:
		err = errMalformed
	}
	if err != nil {
		s.e.malformed(channel, err)
	}
}

// malformed logs undecodable messages, the first and then one in a
// thousand: they mean a bug or a foreign publisher, and one line per
// message could flood the log.
func (e *Engine) malformed(channel string, err error) {
	if n := e.malformedCount.Add(1); n == 1 || n%1000 == 0 {
		e.log.Error("undecodable message on a redis channel", "channel", channel, "error", err, "count", n)
	}
}

// healthLoop pings idle pub/sub connections. A connection whose peer
// vanished without closing it (a partition, a frozen server) reads nothing
// and fails nothing; when a ping gets no answer within Timeout the
// connection is replaced.
func (e *Engine) healthLoop(ctx context.Context) {
	defer e.wg.Done()
	interval := e.opts.Timeout
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.subMu.Lock()
		all := make([]*subscriber, 0, len(e.groups)+1)
		all = append(all, e.control)
		for _, s := range e.groups {
			all = append(all, s)
		}
		e.subMu.Unlock()
		for _, s := range all {
			s.checkHealth(ctx, interval)
		}
	}
}

func (s *subscriber) checkHealth(ctx context.Context, interval time.Duration) {
	select {
	case <-s.ready:
	default:
		return
	}
	now := time.Now().UnixNano()
	if s.dispatching.Load() || now-s.lastSeen.Load() < int64(interval) {
		// A slow handler keeps the reader from reading the pong; that is
		// no sign of a dead connection.
		return
	}
	if sent := s.pingSent.Load(); sent != 0 {
		if now-sent >= int64(interval) {
			s.e.log.Warn("redis pub/sub connection does not answer; reconnecting", "control", s.control, "channels", s.count())
			s.replace(ctx)
		}
		return
	}
	pctx, cancel := context.WithTimeout(ctx, interval)
	defer cancel()
	if err := s.pubsub().Ping(pctx); err == nil {
		s.pingSent.Store(time.Now().UnixNano())
	}
}
