// Package redistest starts private redis-server processes for tests: one
// server on a unix socket or a loopback port, or a small Redis Cluster. Every
// process belongs to the test that started it and is killed in t.Cleanup, so
// tests never share state with each other or with a Redis that happens to run
// on the machine.
package redistest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a redis-server may take to answer PING.
const startTimeout = 10 * time.Second

// Server is one redis-server process private to a test.
type Server struct {
	// URL locates the server: unix:///path/redis.sock or redis://127.0.0.1:port.
	URL string
	// Network is "unix" or "tcp".
	Network string
	// Addr is the socket path or host:port.
	Addr string

	t       testing.TB
	busPort int // cluster bus port, zero outside cluster mode
	dir     string
	logPath string
	args    []string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
	waitErr error
}

type config struct {
	tcp      bool
	cluster  bool   // cluster mode with a cluster bus port of its own
	sentinel string // sentinel mode: the config file's content
	args     []string
}

// Option changes how Start runs the server.
type Option func(*config)

// WithTCP listens on a free loopback port instead of a unix socket.
func WithTCP() Option { return func(c *config) { c.tcp = true } }

// WithArgs appends redis-server arguments, e.g. WithArgs("--appendonly", "yes")
// to keep data across Restart. Later arguments override the defaults.
func WithArgs(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

// Start runs a redis-server that keeps nothing on disk (--save "" and
// --appendonly no unless overridden) and waits until it answers. The
// server listens on a unix socket in a temporary directory unless WithTCP is
// given. It is killed when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	s := &Server{t: t, dir: socketDir(t)}
	s.logPath = filepath.Join(s.dir, "redis.log")
	var base []string
	if cfg.sentinel != "" {
		// A sentinel rewrites its config file, so it gets one of its own.
		conf := filepath.Join(s.dir, "sentinel.conf")
		if err := os.WriteFile(conf, []byte(cfg.sentinel), 0o600); err != nil {
			t.Fatalf("redistest: %v", err)
		}
		base = []string{conf, "--sentinel"}
	}
	base = append(base,
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--logfile", s.logPath,
		"--daemonize", "no",
	)
	t.Cleanup(s.Kill)

	if !cfg.tcp {
		sock := filepath.Join(s.dir, "redis.sock")
		s.Network, s.Addr, s.URL = "unix", sock, "unix://"+sock
		s.args = append(base, "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700")
		s.args = append(s.args, cfg.args...)
		if err := s.start(); err != nil {
			t.Fatalf("redistest: %v", err)
		}
		return s
	}
	// A free port can be taken by someone else between probing it and the
	// server binding it, so a failed start is retried on another port.
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		port := freePort(t)
		s.Network, s.Addr = "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.URL = "redis://" + s.Addr
		s.args = append(append([]string{}, base...), "--bind", "127.0.0.1", "--port", strconv.Itoa(port))
		if cfg.cluster {
			s.busPort = freePort(t)
			s.args = append(s.args,
				"--cluster-enabled", "yes",
				"--cluster-config-file", "nodes.conf",
				"--cluster-node-timeout", "2000",
				"--cluster-port", strconv.Itoa(s.busPort))
		}
		s.args = append(s.args, cfg.args...)
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("redistest: %v", err)
	return nil
}

// socketDir returns a directory removed after the test. Unix socket paths are
// limited to about 100 bytes, so t.TempDir is used only when its path is short
// enough; long test names fall back to a short directory under os.TempDir.
func socketDir(t testing.TB) string {
	t.Helper()
	if d := t.TempDir(); len(d) < 80 {
		return d
	}
	d, err := os.MkdirTemp("", "rt")
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// freePort returns a loopback TCP port that was free a moment ago. The shared
// development server's 6379 (and its cluster bus port) is never returned.
func freePort(t testing.TB) int {
	t.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("redistest: free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if port != 6379 && port != 16379 {
			return port
		}
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("server already running")
	}
	logf, err := os.OpenFile(filepath.Join(s.dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command("redis-server", s.args...)
	// An *os.File keeps exec from starting copying goroutines.
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	s.cmd, s.exited = cmd, exited
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.waitErr = err
		s.mu.Unlock()
		close(exited)
	}()

	// Ask for the process id rather than PING: when the port was taken in
	// the meantime, another test's server answers while ours fails to bind.
	want := "process_id:" + strconv.Itoa(cmd.Process.Pid) + "\r\n"
	deadline := time.Now().Add(startTimeout)
	for {
		reply, err := s.do(time.Second, "INFO", "server")
		if err == nil && strings.Contains(reply, want) {
			return nil
		}
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("redis-server exited at start: %s", s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			s.killLocked()
			return fmt.Errorf("redis-server did not answer within %v: %v\n%s", startTimeout, err, s.logTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop shuts the server down with SIGTERM and waits for it to exit. Without
// persistence its data is gone.
func (s *Server) Stop() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signalLocked(syscall.SIGTERM, 10*time.Second)
}

// Kill ends the server with SIGKILL, as a crash would. It is safe to call on a
// stopped server.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
}

func (s *Server) killLocked() { s.signalLocked(syscall.SIGKILL, 10*time.Second) }

// signalLocked sends sig and waits up to wait for the process to exit, then
// kills it. s.mu must be held; it is released while waiting so the waiting
// goroutine can record the exit status.
func (s *Server) signalLocked(sig syscall.Signal, wait time.Duration) {
	if s.cmd == nil {
		return
	}
	cmd, exited := s.cmd, s.exited
	_ = cmd.Process.Signal(sig)
	// A paused server acts on the signal only once it runs again.
	_ = cmd.Process.Signal(syscall.SIGCONT)
	s.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-exited
	}
	s.mu.Lock()
	s.cmd = nil
	if s.Network == "unix" {
		// A killed server leaves its socket file behind; the next start
		// replaces it anyway, but clients should see "no such file" meanwhile.
		_ = os.Remove(s.Addr)
	}
}

// Pause freezes the server with SIGSTOP: its connections stay open and
// nothing answers, as when the network drops packets or the host hangs.
func (s *Server) Pause() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatal("redistest: Pause of a stopped server")
	}
	_ = s.cmd.Process.Signal(syscall.SIGSTOP)
}

// Resume undoes Pause.
func (s *Server) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
	}
}

// Restart stops the server if it runs and starts it again on the same socket
// or port, so clients reconnect to the same address.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart: %v", err)
	}
}

// Running reports whether the process is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Do sends one command and returns its reply flattened to a string: simple
// strings and bulk strings as they are, integers in decimal, arrays joined
// with newlines. A Redis error reply is returned as an error.
func (s *Server) Do(args ...string) (string, error) {
	return s.do(5*time.Second, args...)
}

func (s *Server) do(timeout time.Duration, args ...string) (string, error) {
	return do(s.Network, s.Addr, timeout, args...)
}

func (s *Server) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
