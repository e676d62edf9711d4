// Package e2e holds end-to-end tests that run a real livehub process.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// buildTimeout bounds compiling the server (longer with -race).
	buildTimeout = 5 * time.Minute
	// runTimeout bounds the server start and the whole SDK script.
	runTimeout = 2 * time.Minute
	// shutdownGrace is the server's LIVEHUB_SHUTDOWN_GRACE; it must exit
	// within it (plus process teardown) after SIGTERM.
	shutdownGrace  = time.Second
	shutdownMargin = 2 * time.Second
	pingInterval   = 2 * time.Second
	jwtSecret      = "e2e-interop-secret-0123456789abcdef"
	apiKey         = "e2e-interop-api-key"
)

// TestSDKInterop drives the official centrifuge JavaScript SDK, under Node,
// against a freshly built livehub binary. The checks themselves live in
// sdk/interop.mjs; this test builds and runs the server, runs the script,
// and stops the server with SIGTERM.
func TestSDKInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end SDK interop test: skipped with -short")
	}
	root := moduleRoot(t)
	sdkDir := filepath.Join(root, "internal", "e2e", "sdk")
	if _, err := os.Stat(filepath.Join(sdkDir, "node_modules", "centrifuge", "package.json")); err != nil {
		t.Fatalf("the centrifuge SDK is not installed (%v).\n"+
			"Run `npm ci --prefix internal/e2e/sdk` from the repository root, then run this test again.", err)
	}
	if _, err := os.Stat(filepath.Join(sdkDir, "node_modules", "ws", "package.json")); err != nil {
		t.Fatalf("the ws package is not installed (%v).\n"+
			"Run `npm ci --prefix internal/e2e/sdk` from the repository root, then run this test again.", err)
	}
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH (%v): this test needs Node.js 20 or newer", err)
	}

	bin := buildServer(t, root)

	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	srv := startServer(ctx, t, bin)

	script := exec.CommandContext(ctx, nodeBin, "interop.mjs")
	script.Dir = sdkDir
	script.Env = append(os.Environ(),
		"LIVEHUB_URL=ws://"+srv.addr+"/connection/websocket",
		"LIVEHUB_HTTP=http://"+srv.addr,
		"LIVEHUB_JWT_SECRET="+jwtSecret,
		"LIVEHUB_API_KEY="+apiKey,
		fmt.Sprintf("LIVEHUB_PING_SECONDS=%d", int(pingInterval/time.Second)),
	)
	var out lockedBuffer
	script.Stdout = &out
	script.Stderr = &out
	script.WaitDelay = 5 * time.Second
	started := time.Now()
	runErr := script.Run()
	took := time.Since(started).Round(time.Millisecond)
	output := out.String()
	switch m := summaryRE.FindStringSubmatch(output); {
	case runErr != nil:
		if ctx.Err() != nil {
			runErr = fmt.Errorf("%w (the run exceeded %s)", runErr, runTimeout)
		}
		t.Errorf("SDK interop script failed after %s: %v\n--- script output ---\n%s--- server log (tail) ---\n%s",
			took, runErr, output, srv.logTail(150))
	case m == nil || m[2] != "0" || m[1] == "0":
		t.Errorf("SDK interop script exited 0 but its summary is missing or not clean:\n%s", output)
	default:
		t.Logf("SDK interop script passed in %s:\n%s", took, output)
	}

	srv.stop(t)
	if races := srv.races(); races != "" {
		t.Errorf("the server reported data races:\n%s", races)
	}
}

var summaryRE = regexp.MustCompile(`(?m)^interop: (\d+) passed, (\d+) failed$`)

// moduleRoot walks up from the working directory to the directory of go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// raceEnabled reports whether this test binary was built with -race; the
// server is then built with it too, so the interop run doubles as a race test.
func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

// TestMain removes the binary the tests share.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// buildServer compiles cmd/livehub once per test run (with -race when the
// tests run with it) and returns the binary.
func buildServer(t *testing.T, root string) string {
	t.Helper()
	buildOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("go is not on PATH: %w", err)
			return
		}
		if buildDir, err = os.MkdirTemp("", "livehub-e2e-"); err != nil {
			buildErr = err
			return
		}
		bin := filepath.Join(buildDir, "livehub")
		args := []string{"build", "-o", bin}
		if raceEnabled() {
			args = append(args, "-race")
		}
		args = append(args, "./cmd/livehub")
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
			return
		}
		builtBin = bin
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

type server struct {
	addr    string
	cmd     *exec.Cmd
	log     *lockedBuffer
	done    chan struct{}
	waitErr error
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func startServer(ctx context.Context, t *testing.T, bin string, env ...string) *server {
	t.Helper()
	s := &server{addr: freeAddr(t), log: &lockedBuffer{}, done: make(chan struct{})}
	s.cmd = exec.CommandContext(ctx, bin)
	s.cmd.Env = append(os.Environ(),
		"LIVEHUB_HTTP_ADDR="+s.addr,
		"LIVEHUB_JWT_SECRET="+jwtSecret,
		"LIVEHUB_API_KEY="+apiKey,
		"LIVEHUB_PING_INTERVAL="+pingInterval.String(),
		"LIVEHUB_SHUTDOWN_GRACE="+shutdownGrace.String(),
		"LIVEHUB_LOG_LEVEL=debug",
	)
	s.cmd.Env = append(s.cmd.Env, env...)
	if os.Getenv("GORACE") == "" {
		// A race-enabled binary otherwise sleeps a second before exiting,
		// which would count against the shutdown grace.
		s.cmd.Env = append(s.cmd.Env, "GORACE=atexit_sleep_ms=0")
	}
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	s.cmd.WaitDelay = 5 * time.Second
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start livehub: %v", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-s.done:
			t.Fatalf("livehub exited before it was ready: %v\n--- server log ---\n%s", s.waitErr, s.log.String())
		default:
		}
		resp, err := client.Get("http://" + s.addr + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("livehub not ready at http://%s/readyz after 20s (last error %v)\n--- server log ---\n%s", s.addr, err, s.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends SIGTERM and checks the server exits 0 within the shutdown grace.
func (s *server) stop(t *testing.T) {
	t.Helper()
	select {
	case <-s.done:
		t.Errorf("livehub exited before SIGTERM: %v\n--- server log (tail) ---\n%s", s.waitErr, s.logTail(100))
		return
	default:
	}
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM: %v", err)
		return
	}
	limit := shutdownGrace + shutdownMargin
	select {
	case <-s.done:
	case <-time.After(limit):
		t.Errorf("livehub still running %s after SIGTERM (shutdown grace %s)\n--- server log (tail) ---\n%s", limit, shutdownGrace, s.logTail(100))
		return
	}
	took := time.Since(start)
	var exitErr *exec.ExitError
	switch {
	case s.waitErr == nil:
		t.Logf("livehub exited 0 %s after SIGTERM", took.Round(time.Millisecond))
	case errors.As(s.waitErr, &exitErr):
		t.Errorf("livehub exited with code %d after SIGTERM, want 0\n--- server log (tail) ---\n%s", exitErr.ExitCode(), s.logTail(100))
	default:
		t.Errorf("livehub wait: %v", s.waitErr)
	}
}

func (s *server) logTail(n int) string {
	lines := strings.Split(strings.TrimRight(s.log.String(), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... %d earlier lines", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n") + "\n"
}

// races returns the race detector's reports in the server's output.
func (s *server) races() string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s.log.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	in := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "WARNING: DATA RACE") {
			in = true
		}
		if in {
			b.WriteString(line)
			b.WriteByte('\n')
			if strings.HasPrefix(line, "==================") && b.Len() > 20 {
				in = false
			}
		}
	}
	return b.String()
}

// lockedBuffer is a bytes.Buffer safe for the concurrent writes of a process's
// stdout and stderr and reads from the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
