package hub

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/centrifugal/protocol"
)

// Node is one LiveHub hub process: it holds the local connections and their
// subscriptions, fans publications from the broker out to them, and serves
// the server API. Many nodes share channels through a distributed engine.
type Node struct {
	cfg        Config
	id         string
	namespaces map[string]*NamespaceOptions
	metrics    *metrics
	log        loggerish
	startedAt  time.Time

	subShards [subShardCount]subShard
	// chanLocks serialise subscribe and unsubscribe of one channel, so the
	// first local subscriber's broker subscription is in place before a second
	// subscriber reads history.
	chanLocks [256]sync.Mutex

	clientsMu sync.RWMutex
	clients   map[string]*Client
	users     map[string]map[*Client]struct{}

	// clientWG counts connection goroutines so shutdown can wait for them.
	clientWG sync.WaitGroup
	// bgWG counts the node's own goroutines; taskWG the short tasks it
	// starts for control messages.
	bgWG   sync.WaitGroup
	taskWG sync.WaitGroup

	// connMu orders acquireConn against the start of a shutdown, so no
	// connection is counted after Shutdown began waiting for them.
	connMu sync.Mutex

	resubMu      sync.Mutex
	resubPending map[string]struct{}
	resubReady   chan struct{}

	runCtx    context.Context
	runCancel context.CancelFunc
	running   atomic.Bool
	draining  atomic.Bool
	closeOnce sync.Once
	brokerErr chan error
}

const subShardCount = 64

type subShard struct {
	mu sync.RWMutex
	// channels maps each channel to its local subscribers and their
	// subscriptions, so a delivery needs no lookup in the client.
	channels map[string]map[*Client]*subscription

	// prevMu guards prev, the last publication of each channel of a delta
	// namespace with local subscribers: the base of the next delta. It is
	// taken with mu held (read or write), never the other way round.
	prevMu sync.Mutex
	prev   map[string]prevPub
}

// prevPub is a channel's last publication as the base of a delta.
type prevPub struct {
	epoch  string
	offset uint64
	data   []byte
}

// swapPrev records pub as the channel's last publication and returns the
// data of the one before it when it immediately precedes pub in the stream
// (nil otherwise: nothing to diff against). s.mu must be held.
func (s *subShard) swapPrev(channel string, pub *Publication, epoch string) []byte {
	s.prevMu.Lock()
	defer s.prevMu.Unlock()
	old, ok := s.prev[channel]
	if pub.Offset == 0 {
		// Not a stream: no order to chain deltas on.
		delete(s.prev, channel)
		return nil
	}
	s.prev[channel] = prevPub{epoch: epoch, offset: pub.Offset, data: pub.Data}
	if ok && old.epoch == epoch && old.offset+1 == pub.Offset {
		return old.data
	}
	return nil
}

// dropPrev forgets a channel's delta base once it has no local subscriber.
// s.mu must be held for writing.
func (s *subShard) dropPrev(channel string) {
	s.prevMu.Lock()
	delete(s.prev, channel)
	s.prevMu.Unlock()
}

// New returns a Node; call Run to start it.
func New(cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name, _ = os.Hostname()
	}
	n := &Node{
		cfg:        cfg,
		id:         newID(),
		namespaces: make(map[string]*NamespaceOptions, len(cfg.Namespaces)),
		metrics:    newMetrics(cfg.Registerer),
		log:        cfg.Logger,
		startedAt:  time.Now(),
		clients:    make(map[string]*Client),
		users:      make(map[string]map[*Client]struct{}),
		brokerErr:  make(chan error, 1),

		resubPending: make(map[string]struct{}),
		resubReady:   make(chan struct{}, 1),
	}
	for i := range cfg.Namespaces {
		ns := cfg.Namespaces[i]
		n.namespaces[ns.Name] = &ns
	}
	for i := range n.subShards {
		n.subShards[i].channels = make(map[string]map[*Client]*subscription)
		n.subShards[i].prev = make(map[string]prevPub)
	}
	n.runCtx, n.runCancel = context.WithCancel(context.Background())
	return n, nil
}

type loggerish interface {
	Info(msg string, args ...any)
	Warn(msg string, args ...any)
	Error(msg string, args ...any)
	Debug(msg string, args ...any)
}

func newID() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ID is the node's unique id in the cluster.
func (n *Node) ID() string { return n.id }

// Run starts the broker and the node's background work. It returns once the
// broker delivers events; the node runs until Shutdown.
func (n *Node) Run() error {
	if !n.running.CompareAndSwap(false, true) {
		return errors.New("hub: node already running")
	}
	n.bgWG.Add(1)
	go func() {
		defer n.bgWG.Done()
		if err := n.cfg.Broker.Run(n.runCtx, n); err != nil && n.runCtx.Err() == nil {
			n.log.Error("broker stopped", "err", err)
			n.brokerErr <- err
		}
	}()
	n.bgWG.Add(3)
	go func() { defer n.bgWG.Done(); n.reportLoop() }()
	go func() { defer n.bgWG.Done(); n.presenceLoop() }()
	go func() { defer n.bgWG.Done(); n.resubscribeLoop() }()
	n.reportNode()
	return nil
}

// BrokerErr delivers the broker's error if it stops for good.
func (n *Node) BrokerErr() <-chan error { return n.brokerErr }

// Shutdown stops the node: it refuses new connections, tells every client to
// reconnect elsewhere (3001 shutdown) spreading the closes over the
// configured grace period, waits for connections to drain, then stops the
// broker. It is safe to call more than once; later calls wait for the same end.
func (n *Node) Shutdown(ctx context.Context) error {
	var err error
	n.closeOnce.Do(func() {
		n.connMu.Lock()
		// Under clientsMu too: a connect registering now either lands in
		// the snapshot below or sees draining and is refused.
		n.clientsMu.Lock()
		n.draining.Store(true)
		n.clientsMu.Unlock()
		n.connMu.Unlock()
		n.closeClientsSpread(ctx, n.cfg.ShutdownGrace, DisconnectShutdown)
		done := make(chan struct{})
		go func() { n.clientWG.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			// Out of patience: cut what is left.
			for _, c := range n.snapshotClients() {
				c.conn.CloseNow()
			}
			<-done
			err = ctx.Err()
		}
		n.taskWG.Wait()
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = n.cfg.Registry.RemoveNode(rctx, n.id)
		cancel()
		n.runCancel()
		n.bgWG.Wait()
	})
	return err
}

// acquireConn counts a new connection unless the node is draining.
func (n *Node) acquireConn() bool {
	n.connMu.Lock()
	defer n.connMu.Unlock()
	if n.draining.Load() {
		return false
	}
	n.clientWG.Add(1)
	return true
}

// goTracked runs f on a goroutine that Shutdown waits for; once the node
// drains, f is not run.
func (n *Node) goTracked(f func()) {
	n.connMu.Lock()
	defer n.connMu.Unlock()
	if n.draining.Load() {
		return
	}
	n.taskWG.Add(1)
	go func() {
		defer n.taskWG.Done()
		f()
	}()
}

// Draining reports whether the node is shutting down; /readyz uses it so the
// load balancer stops sending new sockets.
func (n *Node) Draining() bool { return n.draining.Load() }

func (n *Node) snapshotClients() []*Client {
	n.clientsMu.RLock()
	defer n.clientsMu.RUnlock()
	out := make([]*Client, 0, len(n.clients))
	for _, c := range n.clients {
		out = append(out, c)
	}
	return out
}

// closeClientsSpread closes every connection with d, spread evenly over
// grace with jitter, and returns when all closes were started.
func (n *Node) closeClientsSpread(ctx context.Context, grace time.Duration, d Disconnect) {
	clients := n.snapshotClients()
	if len(clients) == 0 {
		return
	}
	rand.Shuffle(len(clients), func(i, j int) { clients[i], clients[j] = clients[j], clients[i] })
	// Client i closes at a fixed point of the schedule, jittered within its
	// slot. Sleeping a gap between closes instead would add every wake-up's
	// delay to the total and overrun the grace on a busy machine.
	step := grace / time.Duration(len(clients))
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i, c := range clients {
		if step > 0 && ctx.Err() == nil {
			at := start.Add(time.Duration(i)*step + rand.N(step))
			if wait := time.Until(at); wait > 0 {
				timer.Reset(wait)
				select {
				case <-timer.C:
				case <-ctx.Done():
				}
			}
		}
		c.close(d)
	}
}

func (n *Node) reportLoop() {
	t := time.NewTicker(n.cfg.NodeInfoInterval)
	defer t.Stop()
	for {
		select {
		case <-n.runCtx.Done():
			return
		case <-t.C:
			n.reportNode()
		}
	}
}

func (n *Node) reportNode() {
	ctx, cancel := context.WithTimeout(n.runCtx, n.cfg.NodeInfoInterval)
	defer cancel()
	if err := n.cfg.Registry.UpdateNode(ctx, n.Info(), 4*n.cfg.NodeInfoInterval); err != nil && n.runCtx.Err() == nil {
		n.log.Warn("node registry update failed", "err", err)
	}
}

// Info returns this node's figures.
func (n *Node) Info() NodeInfo {
	n.clientsMu.RLock()
	clients, users := len(n.clients), len(n.users)
	n.clientsMu.RUnlock()
	subs, channels := 0, 0
	for i := range n.subShards {
		s := &n.subShards[i]
		s.mu.RLock()
		channels += len(s.channels)
		for _, m := range s.channels {
			subs += len(m)
		}
		s.mu.RUnlock()
	}
	return NodeInfo{
		ID: n.id, Name: n.cfg.Name, Version: n.cfg.Version,
		NumClients: clients, NumUsers: users, NumSubs: subs, NumChannels: channels,
		Uptime: int64(time.Since(n.startedAt).Seconds()), UpdatedAt: time.Now().Unix(),
	}
}

// presenceLoop refreshes this node's presence entries before the engine
// expires them; entries of a node that died expire by themselves.
func (n *Node) presenceLoop() {
	t := time.NewTicker(n.cfg.PresenceRefresh)
	defer t.Stop()
	for {
		select {
		case <-n.runCtx.Done():
			return
		case <-t.C:
			for _, c := range n.snapshotClients() {
				c.refreshPresence(n.runCtx)
			}
		}
	}
}

func (n *Node) namespace(channel string) (*NamespaceOptions, *Error) {
	name, ok := splitChannel(channel)
	if !ok {
		return nil, ErrorBadRequest.WithMessage("bad channel name")
	}
	ns, ok := n.namespaces[name]
	if !ok {
		return nil, ErrorUnknownChannel
	}
	return ns, nil
}

func (n *Node) subShard(channel string) *subShard {
	return &n.subShards[channelHash(channel)%subShardCount]
}

func (n *Node) chanLock(channel string) *sync.Mutex {
	return &n.chanLocks[channelHash(channel)%uint32(len(n.chanLocks))]
}

// addSubscriber registers c for the channel's publications, subscribing the
// node in the broker when c is its first local subscriber.
func (n *Node) addSubscriber(ctx context.Context, channel string, c *Client, sub *subscription) error {
	l := n.chanLock(channel)
	l.Lock()
	defer l.Unlock()
	s := n.subShard(channel)
	s.mu.Lock()
	m, ok := s.channels[channel]
	if !ok {
		m = make(map[*Client]*subscription)
		s.channels[channel] = m
	}
	m[c] = sub
	first := len(m) == 1
	s.mu.Unlock()
	n.metrics.subscriptions.Inc()
	if first {
		if err := n.cfg.Broker.Subscribe(ctx, channel); err != nil {
			n.dropSubscriberLocked(channel, c)
			return err
		}
	}
	return nil
}

// removeSubscriber undoes addSubscriber.
func (n *Node) removeSubscriber(ctx context.Context, channel string, c *Client) {
	l := n.chanLock(channel)
	l.Lock()
	defer l.Unlock()
	if n.dropSubscriberLocked(channel, c) {
		if err := n.cfg.Broker.Unsubscribe(ctx, channel); err != nil {
			n.log.Warn("broker unsubscribe failed", "channel", channel, "err", err)
		}
	}
}

// dropSubscriberLocked removes c and reports whether the channel has no local
// subscriber left. The channel's chanLock must be held.
func (n *Node) dropSubscriberLocked(channel string, c *Client) (last bool) {
	s := n.subShard(channel)
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.channels[channel]
	if !ok {
		return false
	}
	if _, ok := m[c]; !ok {
		return false
	}
	delete(m, c)
	n.metrics.subscriptions.Dec()
	if len(m) == 0 {
		delete(s.channels, channel)
		s.dropPrev(channel)
		return true
	}
	return false
}

// HandlePublication fans a publication out to local subscribers. The push is
// encoded once and the same bytes are queued to every subscriber.
func (n *Node) HandlePublication(channel string, pub *Publication, sp StreamPosition) error {
	n.metrics.publicationsIn.Inc()
	s := n.subShard(channel)
	s.mu.RLock()
	defer s.mu.RUnlock()
	subs := s.channels[channel]
	if len(subs) == 0 {
		return nil
	}
	start := time.Now()
	var prev []byte
	if ns, perr := n.namespace(channel); perr == nil && ns.allowsDelta(DeltaFossil) {
		prev = s.swapPrev(channel, pub, sp.Epoch)
	}
	frames := newPubFrames(channel, pub, prev)
	for c, sub := range subs {
		c.deliverPublication(sub, pub.Offset, sp.Epoch, frames)
	}
	n.metrics.fanoutSeconds.Observe(time.Since(start).Seconds())
	return nil
}

// HandleJoin sends the join push to local subscribers that asked for it.
func (n *Node) HandleJoin(channel string, info *ClientInfo) error {
	return n.fanoutJoinLeave(channel, &protocol.Push{Channel: channel, Join: &protocol.Join{Info: info.toProto()}})
}

// HandleLeave sends the leave push to local subscribers that asked for it.
func (n *Node) HandleLeave(channel string, info *ClientInfo) error {
	return n.fanoutJoinLeave(channel, &protocol.Push{Channel: channel, Leave: &protocol.Leave{Info: info.toProto()}})
}

func (n *Node) fanoutJoinLeave(channel string, push *protocol.Push) error {
	s := n.subShard(channel)
	s.mu.RLock()
	defer s.mu.RUnlock()
	subs := s.channels[channel]
	if len(subs) == 0 {
		return nil
	}
	lp := &lazyPush{push: push}
	for c := range subs {
		c.deliverJoinLeave(channel, lp)
	}
	return nil
}

// lazyPush is a push encoded at most once per encoding, on first use, and
// shared by every connection of that encoding.
type lazyPush struct {
	push     *protocol.Push
	json, pb lazyFrame
}

func (l *lazyPush) frame(enc encoding) []byte {
	encode := func() ([]byte, error) { return enc.encodeReply(&protocol.Reply{Push: l.push}) }
	if enc == encodingProtobuf {
		return l.pb.get(encode)
	}
	return l.json.get(encode)
}

func (p *Publication) toProto() *protocol.Publication {
	return &protocol.Publication{
		Data:   p.Data,
		Offset: p.Offset,
		Info:   p.Info.toProto(),
		Tags:   p.Tags,
		Time:   p.Time,
	}
}

func (i *ClientInfo) toProto() *protocol.ClientInfo {
	if i == nil {
		return nil
	}
	return &protocol.ClientInfo{User: i.UserID, Client: i.ClientID, ConnInfo: i.ConnInfo, ChanInfo: i.ChanInfo}
}

// registerClient adds an authenticated connection. It returns, adding
// nothing, the disconnect to close it with when the node is draining or the
// user already holds MaxConnsPerUser connections here.
func (n *Node) registerClient(c *Client) *Disconnect {
	n.clientsMu.Lock()
	defer n.clientsMu.Unlock()
	if n.draining.Load() {
		return &DisconnectShutdown
	}
	u, ok := n.users[c.cred.UserID]
	if max := n.cfg.MaxConnsPerUser; max > 0 && c.cred.UserID != "" && len(u) >= max {
		return &DisconnectConnectionLimit
	}
	n.clients[c.id] = c
	if !ok {
		u = make(map[*Client]struct{})
		n.users[c.cred.UserID] = u
	}
	u[c] = struct{}{}
	return nil
}

func (n *Node) unregisterClient(c *Client) {
	n.clientsMu.Lock()
	defer n.clientsMu.Unlock()
	if _, ok := n.clients[c.id]; !ok {
		return
	}
	delete(n.clients, c.id)
	if u, ok := n.users[c.cred.UserID]; ok {
		delete(u, c)
		if len(u) == 0 {
			delete(n.users, c.cred.UserID)
		}
	}
}

// userClients returns the local connections of a user.
func (n *Node) userClients(userID string) []*Client {
	n.clientsMu.RLock()
	defer n.clientsMu.RUnlock()
	out := make([]*Client, 0, len(n.users[userID]))
	for c := range n.users[userID] {
		out = append(out, c)
	}
	return out
}

// publishOptions are the broker options a namespace implies.
func (ns *NamespaceOptions) publishOptions() PublishOptions {
	if !ns.keepsHistory() {
		return PublishOptions{}
	}
	return PublishOptions{HistorySize: ns.HistorySize, HistoryTTL: ns.historyTTL()}
}
