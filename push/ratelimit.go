package push

import (
	"sync"
	"time"
)

// userLimiter is a token bucket per user: each user may get burst
// notifications at once and then one every interval.
type userLimiter struct {
	perSecond float64
	burst     float64
	// full is how long an untouched bucket takes to refill; a bucket that
	// full is the same as none and is dropped by the sweep.
	full time.Duration

	mu        sync.Mutex
	buckets   map[string]*bucket
	nextSweep time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newUserLimiter(perMinute, burst int) *userLimiter {
	perSecond := float64(perMinute) / 60
	return &userLimiter{
		perSecond: perSecond,
		burst:     float64(burst),
		full:      time.Duration(float64(burst) / perSecond * float64(time.Second)),
		buckets:   make(map[string]*bucket),
	}
}

// allow takes a token from user's bucket and reports whether there was one.
func (l *userLimiter) allow(user string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(now)
	b := l.buckets[user]
	if b == nil {
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[user] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.perSecond)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweepLocked drops buckets that have refilled, at most once per refill
// time, so the map holds only users pushed to lately. l.mu must be held.
func (l *userLimiter) sweepLocked(now time.Time) {
	if now.Before(l.nextSweep) {
		return
	}
	l.nextSweep = now.Add(l.full)
	for user, b := range l.buckets {
		if now.Sub(b.at) >= l.full {
			delete(l.buckets, user)
		}
	}
}
