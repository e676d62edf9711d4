package push

import (
	"math/rand/v2"
	"time"
)

// backoff returns the delay before retry number attempt+1: base doubled per
// attempt, capped, with half of it random ("equal jitter"), so retries of
// many jobs that failed together spread out instead of coming back at once.
func backoff(attempt int, base, limit time.Duration) time.Duration {
	d := base
	for i := 0; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	half := d / 2
	return half + rand.N(d-half+1)
}
