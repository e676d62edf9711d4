package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// The socket rows of the suite: one node holding as many sockets as its
// file limit allows, and three nodes on one Redis holding more than any
// one could, every publication reaching every client on every node. The
// publishing is light (a few publications) so that each row is mostly the
// connecting, well under a minute.

// socketSizes are the clients of the two rows and their publishing.
type socketSizes struct {
	// one is the clients of the single node: its file limit (20,000
	// here) less room for its own files (listener, epoll, logs).
	one, oneWorkers int
	oneRate         string
	// three is the clients of the three nodes.
	three, threeWorkers int
	threeRate           string
	duration            string
}

func standardSocketSizes(quick bool) socketSizes {
	if quick {
		return socketSizes{one: 200, oneWorkers: 2, oneRate: "10", three: 300, threeWorkers: 2, threeRate: "5", duration: "1s"}
	}
	// One publication a second: 19,900 and 50,000 deliveries a second are
	// already as much as the node (the nodes and Redis) and the tool get
	// through on two shared cores while every socket is open.
	return socketSizes{one: 19900, oneWorkers: 2, oneRate: "1", three: 50000, threeWorkers: 3, threeRate: "1", duration: "5s"}
}

// suiteSockets runs the two socket rows.
func suiteSockets(ctx context.Context, bin, redisBin string, quick bool, rep *suiteReport, logw io.Writer) {
	sz := standardSocketSizes(quick)
	figure := func(f suiteFigure) { rep.Figures = append(rep.Figures, f) }

	name := "one node holds 20,000 sockets"
	target := fmt.Sprintf("all %s connected (the node's 20,000 files less its own), every publication to every socket", num(sz.one))
	r, cmd, err := suiteRun(ctx, bin, logw, "-mode", "room", "-clients", strconv.Itoa(sz.one), "-rate", sz.oneRate, "-duration", sz.duration,
		"-payload", "200", "-workers", strconv.Itoa(sz.oneWorkers), "-sources", "127.0.0.1,127.0.0.2")
	if err != nil {
		figure(suiteFigure{Name: name, Figure: "run failed: " + firstLine(err.Error()), Target: target, Met: boolp(false), Command: cmd})
	} else if d := r.Delivery; d != nil {
		fig := socketFigure(r)
		if s := r.Server; s != nil && s.Error == "" {
			fig += fmt.Sprintf("; RSS %.0f → %.0f MiB, %.1f KiB per connection", float64(s.RSSBeforeKiB)/1024, float64(s.RSSAfterKiB)/1024, s.RSSPerConnKiB)
		}
		figure(suiteFigure{Name: name, Target: target, Command: cmd, Figure: fig,
			Met: boolp(r.Connect.Connected == sz.one && r.Connect.Failed == 0 && d.Lost == 0 && d.Delivered == d.Expected && d.Delivered > 0)})
		rep.Details = append(rep.Details, runDetail(r, cmd))
	}

	name = "three nodes on Redis hold 50,000 sockets"
	target = fmt.Sprintf("all %s connected over 3 nodes, every publication (sent through one node) reaching every client on every node", num(sz.three))
	r, cmd, err = suiteRun(ctx, bin, logw, "-spawn-redis", "-redis-server", redisBin, "-nodes", "3",
		"-mode", "room", "-clients", strconv.Itoa(sz.three), "-rate", sz.threeRate, "-duration", sz.duration,
		"-payload", "200", "-workers", strconv.Itoa(sz.threeWorkers), "-sources", "127.0.0.1,127.0.0.2,127.0.0.3")
	if err != nil {
		figure(suiteFigure{Name: name, Figure: "run failed: " + firstLine(err.Error()), Target: target, Met: boolp(false), Command: cmd})
	} else if d := r.Delivery; d != nil {
		fig := socketFigure(r)
		everyNode := len(r.Nodes) == 3
		var per []string
		for _, n := range r.Nodes {
			everyNode = everyNode && n.Connected > 0
			if n.Error != "" {
				per = append(per, "?")
				continue
			}
			per = append(per, fmt.Sprintf("%.1f", n.RSSPerConnKiB))
		}
		if len(per) > 0 {
			fig += fmt.Sprintf("; RSS per connection %s KiB by node", strings.Join(per, " / "))
		}
		figure(suiteFigure{Name: name, Target: target, Command: cmd, Figure: fig,
			Met: boolp(everyNode && r.Connect.Connected == sz.three && r.Connect.Failed == 0 && d.Lost == 0 && d.Delivered == d.Expected && d.Delivered > 0)})
		rep.Details = append(rep.Details, runDetail(r, cmd))
	}
}

// socketFigure is what a socket row shows of its run: connected, how long
// it took, deliveries and latency.
func socketFigure(r *Report) string {
	c, d := r.Connect, r.Delivery
	s := fmt.Sprintf("%s of %s connected in %.1f s", num(c.Connected), num(r.Clients), c.Seconds)
	if len(c.ByNode) > 1 {
		var by []string
		for _, n := range c.ByNode {
			by = append(by, num(n))
		}
		s += " (" + strings.Join(by, " / ") + " by node)"
	}
	s += fmt.Sprintf("; %s of %s delivered, lost %d; p50 %.1f / p99 %.1f ms", num(d.Delivered), num(d.Expected), d.Lost, d.Latency.P50, d.Latency.P99)
	if len(r.Disconnects) > 0 {
		var by []string
		total := 0
		for _, k := range slices.Sorted(maps.Keys(r.Disconnects)) {
			by = append(by, fmt.Sprintf("%s: %s", k, num(r.Disconnects[k])))
			total += r.Disconnects[k]
		}
		s += fmt.Sprintf("; the server closed %s (by code %s)", num(total), strings.Join(by, ", "))
	}
	return s
}
