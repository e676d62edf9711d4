package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// redisServer returns the redis-server binary, or skips the test.
func redisServer(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs livehub nodes and a redis-server: skipped with -short")
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("no redis-server in PATH")
	}
	return bin
}

// spawnedPIDs reads the pids spawn printed.
func spawnedPIDs(log string) []int {
	var pids []int
	for _, m := range regexp.MustCompile(`\(pid (\d+)\)`).FindAllStringSubmatch(log, -1) {
		pid, _ := strconv.Atoi(m[1])
		pids = append(pids, pid)
	}
	return pids
}

// assertGone fails the test for any pid still running.
func assertGone(t *testing.T, pids []int) {
	t.Helper()
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still there after the run (kill 0: %v)", pid, err)
		}
	}
}

func TestNodes_EveryClientOnEveryNodeGetsEveryPublication(t *testing.T) {
	redisBin := redisServer(t)
	bin := serverBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cfg := Config{SpawnServer: bin, SpawnRedis: true, RedisBin: redisBin, Nodes: 2,
		Mode: modeRoom, Clients: 41, Count: 30, Rate: 300, Payload: 200, Workers: 2,
		Sources: []string{"127.0.0.1", "127.0.0.2"}, Drain: 20 * time.Second}
	var log bytes.Buffer
	cleanup, err := spawn(ctx, &cfg, &log, spawnLimitsOff...)
	if err != nil {
		t.Fatalf("spawn: %v\n%s", err, log.String())
	}
	pids := spawnedPIDs(log.String())
	defer func() { assertGone(t, pids) }()
	defer cleanup()
	if len(pids) != 3 || len(cfg.URLs) != 2 || cfg.URLs[0] == cfg.URLs[1] || len(cfg.ServerPIDs) != 2 || cfg.URL != cfg.URLs[0] {
		t.Fatalf("spawned %v; urls %v, server pids %v, url %s", pids, cfg.URLs, cfg.ServerPIDs, cfg.URL)
	}

	rep, err := run(ctx, cfg, &log)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	// Publications go through node 1 only: node 2's clients get them
	// through Redis.
	d := rep.Delivery
	if rep.Connect.Connected != 41 || d.Delivered != 41*30 || d.Expected != 41*30 || d.Lost != 0 || d.Duplicates != 0 {
		t.Errorf("%d connected, %d of %d delivered, %d lost, %d duplicates; want 41 and every publication to each",
			rep.Connect.Connected, d.Delivered, d.Expected, d.Lost, d.Duplicates)
	}
	if len(rep.Connect.ByNode) != 2 || rep.Connect.ByNode[0] != 21 || rep.Connect.ByNode[1] != 20 {
		t.Errorf("connected by node %v, want [21 20]", rep.Connect.ByNode)
	}
	if len(rep.Nodes) != 2 {
		t.Fatalf("%d nodes in the report, want 2", len(rep.Nodes))
	}
	for i, n := range rep.Nodes {
		if n.Error != "" || n.PID != cfg.ServerPIDs[i] || n.URL != cfg.URLs[i] || n.Connected != rep.Connect.ByNode[i] || n.RSSBeforeKiB <= 0 || n.RSSAfterKiB <= 0 {
			t.Errorf("node %d: %+v", i+1, n)
		}
	}
	if rep.Server != &rep.Nodes[0] {
		t.Error("the report's server is not the first node")
	}
	var table bytes.Buffer
	if err := rep.writeTable(&table); err != nil || !bytes.Contains(table.Bytes(), []byte("node 2")) {
		t.Errorf("table (%v):\n%s", err, table.String())
	}
}

func TestSpawn_StopsWhatItStartedWhenANodeFails(t *testing.T) {
	redisBin := redisServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	bad := t.TempDir() + "/livehub"
	if err := os.WriteFile(bad, []byte("#!/bin/sh\necho no such server >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := Config{SpawnServer: bad, SpawnRedis: true, RedisBin: redisBin, Nodes: 3}
	var log bytes.Buffer
	if _, err := spawn(ctx, &cfg, &log, spawnLimitsOff...); err == nil {
		t.Fatal("spawn of a server that exits at once succeeded")
	}
	pids := spawnedPIDs(log.String())
	if len(pids) != 1 {
		t.Fatalf("spawn log names %v, want the redis-server alone:\n%s", pids, log.String())
	}
	assertGone(t, pids)
	if cfg.redis != nil {
		if _, err := os.Stat(cfg.redis.dir); !os.IsNotExist(err) {
			t.Errorf("redis directory %s left behind (%v)", cfg.redis.dir, err)
		}
	}

	cfg = Config{SpawnServer: bad, Nodes: 2}
	if _, err := spawn(ctx, &cfg, &log, spawnLimitsOff...); err == nil {
		t.Error("-nodes 2 without -spawn-redis was accepted")
	}
}
