package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Suite mode runs the standard set of `make bench` on one machine: each run
// against a livehub of its own (-spawn-server), then the Go benchmarks and
// the bytes-per-event replay, and writes the figures beside their targets
// into the generated sections of -write.

// suiteFigure is one line of the targets table.
type suiteFigure struct {
	Name    string `json:"name"`
	Figure  string `json:"figure"`
	Target  string `json:"target"`
	Met     *bool  `json:"met,omitempty"`
	Command string `json:"command"`
	Note    string `json:"note,omitempty"`
}

// suiteReport is what suite mode writes.
type suiteReport struct {
	Machine machine       `json:"machine"`
	Seconds float64       `json:"seconds"`
	Build   string        `json:"build"`
	Figures []suiteFigure `json:"figures"`
	Details []string      `json:"details"`
	GoBench []goBenchLine `json:"go_bench"`
}

type goBenchLine struct {
	Command string             `json:"command"`
	Name    string             `json:"name"`
	NsPerOp float64            `json:"ns_per_op"`
	Metrics map[string]float64 `json:"metrics"`
	Order   []string           `json:"-"`
}

func boolp(b bool) *bool { return &b }

// suiteRun runs one step of the suite as its command line says.
func suiteRun(ctx context.Context, bin string, logw io.Writer, args ...string) (*Report, string, error) {
	args = append([]string{"-spawn-server", bin}, args...)
	command := commandLine(args)
	fmt.Fprintf(logw, "\n== %s\n", command)
	cfg, _, err := parseFlags(args, func(string) string { return "" }, logw)
	if err != nil {
		return nil, command, err
	}
	cleanup, err := spawn(ctx, &cfg, logw, spawnLimitsOff...)
	if err != nil {
		return nil, command, err
	}
	defer cleanup()
	rep, err := run(ctx, cfg, logw)
	if err == nil {
		_ = rep.writeTable(logw)
	}
	return rep, command, err
}

func runSuite(ctx context.Context, cfg Config, stdout, logw io.Writer) error {
	if cfg.SpawnServer == "" {
		return fmt.Errorf("suite mode starts its own servers: give -spawn-server with a livehub binary")
	}
	bin := cfg.SpawnServer
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	start := time.Now()
	m := machineInfo()
	if out, err := exec.Command(cfg.RedisBin, "--version").Output(); err == nil {
		if f := strings.Fields(string(out)); len(f) >= 3 {
			m.Redis = "Redis " + strings.TrimPrefix(f[2], "v=")
		}
	}
	rep := &suiteReport{Machine: m}
	// Sizes of the standard set; -quick shrinks them for a trial.
	big, bigRate, bigDur := 1000, "100", "15s"
	many, manyWorkers, manyDur := 10000, "2", "15s"
	satCount := "1000"
	viewers, buyers := 10000, 2000
	ckViewers, ckBuyers := 1000, 5000
	if cfg.Quick {
		big, bigDur, many, manyWorkers, manyDur, satCount = 50, "2s", 200, "2", "2s", "50"
		viewers, buyers, ckViewers, ckBuyers = 100, 200, 50, 200
	}
	figure := func(f suiteFigure) { rep.Figures = append(rep.Figures, f) }
	failed := func(name, target, command string, err error) {
		figure(suiteFigure{Name: name, Figure: "run failed: " + firstLine(err.Error()), Target: target, Met: boolp(false), Command: command})
	}

	// One big room.
	name, target := fmt.Sprintf("%s clients in one room, 100 publications/s", num(big)), "p99 ≤ 33 ms (the peer's figure), no loss"
	r, cmd, err := suiteRun(ctx, bin, logw, "-mode", "room", "-clients", strconv.Itoa(big), "-rate", bigRate, "-duration", bigDur, "-payload", "200")
	if err != nil {
		failed(name, target, cmd, err)
	} else if d := r.Delivery; d != nil {
		figure(suiteFigure{Name: name, Target: target, Command: cmd,
			Figure: fmt.Sprintf("p50 %.1f / p99 %.1f / max %.1f ms; %s msg/s; lost %d", d.Latency.P50, d.Latency.P99, d.Latency.Max, num(int64(d.PerSecond)), d.Lost),
			Met:    boolp(d.Latency.P99 <= 33 && d.Lost == 0 && d.Delivered > 0)})
		rep.Details = append(rep.Details, runDetail(r, cmd))
	}

	// Saturation: the same room, publishing as fast as the server takes it.
	name, target = fmt.Sprintf("deliveries/s at saturation (%s clients, publishing without pause)", num(big)), "≥ 200,000/s, no loss"
	r, cmd, err = suiteRun(ctx, bin, logw, "-mode", "room", "-clients", strconv.Itoa(big), "-rate", "0", "-count", satCount, "-payload", "200")
	if err != nil {
		failed(name, target, cmd, err)
	} else if d := r.Delivery; d != nil {
		figure(suiteFigure{Name: name, Target: target, Command: cmd,
			Figure: fmt.Sprintf("%s msg/s; lost %d; p99 %.0f ms", num(int64(d.PerSecond)), d.Lost, d.Latency.P99),
			Met:    boolp(d.PerSecond >= 200_000 && d.Lost == 0)})
		rep.Details = append(rep.Details, runDetail(r, cmd))
	}

	// Many clients at 10/s; its connect phase gives the idle RSS.
	name, target = fmt.Sprintf("%s clients in one room, 10 publications/s", num(many)), "p99 ≤ 100 ms"
	r, cmd, err = suiteRun(ctx, bin, logw, "-mode", "room", "-clients", strconv.Itoa(many), "-rate", "10", "-duration", manyDur,
		"-payload", "200", "-workers", manyWorkers, "-sources", "127.0.0.1,127.0.0.2")
	if err != nil {
		failed(name, target, cmd, err)
		failed("server RSS per idle connection", "≤ 30 KiB", cmd, err)
	} else if d := r.Delivery; d != nil {
		note := ""
		if r.Publish != nil && r.Publish.PerSecond < 9.5 {
			note = fmt.Sprintf("publishing fell behind: %.1f/s", r.Publish.PerSecond)
		}
		figure(suiteFigure{Name: name, Target: target, Command: cmd, Note: note,
			Figure: fmt.Sprintf("p50 %.1f / p99 %.1f / max %.1f ms; %s msg/s; lost %d", d.Latency.P50, d.Latency.P99, d.Latency.Max, num(int64(d.PerSecond)), d.Lost),
			Met:    boolp(d.Latency.P99 <= 100 && d.Lost == 0 && d.Delivered > 0)})
		if s := r.Server; s != nil && s.Error == "" {
			figure(suiteFigure{Name: "server RSS per idle connection", Target: "≤ 30 KiB", Command: cmd,
				Figure: fmt.Sprintf("%.1f KiB (%s connected, RSS %.0f → %.0f MiB, read before publishing)", s.RSSPerConnKiB, num(r.Connect.Connected), float64(s.RSSBeforeKiB)/1024, float64(s.RSSAfterKiB)/1024),
				Met:    boolp(s.RSSPerConnKiB > 0 && s.RSSPerConnKiB <= 30)})
		}
		rep.Details = append(rep.Details, runDetail(r, cmd))
	}

	// Sockets: one node up to its file limit, three nodes on one Redis.
	suiteSockets(ctx, bin, cfg.RedisBin, cfg.Quick, rep, logw)

	// A flash-sale stock change reaching many viewers (memory engine).
	name, target = fmt.Sprintf("a flash-sale stock change reaching %s viewers", num(viewers)), "p99 ≤ 100 ms"
	r, cmd, err = suiteRun(ctx, bin, logw, "-mode", "checkout", "-clients", strconv.Itoa(viewers), "-buyers", strconv.Itoa(buyers), "-units", "100",
		"-workers", manyWorkers, "-sources", "127.0.0.1,127.0.0.2")
	if err != nil {
		failed(name, target, cmd, err)
	} else if ck := r.Checkout; ck != nil {
		l := ck.StockLatency
		figure(suiteFigure{Name: name, Target: target, Command: cmd,
			Figure: fmt.Sprintf("p50 %.1f / p99 %.1f / max %.1f ms from the event to each viewer (%s deliveries); %s of %s saw stock 0, the last %.2f s after the burst began",
				l.P50, l.P99, l.Max, num(l.Count), num(ck.ViewersSawZero), num(ck.Viewers), ck.StockZeroSeconds),
			Met: boolp(l.Count > 0 && l.P99 <= 100 && ck.ViewersSawZero == ck.Viewers)})
		rep.Details = append(rep.Details, runDetail(r, cmd))
	}

	// The checkout spike on the Redis engine.
	name, target = fmt.Sprintf("checkout spike on Redis (%s buyers at once, 100 units)", num(ckBuyers)), "≥ 10,000 checkouts/s, p99 ≤ 50 ms, oversold 0"
	r, cmd, err = suiteRun(ctx, bin, logw, "-spawn-redis", "-redis-server", cfg.RedisBin, "-mode", "checkout", "-clients", strconv.Itoa(ckViewers), "-buyers", strconv.Itoa(ckBuyers), "-units", "100")
	if err != nil {
		failed(name, target, cmd, err)
	} else if ck := r.Checkout; ck != nil {
		figure(suiteFigure{Name: name, Target: target, Command: cmd,
			Figure: fmt.Sprintf("%s checkouts/s; p50 %.0f / p99 %.0f ms; %d sold of %d, oversold %d; 201: %d, sold_out: %d, other: %d",
				num(int64(ck.PerSecond)), ck.Latency.P50, ck.Latency.P99, ck.Sold, ck.Units, ck.Oversold, ck.Created, ck.SoldOut, ck.Other),
			Met: boolp(ck.PerSecond >= 10_000 && ck.Latency.P99 <= 50 && ck.Oversold == 0)})
		rep.Details = append(rep.Details, runDetail(r, cmd))
	}

	// Sustained checkouts on the Redis engine at the target rate: open
	// loop, each a new buyer. The node bounds the checkouts in progress as
	// an operator would for the simulated gateway's few milliseconds
	// (Little's law: its rate times that), so what it cannot answer is
	// refused at once rather than queued; one run gives the throughput
	// figure and the overload figure.
	rate, secs := 10000, "5s"
	if cfg.Quick {
		rate, secs = 200, "1s"
	}
	name, target = fmt.Sprintf("checkouts on Redis sustained at %s/s (open loop, %s)", num(int64(rate)), secs), "≥ 10,000 checkouts/s, p99 ≤ 50 ms, oversold 0"
	r, cmd, err = suiteRun(ctx, bin, logw, "-spawn-redis", "-redis-server", cfg.RedisBin, "-mode", "checkout", "-clients", "0",
		"-sustain-rate", strconv.Itoa(rate), "-duration", secs, "-buyer-conns", "1024",
		"-server-env", "LIVEHUB_CHECKOUT_MAX_IN_FLIGHT=32,LIVEHUB_CHECKOUT_MAX_WAIT=50ms")
	if err != nil {
		failed(name, target, cmd, err)
	} else if ck := r.Checkout; ck != nil {
		answered := float64(ck.Created) / ck.Seconds
		figure(suiteFigure{Name: name, Target: target, Command: cmd,
			Figure: fmt.Sprintf("%s checkouts/s answered 201 of %s/s asked; p50 %.1f / p99 %.1f ms from send to answer; oversold %d; %s refused with 503 at once (the node's bound, below), other: %d",
				num(int64(answered)), num(int64(ck.TargetRate)), ck.CreatedLatency.P50, ck.CreatedLatency.P99, ck.Oversold, num(int64(ck.Shed)), ck.Other+ck.SoldOut+ck.Limit),
			Met: boolp(answered >= 10_000 && ck.CreatedLatency.P99 <= 50 && ck.Oversold == 0 && ck.Other == 0)})
		ovName := "the node under checkout overload (the same run)"
		ovTarget := "latency and memory bounded: p99 ≤ 250 ms for every answer, 201 or 503 with Retry-After, and peak RSS ≤ 2× idle, rather than a backlog inside the node"
		fig := fmt.Sprintf("asked %.1f× what it answers: 201 p99 %.1f ms, 503 p99 %.1f ms (%s of %s refused, nothing reserved for them); oversold %d",
			ck.TargetRate/max(answered, 1), ck.CreatedLatency.P99, ck.ShedLatency.P99, num(int64(ck.Shed)), num(int64(ck.Requests)), ck.Oversold)
		bounded := ck.Shed > 0 && ck.CreatedLatency.P99 <= 250 && ck.ShedLatency.P99 <= 250 && ck.Oversold == 0 && ck.Other == 0
		if sv := r.Server; sv != nil && sv.Error == "" {
			fig += fmt.Sprintf("; node RSS %.0f MiB idle, %.0f MiB peak", float64(sv.RSSBeforeKiB)/1024, float64(sv.RSSPeakKiB)/1024)
			bounded = bounded && sv.RSSPeakKiB <= 2*sv.RSSBeforeKiB
		} else {
			bounded = false
		}
		figure(suiteFigure{Name: ovName, Target: ovTarget, Command: cmd, Figure: fig, Met: boolp(bounded)})
		rep.Details = append(rep.Details, runDetail(r, cmd))
	}

	// The Go benchmarks, from the module's root.
	if !cfg.Quick {
		for _, args := range [][]string{
			{"test", "./hub", "-run", "^$", "-bench", "Broadcast", "-benchtime", "1s"},
			{"test", "./rest", "-run", "^$", "-bench", "CheckoutHTTP_Redis", "-benchtime", "5000x"},
		} {
			lines, cmd, err := goBench(ctx, logw, args)
			if err != nil {
				rep.Details = append(rep.Details, fmt.Sprintf("`%s` failed: %s", cmd, firstLine(err.Error())))
				continue
			}
			rep.GoBench = append(rep.GoBench, lines...)
			for _, l := range lines {
				if strings.HasPrefix(l.Name, "BenchmarkCheckoutHTTP_Redis") {
					cps, p99 := l.Metrics["checkouts/s"], l.Metrics["p99-ms"]
					figure(suiteFigure{Name: "checkouts through HTTP on Redis (Go benchmark, client in process)", Target: "≥ 10,000 checkouts/s, p99 ≤ 50 ms", Command: cmd,
						Figure: fmt.Sprintf("%s checkouts/s; p50 %.1f / p99 %.1f ms", num(int64(cps)), l.Metrics["p50-ms"], p99),
						Met:    boolp(cps >= 10_000 && p99 <= 50)})
				}
			}
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	rep.Build = "go build -o bin/livehub ./cmd/livehub && go build -o bin/livehub-bench ./cmd/livehub-bench"

	// Bytes per event, in its own section.
	var bytesRep *bytesReport
	bcfg := cfg
	bcfg.args = []string{"bytes", "-spawn-server", bin, "-events", strconv.Itoa(cfg.Events), "-clients", strconv.Itoa(cfg.Clients)}
	bcmd := commandLine(bcfg.args)
	fmt.Fprintf(logw, "\n== %s\n", bcmd)
	cleanup, err := spawn(ctx, &bcfg, logw, spawnLimitsOff...)
	if err == nil {
		bytesRep, err = runBytes(ctx, bcfg, logw)
		cleanup()
	}
	if err != nil {
		fmt.Fprintf(logw, "bytes per event: %v\n", err)
	} else {
		bytesRep.Command = bcmd
		_ = bytesRep.writeTable(stdout)
	}

	md := suiteMarkdown(rep)
	fmt.Fprintln(stdout, md)
	if cfg.Write != "" {
		if err := writeSection(cfg.Write, "suite", md); err != nil {
			return err
		}
		if bytesRep != nil {
			if err := writeSection(cfg.Write, "bytes", bytesMarkdown(bytesRep, m)); err != nil {
				return err
			}
		}
		fmt.Fprintf(logw, "wrote %s in %.0fs\n", cfg.Write, time.Since(start).Seconds())
	}
	return nil
}

// runDetail is one line about a run for the details list.
func runDetail(r *Report, cmd string) string {
	var parts []string
	connected := fmt.Sprintf("%s connected in %.2f s", num(r.Connect.Connected), r.Connect.Seconds)
	if u := r.Connect.CPU; u != nil && r.Connect.Seconds >= 2 {
		connected += " (CPU meanwhile: " + strings.TrimSuffix(u.String(), " (of one core)") + ")"
	}
	parts = append(parts, connected)
	if r.Connect.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%d failed to connect", r.Connect.Failed))
	}
	if p := r.Publish; p != nil {
		parts = append(parts, fmt.Sprintf("%s published at %.1f/s (%d errors)", num(p.Sent), p.PerSecond, p.Errors))
	}
	if d := r.Delivery; d != nil {
		parts = append(parts, fmt.Sprintf("%s of %s delivered, p50/p95/p99/max %.1f/%.1f/%.1f/%.1f ms, lost %d, duplicates %d",
			num(d.Delivered), num(d.Expected), d.Latency.P50, d.Latency.P95, d.Latency.P99, d.Latency.Max, d.Lost, d.Duplicates))
	}
	if ck := r.Checkout; ck != nil {
		parts = append(parts, fmt.Sprintf("%s checkouts in %.3f s", num(ck.Requests), ck.Seconds))
	}
	for i, s := range r.Nodes {
		if s.Error == "" {
			parts = append(parts, fmt.Sprintf("node %d: %s connected, RSS %.0f → %.0f MiB (peak %.0f, %.1f KiB per connection), CPU %.0f%% of a core",
				i+1, num(s.Connected), float64(s.RSSBeforeKiB)/1024, float64(s.RSSAfterKiB)/1024, float64(s.RSSPeakKiB)/1024, s.RSSPerConnKiB, s.CPUPercent))
		}
	}
	if s := r.Server; s != nil && s.Error == "" && len(r.Nodes) == 0 {
		parts = append(parts, fmt.Sprintf("server RSS %.0f → %.0f MiB (peak %.0f)", float64(s.RSSBeforeKiB)/1024, float64(s.RSSAfterKiB)/1024, float64(s.RSSPeakKiB)/1024))
		if s.CPUPercent > 0 {
			parts = append(parts, fmt.Sprintf("server CPU %.0f%% of a core", s.CPUPercent))
		}
	}
	if s := r.Redis; s != nil && s.Error == "" {
		parts = append(parts, fmt.Sprintf("redis-server RSS %.0f → %.0f MiB, CPU %.0f%% of a core", float64(s.RSSBeforeKiB)/1024, float64(s.RSSAfterKiB)/1024, s.CPUPercent))
	}
	if t := r.Tool; t != nil {
		tool := fmt.Sprintf("tool CPU %.0f%%", t.CPUPercent)
		if t.PerDeliveryUS > 0 {
			tool += fmt.Sprintf(" (%.1f µs per delivery)", t.PerDeliveryUS)
		}
		parts = append(parts, fmt.Sprintf("%s, machine %.0f%% of %d%%", tool, t.MachineCPUPercent, t.Cores*100))
	}
	if len(r.Disconnects) > 0 {
		parts = append(parts, fmt.Sprintf("server closed %v", r.Disconnects))
	}
	return fmt.Sprintf("`%s`: %s.", cmd, strings.Join(parts, "; "))
}

// goBench runs one `go test -bench` and parses its result lines.
func goBench(ctx context.Context, logw io.Writer, args []string) ([]goBenchLine, string, error) {
	cmdline := "go " + strings.Join(quoteAll(args), " ")
	fmt.Fprintf(logw, "\n== %s\n", cmdline)
	c := exec.CommandContext(ctx, "go", args...)
	c.Stderr = logw
	out, err := c.Output()
	_, _ = logw.Write(out)
	if err != nil {
		return nil, cmdline, err
	}
	lines := parseGoBench(string(out))
	for i := range lines {
		lines[i].Command = cmdline
	}
	if len(lines) == 0 {
		return nil, cmdline, fmt.Errorf("no benchmark results")
	}
	return lines, cmdline, nil
}

func quoteAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, "^$ *") {
			a = "'" + a + "'"
		}
		out[i] = a
	}
	return out
}

// parseGoBench reads "BenchmarkX-2  N  V unit  V unit ..." lines.
func parseGoBench(out string) []goBenchLine {
	var lines []goBenchLine
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		l := goBenchLine{Name: f[0], Metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			if f[i+1] == "ns/op" {
				l.NsPerOp = v
				continue
			}
			l.Metrics[f[i+1]] = v
			l.Order = append(l.Order, f[i+1])
		}
		lines = append(lines, l)
	}
	return lines
}

// suiteMarkdown is the suite section of docs/benchmarks.md.
func suiteMarkdown(r *suiteReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s. The standard set took %.0f s.\n\n", r.Machine.Date, r.Machine, r.Seconds)
	fmt.Fprintf(&b, "The load tool and each server share the machine. Every run starts its own `livehub` (memory engine unless the command says `-spawn-redis`, which gives it a private redis-server on a unix socket) on a free loopback port, with the per-IP socket, handshake and checkout limits and the per-buyer checkout limit off (every client comes from one address). The binaries: `%s`.\n\n", r.Build)
	b.WriteString("| figure | measured | target | met | command |\n|---|---|---|---|---|\n")
	for _, f := range r.Figures {
		met := "—"
		if f.Met != nil {
			met = metWord(*f.Met)
		}
		fig := f.Figure
		if f.Note != "" {
			fig += " (" + f.Note + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | `%s` |\n", mdCell(f.Name), mdCell(fig), mdCell(f.Target), met, strings.ReplaceAll(f.Command, "|", `\|`))
	}
	if len(r.GoBench) > 0 {
		b.WriteString("\nGo benchmarks:\n\n| benchmark | time per op | other metrics | command |\n|---|---|---|---|\n")
		for _, l := range r.GoBench {
			var ms []string
			for _, k := range l.Order {
				ms = append(ms, fmt.Sprintf("%s %s", fmtFloat(l.Metrics[k]), k))
			}
			fmt.Fprintf(&b, "| %s | %s | %s | `%s` |\n", l.Name, fmtNs(l.NsPerOp), strings.Join(ms, ", "), l.Command)
		}
	}
	if len(r.Details) > 0 {
		b.WriteString("\nThe runs in detail:\n\n")
		for _, d := range r.Details {
			fmt.Fprintf(&b, "- %s\n", d)
		}
	}
	return b.String()
}

func mdCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func fmtFloat(v float64) string {
	switch {
	case v >= 1000:
		return num(int64(v + 0.5))
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

func fmtNs(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	default:
		return fmt.Sprintf("%.0f ns", ns)
	}
}

var _ = os.Getpid
