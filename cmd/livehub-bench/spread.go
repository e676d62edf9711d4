package main

import (
	"fmt"
	"net"
	"slices"
	"strings"
)

// A run of many clients must fit two limits of the machine: a process holds
// only so many open files, so the clients are spread over enough workers;
// and a source address gives only so many local ports towards one
// destination (about 28,000, the kernel's ephemeral range), so the dials
// are spread over enough loopback source addresses. Enough is half the
// range: Linux gives a connect the even ports first and, once they run
// out, searches the whole range for each dial (measured here: 16,000
// sockets from one source to one address took 2.5 s, 1.6 s of it for the
// last 4,000, a third of a millisecond of kernel time each, four times
// that without IP_BIND_ADDRESS_NO_PORT; from four sources, 1.6 s evenly).

const (
	// maxProcessFiles is the most open files a client process (this one
	// or a worker) is let hold, below the 20,000 a process may have here.
	maxProcessFiles = 18000
	// processFiles is what a client process keeps for its other files:
	// the publisher's and buyers' connections, pipes, the binary.
	processFiles = 500
	// portsMargin is the ports of a source/destination pair left for
	// other sockets and for the TIME_WAIT of an earlier run.
	portsMargin = 2000
)

// pairLimit is the most sockets the tool puts on one source/destination
// pair: the first half of the ephemeral range, less a margin.
func pairLimit() int { return max(1000, ephemeralPorts()/2-portsMargin) }

// clientsPerProcess is how many sockets one client process may hold.
func clientsPerProcess() int {
	limit := maxProcessFiles
	if l := openFileLimit(); l > 0 {
		limit = min(limit, l)
	}
	return max(1, limit-processFiles)
}

// fitScale raises Workers and extends Sources, when they are too few for
// the clients, and notes what it changed.
func (c *Config) fitScale() error {
	if per := clientsPerProcess(); c.Clients > per {
		if need := (c.Clients + per - 1) / per; c.Workers < need {
			c.notes = append(c.notes, fmt.Sprintf("%s clients need %d worker processes (at most %s sockets each): -workers %d", num(c.Clients), need, num(per), need))
			c.Workers = need
		}
	}
	dests := 1
	if portsPerDestination {
		dests = max(1, len(c.URLs))
	}
	limit := pairLimit()
	added := 0
	for pairLoad(c.Clients, len(c.Sources), dests) > limit {
		next, ok := nextLoopback(c.Sources)
		if !ok {
			return fmt.Errorf("%s clients need more source addresses than -sources %v gives (about %s sockets a source has towards one node): add more", num(c.Clients), c.Sources, num(limit))
		}
		c.Sources = append(c.Sources, next)
		added++
	}
	if added > 0 {
		c.notes = append(c.notes, fmt.Sprintf("%s clients on %d node(s) need %d source addresses (about %s sockets each towards a node): -sources %s",
			num(c.Clients), dests, len(c.Sources), num(limit), strings.Join(c.Sources, ",")))
	}
	return nil
}

// sourceOf is the source address index of client g when the clients go to
// dests nodes in turn: each source serves every node alike, so that the
// clients spread over every source/destination pair.
func sourceOf(g, sources, dests int) int { return (g / max(1, dests)) % sources }

// pairLoad is the most clients of one source/destination pair when client
// g dials from source sourceOf(g) to destination g % dests.
func pairLoad(clients, sources, dests int) int {
	if clients <= 0 || sources <= 0 {
		return 0
	}
	dests = max(1, dests)
	counts := make([]int, sources*dests)
	for g := 0; g < clients; g++ {
		counts[sourceOf(g, sources, dests)*dests+g%dests]++
	}
	return slices.Max(counts)
}

// nextLoopback returns the first address 127.0.0.k not in sources, when
// every source is an IPv4 loopback address (Linux routes all of
// 127.0.0.0/8 to the loopback interface).
func nextLoopback(sources []string) (string, bool) {
	have := make(map[string]bool, len(sources))
	for _, s := range sources {
		ip := net.ParseIP(s)
		if ip == nil || ip.To4() == nil || !ip.IsLoopback() {
			return "", false
		}
		have[ip.String()] = true
	}
	for k := 1; k < 255; k++ {
		if a := fmt.Sprintf("127.0.0.%d", k); !have[a] {
			return a, true
		}
	}
	return "", false
}
