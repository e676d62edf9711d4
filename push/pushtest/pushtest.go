// Package pushtest holds what the push packages' tests share: the suites
// every DeviceStore, Queue and Dedupe implementation passes, and local fakes
// of APNs and FCM that speak the real protocols, so the real client
// libraries can be tested against them.
//
// The fakes check each request as the services do and answer as they do.
// A request the real service would refuse for being malformed is answered
// with the service's error and also fails the test, unless the fake was
// told to allow it; answers for a token can be scripted in advance.
package pushtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
)

// IOSToken returns the n-th APNs device token of a test: 64 hex digits.
func IOSToken(n int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "ios-%d", n))
	return hex.EncodeToString(sum[:])
}

// AndroidToken returns the n-th FCM registration token of a test.
func AndroidToken(n int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "android-%d", n))
	return "fcm:" + hex.EncodeToString(sum[:20]) + ":APA91b" + hex.EncodeToString(sum[20:])
}

// script holds the answers queued per token; each is used once.
// journal records a fake's requests and calls a hook with each.
type journal[R interface{ token() string }] struct {
	mu        sync.Mutex
	requests  []R
	onRequest func(R)
}

// OnRequest sets a function called with each request after it was
// recorded and before it is answered.
func (j *journal[R]) OnRequest(f func(R)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.onRequest = f
}

// Requests returns the requests received so far, in order.
func (j *journal[R]) Requests() []R {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.requests)
}

// RequestsFor returns the requests received so far for token.
func (j *journal[R]) RequestsFor(token string) []R {
	var out []R
	for _, r := range j.Requests() {
		if r.token() == token {
			out = append(out, r)
		}
	}
	return out
}

// record keeps req and calls the hook, outside the lock.
func (j *journal[R]) record(req R) {
	j.mu.Lock()
	j.requests = append(j.requests, req)
	hook := j.onRequest
	j.mu.Unlock()
	if hook != nil {
		hook(req)
	}
}

type script[R any] struct {
	mu      sync.Mutex
	replies map[string][]R
}

func (s *script[R]) add(token string, rs []R) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.replies == nil {
		s.replies = make(map[string][]R)
	}
	s.replies[token] = append(s.replies[token], rs...)
}

// next returns the next answer queued for token, or ok false.
func (s *script[R]) next(token string) (r R, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.replies[token]
	if len(q) == 0 {
		return r, false
	}
	s.replies[token] = q[1:]
	return q[0], true
}
