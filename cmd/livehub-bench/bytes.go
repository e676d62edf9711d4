package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/centrifugal/protocol"
	"github.com/coder/websocket"

	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/fossil"
)

// Bytes mode replays a recorded-style mix of room events (chat messages,
// likes and viewer counts, stock updates, the purchase ticker, in the
// envelope of docs/events.md) into one live:{stream} channel through the
// server API, once per encoding, to -clients subscribers of that encoding.
// Each subscriber's socket sits on a counting net.Conn, so the bytes are
// those on the wire: WebSocket frame headers, compression and protocol
// framing included, the HTTP upgrade excluded. The server's CPU time over
// the replay is read from /proc.

// wireVariant is one way of receiving the room.
type wireVariant struct {
	// Key selects the variant with -variants.
	Key      string
	Name     string
	Protobuf bool
	Deflate  bool
	// Takeover offers deflate with context takeover, which the node only
	// accepts with LIVEHUB_WS_COMPRESSION=context_takeover.
	Takeover bool
	Delta    bool
}

// wireVariants are replayed by default.
var wireVariants = []wireVariant{
	{Key: "json", Name: "JSON"},
	{Key: "json+deflate", Name: "JSON + permessage-deflate", Deflate: true},
	{Key: "protobuf", Name: "Protobuf", Protobuf: true},
	{Key: "protobuf+deflate", Name: "Protobuf + permessage-deflate", Protobuf: true, Deflate: true},
	{Key: "json+delta", Name: "JSON + Fossil delta", Delta: true},
	{Key: "protobuf+delta", Name: "Protobuf + Fossil delta", Protobuf: true, Delta: true},
}

// extraVariants are replayed only when -variants names them.
var extraVariants = []wireVariant{
	{Key: "json+deflate-takeover", Name: "JSON + permessage-deflate with context takeover", Deflate: true, Takeover: true},
}

// selectVariants returns the variants named in keys (comma-separated), or
// the default ones when keys is empty.
func selectVariants(keys string) ([]wireVariant, error) {
	if keys == "" {
		return wireVariants, nil
	}
	var out []wireVariant
	for k := range strings.SplitSeq(keys, ",") {
		k = strings.TrimSpace(k)
		all := append(slices.Clone(wireVariants), extraVariants...)
		i := slices.IndexFunc(all, func(v wireVariant) bool { return v.Key == k })
		if i < 0 {
			return nil, fmt.Errorf("-variants: unknown variant %q", k)
		}
		out = append(out, all[i])
	}
	return out, nil
}

// bytesResult is one variant's figures.
type bytesResult struct {
	Variant     string  `json:"variant"`
	Negotiated  string  `json:"negotiated"`
	Clients     int     `json:"clients"`
	Events      int     `json:"events"`
	Delivered   int64   `json:"delivered"`
	Mismatched  int64   `json:"mismatched,omitempty"`
	DeltaPubs   int64   `json:"delta_publications"`
	WireBytes   int64   `json:"wire_bytes"`
	PerEvent    float64 `json:"wire_bytes_per_event"`
	PerHour     float64 `json:"mib_per_viewer_hour"`
	ServerCPUus float64 `json:"server_cpu_us_per_delivery"`
	ServerRSS   float64 `json:"server_rss_mib"`
	Error       string  `json:"error,omitempty"`
}

// bytesReport is the whole replay.
type bytesReport struct {
	Events       int           `json:"events"`
	Clients      int           `json:"clients"`
	PayloadBytes float64       `json:"payload_bytes_per_event"`
	EventsPerHr  int           `json:"events_per_viewer_hour"`
	Mix          string        `json:"mix"`
	Results      []bytesResult `json:"results"`
	Command      string        `json:"command,omitempty"`
}

// eventsPerViewerHour is the busy room a viewer-hour figure assumes: one
// event a second on average (chat, likes and viewer counts every 500 ms
// at most, stock updates during sales).
const eventsPerViewerHour = 3600

// roomMix returns n room events, the same for a given seed.
func roomMix(n int, seed uint64) [][]byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	hex := func(k int) string {
		const digits = "0123456789abcdef"
		b := make([]byte, k)
		for i := range b {
			b[i] = digits[r.IntN(16)]
		}
		return string(b)
	}
	names := []string{"Budi Santoso", "Siti Rahma", "Andi Wijaya", "Dewi Lestari", "Rizky Pratama", "Putri Ayu", "Agus Salim", "Maya Sari"}
	texts := []string{"halo kak, ready size 42?", "mantap!", "kak spill harga dong", "ongkir ke Bandung berapa?", "sudah checkout kak 🙏",
		"warna hitam masih ada?", "wkwkwk", "bisa COD?", "cantik banget", "kapan flash sale lagi kak", "size 40 sold out ya?", "up up"}
	at := time.Date(2026, 11, 25, 18, 46, 0, 0, time.UTC)
	likes, viewers, peak, stock := 1200, 850, 850, 500
	sale := "fs_" + hex(24)
	out := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		at = at.Add(time.Duration(200+r.IntN(800)) * time.Millisecond)
		var typ string
		var data any
		switch k := r.IntN(100); {
		case k < 62:
			u := r.IntN(len(names))
			typ, data = "chat.message", map[string]any{"id": "msg_" + hex(24), "text": texts[r.IntN(len(texts))],
				"user_id": "buyer-" + strconv.Itoa(1000+r.IntN(9000)), "name": names[u], "role": "viewer"}
		case k < 78:
			add := 1 + r.IntN(40)
			likes += add
			typ, data = "likes.count", map[string]any{"total": likes, "rate_per_second": add * 2}
		case k < 90:
			viewers += r.IntN(21) - 8
			peak = max(peak, viewers)
			typ, data = "viewers.count", map[string]any{"count": viewers, "peak": peak}
		case k < 97:
			stock = max(0, stock-1-r.IntN(5))
			typ, data = "flash_sale.stock", map[string]any{"flash_sale_id": sale, "quantity": 500, "sold": 500 - stock - r.IntN(3), "stock_left": stock}
		default:
			typ, data = "order.placed", map[string]any{"flash_sale_id": sale, "quantity": 1, "buyer_name": names[r.IntN(len(names))][:1] + "***"}
		}
		b, _ := json.Marshal(map[string]any{"type": typ, "v": 1, "id": "ev_" + hex(24), "at": at.Format(time.RFC3339Nano), "data": data})
		out = append(out, b)
	}
	return out
}

// countingConn counts the bytes read from and written to a connection.
type countingConn struct {
	net.Conn
	read, written *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// wireClient is one subscriber of a variant, on a counting connection.
type wireClient struct {
	v       wireVariant
	ws      *websocket.Conn
	read    atomic.Int64
	written atomic.Int64
	nextID  uint32
	prev    []byte
	// deflate is whether the server accepted permessage-deflate.
	deflate bool
}

func dialWire(ctx context.Context, url string, v wireVariant) (*wireClient, error) {
	c := &wireClient{v: v}
	d := &net.Dialer{Timeout: 10 * time.Second}
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return countingConn{Conn: conn, read: &c.read, written: &c.written}, nil
		},
	}}
	o := &websocket.DialOptions{HTTPClient: hc}
	if v.Protobuf {
		o.Subprotocols = []string{"centrifuge-protobuf"}
	}
	if v.Deflate {
		o.CompressionMode = websocket.CompressionNoContextTakeover
		if v.Takeover {
			o.CompressionMode = websocket.CompressionContextTakeover
		}
	}
	ws, resp, err := websocket.Dial(ctx, url, o)
	if err != nil {
		return nil, err
	}
	c.deflate = strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")
	ws.SetReadLimit(16 << 20)
	c.ws = ws
	if v.Protobuf && ws.Subprotocol() != "centrifuge-protobuf" {
		ws.CloseNow()
		return nil, errors.New("the server did not accept the centrifuge-protobuf subprotocol")
	}
	return c, nil
}

// call sends one command and reads until its reply; pushes before it are
// dropped (there are none before subscribing).
func (c *wireClient) call(ctx context.Context, cmd *protocol.Command) (*protocol.Reply, error) {
	c.nextID++
	cmd.Id = c.nextID
	var data []byte
	var err error
	typ := websocket.MessageText
	if c.v.Protobuf {
		data, err = protocol.NewProtobufCommandEncoder().Encode(cmd)
		typ = websocket.MessageBinary
	} else {
		data, err = protocol.NewJSONCommandEncoder().Encode(cmd)
	}
	if err != nil {
		return nil, err
	}
	if err := c.ws.Write(ctx, typ, data); err != nil {
		return nil, err
	}
	for {
		replies, err := c.readReplies(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range replies {
			if r.Id == cmd.Id {
				if r.Error != nil {
					return r, fmt.Errorf("error %d: %s", r.Error.Code, r.Error.Message)
				}
				return r, nil
			}
		}
	}
}

func (c *wireClient) readReplies(ctx context.Context) ([]*protocol.Reply, error) {
	_, data, err := c.ws.Read(ctx)
	if err != nil {
		return nil, err
	}
	var out []*protocol.Reply
	if c.v.Protobuf {
		dec := protocol.NewProtobufReplyDecoder(data)
		for {
			r, err := dec.Decode()
			if err != nil {
				if errors.Is(err, io.EOF) {
					return out, nil
				}
				return out, err
			}
			out = append(out, r)
		}
	}
	dec := protocol.NewJSONReplyDecoder(data)
	for {
		r, err := dec.Decode()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		out = append(out, r)
	}
}

// payload returns a publication's event, applying a Fossil delta to the
// previous one. With JSON and delta the data travels as a JSON string.
func (c *wireClient) payload(p *protocol.Publication) ([]byte, error) {
	data := []byte(p.Data)
	if c.v.Delta && !c.v.Protobuf && len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return nil, err
		}
		data = []byte(s)
	}
	if p.Delta {
		if c.prev == nil {
			return nil, errors.New("a delta before any full publication")
		}
		full, err := fossil.Apply(c.prev, data)
		if err != nil {
			return nil, err
		}
		data = full
	}
	c.prev = data
	return data, nil
}

// runBytes is bytes mode.
func runBytes(ctx context.Context, cfg Config, logw io.Writer) (*bytesReport, error) {
	if cfg.Secret == "" || cfg.APIKey == "" {
		return nil, errors.New("bytes mode mints tokens and publishes through the server API: give -secret and -api-key (or -spawn-server)")
	}
	n := max(cfg.Events, 10)
	clients := max(min(cfg.Clients, 200), 1)
	events := roomMix(n, 11)
	var total int
	for _, e := range events {
		total += len(e)
	}
	rep := &bytesReport{Events: n, Clients: clients, PayloadBytes: float64(total) / float64(n), EventsPerHr: eventsPerViewerHour,
		Mix: "62% chat.message, 16% likes.count, 12% viewers.count, 7% flash_sale.stock, 3% order.placed"}
	signer, err := auth.NewSigner(auth.SignerConfig{Secret: []byte(cfg.Secret)})
	if err != nil {
		return nil, err
	}
	pubClients := sourceClients([]string{"127.0.0.1"}, 4)
	defer closeIdle(pubClients)
	pub := &publisher{url: strings.TrimRight(cfg.API, "/") + "/api/publish", key: cfg.APIKey, client: pubClients[0]}
	variants, err := selectVariants(cfg.Variants)
	if err != nil {
		return nil, err
	}
	for vi, v := range variants {
		res := bytesResult{Variant: v.Name, Clients: clients, Events: n}
		err := replayVariant(ctx, cfg, signer, pub, v, vi, events, &res, logw)
		if err != nil {
			res.Error = firstLine(err.Error())
			fmt.Fprintf(logw, "%s: %v\n", v.Name, err)
		}
		rep.Results = append(rep.Results, res)
	}
	return rep, nil
}

func replayVariant(ctx context.Context, cfg Config, signer *auth.Signer, pub *publisher, v wireVariant, vi int, events [][]byte, res *bytesResult, logw io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	channel := fmt.Sprintf("live:bytes-%s-%d", randomID(), vi)
	conns := make([]*wireClient, 0, res.Clients)
	defer func() {
		for _, c := range conns {
			c.ws.CloseNow()
		}
	}()
	for i := 0; i < res.Clients; i++ {
		c, err := dialWire(ctx, cfg.URL, v)
		if err != nil {
			return fmt.Errorf("dial: %w", err)
		}
		conns = append(conns, c)
		tok, err := signer.Mint(auth.Claims{Subject: fmt.Sprintf("bytes-%d", i), Roles: []auth.Role{auth.RoleCustomer}}, time.Hour)
		if err != nil {
			return err
		}
		if _, err := c.call(ctx, &protocol.Command{Connect: &protocol.ConnectRequest{Token: tok}}); err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		sub := &protocol.SubscribeRequest{Channel: channel}
		if v.Delta {
			sub.Delta = "fossil"
		}
		r, err := c.call(ctx, &protocol.Command{Subscribe: sub})
		if err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
		if v.Delta && (r.Subscribe == nil || !r.Subscribe.Delta) {
			return errors.New("the server did not grant delta: fossil on " + channel)
		}
	}
	switch {
	case v.Protobuf:
		res.Negotiated = "centrifuge-protobuf"
	default:
		res.Negotiated = "json"
	}
	if v.Deflate {
		if conns[0].deflate {
			res.Negotiated += " + permessage-deflate"
		} else {
			res.Negotiated += " (deflate refused by the server)"
		}
	}
	// Readers count from here: the upgrade, connect and subscribe are out.
	start := make([]int64, len(conns))
	for i, c := range conns {
		start[i] = c.read.Load()
	}
	var delivered, mismatched, deltas atomic.Int64
	var wg sync.WaitGroup
	readErr := make(chan error, len(conns))
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := 0
			for got < len(events) {
				replies, err := c.readReplies(ctx)
				if err != nil {
					readErr <- err
					return
				}
				for _, r := range replies {
					if r.Push == nil || r.Push.Pub == nil {
						if r.Id == 0 && r.Push == nil {
							// The server's ping: answer it as clients do.
							_ = c.pong(ctx)
						}
						continue
					}
					if r.Push.Pub.Delta {
						deltas.Add(1)
					}
					data, err := c.payload(r.Push.Pub)
					if err != nil || !json.Valid(data) || !bytes.Equal(compactJSON(data), compactJSON(events[got])) {
						mismatched.Add(1)
					}
					got++
					delivered.Add(1)
				}
			}
		}()
	}
	var before procSample
	if cfg.ServerPID > 0 {
		before, _ = readProc(cfg.ServerPID)
	}
	for i, e := range events {
		if err := pub.publishRaw(ctx, channel, e); err != nil {
			return fmt.Errorf("publish %d: %w", i, err)
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case err := <-readErr:
		return fmt.Errorf("read: %w", err)
	case <-ctx.Done():
		return fmt.Errorf("waiting for deliveries: %w (%d of %d)", ctx.Err(), delivered.Load(), len(events)*len(conns))
	}
	if cfg.ServerPID > 0 {
		if after, err := readProc(cfg.ServerPID); err == nil && before.At.Before(after.At) {
			res.ServerCPUus = round2(float64(after.CPU-before.CPU) / float64(time.Microsecond) / float64(delivered.Load()))
			res.ServerRSS = round2(float64(after.RSSKiB) / 1024)
		}
	}
	for i, c := range conns {
		res.WireBytes += c.read.Load() - start[i]
	}
	res.Delivered, res.Mismatched, res.DeltaPubs = delivered.Load(), mismatched.Load(), deltas.Load()
	if res.Delivered > 0 {
		res.PerEvent = round2(float64(res.WireBytes) / float64(res.Delivered))
		res.PerHour = round2(res.PerEvent * eventsPerViewerHour / (1 << 20))
	}
	fmt.Fprintf(logw, "%-32s %8.1f bytes/event, %d deltas, %d mismatched\n", v.Name, res.PerEvent, res.DeltaPubs, res.Mismatched)
	if res.Mismatched > 0 {
		return fmt.Errorf("%d publications did not decode to the event sent", res.Mismatched)
	}
	return nil
}

func (c *wireClient) pong(ctx context.Context) error {
	if c.v.Protobuf {
		// An empty command, length-prefixed: one zero byte.
		return c.ws.Write(ctx, websocket.MessageBinary, []byte{0})
	}
	return c.ws.Write(ctx, websocket.MessageText, []byte("{}"))
}

func compactJSON(b []byte) []byte {
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		return b
	}
	return out.Bytes()
}

// publishRaw publishes data as it is.
func (p *publisher) publishRaw(ctx context.Context, channel string, data []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	body, err := json.Marshal(publishBody{Channel: channel, Data: data})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", p.key)
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK || bytes.Contains(b, []byte(`"error"`)) {
		return fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, b)
	}
	return nil
}

func (r *bytesReport) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "bytes per event: %d events (%s), %.0f bytes of event JSON on average, %d subscribers per encoding\n", r.Events, r.Mix, r.PayloadBytes, r.Clients)
	fmt.Fprintln(tw, "encoding\twire bytes/event\tMiB/viewer-hour\tdeltas\tserver CPU µs/delivery\tnote")
	for _, x := range r.Results {
		fmt.Fprintf(tw, "%s\t%.1f\t%.2f\t%d\t%.2f\t%s\n", x.Variant, x.PerEvent, x.PerHour, x.DeltaPubs, x.ServerCPUus, x.Error)
	}
	return tw.Flush()
}

// bytesMarkdown is the bytes section of docs/benchmarks.md.
func bytesMarkdown(r *bytesReport, m machine) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s.\n\n```sh\n%s\n```\n\n", m.Date, m, r.Command)
	fmt.Fprintf(&b, "%s events replayed into one room (%s; %.0f bytes of event JSON on average), to %d subscribers of each encoding in turn. Wire bytes are counted under the WebSocket client (frame headers, protocol framing and compression included; the HTTP upgrade, connect and subscribe excluded). A viewer-hour assumes %s events, one a second. Server CPU is the node's CPU time over the replay (publishing through the server API included) per delivered event.\n\n",
		num(r.Events), r.Mix, r.PayloadBytes, r.Clients, num(r.EventsPerHr))
	b.WriteString("| encoding | negotiated | wire bytes per event | MiB per viewer-hour | of JSON | server CPU per delivery | deltas sent |\n|---|---|---|---|---|---|---|\n")
	var base float64
	for _, x := range r.Results {
		if x.Variant == "JSON" && x.Error == "" {
			base = x.PerEvent
		}
	}
	for _, x := range r.Results {
		if x.Error != "" {
			fmt.Fprintf(&b, "| %s | | not measured: %s | | | | |\n", x.Variant, mdCell(x.Error))
			continue
		}
		rel := "—"
		if base > 0 {
			rel = fmt.Sprintf("%.0f%%", x.PerEvent/base*100)
		}
		fmt.Fprintf(&b, "| %s | %s | %.1f | %.2f | %s | %.1f µs | %s of %s |\n", x.Variant, x.Negotiated, x.PerEvent, x.PerHour, rel, x.ServerCPUus, num(x.DeltaPubs), num(x.Delivered))
	}
	return b.String()
}
