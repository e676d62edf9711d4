package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// spawnLimitsOff turns off the per-IP limits (sockets, handshakes,
// checkouts), the per-buyer checkout limit and the per-user connection
// limit of a node the tool starts: every client of a load test comes from
// one machine, and with -token all share one user.
var spawnLimitsOff = []string{"LIVEHUB_CHECKOUT_USER_LIMIT=0", "LIVEHUB_CHECKOUT_IP_LIMIT=0",
	"LIVEHUB_WS_MAX_CONNS_PER_IP=0", "LIVEHUB_WS_CONNECT_IP_LIMIT=0", "LIVEHUB_MAX_CONNS_PER_USER=0"}

// spawn starts the livehub of -spawn-server (and its redis-server with
// -spawn-redis) and points cfg at it. extra are more LIVEHUB_* settings.
func spawn(ctx context.Context, cfg *Config, logw io.Writer, extra ...string) (func(), error) {
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
	sp, err := startServerProc(ctx, cfg.SpawnServer, extra...)
	if err != nil {
		if rp != nil {
			rp.stop()
		}
		return nil, err
	}
	sp.apply(cfg)
	fmt.Fprintf(logw, "livehub (pid %d) on %s, %s engine\n", sp.pid(), sp.addr, cfg.engine)
	return func() {
		sp.stop()
		if rp != nil {
			rp.stop()
		}
	}, nil
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
