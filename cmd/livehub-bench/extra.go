package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// spawnLimitsOff turns off the per-IP limits (sockets, handshakes,
// checkouts), the per-buyer checkout limit and the per-user connection
// limit of a node the tool starts: every client of a load test comes from
// one machine, and with -token all share one user.
var spawnLimitsOff = []string{"LIVEHUB_CHECKOUT_USER_LIMIT=0", "LIVEHUB_CHECKOUT_IP_LIMIT=0",
	"LIVEHUB_WS_MAX_CONNS_PER_IP=0", "LIVEHUB_WS_CONNECT_IP_LIMIT=0", "LIVEHUB_MAX_CONNS_PER_USER=0"}

// spawn starts the livehub of -spawn-server (-nodes of them, sharing their
// secrets) and, with -spawn-redis, the redis-server they share, and points
// cfg at them. extra are more LIVEHUB_* settings. The returned function
// stops them all; on an error nothing is left running.
func spawn(ctx context.Context, cfg *Config, logw io.Writer, extra ...string) (func(), error) {
	if cfg.Nodes > 1 && !cfg.SpawnRedis {
		return nil, fmt.Errorf("-nodes %d share publications through Redis: give -spawn-redis", cfg.Nodes)
	}
	var rp *redisProc
	cfg.engine = "memory"
	if cfg.SpawnRedis {
		var err error
		if rp, err = startRedis(cfg.RedisBin); err != nil {
			return nil, err
		}
		extra = append(extra, "LIVEHUB_REDIS_URL="+rp.URL())
		cfg.engine = "redis"
		cfg.redis = rp
		fmt.Fprintf(logw, "redis-server (pid %d) on %s\n", rp.PID(), rp.sock)
	}
	var nodes []*serverProc
	stop := func() {
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Go(n.stop)
		}
		wg.Wait()
		// The nodes log warnings only: show what they said.
		for _, n := range nodes {
			if log := lastLines(n.log.String(), 10); log != "" {
				fmt.Fprintf(logw, "livehub (pid %d) logged, last lines:\n%s\n", n.pid(), log)
			}
		}
		if rp != nil {
			rp.stop()
		}
	}
	extra = append(extra, cfg.ServerEnv...)
	secret, apiKey := randomHex(16), randomHex(16)
	for range max(1, cfg.Nodes) {
		sp, err := startServerProc(ctx, cfg.SpawnServer, secret, apiKey, extra...)
		if err != nil {
			stop()
			return nil, err
		}
		nodes = append(nodes, sp)
		fmt.Fprintf(logw, "livehub (pid %d) on %s, %s engine\n", sp.pid(), sp.addr, cfg.engine)
	}
	if len(nodes) > 1 {
		applyNodes(cfg, nodes)
	} else {
		nodes[0].apply(cfg)
	}
	return stop, nil
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// runExtra runs soak, bytes and suite modes; it returns the exit status.
func runExtra(ctx context.Context, cfg Config, stdout, stderr io.Writer) int {
	if len(cfg.Sources) == 0 {
		cfg.Sources = []string{"127.0.0.1"}
	}
	if cfg.Duration <= 0 || cfg.Interval <= 0 {
		fmt.Fprintln(stderr, "livehub-bench: -duration and -interval must be positive")
		return 2
	}
	if cfg.RedisRestart > 0 && !cfg.SpawnRedis {
		fmt.Fprintln(stderr, "livehub-bench: -redis-restart restarts only a redis-server the tool started: give -spawn-server and -spawn-redis")
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "livehub-bench:", err)
		return 1
	}
	switch cfg.Mode {
	case modeSuite:
		if err := runSuite(ctx, cfg, stdout, stderr); err != nil {
			return fail(err)
		}
		return 0
	}
	if cfg.SpawnServer != "" {
		cleanup, err := spawn(ctx, &cfg, stderr, spawnLimitsOff...)
		if err != nil {
			return fail(err)
		}
		defer cleanup()
	}
	// Every run stops by itself.
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration+10*time.Minute)
	defer cancel()
	switch cfg.Mode {
	case modeSoak:
		rep, err := runSoak(ctx, cfg, stderr, stdout)
		if rep == nil {
			return fail(err)
		}
		rep.Command = commandLine(cfg.args)
		if cfg.JSON {
			_ = jsonOut(stdout, rep)
		} else {
			fmt.Fprintln(stdout)
			_ = rep.writeSummary(stdout)
		}
		if cfg.Write != "" {
			if werr := writeSection(cfg.Write, "soak", soakMarkdown(rep, machineInfo())); werr != nil {
				return fail(werr)
			}
		}
		if err != nil {
			return fail(err)
		}
		return 0
	case modeBytes:
		rep, err := runBytes(ctx, cfg, stderr)
		if err != nil {
			return fail(err)
		}
		rep.Command = commandLine(cfg.args)
		if cfg.JSON {
			_ = jsonOut(stdout, rep)
		} else {
			_ = rep.writeTable(stdout)
		}
		if cfg.Write != "" {
			if err := writeSection(cfg.Write, "bytes", bytesMarkdown(rep, machineInfo())); err != nil {
				return fail(err)
			}
		}
		return 0
	}
	return fail(errors.New("unknown mode " + cfg.Mode))
}

// commandLine is how the run was asked for, to print beside its figures.
func commandLine(args []string) string {
	parts := []string{"livehub-bench"}
	for _, a := range args {
		if strings.ContainsAny(a, " \t'\"$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

var _ = os.Getpid
