package main

import (
	"strings"
	"testing"
)

func TestFitScale_EnoughWorkersAndSources(t *testing.T) {
	per := clientsPerProcess()
	ports := pairLimit()
	if per > maxProcessFiles-processFiles || ports < 5_000 {
		t.Fatalf("limits: %d clients a process, %d ports a pair", per, ports)
	}
	nodes3 := []string{"ws://a", "ws://b", "ws://c"}
	for _, tc := range []struct {
		name    string
		cfg     Config
		workers int
		sources int
	}{
		{"fits one process", Config{Clients: per, Sources: []string{"127.0.0.1"}}, 0, sourcesFor(per, 1, ports)},
		{"given workers kept", Config{Clients: 100, Workers: 4, Sources: []string{"127.0.0.1"}}, 4, 1},
		{"one worker too few", Config{Clients: per + 1, Workers: 1, Sources: []string{"127.0.0.1"}}, 2, sourcesFor(per+1, 1, ports)},
		{"three nodes", Config{Clients: 3 * per, URLs: nodes3, Sources: []string{"127.0.0.1"}}, 3, sourcesFor(3*per, 3, ports)},
		{"one node, more than a source's ports", Config{Clients: 2*ports + 1, Sources: []string{"127.0.0.1"}}, (2*ports + per) / per, 3},
		{"enough sources given", Config{Clients: 2 * ports, Sources: []string{"127.0.0.1", "127.0.0.2"}}, (2*ports + per - 1) / per, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			if err := c.fitScale(); err != nil {
				t.Fatal(err)
			}
			if c.Workers != tc.workers || len(c.Sources) != tc.sources {
				t.Errorf("%d workers, sources %v; want %d workers, %d sources", c.Workers, c.Sources, tc.workers, tc.sources)
			}
			if c.Clients > 0 && c.Workers > 0 && (c.Clients+c.Workers-1)/c.Workers > per {
				t.Errorf("%d clients a worker, over %d", (c.Clients+c.Workers-1)/c.Workers, per)
			}
			dests := 1
			if portsPerDestination {
				dests = max(1, len(c.URLs))
			}
			if load := pairLoad(c.Clients, len(c.Sources), dests); load > ports {
				t.Errorf("%d sockets on one source/destination pair, over %d", load, ports)
			}
			changed := len(c.Sources) > len(tc.cfg.Sources) || c.Workers != tc.cfg.Workers
			if changed != (len(c.notes) > 0) {
				t.Errorf("notes %q for %d workers, sources %v", c.notes, c.Workers, c.Sources)
			}
		})
	}
	c := Config{Clients: 2 * ports, Sources: []string{"10.0.0.1"}}
	if err := c.fitScale(); err == nil || !strings.Contains(err.Error(), "source addresses") {
		t.Errorf("a non-loopback source too few: %v, want an error asking for more", err)
	}
}

// sourcesFor is the loopback sources fitScale settles on.
func sourcesFor(clients, dests, ports int) int {
	if !portsPerDestination {
		dests = 1
	}
	s := 1
	for pairLoad(clients, s, dests) > ports {
		s++
	}
	return s
}

func TestPairLoad_CountsClientsOfEachSourceAndNode(t *testing.T) {
	for _, tc := range []struct{ clients, sources, dests, want int }{
		{10, 1, 1, 10},
		{10, 2, 1, 5},
		{11, 2, 1, 6},
		{60, 2, 3, 10}, // every pair: g%6 fixes both
		{60, 3, 3, 7},  // each source serves every node
		{50000, 3, 3, 5556},
		{0, 3, 3, 0},
	} {
		if got := pairLoad(tc.clients, tc.sources, tc.dests); got != tc.want {
			t.Errorf("pairLoad(%d, %d, %d) = %d, want %d", tc.clients, tc.sources, tc.dests, got, tc.want)
		}
	}
	next, ok := nextLoopback([]string{"127.0.0.1", "127.0.0.2", "127.0.0.4"})
	if !ok || next != "127.0.0.3" {
		t.Errorf("nextLoopback = %q, %v; want 127.0.0.3", next, ok)
	}
	if _, ok := nextLoopback([]string{"127.0.0.1", "::1"}); ok {
		t.Error("nextLoopback extended a list with an IPv6 source")
	}
}
