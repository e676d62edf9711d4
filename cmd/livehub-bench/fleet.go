package main

import (
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
	// pushBuffer is the pushes a client may have unread; small, as ten
	// thousand clients each hold one.
	pushBuffer = 256
	// maxErrorSamples is how many distinct errors a report keeps.
	maxErrorSamples = 5
)

// fleetSpec is a share of a run's clients: what is needed to connect them
// and to judge what they receive. Workers get it as JSON.
type fleetSpec struct {
	Kind    string   `json:"kind"`
	URL     string   `json:"url"`
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
}

// expectedFor is how many publications go to channel slot.
func (s *fleetSpec) expectedFor(slot int) int {
	r := len(s.Channels)
	if s.Kind != kindSeq || slot >= s.Count {
		return 0
	}
	return (s.Count - slot + r - 1) / r
}

// connectStats is how the connect phase went.
type connectStats struct {
	Clients   int      `json:"clients"`
	Connected int      `json:"connected"`
	Failed    int      `json:"failed"`
	Seconds   float64  `json:"seconds"`
	Errors    []string `json:"errors,omitempty"`
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
	// Disconnects counts connections the server ended, by close code.
	Disconnects map[string]int  `json:"disconnects,omitempty"`
	Reconnect   *reconnectStats `json:"reconnect,omitempty"`
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

	delivered   atomic.Int64
	dups        atomic.Int64
	ignored     atomic.Int64
	firstRecv   atomic.Int64
	lastRecv    atomic.Int64
	sawZero     atomic.Int64
	sawZeroLast atomic.Int64

	recovered     atomic.Int64
	notRecovered  atomic.Int64
	reconnected   atomic.Int64
	reconFailed   atomic.Int64
	recoveredPubs atomic.Int64

	mu          sync.Mutex
	disconnects map[string]int
	errs        []string
	reconErrs   []string
	connStats   connectStats
	dropped     int
	reconDone   chan struct{}
	closeOnce   sync.Once
}

var _ fleetRunner = (*fleet)(nil)

// viewer is one client.
type viewer struct {
	f       *fleet
	slot    int
	channel string
	token   string
	http    *http.Client

	// dropping is set before the fleet closes the connection itself, so
	// the reader does not count it as the server's doing.
	dropping atomic.Bool

	// The fields below belong to the reader goroutine while one runs and
	// to the fleet otherwise; readerDone hands them over.
	conn       *protoclient.Conn
	readerDone chan struct{}
	epoch      string
	offset     uint64
	seen       []uint64
	subscribed bool
	sawZero    bool
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
		v := &viewer{f: f, slot: slot, channel: spec.Channels[slot], token: spec.Token, http: clients[g%len(clients)]}
		if signer != nil {
			tok, err := signer.Mint(auth.Claims{Subject: "bench-" + strconv.Itoa(g), Roles: []auth.Role{auth.RoleCustomer}}, ttl)
			if err != nil {
				return nil, err
			}
			v.token = tok
		}
		if n := spec.expectedFor(slot); n > 0 {
			v.seen = make([]uint64, (n+63)/64)
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
	}
	f.mu.Lock()
	st.Errors = append([]string(nil), f.errs...)
	f.connStats = st
	f.mu.Unlock()
	return st, ctx.Err()
}

// connect dials, connects and subscribes; with recover it asks for what was
// missed since the last position. The reader starts once the subscribe reply
// (and what it recovered) is counted.
func (v *viewer) connect(ctx context.Context, recover bool) (*protocol.SubscribeResult, error) {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	conn, err := protoclient.Dial(ctx, v.f.spec.URL, protoclient.Options{PushBuffer: pushBuffer, HTTPClient: v.http})
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	if _, err := conn.Connect(ctx, v.token); err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("connect: %w", err)
	}
	req := &protocol.SubscribeRequest{Channel: v.channel}
	if recover && v.epoch != "" {
		req.Recover, req.Epoch, req.Offset = true, v.epoch, v.offset
	}
	res, err := conn.Subscribe(ctx, req)
	if err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("subscribe %s: %w", v.channel, err)
	}
	v.epoch, v.offset = res.Epoch, res.Offset
	for _, p := range res.Publications {
		v.onPublication(p, false)
	}
	v.subscribed = true
	v.conn = conn
	v.readerDone = make(chan struct{})
	v.dropping.Store(false)
	go v.read(conn, v.readerDone)
	return res, nil
}

// read takes the pushes of one connection until it ends.
func (v *viewer) read(conn *protoclient.Conn, done chan struct{}) {
	defer close(done)
	for p := range conn.Pushes() {
		if p.Pub != nil && p.Channel == v.channel {
			v.onPublication(p.Pub, true)
		}
	}
	if !v.dropping.Load() {
		code, _ := conn.CloseStatus()
		v.f.noteDisconnect(int(code))
	}
}

// onPublication counts one publication; live is false for publications a
// subscribe reply recovered, whose latency says nothing about delivery.
func (v *viewer) onPublication(p *protocol.Publication, live bool) {
	f := v.f
	now := time.Now().UnixNano()
	if p.Offset > v.offset {
		v.offset = p.Offset
	}
	switch f.spec.Kind {
	case kindSeq:
		seq, ts, ok := parsePayload(p.Data)
		r := len(f.spec.Channels)
		if !ok || seq < 0 || seq >= f.spec.Count || seq%r != v.slot {
			f.ignored.Add(1)
			return
		}
		i := seq / r
		w, bit := i/64, uint64(1)<<(i%64)
		if v.seen[w]&bit != 0 {
			f.dups.Add(1)
			return
		}
		v.seen[w] |= bit
		f.delivered.Add(1)
		storeMin(&f.firstRecv, now)
		storeMax(&f.lastRecv, now)
		if live {
			f.lat.Record(time.Duration(now - ts))
		} else {
			f.recoveredPubs.Add(1)
		}
	case kindStock:
		// How long each stock change took from the node that made it to
		// this viewer (same machine, same clock).
		if live {
			if at, ok := stockEventTime(p.Data); ok {
				f.lat.Record(time.Duration(now - at))
			}
		}
		if !v.sawZero && isStockZero(p.Data) {
			v.sawZero = true
			f.sawZero.Add(1)
			storeMax(&f.sawZeroLast, now)
		}
	}
}

func storeMin(a *atomic.Int64, v int64) {
	for {
		cur := a.Load()
		if (cur != 0 && cur <= v) || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

func storeMax(a *atomic.Int64, v int64) {
	for {
		cur := a.Load()
		if cur >= v || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

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
	f.mu.Lock()
	f.disconnects[strconv.Itoa(code)]++
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
	var owed int64
	for _, v := range f.viewers {
		if !v.subscribed {
			continue
		}
		if f.spec.Kind == kindSeq {
			owed += int64(f.spec.expectedFor(v.slot))
		} else {
			owed++
		}
	}
	got := &f.delivered
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
	res := fleetResult{
		Connect:       f.connStats,
		Delivered:     f.delivered.Load(),
		Duplicates:    f.dups.Load(),
		Ignored:       f.ignored.Load(),
		FirstRecvNS:   f.firstRecv.Load(),
		LastRecvNS:    f.lastRecv.Load(),
		Latency:       f.lat.Snapshot(),
		SawZero:       int(f.sawZero.Load()),
		SawZeroLastNS: f.sawZeroLast.Load(),
	}
	for _, v := range f.viewers {
		if !v.subscribed {
			continue
		}
		n := int64(f.spec.expectedFor(v.slot))
		var have int64
		for _, w := range v.seen {
			have += int64(bits.OnesCount64(w))
		}
		res.Expected += n
		res.Lost += n - have
	}
	f.mu.Lock()
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
			RecoveredPubs: f.recoveredPubs.Load(),
			Time:          f.recon.Snapshot(),
			Errors:        append([]string(nil), f.reconErrs...),
		}
	}
	f.mu.Unlock()
	return res, nil
}

// closeAll closes every connection, normally or at once, and waits for the
// readers. Closes run a bounded number at a time.
func (f *fleet) closeAll(normal bool) {
	f.closeOnce.Do(func() {
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
				v.dropping.Store(true)
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
