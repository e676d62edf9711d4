package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
)

// run performs one run and returns its report. Every phase stops by itself:
// the whole run is bounded by cfg.Timeout.
func run(ctx context.Context, cfg Config, logw io.Writer) (*Report, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	for _, n := range cfg.notes {
		fmt.Fprintln(logw, n)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	rep := newReport(cfg)
	start := time.Now()
	var err error
	if cfg.Mode == modeCheckout {
		err = runCheckout(ctx, cfg, logw, rep)
	} else {
		err = runPublish(ctx, cfg, logw, rep)
	}
	rep.Seconds = time.Since(start).Seconds()
	if err != nil && ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w (the run exceeded -timeout %s)", err, cfg.Timeout)
	}
	return rep, err
}

// runPublish connects the clients, publishes through the server API and
// counts what arrived: room, rooms and reconnect modes.
func runPublish(ctx context.Context, cfg Config, logw io.Writer, rep *Report) error {
	channels := cfg.channels()
	fmt.Fprintf(logw, "connecting %d clients to %s", cfg.Clients, strings.Join(shortList(channels), ", "))
	if len(cfg.URLs) > 1 {
		fmt.Fprintf(logw, " on %d nodes", len(cfg.URLs))
	}
	fmt.Fprintln(logw)
	fleets, err := startFleets(cfg, kindSeq, channels, cfg.Count)
	if err != nil {
		return err
	}
	defer closeFleets(fleets)
	rep.addPIDs(fleets)
	if err := connectFleets(ctx, fleets, rep); err != nil {
		return err
	}
	rep.connected()

	var halfway func()
	if cfg.Mode == modeReconnect {
		halfway = func() {
			fmt.Fprintf(logw, "dropping every connection\n")
			for _, f := range fleets {
				if err := f.drop(ctx); err != nil {
					fmt.Fprintf(logw, "drop: %v\n", err)
				}
			}
		}
	}
	fmt.Fprintf(logw, "publishing %d messages at %g/s\n", cfg.Count, cfg.Rate)
	pubClients := sourceClients(cfg.Sources[:1], cfg.PublishConcurrency)
	defer closeIdle(pubClients)
	ph := rep.startPhase()
	start := time.Now()
	pr := newPublisher(cfg, pubClients[0]).run(ctx, channels, cfg.Count, cfg.Rate, halfway)
	rep.Publish = &pr
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := settleFleets(ctx, fleets, cfg.Drain); err != nil {
		return err
	}
	rep.endPhase(ph, "publishing and delivery")
	all, err := finishFleets(ctx, fleets, rep)
	if err != nil {
		return err
	}
	d := &deliveryReport{
		Expected: all.Expected, Delivered: all.Delivered, Lost: all.Lost,
		Duplicates: all.Duplicates, Ignored: all.Ignored, Latency: all.Latency.summary(),
	}
	if all.LastRecvNS > 0 {
		if span := time.Duration(all.LastRecvNS - start.UnixNano()); span > 0 {
			d.PerSecond = float64(all.Delivered) / span.Seconds()
		}
	}
	rep.Delivery = d
	if t := rep.Tool; t != nil && d.Delivered > 0 {
		t.PerDeliveryUS = round2(t.CPUSeconds * 1e6 / float64(d.Delivered))
	}
	return nil
}

func shortList(s []string) []string {
	if len(s) <= 3 {
		return s
	}
	return []string{s[0], s[1], "...", s[len(s)-1]}
}

// startFleets splits the clients into fleets: one in this process, or one
// per worker process.
func startFleets(cfg Config, kind string, channels []string, count int) ([]fleetRunner, error) {
	spec := fleetSpec{
		Kind: kind, URL: cfg.URL, URLs: cfg.URLs, Secret: cfg.Secret, Token: cfg.Token, Sources: cfg.Sources,
		Clients: cfg.Clients, Channels: channels, Count: count,
		DialConcurrency: cfg.DialConcurrency, Timeout: cfg.Timeout,
	}
	if cfg.Workers == 0 {
		f, err := newFleet(spec)
		if err != nil {
			return nil, err
		}
		return []fleetRunner{f}, nil
	}
	command := cfg.workerCommand
	if len(command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find this executable to start workers: %w", err)
		}
		command = []string{exe, "-worker"}
	}
	var fleets []fleetRunner
	first := 0
	for i := 0; i < cfg.Workers; i++ {
		s := spec
		s.First = first
		s.Clients = cfg.Clients / cfg.Workers
		if i < cfg.Clients%cfg.Workers {
			s.Clients++
		}
		// Dials in flight are a budget of the run, not of each worker, and
		// so are the cores.
		s.DialConcurrency = max(1, cfg.DialConcurrency/cfg.Workers)
		s.Procs = max(1, runtime.NumCPU()/cfg.Workers)
		first += s.Clients
		r, err := startWorker(command, s)
		if err != nil {
			closeFleets(fleets)
			return nil, err
		}
		fleets = append(fleets, r)
	}
	return fleets, nil
}

// eachFleet runs fn for every fleet at once and returns the errors joined.
func eachFleet(fleets []fleetRunner, fn func(i int, f fleetRunner) error) error {
	errs := make([]error, len(fleets))
	var wg sync.WaitGroup
	for i, f := range fleets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(i, f)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// connectFleets connects every fleet at once and records the phase.
func connectFleets(ctx context.Context, fleets []fleetRunner, rep *Report) error {
	ph := rep.startPhase()
	stats := make([]connectStats, len(fleets))
	err := eachFleet(fleets, func(i int, f fleetRunner) error {
		var err error
		stats[i], err = f.connect(ctx)
		return err
	})
	if err != nil {
		return err
	}
	c := connectReport{}
	for _, s := range stats {
		c.Connected += s.Connected
		c.Failed += s.Failed
		c.Seconds = max(c.Seconds, s.Seconds)
		c.Errors = appendSamples(c.Errors, s.Errors)
		for i, n := range s.ByURL {
			if i >= len(c.ByNode) {
				c.ByNode = append(c.ByNode, make([]int, i+1-len(c.ByNode))...)
			}
			c.ByNode[i] += n
		}
	}
	if len(c.ByNode) < 2 {
		c.ByNode = nil
	}
	if c.Seconds > 0 {
		c.PerSecond = float64(c.Connected) / c.Seconds
	}
	c.CPU = rep.phaseCPU(ph)
	rep.Connect = c
	if c.Connected == 0 && c.Failed > 0 {
		return fmt.Errorf("no client connected: %s", strings.Join(c.Errors, "; "))
	}
	return nil
}

func settleFleets(ctx context.Context, fleets []fleetRunner, drain time.Duration) error {
	return eachFleet(fleets, func(_ int, f fleetRunner) error { return f.settle(ctx, drain) })
}

// finishFleets collects every fleet's result and merges them into rep.
func finishFleets(ctx context.Context, fleets []fleetRunner, rep *Report) (fleetResult, error) {
	results := make([]fleetResult, len(fleets))
	err := eachFleet(fleets, func(i int, f fleetRunner) error {
		var err error
		results[i], err = f.finish(ctx)
		return err
	})
	if err != nil {
		return fleetResult{}, err
	}
	return rep.addFleets(results), nil
}

// addPIDs adds the workers to the processes whose CPU use is measured.
func (r *Report) addPIDs(fleets []fleetRunner) {
	for _, f := range fleets {
		if w, ok := f.(*remoteFleet); ok {
			r.toolPIDs = append(r.toolPIDs, w.cmd.Process.Pid)
		}
	}
}

func closeFleets(fleets []fleetRunner) {
	_ = eachFleet(fleets, func(_ int, f fleetRunner) error { f.close(); return nil })
}
