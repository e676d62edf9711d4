package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"
)

// A worker is this program started with -worker: it runs one fleet for a
// parent. The parent writes commands to its stdin and reads events from its
// stdout, one JSON object a line:
//
//	parent: {"cmd":"start","spec":{...}}   worker: {"event":"ready","connect":{...}}
//	parent: {"cmd":"drop"}                 (reconnect mode)
//	parent: {"cmd":"settle","drain":ns}    worker: {"event":"settled"}
//	parent: {"cmd":"finish"}               worker: {"event":"result","result":{...}}
//
// A failure is {"event":"error","error":"..."}. The spec travels on stdin,
// not in arguments, so the token secret is not in the process list. A worker
// whose stdin closes (its parent is gone) stops, and so does one that
// outlives spec.Timeout.

type workerCommand struct {
	Cmd   string        `json:"cmd"`
	Spec  *fleetSpec    `json:"spec,omitempty"`
	Drain time.Duration `json:"drain,omitempty"`
}

type workerEvent struct {
	Event   string        `json:"event"`
	Connect *connectStats `json:"connect,omitempty"`
	Result  *fleetResult  `json:"result,omitempty"`
	Error   string        `json:"error,omitempty"`
}

// runWorker serves one parent.
func runWorker(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	cmds := make(chan workerCommand)
	readErr := make(chan error, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		// No more commands means the parent is gone: stop whatever runs.
		defer cancel()
		defer close(cmds)
		dec := json.NewDecoder(stdin)
		for {
			var c workerCommand
			if err := dec.Decode(&c); err != nil {
				if !errors.Is(err, io.EOF) {
					readErr <- err
				}
				return
			}
			select {
			case cmds <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	enc := json.NewEncoder(stdout)
	emit := func(e workerEvent) error { return enc.Encode(e) }
	fail := func(err error) error {
		_ = emit(workerEvent{Event: "error", Error: err.Error()})
		return err
	}
	next := func() (workerCommand, error) {
		select {
		case c, ok := <-cmds:
			if !ok {
				select {
				case err := <-readErr:
					return c, fmt.Errorf("reading commands: %w", err)
				default:
					return c, errors.New("the parent closed stdin")
				}
			}
			return c, nil
		case <-ctx.Done():
			return workerCommand{}, ctx.Err()
		}
	}

	first, err := next()
	if err != nil {
		return err
	}
	if first.Cmd != "start" || first.Spec == nil {
		return fail(fmt.Errorf("first command is %q, want start with a spec", first.Cmd))
	}
	spec := *first.Spec
	if spec.Timeout <= 0 {
		spec.Timeout = time.Hour
	}
	if spec.Procs > 0 && os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(spec.Procs)
	}
	ctx, stop := context.WithTimeout(ctx, spec.Timeout)
	defer stop()
	f, err := newFleet(spec)
	if err != nil {
		return fail(err)
	}
	defer f.close()
	cs, err := f.connect(ctx)
	if err != nil {
		return fail(err)
	}
	if err := emit(workerEvent{Event: "ready", Connect: &cs}); err != nil {
		return err
	}
	for {
		c, err := next()
		if err != nil {
			return err
		}
		switch c.Cmd {
		case "drop":
			if err := f.drop(ctx); err != nil {
				return fail(err)
			}
		case "settle":
			if err := f.settle(ctx, c.Drain); err != nil {
				return fail(err)
			}
			if err := emit(workerEvent{Event: "settled"}); err != nil {
				return err
			}
		case "finish":
			res, err := f.finish(ctx)
			if err != nil {
				return fail(err)
			}
			return emit(workerEvent{Event: "result", Result: &res})
		default:
			return fail(fmt.Errorf("unknown command %q", c.Cmd))
		}
	}
}

// remoteFleet is a fleet in a worker process.
type remoteFleet struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan workerEvent
	done   chan struct{}
	quit   chan struct{}
	stderr *tailBuffer
	// waitErr is the worker's exit; read it after done is closed.
	waitErr   error
	closeOnce sync.Once
}

var _ fleetRunner = (*remoteFleet)(nil)

// startWorker starts command as a worker running spec.
func startWorker(command []string, spec fleetSpec) (*remoteFleet, error) {
	r := &remoteFleet{
		cmd:    exec.Command(command[0], command[1:]...),
		events: make(chan workerEvent, 4),
		done:   make(chan struct{}),
		quit:   make(chan struct{}),
		stderr: &tailBuffer{max: 8 << 10},
	}
	r.cmd.Stderr = r.stderr
	r.cmd.Env = os.Environ()
	r.cmd.SysProcAttr = childAttr()
	stdin, err := r.cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := r.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	r.stdin = stdin
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	go func() {
		defer close(r.done)
		defer close(r.events)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		for sc.Scan() {
			var e workerEvent
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				e = workerEvent{Event: "error", Error: fmt.Sprintf("bad line from worker: %.200s", sc.Text())}
			}
			// After close nobody reads events; keep reading stdout so the
			// worker never blocks writing it.
			select {
			case r.events <- e:
			case <-r.quit:
			}
		}
		r.waitErr = r.cmd.Wait()
	}()
	if err := r.send(workerCommand{Cmd: "start", Spec: &spec}); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *remoteFleet) send(c workerCommand) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if _, err := r.stdin.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("worker %d: %w", r.cmd.Process.Pid, err)
	}
	return nil
}

// await returns the next event, which must be want.
func (r *remoteFleet) await(ctx context.Context, want string) (workerEvent, error) {
	select {
	case e, ok := <-r.events:
		switch {
		case !ok:
			<-r.done
			return e, fmt.Errorf("worker %d exited (%v) before %q; its stderr:\n%s", r.cmd.Process.Pid, r.waitErr, want, r.stderr.String())
		case e.Event == "error":
			return e, fmt.Errorf("worker %d: %s", r.cmd.Process.Pid, e.Error)
		case e.Event != want:
			return e, fmt.Errorf("worker %d sent %q, want %q", r.cmd.Process.Pid, e.Event, want)
		}
		return e, nil
	case <-ctx.Done():
		return workerEvent{}, ctx.Err()
	}
}

func (r *remoteFleet) connect(ctx context.Context) (connectStats, error) {
	e, err := r.await(ctx, "ready")
	if err != nil {
		return connectStats{}, err
	}
	if e.Connect == nil {
		return connectStats{}, fmt.Errorf("worker %d: ready without connect stats", r.cmd.Process.Pid)
	}
	return *e.Connect, nil
}

func (r *remoteFleet) drop(context.Context) error {
	return r.send(workerCommand{Cmd: "drop"})
}

func (r *remoteFleet) settle(ctx context.Context, drain time.Duration) error {
	if err := r.send(workerCommand{Cmd: "settle", Drain: drain}); err != nil {
		return err
	}
	_, err := r.await(ctx, "settled")
	return err
}

func (r *remoteFleet) finish(ctx context.Context) (fleetResult, error) {
	if err := r.send(workerCommand{Cmd: "finish"}); err != nil {
		return fleetResult{}, err
	}
	e, err := r.await(ctx, "result")
	if err != nil {
		return fleetResult{}, err
	}
	if e.Result == nil {
		return fleetResult{}, fmt.Errorf("worker %d: result without a body", r.cmd.Process.Pid)
	}
	return *e.Result, nil
}

// close ends the worker: it closes stdin, which stops a worker between
// commands, and kills one that has not exited within ten seconds.
func (r *remoteFleet) close() {
	r.closeOnce.Do(func() {
		close(r.quit)
		_ = r.stdin.Close()
		t := time.NewTimer(10 * time.Second)
		defer t.Stop()
		select {
		case <-r.done:
		case <-t.C:
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	})
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimRight(string(t.b), "\n")
}
