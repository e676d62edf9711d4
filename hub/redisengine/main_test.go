package redisengine_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livehub/livehub/hub/hubtest"
	"github.com/livehub/livehub/hub/redisengine"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newEngine returns an engine on url with a prefix of its own, closed when
// the test ends, logging to the test log.
func newEngine(t testing.TB, url string, opts ...func(*redisengine.Options)) *redisengine.Engine {
	t.Helper()
	o := redisengine.Options{
		URL:    url,
		Prefix: "t" + hubtest.RandomName(),
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}
	for _, f := range opts {
		f(&o)
	}
	e, err := redisengine.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	return e
}

// testWriter sends log lines to the test's log, shown when it fails or
// with -v. The engines are closed in t.Cleanup, before the test completes,
// so nothing logs after.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// logRecorder is a slog handler keeping the messages logged, so tests can
// wait for the engine to notice something.
type logRecorder struct {
	t    testing.TB
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += " " + a.String()
		return true
	})
	l.msgs = append(l.msgs, line)
	if l.t != nil {
		l.t.Logf("%s %s", r.Level, line)
	}
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// contains reports whether a logged line (message and attributes) holds
// every one of the substrings.
func (l *logRecorder) contains(substrs ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
next:
	for _, m := range l.msgs {
		for _, s := range substrs {
			if !strings.Contains(m, s) {
				continue next
			}
		}
		return true
	}
	return false
}
