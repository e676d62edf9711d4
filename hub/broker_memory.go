package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sort"
	"sync"
	"time"
)

// MemoryEngine is the single-node engine: Broker, PresenceManager and
// NodeRegistry held in this process's memory. Nothing survives a restart; a
// restarted node starts new epochs, so clients that try to recover are told
// recovered=false.
type MemoryEngine struct {
	epoch  string
	shards [memoryShards]memoryShard

	handlerMu sync.RWMutex
	handler   BrokerEventHandler

	presenceMu sync.RWMutex
	presence   map[string]map[string]*ClientInfo

	nodesMu sync.Mutex
	nodes   map[string]memoryNode

	now func() time.Time
}

var (
	_ Broker          = (*MemoryEngine)(nil)
	_ PresenceManager = (*MemoryEngine)(nil)
	_ NodeRegistry    = (*MemoryEngine)(nil)
)

const memoryShards = 64

type memoryShard struct {
	mu       sync.Mutex
	streams  map[string]*memoryStream
	idem     map[string]idemResult
	idemNext time.Time
}

type idemResult struct {
	sp      StreamPosition
	expires time.Time
}

type memoryStream struct {
	offset  uint64
	epoch   string
	pubs    []*Publication // oldest first, at most the history size
	expires time.Time      // history expiry
	metaExp time.Time      // when offset and epoch are forgotten
}

type memoryNode struct {
	info    NodeInfo
	expires time.Time
}

// NewMemoryEngine returns an empty memory engine.
func NewMemoryEngine() *MemoryEngine {
	e := &MemoryEngine{
		epoch:    randomEpoch(),
		presence: make(map[string]map[string]*ClientInfo),
		nodes:    make(map[string]memoryNode),
		now:      time.Now,
	}
	for i := range e.shards {
		e.shards[i].streams = make(map[string]*memoryStream)
		e.shards[i].idem = make(map[string]idemResult)
	}
	return e
}

func randomEpoch() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (e *MemoryEngine) shard(channel string) *memoryShard {
	return &e.shards[channelHash(channel)%memoryShards]
}

// Run registers the handler and blocks until ctx is done.
func (e *MemoryEngine) Run(ctx context.Context, h BrokerEventHandler) error {
	e.handlerMu.Lock()
	e.handler = h
	e.handlerMu.Unlock()
	<-ctx.Done()
	// Nothing is delivered once Run has returned.
	e.handlerMu.Lock()
	e.handler = nil
	e.handlerMu.Unlock()
	return nil
}

func (e *MemoryEngine) eventHandler() BrokerEventHandler {
	e.handlerMu.RLock()
	defer e.handlerMu.RUnlock()
	return e.handler
}

// Subscribe is a no-op: on one node every publication is local.
func (e *MemoryEngine) Subscribe(context.Context, string) error { return nil }

// Unsubscribe is a no-op, see Subscribe.
func (e *MemoryEngine) Unsubscribe(context.Context, string) error { return nil }

// defaultMetaTTL keeps a stream's offset and epoch this long after its last
// publication, so recovery can still tell "nothing new" from "history lost".
const defaultMetaTTL = 30 * 24 * time.Hour

// Publish saves the publication in history when asked and hands it to the
// event handler. Delivery happens under the channel's shard lock, so
// publications of one channel reach subscribers in offset order.
func (e *MemoryEngine) Publish(ctx context.Context, channel string, data []byte, opts PublishOptions) (StreamPosition, bool, error) {
	if err := ctx.Err(); err != nil {
		return StreamPosition{}, false, err
	}
	s := e.shard(channel)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := e.now()
	if opts.IdempotencyKey != "" {
		s.expireIdempotency(now)
		if r, ok := s.idem[channel+"\x00"+opts.IdempotencyKey]; ok && now.Before(r.expires) {
			return r.sp, true, nil
		}
	}
	pub := &Publication{Data: data, Info: opts.ClientInfo, Tags: opts.Tags, Time: now.UnixMilli(), Priority: opts.Priority}
	var sp StreamPosition
	if opts.HistorySize > 0 && opts.HistoryTTL > 0 {
		st := e.streamLocked(s, channel, now)
		st.offset++
		pub.Offset = st.offset
		st.pubs = append(st.pubs, pub)
		if over := len(st.pubs) - opts.HistorySize; over > 0 {
			// Copy down rather than reslice so the backing array does not grow forever.
			n := copy(st.pubs, st.pubs[over:])
			clear(st.pubs[n:])
			st.pubs = st.pubs[:n]
		}
		st.expires = now.Add(opts.HistoryTTL)
		st.metaExp = now.Add(defaultMetaTTL)
		sp = StreamPosition{Offset: st.offset, Epoch: st.epoch}
	}
	if opts.IdempotencyKey != "" {
		ttl := opts.IdempotentResultTTL
		if ttl <= 0 {
			ttl = 5 * time.Minute
		}
		s.idem[channel+"\x00"+opts.IdempotencyKey] = idemResult{sp: sp, expires: now.Add(ttl)}
	}
	if h := e.eventHandler(); h != nil {
		_ = h.HandlePublication(channel, pub, sp)
	}
	return sp, false, nil
}

func (s *memoryShard) expireIdempotency(now time.Time) {
	if now.Before(s.idemNext) {
		return
	}
	s.idemNext = now.Add(time.Minute)
	for k, r := range s.idem {
		if !now.Before(r.expires) {
			delete(s.idem, k)
		}
	}
}

// streamLocked returns the channel's stream, creating it or dropping expired
// parts. The shard lock must be held.
func (e *MemoryEngine) streamLocked(s *memoryShard, channel string, now time.Time) *memoryStream {
	st, ok := s.streams[channel]
	if ok && !now.Before(st.metaExp) {
		ok = false
	}
	if !ok {
		st = &memoryStream{epoch: e.epoch + "-" + randomEpoch(), metaExp: now.Add(defaultMetaTTL)}
		s.streams[channel] = st
		return st
	}
	if !now.Before(st.expires) {
		clear(st.pubs)
		st.pubs = st.pubs[:0]
	}
	return st
}

// PublishJoin hands the join to the event handler.
func (e *MemoryEngine) PublishJoin(_ context.Context, channel string, info *ClientInfo) error {
	if h := e.eventHandler(); h != nil {
		return h.HandleJoin(channel, info)
	}
	return nil
}

// PublishLeave hands the leave to the event handler.
func (e *MemoryEngine) PublishLeave(_ context.Context, channel string, info *ClientInfo) error {
	if h := e.eventHandler(); h != nil {
		return h.HandleLeave(channel, info)
	}
	return nil
}

// PublishControl hands the control message to this node's handler.
func (e *MemoryEngine) PublishControl(_ context.Context, data []byte) error {
	if h := e.eventHandler(); h != nil {
		return h.HandleControl(data)
	}
	return nil
}

// History returns publications of the channel after opts.Since.
func (e *MemoryEngine) History(ctx context.Context, channel string, opts HistoryOptions) ([]*Publication, StreamPosition, error) {
	if err := ctx.Err(); err != nil {
		return nil, StreamPosition{}, err
	}
	s := e.shard(channel)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := e.streamLocked(s, channel, e.now())
	sp := StreamPosition{Offset: st.offset, Epoch: st.epoch}
	if opts.Limit == 0 {
		return nil, sp, nil
	}
	var selected []*Publication
	if opts.Since == nil {
		selected = st.pubs
	} else if opts.Since.Offset >= st.offset {
		selected = nil
	} else {
		from := opts.Since.Offset + 1
		i := sort.Search(len(st.pubs), func(i int) bool { return st.pubs[i].Offset >= from })
		selected = st.pubs[i:]
	}
	out := make([]*Publication, len(selected))
	copy(out, selected)
	if opts.Reverse {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	if opts.Limit > 0 && len(out) > opts.Limit {
		out = out[:opts.Limit]
	}
	return out, sp, nil
}

// RemoveHistory drops the channel's publications and keeps its position.
func (e *MemoryEngine) RemoveHistory(_ context.Context, channel string) error {
	s := e.shard(channel)
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.streams[channel]; ok {
		clear(st.pubs)
		st.pubs = st.pubs[:0]
	}
	return nil
}

// Presence returns the channel's connections.
func (e *MemoryEngine) Presence(_ context.Context, channel string) (map[string]*ClientInfo, error) {
	e.presenceMu.RLock()
	defer e.presenceMu.RUnlock()
	out := make(map[string]*ClientInfo, len(e.presence[channel]))
	for k, v := range e.presence[channel] {
		out[k] = v
	}
	return out, nil
}

// PresenceStats counts the channel's connections and users.
func (e *MemoryEngine) PresenceStats(_ context.Context, channel string) (PresenceStats, error) {
	e.presenceMu.RLock()
	defer e.presenceMu.RUnlock()
	users := make(map[string]struct{})
	for _, info := range e.presence[channel] {
		if info.UserID != "" { // anonymous clients are clients, not users
			users[info.UserID] = struct{}{}
		}
	}
	return PresenceStats{NumClients: len(e.presence[channel]), NumUsers: len(users)}, nil
}

// AddPresence adds the connection to the channel.
func (e *MemoryEngine) AddPresence(_ context.Context, channel, clientID string, info *ClientInfo) error {
	e.presenceMu.Lock()
	defer e.presenceMu.Unlock()
	m, ok := e.presence[channel]
	if !ok {
		m = make(map[string]*ClientInfo)
		e.presence[channel] = m
	}
	m[clientID] = info
	return nil
}

// RemovePresence removes the connection from the channel.
func (e *MemoryEngine) RemovePresence(_ context.Context, channel, clientID, _ string) error {
	e.presenceMu.Lock()
	defer e.presenceMu.Unlock()
	if m, ok := e.presence[channel]; ok {
		delete(m, clientID)
		if len(m) == 0 {
			delete(e.presence, channel)
		}
	}
	return nil
}

// UpdateNode records the node.
func (e *MemoryEngine) UpdateNode(_ context.Context, info NodeInfo, ttl time.Duration) error {
	e.nodesMu.Lock()
	defer e.nodesMu.Unlock()
	e.nodes[info.ID] = memoryNode{info: info, expires: e.now().Add(ttl)}
	return nil
}

// RemoveNode drops the node.
func (e *MemoryEngine) RemoveNode(_ context.Context, id string) error {
	e.nodesMu.Lock()
	defer e.nodesMu.Unlock()
	delete(e.nodes, id)
	return nil
}

// Nodes lists nodes that reported within their ttl.
func (e *MemoryEngine) Nodes(context.Context) ([]NodeInfo, error) {
	e.nodesMu.Lock()
	defer e.nodesMu.Unlock()
	now := e.now()
	out := make([]NodeInfo, 0, len(e.nodes))
	for id, n := range e.nodes {
		if !now.Before(n.expires) {
			delete(e.nodes, id)
			continue
		}
		out = append(out, n.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
