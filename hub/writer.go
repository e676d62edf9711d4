package hub

import (
	"sync"
)

// writeQueue is a connection's outgoing frames, bounded in bytes. Producers
// (the broadcast path, command replies) never block on it: when a push would
// take the queue over its limit the push is refused and the connection is
// closed as slow, so one phone on a bad network never holds up a broadcast.
//
// No goroutine waits on an idle queue: the push that finds no writer
// running starts one (start), and the writer ends once it has emptied the
// queue. An idle connection thus costs its reader goroutine only, and a
// delivery to an idle connection costs one goroutine start instead of a
// wake-up through a channel and a select.
type writeQueue struct {
	mu     sync.Mutex
	frames [][]byte
	size   int
	max    int
	closed bool
	// writing is set while a writer goroutine owns the queue's output: from
	// the push (or close) that starts it until it finds the queue empty.
	writing bool
	// start runs a writer; nil until the connection is served (a queue
	// without one only collects frames, for tests).
	start func()
}

func newWriteQueue(max int) *writeQueue {
	return &writeQueue{max: max}
}

// setWriter installs the writer that pushes start, and starts it at once
// when frames or a close are already waiting.
func (q *writeQueue) setWriter(start func()) {
	q.mu.Lock()
	q.start = start
	var run func()
	if len(q.frames) > 0 || q.closed {
		run = q.claimLocked()
	}
	q.mu.Unlock()
	if run != nil {
		go run()
	}
}

// push queues b. It reports false when the queue is closed or b would take it
// over its byte limit; b must not be modified afterwards, as it may be shared
// with other connections.
func (q *writeQueue) push(b []byte) bool {
	q.mu.Lock()
	if q.closed || q.size+len(b) > q.max {
		q.mu.Unlock()
		return false
	}
	q.frames = append(q.frames, b)
	q.size += len(b)
	start := q.claimLocked()
	q.mu.Unlock()
	if start != nil {
		go start()
	}
	return true
}

// claimLocked marks a writer as running and returns the function to run it,
// or nil when one already runs (or none is installed).
func (q *writeQueue) claimLocked() func() {
	if q.writing || q.start == nil {
		return nil
	}
	q.writing = true
	return q.start
}

// next is the writer's side: it moves up to maxBytes of queued frames (at
// least one) into dst and reports whether the queue is closed. When nothing
// is queued and the queue is open it returns idle: the writer is released
// and its goroutine must end, as the next push starts another. A closed
// queue never releases its writer, so exactly one goroutine sees it closed.
func (q *writeQueue) next(dst [][]byte, maxBytes int) (out [][]byte, closed, idle bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.frames) == 0 && !q.closed {
		q.writing = false
		return dst, false, true
	}
	return q.takeLocked(dst, maxBytes), q.closed, false
}

// take moves up to maxBytes of queued frames (at least one) into dst and
// returns it. It returns dst unchanged when the queue is empty.
func (q *writeQueue) take(dst [][]byte, maxBytes int) [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.takeLocked(dst, maxBytes)
}

func (q *writeQueue) takeLocked(dst [][]byte, maxBytes int) [][]byte {
	n, size := 0, 0
	for n < len(q.frames) {
		l := len(q.frames[n])
		if n > 0 && size+l > maxBytes {
			break
		}
		size += l
		n++
	}
	dst = append(dst, q.frames[:n]...)
	// Shift the rest down and clear the tail so sent frames can be collected.
	rest := copy(q.frames, q.frames[n:])
	clear(q.frames[rest:])
	q.frames = q.frames[:rest]
	q.size -= size
	if len(q.frames) == 0 && cap(q.frames) > 256 {
		// Give back the memory a burst made the queue grow to; an idle
		// connection keeps a small slice only.
		q.frames = nil
	}
	return dst
}

// pending reports the bytes waiting.
func (q *writeQueue) pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.size
}

// close refuses further pushes; frames already queued may still be taken.
// It starts a writer when none runs, so the close frame goes out.
func (q *writeQueue) close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	start := q.claimLocked()
	q.mu.Unlock()
	if start != nil {
		go start()
	}
}
