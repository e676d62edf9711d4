package notify

import (
	"context"
	"sync"
	"time"

	"github.com/livehub/livehub/push"
)

// This file holds the ack windows of the events this node published: a list
// in the order they end, closed by Run.

// Bounds of the work at a window's end.
const (
	// resolveConcurrency is the most windows closed at once.
	resolveConcurrency = 16
	// resolveBatch is the most windows taken off the list in one go.
	resolveBatch = 1024
	// resolveTimeout bounds closing one batch of windows, pushes included.
	resolveTimeout = 10 * time.Second
)

// window is one event waiting for its acknowledgement.
type window struct {
	end  time.Time
	note push.Notification
}

// schedule adds the window of note, to be closed by Run when it ends. A
// Notifier closed meanwhile closes it at once.
func (n *Notifier) schedule(ctx context.Context, note push.Notification) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		n.resolve(ctx, &window{note: note})
		return
	}
	n.windows = append(n.windows, &window{end: time.Now().Add(n.window), note: note})
	first := len(n.windows) == 1
	n.mu.Unlock()
	n.metrics.open.Inc()
	if first {
		select {
		case n.kick <- struct{}{}:
		default:
		}
	}
}

// take closes note's window, reporting whether the caller must push: the
// window was open, or the store could not tell.
func (n *Notifier) take(ctx context.Context, note *push.Notification) bool {
	open, err := n.pending.Take(ctx, note.UserID, note.ID)
	if err != nil {
		n.metrics.errors.WithLabelValues(opPending).Inc()
		n.log.Warn("notify: closing an ack window; pushing", "user", note.UserID, "event", note.ID, "err", err)
		return true
	}
	return open
}

// resolve closes w and pushes when no acknowledgement came.
func (n *Notifier) resolve(ctx context.Context, w *window) {
	if !n.take(ctx, &w.note) {
		n.metrics.windows.WithLabelValues(windowAcked).Inc()
		return
	}
	n.metrics.windows.WithLabelValues(windowUnacked).Inc()
	n.enqueue(ctx, w.note, pushUnacked)
}

// Run closes the ack windows as they end, until ctx is done or Close is
// called; then it closes the windows still open at once, pushing those not
// acknowledged, and returns. Every goroutine it started has ended when it
// returns. A Notifier runs once: Run returns at once when called again or
// after Close.
func (n *Notifier) Run(ctx context.Context) {
	n.mu.Lock()
	if n.closed || n.running {
		n.mu.Unlock()
		return
	}
	n.running = true
	n.mu.Unlock()
	defer close(n.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		due, wait := n.due(time.Now())
		if len(due) > 0 {
			n.resolveAll(due)
			continue
		}
		if wait > 0 {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			n.drain()
			return
		case <-n.stop:
			n.drain()
			return
		case <-n.kick:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// Close stops Run and waits for it to return, closing the windows still
// open on the way. Publish keeps working after Close, pushing at once the
// events it would have held. Close is idempotent.
func (n *Notifier) Close() error {
	n.mu.Lock()
	n.closed = true
	running := n.running
	n.mu.Unlock()
	n.stopOnce.Do(func() { close(n.stop) })
	if running {
		<-n.done
	} else {
		n.drain()
	}
	return nil
}

// due takes the windows that ended by now off the list, and returns how
// long until the next one ends (zero when there is none).
func (n *Notifier) due(now time.Time) ([]*window, time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	i := 0
	for i < len(n.windows) && i < resolveBatch && !n.windows[i].end.After(now) {
		i++
	}
	due := make([]*window, i)
	copy(due, n.windows)
	// The list's array outlives the windows taken: drop them from it.
	clear(n.windows[:i])
	n.windows = n.windows[i:]
	if len(n.windows) == 0 {
		n.windows = nil
		return due, 0
	}
	return due, n.windows[0].end.Sub(now)
}

// drain marks the Notifier closed and closes every window left at once.
func (n *Notifier) drain() {
	n.mu.Lock()
	n.closed = true
	left := n.windows
	n.windows = nil
	n.mu.Unlock()
	for len(left) > 0 {
		k := min(len(left), resolveBatch)
		n.resolveAll(left[:k])
		left = left[k:]
	}
}

// resolveAll closes ws, resolveConcurrency at a time, and waits. It runs
// on a context of its own: windows taken off the list must be seen through
// even when the Notifier is stopping.
func (n *Notifier) resolveAll(ws []*window) {
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	next := make(chan *window)
	var wg sync.WaitGroup
	for range min(resolveConcurrency, len(ws)) {
		wg.Go(func() {
			for w := range next {
				n.resolve(ctx, w)
			}
		})
	}
	for _, w := range ws {
		next <- w
	}
	close(next)
	wg.Wait()
	n.metrics.open.Sub(float64(len(ws)))
}
