package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/centrifugal/protocol"
	"github.com/coder/websocket"

	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/protoclient"
)

// What a fleet's clients look for in their channel.
const (
	// kindSeq: bench publications; each client checks every sequence
	// number of its channel arrives once.
	kindSeq = "seq"
	// kindStock: commerce events; each client waits for flash_sale.stock
	// with stock_left 0.
	kindStock = "stock"
)

const (
	// attemptTimeout bounds one dial, connect and subscribe.
	attemptTimeout = 30 * time.Second
	// maxErrorSamples is how many distinct errors a report keeps.
	maxErrorSamples = 5
)

// fleetSpec is a share of a run's clients: what is needed to connect them
// and to judge what they receive. Workers get it as JSON.
type fleetSpec struct {
	Kind string `json:"kind"`
	URL  string `json:"url"`
	// URLs, when set, are the WebSocket URLs of several nodes: client g
	// connects to URLs[g % len(URLs)] instead of URL.
	URLs    []string `json:"urls,omitempty"`
	Secret  string   `json:"secret,omitempty"`
	Token   string   `json:"token,omitempty"`
	Sources []string `json:"sources"`
	// First is the run-wide index of the first client: client g subscribes
	// Channels[g % len(Channels)] and, with a secret, is user bench-g.
	First    int      `json:"first"`
	Clients  int      `json:"clients"`
	Channels []string `json:"channels"`
	// Count is the publications of the run over all channels: publication
	// k goes to Channels[k % len(Channels)].
	Count           int           `json:"count"`
	DialConcurrency int           `json:"dial_concurrency"`
	Timeout         time.Duration `json:"timeout"`
	// Procs, in a worker, is its GOMAXPROCS: the cores over the workers,
	// so that workers sharing the cores do not each keep threads spinning
	// for work and waking one another (zero leaves Go's default, and so
	// does a GOMAXPROCS variable).
	Procs int `json:"procs,omitempty"`
}

// expectedFor is how many publications go to channel slot.
func (s *fleetSpec) expectedFor(slot int) int {
	r := len(s.Channels)
	if s.Kind != kindSeq || slot >= s.Count {
		return 0
	}
	return (s.Count - slot + r - 1) / r
}

// urlOf is the WebSocket URL of run-wide client g and its index in URLs.
func (s *fleetSpec) urlOf(g int) (string, int) {
	if len(s.URLs) == 0 {
		return s.URL, 0
	}
	i := g % len(s.URLs)
	return s.URLs[i], i
}

// connectStats is how the connect phase went.
type connectStats struct {
	Clients   int `json:"clients"`
	Connected int `json:"connected"`
	// ByURL counts the connected clients by node, in the order of
	// fleetSpec.URLs (one entry without URLs).
	ByURL   []int    `json:"by_url,omitempty"`
	Failed  int      `json:"failed"`
	Seconds float64  `json:"seconds"`
	Errors  []string `json:"errors,omitempty"`
}

// reconnectStats is how the drop and the reconnections went.
type reconnectStats struct {
	Dropped       int          `json:"dropped"`
	Reconnected   int          `json:"reconnected"`
	Failed        int          `json:"failed"`
	Recovered     int          `json:"recovered"`
	NotRecovered  int          `json:"not_recovered"`
	RecoveredPubs int64        `json:"recovered_publications"`
	Time          histSnapshot `json:"time"`
	Errors        []string     `json:"errors,omitempty"`
}

// fleetResult is what a fleet's clients received.
type fleetResult struct {
	Connect connectStats `json:"connect"`
	// Expected counts the publications owed to the clients that subscribed.
	Expected   int64 `json:"expected"`
	Delivered  int64 `json:"delivered"`
	Lost       int64 `json:"lost"`
	Duplicates int64 `json:"duplicates"`
	// Ignored counts publications that are not of this run.
	Ignored     int64        `json:"ignored"`
	FirstRecvNS int64        `json:"first_recv_ns"`
	LastRecvNS  int64        `json:"last_recv_ns"`
	Latency     histSnapshot `json:"latency"`
	// Disconnects counts connections the server ended, by close code;
	// FirstDisconnectNS is when the first of them ended.
	Disconnects       map[string]int  `json:"disconnects,omitempty"`
	FirstDisconnectNS int64           `json:"first_disconnect_ns,omitempty"`
	Reconnect         *reconnectStats `json:"reconnect,omitempty"`
	// SawZero counts clients that saw stock_left 0; SawZeroLastNS is when
	// the last of them did.
	SawZero       int   `json:"saw_zero"`
	SawZeroLastNS int64 `json:"saw_zero_last_ns"`
}

// fleetRunner drives a share of the clients, in this process or in a worker.
type fleetRunner interface {
	// connect dials, connects and subscribes every client.
	connect(ctx context.Context) (connectStats, error)
	// drop closes every connection at once; each client reconnects and
	// recovers. It returns once the drop has begun.
	drop(ctx context.Context) error
	// settle waits, up to drain, until every client got what it is owed.
	settle(ctx context.Context, drain time.Duration) error
	// finish closes the clients and returns what they received.
	finish(ctx context.Context) (fleetResult, error)
	// close releases everything; it is safe after finish and on error paths.
	close()
}

// fleet is a share of the clients in this process.
type fleet struct {
	spec    fleetSpec
	viewers []*viewer
	clients []*http.Client
	lat     *histogram
	recon   *histogram

	// complete counts the viewers that got every publication owed to them
	// and sawZero those that saw stock 0: each viewer adds to them once, so
	// settle can watch them without every delivery touching shared memory.
	// What viewers count per delivery is their own (viewer.stats) and is
	// summed by finish.
	complete atomic.Int64
	sawZero  atomic.Int64

	recovered    atomic.Int64
	notRecovered atomic.Int64
	reconnected  atomic.Int64
	reconFailed  atomic.Int64

	mu          sync.Mutex
	disconnects map[string]int
	firstDisc   int64
	errs        []string
	reconErrs   []string
	connStats   connectStats
	dropped     int
	reconDone   chan struct{}
	closeOnce   sync.Once
}

var _ fleetRunner = (*fleet)(nil)

// viewer is one client. Its pushes are counted on its connection's read
// goroutine (protoclient's OnPush): no goroutine of its own, no channel
// handoff, and counters of its own, summed once the readers are done.
type viewer struct {
	f       *fleet
	slot    int
	channel string
	token   string
	http    *http.Client
	url     string
	urlIdx  int
	// owed is the publications this viewer's channel gets.
	owed int64

	// dropping is set before the fleet closes the connection itself, so
	// the reader does not count it as the server's doing.
	dropping atomic.Bool
	// live is set once the subscribe reply (and what it recovered) is
	// counted; until then the reader parks pushes in pending and a close
	// in closedEarly, under mu, for connect to count in order.
	live        atomic.Bool
	mu          sync.Mutex
	pending     []pendingPub
	closedEarly *websocket.StatusCode

	// The fields below belong to the reader while the viewer is live and
	// to the fleet otherwise; readerDone (the connection's Done) hands
	// them over.
	conn       *protoclient.Conn
	readerDone <-chan struct{}
	epoch      string
	offset     uint64
	seen       []uint64
	subscribed bool
	sawZero    bool
	stats      viewerStats
	lat        sampleBatch
}

// viewerStats is what one viewer counted.
type viewerStats struct {
	delivered, dups, ignored, recovered int64
	// firstRecv and lastRecv are the first and last delivery of this run's
	// publications (Unix ns, zero for none); sawZeroAt is when the viewer
	// saw stock 0.
	firstRecv, lastRecv, sawZeroAt int64
}

// pendingPub is a publication that arrived before its subscribe reply was
// counted, with its arrival time.
type pendingPub struct {
	pub *protocol.Publication
	at  int64
}

func newFleet(spec fleetSpec) (*fleet, error) {
	if len(spec.Channels) == 0 {
		return nil, errors.New("fleet: no channels")
	}
	if len(spec.Sources) == 0 {
		spec.Sources = []string{"127.0.0.1"}
	}
	if spec.DialConcurrency <= 0 {
		spec.DialConcurrency = 128
	}
	f := &fleet{spec: spec, lat: newHistogram(), recon: newHistogram(), disconnects: make(map[string]int)}
	clients := sourceClients(spec.Sources, 0)
	f.clients = clients
	var signer *auth.Signer
	if spec.Secret != "" {
		s, err := auth.NewSigner(auth.SignerConfig{Secret: []byte(spec.Secret)})
		if err != nil {
			return nil, err
		}
		signer = s
	}
	ttl := spec.Timeout + time.Hour
	f.viewers = make([]*viewer, spec.Clients)
	for i := range f.viewers {
		g := spec.First + i
		slot := g % len(spec.Channels)
		v := &viewer{f: f, slot: slot, channel: spec.Channels[slot], token: spec.Token, http: clients[sourceOf(g, len(clients), len(spec.URLs))]}
		v.url, v.urlIdx = spec.urlOf(g)
		if signer != nil {
			tok, err := signer.Mint(auth.Claims{Subject: "bench-" + strconv.Itoa(g), Roles: []auth.Role{auth.RoleCustomer}}, ttl)
			if err != nil {
				return nil, err
			}
			v.token = tok
		}
		if n := spec.expectedFor(slot); n > 0 {
			v.seen = make([]uint64, (n+63)/64)
			v.owed = int64(n)
		}
		f.viewers[i] = v
	}
	return f, nil
}

func (f *fleet) connect(ctx context.Context) (connectStats, error) {
	start := time.Now()
	sem := make(chan struct{}, f.spec.DialConcurrency)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, v := range f.viewers {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return connectStats{}, ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := v.connect(ctx, false); err != nil {
				failed.Add(1)
				f.noteError(&f.errs, err)
			}
		}()
	}
	wg.Wait()
	st := connectStats{
		Clients:   len(f.viewers),
		Failed:    int(failed.Load()),
		Connected: len(f.viewers) - int(failed.Load()),
		Seconds:   time.Since(start).Seconds(),
		ByURL:     make([]int, max(1, len(f.spec.URLs))),
	}
	for _, v := range f.viewers {
		if v.conn != nil {
			st.ByURL[v.urlIdx]++
		}
	}
	f.mu.Lock()
	st.Errors = append([]string(nil), f.errs...)
	f.connStats = st
	f.mu.Unlock()
	return st, ctx.Err()
}

// connect dials, connects and subscribes; with recover it asks for what was
// missed since the last position. The viewer goes live (its reader counts
// pushes itself) once the subscribe reply, what it recovered and the pushes
// that came meanwhile are counted, in that order.
func (v *viewer) connect(ctx context.Context, recover bool) (*protocol.SubscribeResult, error) {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	v.live.Store(false)
	v.dropping.Store(false)
	v.closedEarly = nil
	conn, err := protoclient.Dial(ctx, v.url, protoclient.Options{HTTPClient: v.http, OnPush: v.onPush, OnClose: v.onClose})
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	fail := func(err error) (*protocol.SubscribeResult, error) {
		v.dropping.Store(true)
		conn.CloseNow()
		v.pending = nil
		return nil, err
	}
	if _, err := conn.Connect(ctx, v.token); err != nil {
		return fail(fmt.Errorf("connect: %w", err))
	}
	req := &protocol.SubscribeRequest{Channel: v.channel}
	if recover && v.epoch != "" {
		req.Recover, req.Epoch, req.Offset = true, v.epoch, v.offset
	}
	res, err := conn.Subscribe(ctx, req)
	if err != nil {
		return fail(fmt.Errorf("subscribe %s: %w", v.channel, err))
	}
	v.goLive(conn, res)
	return res, nil
}

// goLive counts a subscribe reply, what it recovered and the pushes parked
// meanwhile, in that order, and hands the viewer to conn's reader.
func (v *viewer) goLive(conn *protoclient.Conn, res *protocol.SubscribeResult) {
	v.epoch, v.offset = res.Epoch, res.Offset
	now := time.Now().UnixNano()
	for _, p := range res.Publications {
		v.onPublication(p, false, now)
	}
	v.subscribed = true
	v.conn = conn
	if conn != nil {
		v.readerDone = conn.Done()
	}
	v.mu.Lock()
	for _, p := range v.pending {
		v.onPublication(p.pub, true, p.at)
	}
	v.pending = nil
	if v.closedEarly != nil && !v.dropping.Load() {
		v.f.noteDisconnect(int(*v.closedEarly))
	}
	v.live.Store(true)
	v.mu.Unlock()
}

// onPush takes a push on the connection's read goroutine; the push is
// reused once it returns.
func (v *viewer) onPush(p *protocol.Push) {
	if p.Pub == nil || p.Channel != v.channel {
		return
	}
	now := time.Now().UnixNano()
	if !v.live.Load() {
		v.mu.Lock()
		if !v.live.Load() {
			pub := &protocol.Publication{Offset: p.Pub.Offset, Data: bytes.Clone(p.Pub.Data)}
			v.pending = append(v.pending, pendingPub{pub: pub, at: now})
			v.mu.Unlock()
			return
		}
		v.mu.Unlock()
	}
	v.onPublication(p.Pub, true, now)
}

// onClose notes a connection the server ended, on the read goroutine.
func (v *viewer) onClose(code websocket.StatusCode, _ string) {
	if v.dropping.Load() {
		return
	}
	if !v.live.Load() {
		v.mu.Lock()
		if !v.live.Load() {
			v.closedEarly = &code
			v.mu.Unlock()
			return
		}
		v.mu.Unlock()
	}
	v.f.noteDisconnect(int(code))
}

// onPublication counts one publication that arrived at now (Unix ns); live
// is false for publications a subscribe reply recovered, whose latency says
// nothing about delivery. It touches only the viewer's own fields.
func (v *viewer) onPublication(p *protocol.Publication, live bool, now int64) {
	f := v.f
	if p.Offset > v.offset {
		v.offset = p.Offset
	}
	st := &v.stats
	switch f.spec.Kind {
	case kindSeq:
		seq, ts, ok := parsePayload(p.Data)
		r := len(f.spec.Channels)
		if !ok || seq < 0 || seq >= f.spec.Count || seq%r != v.slot {
			st.ignored++
			return
		}
		i := seq / r
		w, bit := i/64, uint64(1)<<(i%64)
		if v.seen[w]&bit != 0 {
			st.dups++
			return
		}
		v.seen[w] |= bit
		st.delivered++
		if st.firstRecv == 0 || now < st.firstRecv {
			st.firstRecv = now
		}
		st.lastRecv = max(st.lastRecv, now)
		if live {
			v.lat.add(f.lat, time.Duration(now-ts))
		} else {
			st.recovered++
		}
		if st.delivered == v.owed {
			f.complete.Add(1)
		}
	case kindStock:
		// Most room events are not stock changes: one look for the type
		// before any decoding.
		if !bytes.Contains(p.Data, stockType) {
			return
		}
		// How long each stock change took from the node that made it to
		// this viewer (same machine, same clock).
		if live {
			if at, ok := stockEventTime(p.Data); ok {
				v.lat.add(f.lat, time.Duration(now-at))
			}
		}
		if !v.sawZero && isStockZero(p.Data) {
			v.sawZero = true
			st.sawZeroAt = now
			f.sawZero.Add(1)
		}
	}
}

var stockType = []byte(`"flash_sale.stock"`)

func (f *fleet) noteError(list *[]string, err error) {
	msg := err.Error()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(*list) >= maxErrorSamples {
		return
	}
	for _, e := range *list {
		if e == msg {
			return
		}
	}
	*list = append(*list, msg)
}

func (f *fleet) noteDisconnect(code int) {
	now := time.Now().UnixNano()
	f.mu.Lock()
	f.disconnects[strconv.Itoa(code)]++
	if f.firstDisc == 0 {
		f.firstDisc = now
	}
	f.mu.Unlock()
}

func (f *fleet) drop(ctx context.Context) error {
	f.mu.Lock()
	if f.reconDone != nil {
		f.mu.Unlock()
		return errors.New("fleet: already dropped")
	}
	f.reconDone = make(chan struct{})
	var live []*viewer
	for _, v := range f.viewers {
		if v.conn != nil {
			live = append(live, v)
		}
	}
	f.dropped = len(live)
	f.mu.Unlock()
	go func() {
		defer close(f.reconDone)
		sem := make(chan struct{}, f.spec.DialConcurrency)
		var wg sync.WaitGroup
		for _, v := range live {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v.dropping.Store(true)
				v.conn.CloseNow()
				<-v.readerDone
				v.conn = nil
				dropped := time.Now()
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					f.reconFailed.Add(1)
					return
				}
				defer func() { <-sem }()
				res, err := v.connect(ctx, true)
				if err != nil {
					f.reconFailed.Add(1)
					f.noteError(&f.reconErrs, err)
					return
				}
				f.recon.Record(time.Since(dropped))
				f.reconnected.Add(1)
				if res.WasRecovering && res.Recovered {
					f.recovered.Add(1)
				} else {
					f.notRecovered.Add(1)
				}
			}()
		}
		wg.Wait()
	}()
	return nil
}

func (f *fleet) settle(ctx context.Context, drain time.Duration) error {
	f.mu.Lock()
	recon := f.reconDone
	f.mu.Unlock()
	if recon != nil {
		select {
		case <-recon:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// Each subscribed viewer owed something is done once: when it has
	// every publication of its channel, or (stock) when it saw stock 0.
	var owed int64
	for _, v := range f.viewers {
		if v.subscribed && (f.spec.Kind == kindStock || v.owed > 0) {
			owed++
		}
	}
	got := &f.complete
	if f.spec.Kind == kindStock {
		got = &f.sawZero
	}
	deadline := time.NewTimer(drain)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for got.Load() < owed {
		select {
		case <-tick.C:
		case <-deadline.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (f *fleet) finish(ctx context.Context) (fleetResult, error) {
	f.mu.Lock()
	recon := f.reconDone
	f.mu.Unlock()
	if recon != nil {
		select {
		case <-recon:
		case <-ctx.Done():
			return fleetResult{}, ctx.Err()
		}
	}
	f.closeAll(true)
	// The readers are done: what the viewers counted is the fleet's now.
	res := fleetResult{Connect: f.connStats, SawZero: int(f.sawZero.Load())}
	var recoveredPubs int64
	for _, v := range f.viewers {
		v.lat.flush(f.lat)
		st := v.stats
		res.Delivered += st.delivered
		res.Duplicates += st.dups
		res.Ignored += st.ignored
		recoveredPubs += st.recovered
		if st.firstRecv > 0 && (res.FirstRecvNS == 0 || st.firstRecv < res.FirstRecvNS) {
			res.FirstRecvNS = st.firstRecv
		}
		res.LastRecvNS = max(res.LastRecvNS, st.lastRecv)
		res.SawZeroLastNS = max(res.SawZeroLastNS, st.sawZeroAt)
		if !v.subscribed {
			continue
		}
		var have int64
		for _, w := range v.seen {
			have += int64(bits.OnesCount64(w))
		}
		res.Expected += v.owed
		res.Lost += v.owed - have
	}
	res.Latency = f.lat.Snapshot()
	f.mu.Lock()
	res.FirstDisconnectNS = f.firstDisc
	if len(f.disconnects) > 0 {
		res.Disconnects = make(map[string]int, len(f.disconnects))
		for k, n := range f.disconnects {
			res.Disconnects[k] = n
		}
	}
	if recon != nil {
		res.Reconnect = &reconnectStats{
			Dropped:       f.dropped,
			Reconnected:   int(f.reconnected.Load()),
			Failed:        int(f.reconFailed.Load()),
			Recovered:     int(f.recovered.Load()),
			NotRecovered:  int(f.notRecovered.Load()),
			RecoveredPubs: recoveredPubs,
			Time:          f.recon.Snapshot(),
			Errors:        append([]string(nil), f.reconErrs...),
		}
	}
	f.mu.Unlock()
	return res, nil
}

// closeAll closes every connection, normally or at once, and waits for the
// readers. Closes run a bounded number at a time; the measuring is over, so
// what the server closes meanwhile (thousands of sockets closing at once
// keep it busy) is not counted as its doing.
func (f *fleet) closeAll(normal bool) {
	f.closeOnce.Do(func() {
		for _, v := range f.viewers {
			v.dropping.Store(true)
		}
		sem := make(chan struct{}, 256)
		var wg sync.WaitGroup
		for _, v := range f.viewers {
			if v.conn == nil {
				continue
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if normal {
					_ = v.conn.Close()
				} else {
					v.conn.CloseNow()
				}
				<-v.readerDone
			}()
		}
		wg.Wait()
		closeIdle(f.clients)
	})
}

func (f *fleet) close() {
	f.mu.Lock()
	recon := f.reconDone
	f.mu.Unlock()
	if recon != nil {
		<-recon
	}
	f.closeAll(false)
}
