package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a run, printed as a table or, with -json, as
// this object.
type Report struct {
	Mode     string           `json:"mode"`
	URL      string           `json:"url"`
	Clients  int              `json:"clients"`
	Rooms    int              `json:"rooms,omitempty"`
	Workers  int              `json:"workers"`
	Sources  int              `json:"sources"`
	Payload  int              `json:"payload_bytes,omitempty"`
	Rate     float64          `json:"rate,omitempty"`
	Started  time.Time        `json:"started"`
	Seconds  float64          `json:"seconds"`
	Connect  connectReport    `json:"connect"`
	Publish  *publishReport   `json:"publish,omitempty"`
	Delivery *deliveryReport  `json:"delivery,omitempty"`
	Reconn   *reconnectReport `json:"reconnect,omitempty"`
	Checkout *checkoutReport  `json:"checkout,omitempty"`
	Server   *serverReport    `json:"server,omitempty"`
	Tool     *toolReport      `json:"tool,omitempty"`
	// Nodes has one entry per node when the clients were spread over
	// several (Server is then the first, which took the publications).
	Nodes []serverReport `json:"nodes,omitempty"`
	// Redis is the redis-server the tool started, charged for every client.
	Redis *serverReport `json:"redis,omitempty"`
	// Disconnects counts connections the server ended, by close code;
	// FirstDisconnectSeconds is when the first of them ended, from the
	// start of the run.
	Disconnects            map[string]int `json:"disconnects,omitempty"`
	FirstDisconnectSeconds float64        `json:"first_disconnect_seconds,omitempty"`
	// Fleets has one entry per worker (one in all, without workers).
	Fleets []fleetSummary `json:"fleets"`

	// servers are the server processes watched, each with its report.
	servers  []*watchedServer
	toolPIDs []int
}

// watchedServer is a server process whose RSS and CPU time the report
// shows; baseline is its sample before the clients connected (nil when
// /proc could not be read). node is its index in Connect.ByNode, or -1
// when it serves every client.
type watchedServer struct {
	pid      int
	node     int
	baseline *procSample
	rep      *serverReport
}

// connectReport is the connect phase over all fleets, which connect at once.
type connectReport struct {
	Connected int      `json:"connected"`
	Failed    int      `json:"failed"`
	Seconds   float64  `json:"seconds"`
	PerSecond float64  `json:"per_second"`
	Errors    []string `json:"errors,omitempty"`
	// ByNode counts the connected clients by node, when there are several.
	ByNode []int `json:"by_node,omitempty"`
	// CPU is what every process used while the clients connected.
	CPU *phaseCPU `json:"cpu,omitempty"`
}

// phaseCPU is the CPU use of the processes of a run in one phase, in
// percent of one core (the machine's too, with Cores × 100 for all of it).
type phaseCPU struct {
	// Servers are the server nodes, in order.
	Servers []float64 `json:"servers,omitempty"`
	Redis   float64   `json:"redis,omitempty"`
	Tool    float64   `json:"tool"`
	Machine float64   `json:"machine"`
}

// deliveryReport is what the clients received.
type deliveryReport struct {
	Expected   int64 `json:"expected"`
	Delivered  int64 `json:"delivered"`
	Lost       int64 `json:"lost"`
	Duplicates int64 `json:"duplicates"`
	Ignored    int64 `json:"ignored,omitempty"`
	// PerSecond is deliveries from the first publication to the last delivery.
	PerSecond float64        `json:"per_second"`
	Latency   latencySummary `json:"latency"`
}

// reconnectReport is the drop and the reconnections.
type reconnectReport struct {
	Dropped       int            `json:"dropped"`
	Reconnected   int            `json:"reconnected"`
	Failed        int            `json:"failed"`
	Recovered     int            `json:"recovered"`
	NotRecovered  int            `json:"not_recovered"`
	RecoveredPubs int64          `json:"recovered_publications"`
	Time          latencySummary `json:"time"`
	Errors        []string       `json:"errors,omitempty"`
}

// serverReport is the server process as /proc shows it.
type serverReport struct {
	PID int `json:"pid"`
	// URL and Connected, for a node of several: its endpoint and the
	// clients connected to it.
	URL           string  `json:"url,omitempty"`
	Connected     int     `json:"connected,omitempty"`
	RSSBeforeKiB  int64   `json:"rss_before_kib"`
	RSSAfterKiB   int64   `json:"rss_connected_kib"`
	RSSPeakKiB    int64   `json:"rss_peak_kib"`
	RSSPerConnKiB float64 `json:"rss_per_conn_kib"`
	CPUPercent    float64 `json:"cpu_percent"`
	CPUPhase      string  `json:"cpu_phase,omitempty"`
	Error         string  `json:"error,omitempty"`
}

// toolReport is the CPU this tool's processes (the parent and its workers)
// used, in percent of one core.
type toolReport struct {
	Processes  int     `json:"processes"`
	CPUPercent float64 `json:"cpu_percent"`
	CPUPhase   string  `json:"cpu_phase"`
	// MachineCPUPercent is the whole machine's CPU use in the same phase
	// (Cores × 100 is all of it): what neither the server nor the tool
	// used was taken by something else.
	MachineCPUPercent float64 `json:"machine_cpu_percent"`
	Cores             int     `json:"cores"`
	// CPUSeconds is the tool's CPU time in the phase; PerDeliveryUS that
	// time per delivery, in microseconds: unlike the percentage, which is
	// the share the tool got of a machine it shares, it is what the tool
	// needs.
	CPUSeconds    float64 `json:"cpu_seconds"`
	PerDeliveryUS float64 `json:"cpu_per_delivery_us,omitempty"`
}

// fleetSummary is one fleet's share, to show how workers split the work.
type fleetSummary struct {
	Clients    int   `json:"clients"`
	Connected  int   `json:"connected"`
	Delivered  int64 `json:"delivered"`
	Lost       int64 `json:"lost"`
	Duplicates int64 `json:"duplicates"`
	SawZero    int   `json:"saw_zero,omitempty"`
}

func newReport(cfg Config) *Report {
	r := &Report{
		Mode: cfg.Mode, URL: cfg.URL, Clients: cfg.Clients, Workers: cfg.Workers,
		Sources: len(cfg.Sources), Started: time.Now().UTC(),
		toolPIDs: []int{os.Getpid()},
	}
	if cfg.Mode != modeCheckout {
		r.Rooms, r.Payload, r.Rate = cfg.Rooms, cfg.Payload, cfg.Rate
	}
	switch {
	case len(cfg.ServerPIDs) > 1:
		r.Nodes = make([]serverReport, len(cfg.ServerPIDs))
		for i, pid := range cfg.ServerPIDs {
			r.Nodes[i].PID = pid
			if i < len(cfg.URLs) {
				r.Nodes[i].URL = cfg.URLs[i]
			}
			r.servers = append(r.servers, &watchedServer{pid: pid, node: i, rep: &r.Nodes[i]})
		}
		r.Server = &r.Nodes[0]
	case cfg.ServerPID > 0:
		r.Server = &serverReport{PID: cfg.ServerPID}
		r.servers = []*watchedServer{{pid: cfg.ServerPID, node: -1, rep: r.Server}}
	}
	if cfg.redis != nil {
		r.Redis = &serverReport{PID: cfg.redis.PID()}
		r.servers = append(r.servers, &watchedServer{pid: r.Redis.PID, node: -1, rep: r.Redis})
	}
	for _, w := range r.servers {
		s, err := readProc(w.pid)
		if err != nil {
			w.rep.Error = err.Error()
		} else {
			w.baseline = &s
			w.rep.RSSBeforeKiB = s.RSSKiB
		}
	}
	return r
}

// connected records the servers' RSS once the clients are connected; a
// node of several is charged for the clients connected to it.
func (r *Report) connected() {
	for _, w := range r.servers {
		if w.baseline == nil {
			continue
		}
		s, err := readProc(w.pid)
		if err != nil {
			w.rep.Error = err.Error()
			continue
		}
		w.rep.RSSAfterKiB = s.RSSKiB
		w.rep.RSSPeakKiB = max(s.HWMKiB, s.RSSKiB)
		n := r.Connect.Connected
		if w.node >= 0 {
			n = 0
			if w.node < len(r.Connect.ByNode) {
				n = r.Connect.ByNode[w.node]
			}
			w.rep.Connected = n
		}
		if n > 0 {
			w.rep.RSSPerConnKiB = round2(float64(s.RSSKiB-w.baseline.RSSKiB) / float64(n))
		}
	}
}

// phase is the CPU time of the servers and of this tool's processes at
// the start of a phase.
type phase struct {
	servers map[int]procSample
	tool    map[int]procSample
	machine *machineSample
}

// startPhase begins measuring CPU use; endPhase ends it. The tool's own
// processes are measured too: on a machine it shares with the server, what
// the tool burns the server does not get.
func (r *Report) startPhase() phase {
	p := phase{servers: make(map[int]procSample), tool: make(map[int]procSample)}
	for _, w := range r.servers {
		if w.baseline == nil {
			continue
		}
		if s, err := readProc(w.pid); err == nil {
			p.servers[w.pid] = s
		} else {
			w.rep.Error = err.Error()
		}
	}
	for _, pid := range r.toolPIDs {
		if s, err := readProc(pid); err == nil {
			p.tool[pid] = s
		}
	}
	if m, err := readMachine(); err == nil {
		p.machine = &m
	}
	return p
}

func (r *Report) endPhase(p phase, name string) {
	for _, w := range r.servers {
		a, ok := p.servers[w.pid]
		if !ok {
			continue
		}
		s, err := readProc(w.pid)
		if err != nil {
			w.rep.Error = err.Error()
			continue
		}
		w.rep.RSSPeakKiB = max(w.rep.RSSPeakKiB, s.HWMKiB, s.RSSKiB)
		w.rep.CPUPhase = name
		// CPU time comes in 10ms ticks: a shorter phase would be mostly noise.
		if s.At.Sub(a.At) < minCPUPhase {
			w.rep.CPUPhase += " (too short to measure)"
		} else {
			w.rep.CPUPercent = round2(cpuPercent(a, s))
		}
	}
	var cpu float64
	var cpuTime, wall time.Duration
	for pid, a := range p.tool {
		b, err := readProc(pid)
		if err != nil {
			continue
		}
		cpu += cpuPercent(a, b)
		cpuTime += b.CPU - a.CPU
		wall = max(wall, b.At.Sub(a.At))
	}
	if len(p.tool) > 0 && wall >= minCPUPhase {
		r.Tool = &toolReport{Processes: len(p.tool), CPUPercent: round2(cpu), CPUPhase: name, CPUSeconds: cpuTime.Seconds()}
		if m, err := readMachine(); err == nil && p.machine != nil {
			r.Tool.Cores = m.cores
			r.Tool.MachineCPUPercent = round2(machinePercent(*p.machine, m))
		}
	}
}

// phaseCPU measures every process's CPU use since p began, without
// touching the rest of the report; nil for a phase too short to measure.
func (r *Report) phaseCPU(p phase) *phaseCPU {
	out := &phaseCPU{}
	var wall time.Duration
	for _, w := range r.servers {
		a, ok := p.servers[w.pid]
		if !ok {
			continue
		}
		b, err := readProc(w.pid)
		if err != nil {
			continue
		}
		wall = max(wall, b.At.Sub(a.At))
		if w.rep == r.Redis {
			out.Redis = round2(cpuPercent(a, b))
		} else {
			out.Servers = append(out.Servers, round2(cpuPercent(a, b)))
		}
	}
	for pid, a := range p.tool {
		if b, err := readProc(pid); err == nil {
			out.Tool += cpuPercent(a, b)
			wall = max(wall, b.At.Sub(a.At))
		}
	}
	out.Tool = round2(out.Tool)
	if m, err := readMachine(); err == nil && p.machine != nil {
		out.Machine = round2(machinePercent(*p.machine, m))
	}
	if wall < minCPUPhase {
		return nil
	}
	return out
}

// minCPUPhase is the shortest phase whose CPU use is reported.
const minCPUPhase = 250 * time.Millisecond

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// addFleets merges the fleets' results into the report and returns the
// merged result.
func (r *Report) addFleets(results []fleetResult) fleetResult {
	var all fleetResult
	lat, rt := histSnapshot{}, histSnapshot{}
	for _, res := range results {
		r.Fleets = append(r.Fleets, fleetSummary{
			Clients: res.Connect.Clients, Connected: res.Connect.Connected,
			Delivered: res.Delivered, Lost: res.Lost, Duplicates: res.Duplicates, SawZero: res.SawZero,
		})
		all.Connect.Clients += res.Connect.Clients
		all.Connect.Connected += res.Connect.Connected
		all.Connect.Failed += res.Connect.Failed
		all.Expected += res.Expected
		all.Delivered += res.Delivered
		all.Lost += res.Lost
		all.Duplicates += res.Duplicates
		all.Ignored += res.Ignored
		if res.FirstRecvNS > 0 && (all.FirstRecvNS == 0 || res.FirstRecvNS < all.FirstRecvNS) {
			all.FirstRecvNS = res.FirstRecvNS
		}
		all.LastRecvNS = max(all.LastRecvNS, res.LastRecvNS)
		all.SawZero += res.SawZero
		all.SawZeroLastNS = max(all.SawZeroLastNS, res.SawZeroLastNS)
		lat = lat.merge(res.Latency)
		if t := res.FirstDisconnectNS; t > 0 {
			s := round2(time.Duration(t - r.Started.UnixNano()).Seconds())
			if r.FirstDisconnectSeconds == 0 || s < r.FirstDisconnectSeconds {
				r.FirstDisconnectSeconds = s
			}
		}
		for code, n := range res.Disconnects {
			if r.Disconnects == nil {
				r.Disconnects = make(map[string]int)
			}
			r.Disconnects[code] += n
		}
		if rc := res.Reconnect; rc != nil {
			if all.Reconnect == nil {
				all.Reconnect = &reconnectStats{}
			}
			a := all.Reconnect
			a.Dropped += rc.Dropped
			a.Reconnected += rc.Reconnected
			a.Failed += rc.Failed
			a.Recovered += rc.Recovered
			a.NotRecovered += rc.NotRecovered
			a.RecoveredPubs += rc.RecoveredPubs
			a.Errors = appendSamples(a.Errors, rc.Errors)
			rt = rt.merge(rc.Time)
		}
	}
	all.Latency = lat
	if all.Reconnect != nil {
		all.Reconnect.Time = rt
		rc := all.Reconnect
		r.Reconn = &reconnectReport{
			Dropped: rc.Dropped, Reconnected: rc.Reconnected, Failed: rc.Failed,
			Recovered: rc.Recovered, NotRecovered: rc.NotRecovered, RecoveredPubs: rc.RecoveredPubs,
			Time: rt.summary(), Errors: rc.Errors,
		}
	}
	return all
}

func appendSamples(dst, src []string) []string {
	for _, s := range src {
		if len(dst) >= maxErrorSamples {
			break
		}
		if !slices.Contains(dst, s) {
			dst = append(dst, s)
		}
	}
	return dst
}

// writeJSON prints the report as an indented JSON object.
func (r *Report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeTable prints the report for people.
func (r *Report) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	head := fmt.Sprintf("mode %s, %d clients", r.Mode, r.Clients)
	if r.Mode == modeRooms {
		head += fmt.Sprintf(" in %d rooms", r.Rooms)
	}
	if r.Workers > 0 {
		head += fmt.Sprintf(", %d workers", r.Workers)
	}
	head += fmt.Sprintf(", %d source address(es), %.1fs", r.Sources, r.Seconds)
	row("livehub-bench", "%s", head)
	c := r.Connect
	row("connect", "%d connected, %d failed in %.2fs (%.0f conns/s)", c.Connected, c.Failed, c.Seconds, c.PerSecond)
	for _, e := range c.Errors {
		row("  error", "%s", e)
	}
	if u := c.CPU; u != nil {
		row("connect cpu", "%s", u)
	}
	if p := r.Publish; p != nil {
		row("publish", "%d sent at %.1f/s (asked %.1f/s), %d errors, %d-byte payload", p.Sent, p.PerSecond, r.Rate, p.Errors, r.Payload)
		row("publish call", "%s", latencyText(p.Latency))
		for _, e := range p.Samples {
			row("  error", "%s", e)
		}
	}
	if d := r.Delivery; d != nil {
		row("delivered", "%d of %d (%.0f msg/s)", d.Delivered, d.Expected, d.PerSecond)
		row("lost / duplicates", "%d / %d", d.Lost, d.Duplicates)
		if d.Ignored > 0 {
			row("ignored", "%d publications not of this run", d.Ignored)
		}
		row("latency", "%s", latencyText(d.Latency))
	}
	if rc := r.Reconn; rc != nil {
		row("reconnect", "%d dropped, %d reconnected, %d failed", rc.Dropped, rc.Reconnected, rc.Failed)
		row("recovered", "%d recovered, %d not, %d publications recovered", rc.Recovered, rc.NotRecovered, rc.RecoveredPubs)
		row("reconnect time", "%s", latencyText(rc.Time))
		for _, e := range rc.Errors {
			row("  error", "%s", e)
		}
	}
	if ck := r.Checkout; ck != nil {
		row("checkout", "%d requests by %d buyers in %.3fs (%.0f checkouts/s)", ck.Requests, ck.Buyers, ck.Seconds, ck.PerSecond)
		row("latency", "%s", latencyText(ck.Latency))
		row("status", "201: %d, 409 sold_out: %d, 409 limit: %d, 503 shed: %d, other: %d", ck.Created, ck.SoldOut, ck.Limit, ck.Shed, ck.Other)
		if ck.CreatedLatency.Count > 0 {
			row("  201", "%s (send to answer)", latencyText(ck.CreatedLatency))
		}
		if ck.ShedLatency.Count > 0 {
			row("  503 shed", "%s (send to answer)", latencyText(ck.ShedLatency))
		}
		for _, k := range slices.Sorted(maps.Keys(ck.OtherDetail)) {
			row("  other", "%s: %d", k, ck.OtherDetail[k])
		}
		row("units", "%d sold of %d, oversold %d", ck.Sold, ck.Units, ck.Oversold)
		if ck.StockLatency.Count > 0 {
			row("stock events", "%s (event made to viewer)", latencyText(ck.StockLatency))
		}
		if ck.ViewersSawZero > 0 {
			row("stock 0 seen", "by %d of %d viewers, the last %.3fs after the burst began", ck.ViewersSawZero, ck.Viewers, ck.StockZeroSeconds)
		} else {
			row("stock 0 seen", "by none of %d viewers", ck.Viewers)
		}
	}
	if len(r.Disconnects) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.Disconnects)) {
			parts = append(parts, fmt.Sprintf("%s: %d", k, r.Disconnects[k]))
		}
		row("server closed", "%s (by close code), the first %.1fs into the run", strings.Join(parts, ", "), r.FirstDisconnectSeconds)
	}
	for i, s := range r.Nodes {
		if s.Error != "" {
			row(fmt.Sprintf("node %d", i+1), "pid %d: %s", s.PID, s.Error)
			continue
		}
		row(fmt.Sprintf("node %d", i+1), "%s: %d connected; RSS %.1f MiB before, %.1f MiB connected, %.1f MiB peak: %.1f KiB per connection; CPU %.1f%% of one core",
			s.URL, s.Connected, float64(s.RSSBeforeKiB)/1024, float64(s.RSSAfterKiB)/1024, float64(s.RSSPeakKiB)/1024, s.RSSPerConnKiB, s.CPUPercent)
	}
	if s := r.Server; s != nil && len(r.Nodes) == 0 {
		if s.Error != "" {
			row("server", "pid %d: %s", s.PID, s.Error)
		} else {
			row("server rss", "%.1f MiB before, %.1f MiB connected, %.1f MiB peak: %.1f KiB per connection",
				float64(s.RSSBeforeKiB)/1024, float64(s.RSSAfterKiB)/1024, float64(s.RSSPeakKiB)/1024, s.RSSPerConnKiB)
			if s.CPUPercent > 0 {
				row("server cpu", "%.1f%% of one core during the %s", s.CPUPercent, s.CPUPhase)
			} else if s.CPUPhase != "" {
				row("server cpu", "not measured: the %s", s.CPUPhase)
			}
		}
	}
	if s := r.Redis; s != nil && s.Error == "" {
		row("redis-server", "RSS %.1f MiB before, %.1f MiB connected: %.1f KiB per connection; CPU %.1f%% of one core", float64(s.RSSBeforeKiB)/1024, float64(s.RSSAfterKiB)/1024, s.RSSPerConnKiB, s.CPUPercent)
	}
	if t := r.Tool; t != nil {
		perDelivery := ""
		if t.PerDeliveryUS > 0 {
			perDelivery = fmt.Sprintf(", %.1f µs per delivery", t.PerDeliveryUS)
		}
		row("tool cpu", "%.1f%% of one core in %d process(es) during the %s%s", t.CPUPercent, t.Processes, t.CPUPhase, perDelivery)
		if t.Cores > 0 {
			row("machine cpu", "%.1f%% of %d%% (%d cores) in the same phase, kernel network work and other processes included", t.MachineCPUPercent, t.Cores*100, t.Cores)
		}
	}
	if len(r.Fleets) > 1 {
		for i, f := range r.Fleets {
			row(fmt.Sprintf("  worker %d", i+1), "%d/%d connected, %d delivered, %d lost", f.Connected, f.Clients, f.Delivered, f.Lost)
		}
	}
	return tw.Flush()
}

func latencyText(l latencySummary) string {
	if l.Count == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %.2fms  p95 %.2fms  p99 %.2fms  max %.2fms  (%d samples)", l.P50, l.P95, l.P99, l.Max, l.Count)
}

// String is the phase's CPU use as the table shows it.
func (u *phaseCPU) String() string {
	var parts []string
	if len(u.Servers) > 0 {
		var s []string
		for _, v := range u.Servers {
			s = append(s, fmt.Sprintf("%.0f%%", v))
		}
		name := "server"
		if len(u.Servers) > 1 {
			name = "nodes"
		}
		parts = append(parts, name+" "+strings.Join(s, " / "))
	}
	if u.Redis > 0 {
		parts = append(parts, fmt.Sprintf("redis-server %.0f%%", u.Redis))
	}
	parts = append(parts, fmt.Sprintf("tool %.0f%%", u.Tool), fmt.Sprintf("machine %.0f%%", u.Machine))
	return strings.Join(parts, ", ") + " (of one core)"
}
