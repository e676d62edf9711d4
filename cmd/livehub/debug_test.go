package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMain_DebugAddrServesProfilerApartFromPublicAddress(t *testing.T) {
	vars := baseEnv()
	vars["LIVEHUB_DEBUG_ADDR"] = "127.0.0.1:0"
	vars["LIVEHUB_LOG_LEVEL"] = "info"
	var logs lockedBuffer
	before := listeningSockets(t)
	m, err := NewMain([]string{"-http-addr", "127.0.0.1:0"}, getenv(vars), io.Discard, &logs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeWithin(t, m, 30*time.Second) })

	debug, public := m.DebugAddr(), m.Addr()
	if host, port, err := net.SplitHostPort(debug); err != nil || host != "127.0.0.1" || port == "0" || debug == public {
		t.Fatalf("DebugAddr() = %q (public %q), want its own 127.0.0.1 port", debug, public)
	}
	if before >= 0 {
		if n := listeningSockets(t) - before; n != 2 {
			t.Errorf("the node opened %d listening sockets, want 2: public and debug", n)
		}
	}
	if !loggedWith(logs.String(), "debug listener started", "addr", debug) {
		t.Errorf("no \"debug listener started\" line with addr %s in the log:\n%s", debug, logs.String())
	}

	tests := []struct {
		path string
		want string // in the debug listener's body
	}{
		{"/debug/pprof/", "goroutine"},
		{"/debug/pprof/goroutine?debug=1", "goroutine profile:"},
		{"/debug/pprof/heap?debug=1", "heap profile:"},
		{"/debug/pprof/allocs?debug=1", "heap profile:"},
		{"/debug/pprof/block?debug=1", ""},
		{"/debug/pprof/mutex?debug=1", ""},
		{"/debug/pprof/profile?seconds=1", ""},
		{"/debug/pprof/trace?seconds=0.1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			status, body := httpGet(t, "http://"+debug+tt.path)
			if status != http.StatusOK || !strings.Contains(body, tt.want) {
				t.Fatalf("debug %s: %d, want 200 with %q; body %.200q", tt.path, status, tt.want, body)
			}
			if status, _ := httpGet(t, "http://"+public+tt.path); status != http.StatusNotFound {
				t.Fatalf("public %s: %d, want 404", tt.path, status)
			}
		})
	}
	// The command line may carry -jwt-secret or -api-key.
	if status, body := httpGet(t, "http://"+debug+"/debug/pprof/cmdline"); status != http.StatusNotFound {
		t.Errorf("debug /debug/pprof/cmdline: %d %.100q, want 404", status, body)
	}
	// The debug listener serves the profiler only.
	for _, path := range []string{"/healthz", "/metrics", "/"} {
		if status, _ := httpGet(t, "http://"+debug+path); status != http.StatusNotFound {
			t.Errorf("debug %s: %d, want 404", path, status)
		}
	}

	if err := closeWithin(t, m, 30*time.Second); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if c, err := net.DialTimeout("tcp", debug, time.Second); err == nil {
		c.Close()
		t.Fatal("debug listener still accepts connections after Close")
	}
}

func TestMain_NoDebugAddrNoDebugListener(t *testing.T) {
	before := listeningSockets(t)
	m := startMain(t, baseEnv(), nil)
	if got := m.DebugAddr(); got != "" {
		t.Fatalf("DebugAddr() = %q without LIVEHUB_DEBUG_ADDR", got)
	}
	if before >= 0 {
		if n := listeningSockets(t) - before; n != 1 {
			t.Fatalf("the node opened %d listening sockets, want only the public one", n)
		}
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1"} {
		if status, _ := httpGet(t, "http://"+m.Addr()+path); status != http.StatusNotFound {
			t.Errorf("public %s: %d, want 404", path, status)
		}
	}
}

// A debug address that cannot be had stops the start, names the setting,
// and leaves nothing listening.
func TestRun_BusyDebugAddressFails(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	vars := baseEnv()
	vars["LIVEHUB_DEBUG_ADDR"] = taken.Addr().String()
	before := listeningSockets(t)
	m, err := NewMain([]string{"-http-addr", "127.0.0.1:0"}, getenv(vars), io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeWithin(t, m, 30*time.Second) })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	err = m.Run(ctx)
	if err == nil {
		t.Fatalf("Run with the debug address %s taken succeeded", taken.Addr())
	}
	if !strings.Contains(err.Error(), "LIVEHUB_DEBUG_ADDR") {
		t.Fatalf("error %q does not name LIVEHUB_DEBUG_ADDR", err)
	}
	if before >= 0 {
		if n := listeningSockets(t) - before; n != 0 {
			t.Fatalf("%d listening sockets left open by the failed start", n)
		}
	}
}

// loggedWith reports whether a JSON log line has msg and the attribute key=value.
func loggedWith(logs, msg, key, value string) bool {
	for _, line := range strings.Split(logs, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg && rec[key] == value {
			return true
		}
	}
	return false
}

// listeningSockets counts the TCP sockets of this process in the listening
// state, from /proc; -1 where there is no /proc to read.
func listeningSockets(t *testing.T) int {
	t.Helper()
	listening := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			if table == "/proc/net/tcp" {
				return -1
			}
			continue // no IPv6
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st tx:rx tr:tm retrnsmt uid timeout inode
			f := strings.Fields(line)
			if len(f) > 9 && f[3] == "0A" {
				listening[f[9]] = true
			}
		}
	}
	fds, err := filepath.Glob("/proc/self/fd/*")
	if err != nil || len(fds) == 0 {
		return -1
	}
	n := 0
	for _, fd := range fds {
		link, err := os.Readlink(fd)
		if err != nil {
			continue
		}
		if inode, ok := strings.CutPrefix(link, "socket:["); ok && listening[strings.TrimSuffix(inode, "]")] {
			n++
		}
	}
	return n
}
