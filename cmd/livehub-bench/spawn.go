package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Processes the tool may start itself: a private redis-server on a unix
// socket in a temporary directory (never a shared Redis), and livehub
// nodes on free loopback ports with secrets of their own. All are stopped
// when the run ends, and get SIGTERM should the tool die first.

// redisProc is a private redis-server. Its data is kept in an append-only
// file, so a restart (a Redis failover, as a node sees it) keeps the store.
type redisProc struct {
	bin  string
	dir  string
	sock string
	cmd  *exec.Cmd
	done chan struct{}
	log  *tailBuffer
}

// startRedis starts bin (redis-server) listening on a unix socket only.
func startRedis(bin string) (*redisProc, error) {
	if bin == "" {
		bin = "redis-server"
	}
	dir, err := os.MkdirTemp("", "livehub-bench-redis-")
	if err != nil {
		return nil, err
	}
	r := &redisProc{bin: bin, dir: dir, sock: filepath.Join(dir, "redis.sock")}
	if err := r.start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return r, nil
}

// URL is the address for LIVEHUB_REDIS_URL.
func (r *redisProc) URL() string { return "unix://" + r.sock }

// PID is the redis-server's process ID.
func (r *redisProc) PID() int { return r.cmd.Process.Pid }

func (r *redisProc) start() error {
	r.log = &tailBuffer{max: 8 << 10}
	r.done = make(chan struct{})
	r.cmd = exec.Command(r.bin,
		"--port", "0", "--unixsocket", r.sock, "--unixsocketperm", "700",
		"--dir", r.dir, "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
		"--daemonize", "no", "--loglevel", "warning")
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	r.cmd.SysProcAttr = childAttr()
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", r.bin, err)
	}
	done := r.done
	cmd := r.cmd
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if pingRedis(r.sock) == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server exited at start: %s", r.log.String())
		default:
		}
		if time.Now().After(deadline) {
			r.kill()
			return fmt.Errorf("redis-server not answering on %s after 10s: %s", r.sock, r.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pingRedis sends PING on the unix socket and expects PONG.
func pingRedis(sock string) error {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, "PING\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// restart stops the server (SIGTERM: it flushes its append-only file) and
// starts it again on the same socket. It returns how long Redis was down.
func (r *redisProc) restart() (time.Duration, error) {
	t0 := time.Now()
	r.stopProcess()
	err := r.start()
	return time.Since(t0), err
}

func (r *redisProc) stopProcess() {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		r.kill()
	}
}

func (r *redisProc) kill() {
	_ = r.cmd.Process.Kill()
	<-r.done
}

// stop ends the server and removes its directory.
func (r *redisProc) stop() {
	r.stopProcess()
	_ = os.RemoveAll(r.dir)
}

// serverProc is a livehub node the tool started.
type serverProc struct {
	addr   string
	secret string
	apiKey string
	cmd    *exec.Cmd
	done   chan struct{}
	log    *tailBuffer
}

// startServerProc starts bin on a free loopback port with the token secret
// and API key given (random ones when empty; nodes of one run share
// theirs). extra are more LIVEHUB_* settings (NAME=value). LIVEHUB_*
// variables of this process are not passed on, so the node never picks up
// someone else's Redis.
func startServerProc(ctx context.Context, bin, secret, apiKey string, extra ...string) (*serverProc, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if secret == "" {
		secret = randomHex(16)
	}
	if apiKey == "" {
		apiKey = randomHex(16)
	}
	s := &serverProc{addr: ln.Addr().String(), secret: secret, apiKey: apiKey, done: make(chan struct{}), log: &tailBuffer{max: 16 << 10}}
	_ = ln.Close()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LIVEHUB_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"LIVEHUB_HTTP_ADDR="+s.addr,
		"LIVEHUB_JWT_SECRET="+s.secret,
		"LIVEHUB_API_KEY="+s.apiKey,
		"LIVEHUB_LOG_LEVEL=warn",
		"LIVEHUB_SHUTDOWN_GRACE=1s",
	)
	env = append(env, extra...)
	s.cmd = exec.Command(bin)
	s.cmd.Env = env
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = childAttr()
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-s.done:
			return nil, fmt.Errorf("livehub exited at start: %s", s.log.String())
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		default:
		}
		resp, err := client.Get("http://" + s.addr + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("livehub not ready at %s after 30s: %s", s.addr, s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *serverProc) pid() int { return s.cmd.Process.Pid }

// wsURL is the node's WebSocket endpoint.
func (s *serverProc) wsURL() string { return "ws://" + s.addr + "/connection/websocket" }

// apply points cfg at the node.
func (s *serverProc) apply(cfg *Config) {
	cfg.URL = s.wsURL()
	cfg.API = "http://" + s.addr
	cfg.Secret = s.secret
	cfg.APIKey = s.apiKey
	cfg.ServerPID = s.pid()
}

// applyNodes points cfg at several nodes of one engine: clients spread
// over all of them, publications through the first.
func applyNodes(cfg *Config, nodes []*serverProc) {
	nodes[0].apply(cfg)
	cfg.URLs, cfg.ServerPIDs = nil, nil
	for _, n := range nodes {
		cfg.URLs = append(cfg.URLs, n.wsURL())
		cfg.ServerPIDs = append(cfg.ServerPIDs, n.pid())
	}
}

// stop sends SIGTERM and kills a node still running 15 seconds later.
func (s *serverProc) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// exited reports whether the node is gone, with the end of its log.
func (s *serverProc) exited() error {
	select {
	case <-s.done:
		return errors.New("livehub exited: " + s.log.String())
	default:
		return nil
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
