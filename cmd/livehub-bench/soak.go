package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/centrifugal/protocol"

	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/protoclient"
)

// Soak mode keeps a room busy for -duration and reports, every -interval,
// what went wrong and what the server holds:
//
//   - -clients watchers stay subscribed to live:{stream} (reconnecting and
//     recovering when their socket ends) and check that every chat message
//     acknowledged to its sender reached them;
//   - -chatters connections publish numbered chat messages at -chat-rate in
//     all ("soak N T": N the number, T the send time);
//   - -churn clients connect, subscribe, send likes (RPC likes.add) every
//     second and leave after one to six seconds, over and over;
//   - buyers check out at -checkout-rate (a new buyer each time, one unit of
//     a large sale) and pay every second order;
//   - -couriers couriers each deliver a paid order, publishing a location
//     into order:{id} every 2.5 s, and the order's buyer checks that every
//     accepted point reached it;
//   - with -spawn-redis, the redis-server the tool started is restarted
//     every -redis-restart.
//
// A chat message is lost when it was acknowledged and a watcher that was
// subscribed (or recovered) at the time never got it; messages sent while a
// watcher was away and could not recover ("recovered": false, the app
// reloads) are counted apart. The server's RSS comes from /proc, its
// goroutines and heap from its /metrics.

const (
	// soakGrace is how old an acknowledged message must be before a watcher
	// that lacks it counts as missing in an interval row.
	soakGrace = 5 * time.Second
	// courierPeriod is the courier's location interval (the server takes
	// one point per order every 2 seconds).
	courierPeriod = 2500 * time.Millisecond
)

type soak struct {
	cfg    Config
	logw   io.Writer
	signer *auth.Signer
	ttl    time.Duration
	runID  string
	ws     []*http.Client
	rest   *http.Client
	shop   shopClient
	redis  *redisProc

	hostTok string
	stream  string
	channel string
	saleID  string
	start   time.Time

	// Chat numbering: message n was acknowledged at ackAt[n] (Unix ns) and
	// first seen by seenBy[n] watchers.
	nextSeq  atomic.Int64
	ackAt    []atomic.Int64
	seenBy   []atomic.Int32
	watchers []*soakWatcher

	lat atomic.Pointer[histogram]

	open, connects, connectErrs       atomic.Int64
	chatSent, chatErrs, chatDelivered atomic.Int64
	likes, likeErrs                   atomic.Int64
	checkouts, checkoutErrs, paid     atomic.Int64
	courierSent, courierErrs          atomic.Int64
	courierSeen                       atomic.Int64
	reconnects, recovered, notRecov   atomic.Int64

	couriers []*soakCourier

	mu     sync.Mutex
	errs   map[string]*errorKind
	events []string
}

type errorKind struct {
	Count   int64    `json:"count"`
	Samples []string `json:"samples,omitempty"`
}

// soakRow is one interval of a soak.
type soakRow struct {
	T              float64 `json:"t_s"`
	OpenConns      int64   `json:"open_conns"`
	Connects       int64   `json:"connects"`
	ConnectErrors  int64   `json:"connect_errors"`
	ChatSent       int64   `json:"chat_sent"`
	ChatErrors     int64   `json:"chat_errors"`
	ChatDelivered  int64   `json:"chat_delivered"`
	ChatMissing    int64   `json:"chat_missing"`
	ChatP99MS      float64 `json:"chat_p99_ms"`
	Likes          int64   `json:"likes"`
	LikeErrors     int64   `json:"like_errors"`
	Checkouts      int64   `json:"checkouts"`
	CheckoutErrors int64   `json:"checkout_errors"`
	CourierPoints  int64   `json:"courier_points"`
	CourierErrors  int64   `json:"courier_errors"`
	CourierMissing int64   `json:"courier_missing"`
	Errors         int64   `json:"errors"`
	RSSMiB         float64 `json:"server_rss_mib"`
	HeapMiB        float64 `json:"server_heap_inuse_mib"`
	Goroutines     int64   `json:"server_goroutines"`
	ServerConns    int64   `json:"server_connections"`
	Events         string  `json:"events,omitempty"`
}

// soakReport is the whole soak.
type soakReport struct {
	Mode          string                `json:"mode"`
	Started       time.Time             `json:"started"`
	Seconds       float64               `json:"seconds"`
	Engine        string                `json:"engine"`
	Watchers      int                   `json:"watchers"`
	Chatters      int                   `json:"chatters"`
	Churn         int                   `json:"churn"`
	Couriers      int                   `json:"couriers"`
	ChatRate      float64               `json:"chat_rate"`
	CheckoutRate  float64               `json:"checkout_rate"`
	RedisRestarts int                   `json:"redis_restarts"`
	Rows          []soakRow             `json:"rows"`
	Final         soakRow               `json:"final"`
	ChatLost      int64                 `json:"chat_lost"`
	ChatExcused   int64                 `json:"chat_unrecoverable"`
	CourierLost   int64                 `json:"courier_lost"`
	Reconnects    int64                 `json:"watcher_reconnects"`
	Recovered     int64                 `json:"watcher_recovered"`
	NotRecovered  int64                 `json:"watcher_not_recovered"`
	Paid          int64                 `json:"orders_paid"`
	StockCheck    string                `json:"stock_check"`
	Errors        map[string]*errorKind `json:"errors,omitempty"`
	Memory        soakMemory            `json:"memory"`
	Command       string                `json:"command,omitempty"`
}

// soakMemory sums up the server's memory over the soak, from the first row
// after warm-up (a tenth of the run, at least one row) to the last.
type soakMemory struct {
	WarmRSSMiB       float64 `json:"warm_rss_mib"`
	LastRSSMiB       float64 `json:"last_rss_mib"`
	MaxRSSMiB        float64 `json:"max_rss_mib"`
	GrowthPercent    float64 `json:"growth_percent"`
	SlopeMiBPerMin   float64 `json:"slope_mib_per_min"`
	WarmGoroutines   int64   `json:"warm_goroutines"`
	LastGoroutines   int64   `json:"last_goroutines"`
	WarmHeapMiB      float64 `json:"warm_heap_mib"`
	LastHeapMiB      float64 `json:"last_heap_mib"`
	Flat             bool    `json:"flat"`
	FlatRuleOfThumbs string  `json:"flat_rule"`
}

// flatRule is how a soak's memory is judged flat.
const flatRule = "RSS and heap at the end within 10% (or 8 MiB) of their level after warm-up, and goroutines within 10% (or 50)"

func (s *soak) fail(kind string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.errs[kind]
	if k == nil {
		k = &errorKind{}
		s.errs[kind] = k
	}
	k.Count++
	msg := firstLine(err.Error())
	if len(k.Samples) < 3 && !slices.Contains(k.Samples, msg) {
		k.Samples = append(k.Samples, msg)
	}
}

func (s *soak) event(e string) {
	s.mu.Lock()
	s.events = append(s.events, e)
	s.mu.Unlock()
	fmt.Fprintf(s.logw, "%6.0fs  %s\n", time.Since(s.start).Seconds(), e)
}

func (s *soak) mint(sub, name string, roles ...auth.Role) string {
	tok, err := s.signer.Mint(auth.Claims{Subject: sub, Name: name, Roles: roles}, s.ttl)
	if err != nil {
		panic(err) // a signer with a secret always mints
	}
	return tok
}

// dial connects one client and subscribes it to channel (recovering from
// epoch and offset when epoch is set). Pushes go to onPush until the
// connection ends; nil drains them.
func (s *soak) dial(ctx context.Context, token, channel, epoch string, offset uint64) (*protoclient.Conn, *protocol.SubscribeResult, error) {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	s.connects.Add(1)
	conn, err := protoclient.Dial(ctx, s.cfg.URL, protoclient.Options{PushBuffer: 1024, HTTPClient: s.ws[rand.IntN(len(s.ws))]})
	if err != nil {
		s.connectErrs.Add(1)
		s.fail("dial", err)
		return nil, nil, err
	}
	if _, err := conn.Connect(ctx, token); err != nil {
		conn.CloseNow()
		s.connectErrs.Add(1)
		s.fail("connect", err)
		return nil, nil, err
	}
	var res *protocol.SubscribeResult
	if channel != "" {
		req := &protocol.SubscribeRequest{Channel: channel}
		if epoch != "" {
			req.Recover, req.Epoch, req.Offset = true, epoch, offset
		}
		res, err = conn.Subscribe(ctx, req)
		if err != nil {
			conn.CloseNow()
			s.connectErrs.Add(1)
			s.fail("subscribe", err)
			return nil, nil, err
		}
	}
	s.open.Add(1)
	return conn, res, nil
}

func (s *soak) closed(conn *protoclient.Conn, now bool) {
	if now {
		conn.CloseNow()
	} else {
		_ = conn.Close()
	}
	s.open.Add(-1)
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// follower keeps one subscription alive: it reconnects after its socket
// ends and asks to recover what it missed. onPub sees every publication
// (recovered ones with live false); onGap is told of a time window it could
// not recover.
type follower struct {
	s       *soak
	token   string
	channel string
	onPub   func(p *protocol.Publication, live bool)
	onGap   func(from, to time.Time)

	conn atomic.Pointer[protoclient.Conn]
}

func (f *follower) run(ctx context.Context, ready chan<- error) {
	var epoch string
	var offset uint64
	var dropped time.Time
	first := true
	for ctx.Err() == nil {
		conn, res, err := f.s.dial(ctx, f.token, f.channel, epoch, offset)
		if err != nil {
			if first && ready != nil {
				ready <- err
				return
			}
			sleep(ctx, 500*time.Millisecond+rand.N(500*time.Millisecond))
			continue
		}
		if !first {
			f.s.reconnects.Add(1)
			if res.WasRecovering && res.Recovered {
				f.s.recovered.Add(1)
			} else {
				f.s.notRecov.Add(1)
				if f.onGap != nil {
					f.onGap(dropped, time.Now())
				}
			}
		}
		epoch = res.Epoch
		if res.Offset > offset || !res.WasRecovering {
			offset = res.Offset
		}
		for _, p := range res.Publications {
			offset = max(offset, p.Offset)
			f.onPub(p, false)
		}
		f.conn.Store(conn)
		if first && ready != nil {
			ready <- nil
		}
		first = false
		for p := range conn.Pushes() {
			if p.Pub != nil && p.Channel == f.channel {
				offset = max(offset, p.Pub.Offset)
				f.onPub(p.Pub, true)
			}
		}
		f.conn.Store(nil)
		f.s.open.Add(-1)
		dropped = time.Now()
		if ctx.Err() != nil {
			return
		}
		code, reason := conn.CloseStatus()
		f.s.fail("server closed "+strconv.Itoa(int(code)), fmt.Errorf("%s closed by the server: %d %s", f.channel, code, reason))
		sleep(ctx, 200*time.Millisecond+rand.N(800*time.Millisecond))
	}
}

func (f *follower) close() {
	if c := f.conn.Load(); c != nil {
		c.CloseNow()
	}
}

// soakWatcher is a viewer checking the chat numbers.
type soakWatcher struct {
	follower
	seen []uint64
	mu   sync.Mutex
	gaps [][2]int64
}

func (w *soakWatcher) onPub(p *protocol.Publication, live bool) {
	seq, ts, ok := parseChatSeq(p.Data)
	if !ok || seq < 0 || seq >= len(w.s.seenBy) {
		return
	}
	word, bit := seq/64, uint64(1)<<(seq%64)
	if w.seen[word]&bit != 0 {
		return
	}
	w.seen[word] |= bit
	w.s.seenBy[seq].Add(1)
	w.s.chatDelivered.Add(1)
	if live {
		w.s.lat.Load().Record(time.Duration(time.Now().UnixNano() - ts))
	}
}

func (w *soakWatcher) onGap(from, to time.Time) {
	w.mu.Lock()
	// A message acknowledged just before the drop may not have arrived.
	w.gaps = append(w.gaps, [2]int64{from.Add(-time.Second).UnixNano(), to.UnixNano()})
	w.mu.Unlock()
}

func (w *soakWatcher) excused(at int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, g := range w.gaps {
		if at >= g[0] && at <= g[1] {
			return true
		}
	}
	return false
}

// parseChatSeq reads "soak N T" out of a chat.message event.
func parseChatSeq(b []byte) (seq int, ts int64, ok bool) {
	const key = `"text":"soak `
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, 0, false
	}
	b = b[i+len(key):]
	n, k := leadingInt(b)
	if k == 0 || k >= len(b) || b[k] != ' ' {
		return 0, 0, false
	}
	t, j := leadingInt(b[k+1:])
	if j == 0 {
		return 0, 0, false
	}
	return int(n), t, true
}

func leadingInt(b []byte) (int64, int) {
	var v int64
	n := 0
	for n < len(b) && n < 19 && b[n] >= '0' && b[n] <= '9' {
		v = v*10 + int64(b[n]-'0')
		n++
	}
	return v, n
}

// publisherConn is a connection that publishes, redialled when it ends.
type publisherConn struct {
	s       *soak
	token   string
	channel string
	conn    *protoclient.Conn
}

func (p *publisherConn) get(ctx context.Context) (*protoclient.Conn, error) {
	if p.conn != nil {
		select {
		case <-p.conn.Done():
			p.s.open.Add(-1)
			p.conn = nil
		default:
			return p.conn, nil
		}
	}
	c, _, err := p.s.dial(ctx, p.token, p.channel, "", 0)
	if err != nil {
		return nil, err
	}
	go func() {
		for range c.Pushes() {
		}
	}()
	p.conn = c
	return c, nil
}

func (p *publisherConn) close() {
	if p.conn != nil {
		p.s.closed(p.conn, false)
		p.conn = nil
	}
}

func (s *soak) chatter(ctx context.Context, i int, every time.Duration) {
	pc := &publisherConn{s: s, token: s.mint(fmt.Sprintf("soak-chat-%s-%d", s.runID, i), "Soak Chatter "+strconv.Itoa(i), auth.RoleCustomer), channel: s.channel}
	defer pc.close()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		conn, err := pc.get(ctx)
		if err != nil {
			continue
		}
		seq := int(s.nextSeq.Add(1) - 1)
		if seq >= len(s.ackAt) {
			return
		}
		ts := time.Now().UnixNano()
		body, _ := json.Marshal(map[string]string{"text": fmt.Sprintf("soak %d %d", seq, ts)})
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = conn.Publish(cctx, s.channel, body)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.chatErrs.Add(1)
			s.fail("chat publish", err)
			continue
		}
		s.ackAt[seq].Store(ts)
		s.chatSent.Add(1)
	}
}

func (s *soak) churner(ctx context.Context, i int) {
	likes, _ := json.Marshal(map[string]any{"stream_id": s.stream, "count": 1})
	for k := 0; ctx.Err() == nil; k++ {
		tok := s.mint(fmt.Sprintf("soak-churn-%s-%d-%d", s.runID, i, k), "", auth.RoleCustomer)
		conn, _, err := s.dial(ctx, tok, s.channel, "", 0)
		if err != nil {
			sleep(ctx, time.Second)
			continue
		}
		go func() {
			for range conn.Pushes() {
			}
		}()
		stay := time.Second + rand.N(5*time.Second)
		end := time.Now().Add(stay)
		for time.Now().Before(end) && ctx.Err() == nil {
			if !sleep(ctx, time.Second) {
				break
			}
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := conn.RPC(cctx, "likes.add", likes)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				s.likeErrs.Add(1)
				s.fail("likes.add", err)
				break
			}
			s.likes.Add(1)
		}
		s.closed(conn, k%2 == 0)
	}
}

// buy checks out one unit for a new buyer; it returns the order ID and the
// buyer's token.
func (s *soak) buy(ctx context.Context, n int64) (string, string, error) {
	sub := fmt.Sprintf("soak-buyer-%s-%d", s.runID, n)
	tok := s.mint(sub, "Soak Buyer", auth.RoleCustomer)
	var order struct {
		ID string `json:"id"`
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := s.shop.call(cctx, "/v1/checkout", tok, "soak-"+sub, map[string]any{"flash_sale_id": s.saleID, "quantity": 1}, &order); err != nil {
		return "", "", err
	}
	return order.ID, tok, nil
}

func (s *soak) pay(ctx context.Context, order, tok string) error {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, err := s.shop.call(cctx, "/v1/payments/simulated/"+order+"/pay", tok, "", nil, nil)
	return err
}

var buyerSeq atomic.Int64

func (s *soak) buyers(ctx context.Context) {
	if s.cfg.CheckoutRate <= 0 {
		return
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / s.cfg.CheckoutRate))
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, 32)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			s.checkoutErrs.Add(1)
			s.fail("checkout", fmt.Errorf("32 checkouts already in flight"))
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// A checkout under way when the soak ends is finished and
			// counted, so the stock check adds up.
			ctx := context.WithoutCancel(ctx)
			n := buyerSeq.Add(1)
			order, tok, err := s.buy(ctx, n)
			if err != nil {
				s.checkoutErrs.Add(1)
				s.fail("checkout", err)
				return
			}
			s.checkouts.Add(1)
			if n%2 == 0 {
				if err := s.pay(ctx, order, tok); err != nil {
					s.checkoutErrs.Add(1)
					s.fail("pay", err)
					return
				}
				s.paid.Add(1)
			}
		}()
	}
}

// soakCourier is one delivery: a courier publishing its location and the
// buyer following it.
type soakCourier struct {
	s        *soak
	order    string
	courier  string
	buyerTok string
	addrLat  float64
	addrLng  float64

	mu    sync.Mutex
	acked map[int64]bool
	seen  map[int64]bool
	gaps  [][2]int64
	buyer *follower
}

func (s *soak) setupCourier(ctx context.Context, j int) (*soakCourier, error) {
	order, tok, err := s.buy(ctx, buyerSeq.Add(1))
	if err != nil {
		return nil, fmt.Errorf("courier %d: checkout: %w", j, err)
	}
	s.checkouts.Add(1)
	if err := s.pay(ctx, order, tok); err != nil {
		return nil, fmt.Errorf("courier %d: pay: %w", j, err)
	}
	s.paid.Add(1)
	c := &soakCourier{s: s, order: order, courier: fmt.Sprintf("soak-courier-%s-%d", s.runID, j), buyerTok: tok,
		addrLat: -6.2297, addrLng: 106.8295, acked: map[int64]bool{}, seen: map[int64]bool{}}
	body := map[string]any{"courier_id": c.courier, "address": map[string]any{"lat": c.addrLat, "lng": c.addrLng, "text": "Jl. Sudirman 1"}}
	if _, err := s.shop.call(ctx, "/v1/orders/"+order+"/courier", s.hostTok, "", body, nil); err != nil {
		return nil, fmt.Errorf("courier %d: assign: %w", j, err)
	}
	c.buyer = &follower{s: s, token: tok, channel: "order:" + order}
	c.buyer.onPub = c.onPub
	c.buyer.onGap = func(from, to time.Time) {
		c.mu.Lock()
		c.gaps = append(c.gaps, [2]int64{from.Add(-time.Second).UnixMilli(), to.UnixMilli()})
		c.mu.Unlock()
	}
	return c, nil
}

func (c *soakCourier) onPub(p *protocol.Publication, _ bool) {
	var ev struct {
		Type string `json:"type"`
		Data struct {
			DeviceTime int64 `json:"device_time"`
		} `json:"data"`
	}
	if json.Unmarshal(p.Data, &ev) != nil || ev.Type != "courier.location" {
		return
	}
	c.mu.Lock()
	if !c.seen[ev.Data.DeviceTime] {
		c.seen[ev.Data.DeviceTime] = true
		c.s.courierSeen.Add(1)
	}
	c.mu.Unlock()
}

// missing counts accepted points older than grace the buyer has not seen;
// with final, every accepted point counts.
func (c *soakCourier) missing(before int64) (lost, excused int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
outer:
	for t := range c.acked {
		if t > before || c.seen[t] {
			continue
		}
		for _, g := range c.gaps {
			if t >= g[0] && t <= g[1] {
				excused++
				continue outer
			}
		}
		lost++
	}
	return lost, excused
}

// drive publishes the courier's location every courierPeriod, moving
// towards the address at about 8 m/s from 8 km north of it.
func (c *soakCourier) drive(ctx context.Context) {
	s := c.s
	pc := &publisherConn{s: s, token: s.mint(c.courier, "Soak Courier", auth.RoleCourier), channel: "order:" + c.order}
	defer pc.close()
	tick := time.NewTicker(courierPeriod)
	defer tick.Stop()
	dist := 8000.0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		conn, err := pc.get(ctx)
		if err != nil {
			continue
		}
		dist = max(50, dist-20)
		now := time.Now().UnixMilli()
		pt := map[string]any{"lat": c.addrLat + dist/111_320, "lng": c.addrLng, "accuracy": 5, "heading": 180, "speed": 8, "device_time": now}
		body, _ := json.Marshal(pt)
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = conn.Publish(cctx, "order:"+c.order, body)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.courierErrs.Add(1)
			s.fail("courier location", err)
			continue
		}
		c.mu.Lock()
		c.acked[now] = true
		c.mu.Unlock()
		s.courierSent.Add(1)
	}
}

// runSoak is soak mode.
func runSoak(ctx context.Context, cfg Config, logw, out io.Writer) (*soakReport, error) {
	if cfg.Secret == "" {
		return nil, fmt.Errorf("soak mode mints tokens: give -secret (or -spawn-server)")
	}
	s := &soak{cfg: cfg, logw: logw, errs: map[string]*errorKind{}, runID: randomID(), ttl: cfg.Duration + 2*time.Hour}
	s.lat.Store(newHistogram())
	var err error
	if s.signer, err = auth.NewSigner(auth.SignerConfig{Secret: []byte(cfg.Secret)}); err != nil {
		return nil, err
	}
	s.ws = sourceClients(cfg.Sources, 0)
	defer closeIdle(s.ws)
	restClients := sourceClients(cfg.Sources[:1], 64)
	defer closeIdle(restClients)
	s.rest = restClients[0]
	s.shop = shopClient{base: strings.TrimRight(cfg.API, "/"), client: s.rest}
	s.hostTok = s.mint("soak-host-"+s.runID, "Soak Host", auth.RoleHost)

	// The stream and a sale large enough for the whole soak.
	var stream struct {
		ID string `json:"id"`
	}
	if _, err := s.shop.call(ctx, "/v1/streams", s.hostTok, "", map[string]string{"title": "livehub-bench soak " + s.runID}, &stream); err != nil {
		return nil, fmt.Errorf("create stream: %w", err)
	}
	s.stream, s.channel = stream.ID, "live:"+stream.ID
	units := int(math.Min(1_000_000, cfg.CheckoutRate*cfg.Duration.Seconds()*2+float64(cfg.Couriers)+100))
	var sale struct {
		ID string `json:"id"`
	}
	saleIn := map[string]any{
		"product": map[string]string{"id": "soak-sku", "name": "Soak item"}, "price": 25000,
		"quantity": units, "per_user_limit": 1, "countdown_seconds": 0, "duration_seconds": 604800,
	}
	if _, err := s.shop.call(ctx, "/v1/streams/"+s.stream+"/flash-sales", s.hostTok, "", saleIn, &sale); err != nil {
		return nil, fmt.Errorf("create flash sale: %w", err)
	}
	s.saleID = sale.ID

	maxSeq := int(cfg.ChatRate*cfg.Duration.Seconds()) + 1000
	s.ackAt = make([]atomic.Int64, maxSeq)
	s.seenBy = make([]atomic.Int32, maxSeq)
	s.start = time.Now()

	// Long-lived clients first: watchers and the couriers' buyers.
	fmt.Fprintf(logw, "soak of %s on %s: %d watchers, %d chatters (%.1f msg/s), %d churning, %.1f checkouts/s, %d couriers\n",
		cfg.Duration, s.channel, cfg.Clients, cfg.Chatters, cfg.ChatRate, cfg.Churn, cfg.CheckoutRate, cfg.Couriers)
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	subCtx, stopSubs := context.WithCancel(ctx)
	defer stopSubs()
	var subsWG sync.WaitGroup
	ready := make(chan error, cfg.Clients+cfg.Couriers)
	s.watchers = make([]*soakWatcher, cfg.Clients)
	for i := range s.watchers {
		w := &soakWatcher{seen: make([]uint64, (maxSeq+63)/64)}
		w.follower = follower{s: s, token: s.mint(fmt.Sprintf("soak-watch-%s-%d", s.runID, i), "", auth.RoleCustomer), channel: s.channel, onPub: w.onPub, onGap: w.onGap}
		s.watchers[i] = w
		subsWG.Add(1)
		go func() { defer subsWG.Done(); w.run(subCtx, ready) }()
	}
	for j := 0; j < cfg.Couriers; j++ {
		c, err := s.setupCourier(ctx, j)
		if err != nil {
			stopSubs()
			subsWG.Wait()
			return nil, err
		}
		s.couriers = append(s.couriers, c)
		subsWG.Add(1)
		go func() { defer subsWG.Done(); c.buyer.run(subCtx, ready) }()
	}
	for i := 0; i < cfg.Clients+cfg.Couriers; i++ {
		if err := <-ready; err != nil {
			stopSubs()
			subsWG.Wait()
			return nil, fmt.Errorf("a watcher could not subscribe: %w", err)
		}
	}

	rep := &soakReport{Mode: modeSoak, Started: s.start.UTC(), Engine: cfg.engine, Watchers: cfg.Clients, Chatters: cfg.Chatters,
		Churn: cfg.Churn, Couriers: cfg.Couriers, ChatRate: cfg.ChatRate, CheckoutRate: cfg.CheckoutRate}
	if rep.Engine == "" {
		rep.Engine = "server's"
	}
	s.redis = cfg.redis

	var wg sync.WaitGroup
	goRun := func(fn func()) { wg.Add(1); go func() { defer wg.Done(); fn() }() }
	if cfg.Chatters > 0 && cfg.ChatRate > 0 {
		every := time.Duration(float64(cfg.Chatters) / cfg.ChatRate * float64(time.Second))
		for i := 0; i < cfg.Chatters; i++ {
			goRun(func() {
				sleep(runCtx, time.Duration(i)*every/time.Duration(cfg.Chatters))
				s.chatter(runCtx, i, every)
			})
		}
	}
	for i := 0; i < cfg.Churn; i++ {
		goRun(func() {
			sleep(runCtx, time.Duration(rand.Int64N(int64(time.Second))))
			s.churner(runCtx, i)
		})
	}
	goRun(func() { s.buyers(runCtx) })
	for _, c := range s.couriers {
		goRun(func() { c.drive(runCtx) })
	}
	if s.redis != nil && cfg.RedisRestart > 0 {
		goRun(func() {
			for sleep(runCtx, cfg.RedisRestart) {
				down, err := s.redis.restart()
				if err != nil {
					s.fail("redis restart", err)
					s.event("redis restart failed: " + err.Error())
					return
				}
				rep.RedisRestarts++
				s.event(fmt.Sprintf("redis restarted (%.1fs down)", down.Seconds()))
			}
		})
	}

	// Rows.
	tw := tabwriter.NewWriter(out, 0, 0, 1, ' ', tabwriter.AlignRight)
	if !cfg.JSON {
		fmt.Fprintln(tw, "t(s)\topen\tconnects\tconn err\tchat sent\tchat err\tchat missing\tchat p99 ms\tlikes\tlike err\tcheckouts\tcheckout err\tcourier pts\tcourier err\tcourier missing\terrors\trss MiB\theap MiB\tgoroutines\tserver conns\tevents\t")
		_ = tw.Flush()
	}
	enc := json.NewEncoder(out)
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	end := time.NewTimer(cfg.Duration)
	defer end.Stop()
	emit := func(final bool) soakRow {
		row := s.sample(final)
		if final {
			return row
		}
		rep.Rows = append(rep.Rows, row)
		if cfg.JSON {
			_ = enc.Encode(row)
		} else {
			fmt.Fprintf(tw, "%.0f\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t%.1f\t%d\t%d\t%s\t\n",
				row.T, row.OpenConns, row.Connects, row.ConnectErrors, row.ChatSent, row.ChatErrors, row.ChatMissing, row.ChatP99MS,
				row.Likes, row.LikeErrors, row.Checkouts, row.CheckoutErrors, row.CourierPoints, row.CourierErrors, row.CourierMissing,
				row.Errors, row.RSSMiB, row.HeapMiB, row.Goroutines, row.ServerConns, row.Events)
			_ = tw.Flush()
		}
		return row
	}
loop:
	for {
		select {
		case <-tick.C:
			emit(false)
		case <-end.C:
			break loop
		case <-ctx.Done():
			break loop
		}
	}
	stopRun()
	wg.Wait()
	// Let the last messages arrive, then count.
	sleep(ctx, 3*time.Second)
	rep.Final = emit(true)
	stopSubs()
	for _, w := range s.watchers {
		w.close()
	}
	for _, c := range s.couriers {
		c.buyer.close()
	}
	subsWG.Wait()
	rep.Seconds = time.Since(s.start).Seconds()
	rep.ChatLost, rep.ChatExcused = s.chatMissing(math.MaxInt64)
	for _, c := range s.couriers {
		l, _ := c.missing(math.MaxInt64)
		rep.CourierLost += l
	}
	rep.Reconnects, rep.Recovered, rep.NotRecovered = s.reconnects.Load(), s.recovered.Load(), s.notRecov.Load()
	rep.Paid = s.paid.Load()
	rep.StockCheck = s.checkStock(ctx)
	s.mu.Lock()
	rep.Errors = maps.Clone(s.errs)
	s.mu.Unlock()
	rep.Memory = memoryOf(rep.Rows)
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	return rep, nil
}

// checkStock compares the sale's stock with the checkouts answered 201.
func (s *soak) checkStock(ctx context.Context) string {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(cctx, http.MethodGet, s.shop.base+"/v1/flash-sales/"+s.saleID, nil)
	req.Header.Set("Authorization", "Bearer "+s.hostTok)
	resp, err := s.rest.Do(req)
	if err != nil {
		return "not checked: " + err.Error()
	}
	defer resp.Body.Close()
	var sale struct {
		Quantity  int `json:"quantity"`
		StockLeft int `json:"stock_left"`
		Sold      int `json:"sold"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&sale); err != nil {
		return "not checked: " + err.Error()
	}
	reserved := sale.Quantity - sale.StockLeft
	n := s.checkouts.Load()
	verdict := "consistent"
	if int64(reserved) != n {
		verdict = "INCONSISTENT"
	}
	return fmt.Sprintf("%s: %d units reserved or sold for %d checkouts answered 201 (%d paid orders on the sale)", verdict, reserved, n, sale.Sold)
}

// chatMissing counts (watcher, message) pairs acknowledged before the
// given time (Unix ns) that the watcher has not seen, and those excused by
// a failed recovery.
func (s *soak) chatMissing(before int64) (missing, excused int64) {
	n := min(int(s.nextSeq.Load()), len(s.ackAt))
	for seq := 0; seq < n; seq++ {
		at := s.ackAt[seq].Load()
		if at == 0 || at > before {
			continue
		}
		lack := int64(len(s.watchers)) - int64(s.seenBy[seq].Load())
		if lack <= 0 {
			continue
		}
		// Which watchers lack it is not kept per message; the excused ones
		// are those whose gap covers it (they may have got it anyway).
		var exc int64
		for _, w := range s.watchers {
			if w.excused(at) {
				exc++
			}
		}
		exc = min(exc, lack)
		excused += exc
		missing += lack - exc
	}
	return missing, excused
}

// sample takes one row.
func (s *soak) sample(final bool) soakRow {
	now := time.Now()
	row := soakRow{
		T: math.Round(now.Sub(s.start).Seconds()), OpenConns: s.open.Load(), Connects: s.connects.Load(), ConnectErrors: s.connectErrs.Load(),
		ChatSent: s.chatSent.Load(), ChatErrors: s.chatErrs.Load(), ChatDelivered: s.chatDelivered.Load(),
		Likes: s.likes.Load(), LikeErrors: s.likeErrs.Load(), Checkouts: s.checkouts.Load(), CheckoutErrors: s.checkoutErrs.Load(),
		CourierPoints: s.courierSent.Load(), CourierErrors: s.courierErrs.Load(),
	}
	before := now.Add(-soakGrace).UnixNano()
	if final {
		before = math.MaxInt64
	}
	row.ChatMissing, _ = s.chatMissing(before)
	for _, c := range s.couriers {
		l, _ := c.missing(now.Add(-soakGrace).UnixMilli())
		row.CourierMissing += l
	}
	row.ChatP99MS = s.lat.Swap(newHistogram()).Snapshot().summary().P99
	s.mu.Lock()
	for _, k := range s.errs {
		row.Errors += k.Count
	}
	row.Events = strings.Join(s.events, "; ")
	s.events = nil
	s.mu.Unlock()
	if s.cfg.ServerPID > 0 {
		if p, err := readProc(s.cfg.ServerPID); err == nil {
			row.RSSMiB = round2(float64(p.RSSKiB) / 1024)
		}
	}
	m := scrapeMetrics(s.rest, s.shop.base+"/metrics")
	row.Goroutines = int64(m["go_goroutines"])
	row.HeapMiB = round2(m["go_memstats_heap_inuse_bytes"] / (1 << 20))
	row.ServerConns = int64(m["livehub_hub_connections"])
	return row
}

// scrapeMetrics reads the unlabelled samples of a Prometheus text page.
func scrapeMetrics(c *http.Client, url string) map[string]float64 {
	out := map[string]float64{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.ContainsRune(name, '{') {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = f
		}
	}
	return out
}

// memoryOf judges the server's memory over the rows.
func memoryOf(rows []soakRow) soakMemory {
	m := soakMemory{FlatRuleOfThumbs: flatRule}
	if len(rows) == 0 {
		return m
	}
	warm := rows[min(len(rows)-1, max(1, len(rows)/10))]
	last := rows[len(rows)-1]
	m.WarmRSSMiB, m.LastRSSMiB = warm.RSSMiB, last.RSSMiB
	m.WarmGoroutines, m.LastGoroutines = warm.Goroutines, last.Goroutines
	m.WarmHeapMiB, m.LastHeapMiB = warm.HeapMiB, last.HeapMiB
	for _, r := range rows {
		m.MaxRSSMiB = max(m.MaxRSSMiB, r.RSSMiB)
	}
	if warm.RSSMiB > 0 {
		m.GrowthPercent = round2((last.RSSMiB - warm.RSSMiB) / warm.RSSMiB * 100)
	}
	// Least-squares slope of RSS over the second half.
	half := rows[len(rows)/2:]
	if len(half) >= 2 {
		var sx, sy, sxx, sxy float64
		for _, r := range half {
			x := r.T / 60
			sx += x
			sy += r.RSSMiB
			sxx += x * x
			sxy += x * r.RSSMiB
		}
		n := float64(len(half))
		if d := n*sxx - sx*sx; d != 0 {
			m.SlopeMiBPerMin = round2((n*sxy - sx*sy) / d)
		}
	}
	within := func(a, b, pct, abs float64) bool { return b-a <= math.Max(a*pct, abs) }
	m.Flat = within(warm.RSSMiB, last.RSSMiB, 0.10, 8) && within(warm.HeapMiB, last.HeapMiB, 0.10, 8) &&
		within(float64(warm.Goroutines), float64(last.Goroutines), 0.10, 50)
	return m
}

// writeSummary prints the end of a soak for people.
func (r *soakReport) writeSummary(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	f := r.Final
	row("soak", "%.0fs on the %s engine: %d watchers, %d chatters at %.1f msg/s, %d churning clients, %.1f checkouts/s, %d couriers, %d Redis restarts",
		r.Seconds, r.Engine, r.Watchers, r.Chatters, r.ChatRate, r.Churn, r.CheckoutRate, r.Couriers, r.RedisRestarts)
	row("connections", "%d made, %d failed", f.Connects, f.ConnectErrors)
	row("chat", "%d acknowledged, %d refused; %d (watcher, message) pairs lost, %d unrecoverable after a failed recovery", f.ChatSent, f.ChatErrors, r.ChatLost, r.ChatExcused)
	row("watchers", "%d reconnects: %d recovered, %d not", r.Reconnects, r.Recovered, r.NotRecovered)
	row("likes", "%d calls, %d failed", f.Likes, f.LikeErrors)
	row("checkouts", "%d (201), %d paid, %d failed; %s", f.Checkouts, r.Paid, f.CheckoutErrors, r.StockCheck)
	row("courier", "%d points accepted, %d refused, %d lost", f.CourierPoints, f.CourierErrors, r.CourierLost)
	m := r.Memory
	flat := "not flat"
	if m.Flat {
		flat = "flat"
	}
	row("server memory", "RSS %.1f MiB after warm-up, %.1f MiB at the end (%+.1f%%, max %.1f), %+.2f MiB/min over the second half; heap %.1f → %.1f MiB; goroutines %d → %d: %s",
		m.WarmRSSMiB, m.LastRSSMiB, m.GrowthPercent, m.MaxRSSMiB, m.SlopeMiBPerMin, m.WarmHeapMiB, m.LastHeapMiB, m.WarmGoroutines, m.LastGoroutines, flat)
	for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
		row("  error", "%s: %d (%s)", k, r.Errors[k].Count, strings.Join(r.Errors[k].Samples, " | "))
	}
	return tw.Flush()
}
