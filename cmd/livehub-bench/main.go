// Command livehub-bench loads a LiveHub server the way an audience does and
// reports what it measured.
//
// It speaks only the wire: the Centrifugo protocol v2 (JSON) over WebSocket
// for clients, the server HTTP API (POST /api/publish with X-API-Key) for
// publishing and, in checkout mode, LiveHub's commerce API under /v1. So it
// runs against any server of the protocol with a compatible server API.
//
// # Modes
//
//   - room: -clients subscribe to live:bench. The tool publishes -count
//     messages (or -rate × -duration) at -rate per second through the
//     server API. Each message carries its sequence number and its send
//     time in nanoseconds, padded to -payload bytes; every client records
//     the end-to-end latency and notices lost and duplicated sequence
//     numbers.
//   - rooms: the same with the clients spread over -rooms channels
//     live:bench-0 ... and the messages spread over them in turn.
//   - reconnect: the room, with recoverable subscriptions. Half way through
//     the messages every connection is dropped at once, without a close
//     handshake; each client reconnects and resubscribes asking to recover
//     from its last offset while messages keep flowing. It reports the
//     reconnect time (drop to resubscribed), how many recovered and what
//     was lost.
//   - checkout: as a host, the tool opens a stream and a flash sale of
//     -units (-per-user-limit per buyer, no countdown). -clients viewers
//     watch live:{stream}; then -buyers buyers (each -attempts times) send
//     POST /v1/checkout at once, each with its own Idempotency-Key. It
//     reports checkouts per second, latency, answers by status, units sold
//     against units on sale (oversold must be 0) and how long until every
//     viewer saw flash_sale.stock with stock_left 0. Needs -secret. With
//     -sustain-rate R the checkouts instead start on schedule at R per
//     second for -duration (open loop: a slow answer does not hold the
//     next start back; at most -buyer-conns in flight), each a new buyer of
//     a sale big enough for all, and the latency counts from each
//     checkout's scheduled start.
//   - soak: a busy room for -duration, with a report row every -interval:
//     watchers checking numbered chat messages, churning clients sending
//     likes, checkouts, couriers' locations and, when the tool started the
//     redis-server itself, Redis restarts every -redis-restart. Rows show
//     errors, lost events and the server's RSS, heap and goroutines.
//   - bytes: replays a recorded-style mix of room events to subscribers of
//     each encoding (JSON, Protobuf, permessage-deflate, Fossil delta) and
//     reports bytes on the wire per delivered event and the server's CPU.
//   - suite: the standard set of make bench, written into the generated
//     sections of -write (docs/benchmarks.md) beside the targets.
//
// The mode may also be given as the first argument: livehub-bench soak ...
// With -spawn-server BIN the tool starts that livehub on a free loopback
// port with secrets of its own (and, with -spawn-redis, a private
// redis-server on a unix socket) and runs against it. With -nodes N it
// starts N of them on that one redis-server, sharing their secrets: the
// clients are spread over the nodes (client g on node g % N) and the
// publications go through the first node's API alone, so every other
// node's clients get them through Redis. -urls spreads the clients the
// same way over nodes started elsewhere. Whatever the tool starts is
// stopped when the run ends or fails, and gets SIGTERM should the tool
// itself die.
//
// # Report
//
// Connect rate, publications sent, deliveries per second, latency
// p50/p95/p99/max, lost and duplicated messages, connections the server
// closed (by close code) and, with -server-pid, the server's RSS per
// connection and its CPU use, read from /proc (for each node, charged for
// the clients connected to it, when there are several). The CPU use of the
// tool's own processes and of the whole machine in the same phase is shown
// too, and the tool's CPU time per delivery: a server sharing its cores
// with the tool gets only what the tool leaves.
// A table, or JSON with -json.
// Latencies are kept in a fixed-bucket log-linear histogram (under 1%
// error), so memory does not grow with the number of samples. Publications
// a subscribe reply recovered count as delivered but not in the latency.
//
// # Scale
//
// One process may hold only so many open files, so -workers W starts W
// copies of this program with -worker, each running a share of the
// clients; they take their share as JSON on stdin and report their results
// as JSON on stdout, which the parent merges. The tool raises -workers so
// that no process holds more than 17,500 sockets (18,000 files), and the
// workers split the cores (GOMAXPROCS). A loopback source address gives
// about 28,000 ports towards one server address (the kernel picks a port
// per destination); -sources spreads the dials over several (127.0.0.2,
// 127.0.0.3, ... are loopback on Linux), and the tool adds loopback
// addresses when those given are too few.
//
// Each client's pushes are counted on its connection's read goroutine,
// read into one buffer of the connection and decoded into one reused
// reply, with counters and latency samples of its own merged at the end:
// what the tool spends per delivery is mostly the kernel's.
// Every run stops by itself: -timeout bounds it (by default the publishing
// time plus five minutes) and -drain bounds the wait for the last messages.
//
// # Examples
//
//	LIVEHUB_API_KEY=k LIVEHUB_JWT_SECRET=s livehub &
//	livehub-bench -api-key k -secret s -mode room -clients 1000 -rate 100 -duration 30s -server-pid $!
//	livehub-bench -api-key k -secret s -clients 10000 -rate 10 -duration 30s -workers 2 -sources 127.0.0.1,127.0.0.2
//	livehub-bench -api-key k -secret s -mode reconnect -clients 2000 -rate 50 -count 1000
//	livehub-bench -secret s -mode checkout -clients 1000 -buyers 5000 -units 100
//	livehub-bench -spawn-server bin/livehub -spawn-redis -nodes 3 -clients 50000 -rate 1 -duration 5s -workers 3 -sources 127.0.0.1,127.0.0.2,127.0.0.3
//
// The exit status is 0 for a completed run, 1 when the run failed, 2 for bad
// flags and 3 when a checkout run oversold.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(mainRun(os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}

// mainRun is the program: it returns the exit status.
func mainRun(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, worker, err := parseFlags(args, getenv, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "livehub-bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if worker {
		if err := runWorker(ctx, stdin, stdout); err != nil {
			fmt.Fprintln(stderr, "livehub-bench worker:", err)
			return 1
		}
		return 0
	}
	switch cfg.Mode {
	case modeSoak, modeSuite, modeBytes:
		return runExtra(ctx, cfg, stdout, stderr)
	}
	if cfg.SpawnServer != "" {
		cleanup, err := spawn(ctx, &cfg, stderr, spawnLimitsOff...)
		if err != nil {
			fmt.Fprintln(stderr, "livehub-bench:", err)
			return 1
		}
		defer cleanup()
	}
	if err := cfg.normalize(); err != nil {
		fmt.Fprintln(stderr, "livehub-bench:", err)
		return 2
	}
	// Progress goes to stderr, so stdout holds the report alone.
	rep, err := run(ctx, cfg, stderr)
	if rep != nil && (err == nil || rep.Connect.Connected > 0) {
		if cfg.JSON {
			_ = rep.writeJSON(stdout)
		} else {
			_ = rep.writeTable(stdout)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "livehub-bench:", err)
		return 1
	}
	if rep.Checkout != nil && rep.Checkout.Oversold > 0 {
		fmt.Fprintf(stderr, "livehub-bench: oversold %d units\n", rep.Checkout.Oversold)
		return 3
	}
	return 0
}
