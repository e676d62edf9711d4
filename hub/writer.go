package hub

import (
	"sync"
)

// writeQueue is a connection's outgoing frames, bounded in bytes. Producers
// (the broadcast path, command replies) never block on it: when a push would
// take the queue over its limit the push is refused and the connection is
// closed as slow, so one phone on a bad network never holds up a broadcast.
type writeQueue struct {
	mu     sync.Mutex
	frames [][]byte
	size   int
	max    int
	closed bool
	// ready has room for one signal: the writer drains everything queued on
	// each wake-up, so one pending signal covers any number of frames.
	ready chan struct{}
}

func newWriteQueue(max int) *writeQueue {
	return &writeQueue{max: max, ready: make(chan struct{}, 1)}
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
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// take moves up to maxBytes of queued frames (at least one) into dst and
// returns it. It returns dst unchanged when the queue is empty.
func (q *writeQueue) take(dst [][]byte, maxBytes int) [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
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
	if len(q.frames) == 0 && cap(q.frames) > 1024 {
		// Give back the memory a burst made the queue grow to.
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
func (q *writeQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}
