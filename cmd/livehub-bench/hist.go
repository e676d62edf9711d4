package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// A histogram counts durations in microseconds in log-linear buckets, as HDR
// histograms do: values below 2^subBits are exact, larger ones fall in
// buckets 2^-subBits wide relative to their value (under 1% error). The
// buckets are fixed, so recording never allocates and any number of
// goroutines may record at once.
type histogram struct {
	buckets [numBuckets]atomic.Int64
	count   atomic.Int64
	sum     atomic.Int64
	min     atomic.Int64
	max     atomic.Int64
}

const (
	subBits  = 7
	subCount = 1 << subBits
	// maxMicros caps a recorded value at about twelve days.
	maxMicros  = int64(1) << 40
	numBuckets = (40-subBits)*subCount + 2*subCount
)

func newHistogram() *histogram {
	h := &histogram{}
	h.min.Store(math.MaxInt64)
	return h
}

// bucketOf returns the bucket of v: shift*subCount + v>>shift, where shift
// leaves v>>shift with subBits+1 significant bits.
func bucketOf(v int64) int {
	if v < 0 {
		v = 0
	}
	if v >= maxMicros {
		v = maxMicros - 1
	}
	shift := bits.Len64(uint64(v)) - subBits - 1
	if shift < 0 {
		shift = 0
	}
	return shift*subCount + int(v>>shift)
}

// bucketHigh is the largest value that falls in bucket i.
func bucketHigh(i int) int64 {
	shift := i/subCount - 1
	if shift < 0 {
		shift = 0
	}
	m := int64(i - shift*subCount)
	return (m+1)<<shift - 1
}

// Record adds one duration.
func (h *histogram) Record(d time.Duration) {
	v := d.Microseconds()
	if v < 0 {
		v = 0
	}
	h.buckets[bucketOf(v)].Add(1)
	h.count.Add(1)
	h.sum.Add(v)
	for {
		cur := h.min.Load()
		if v >= cur || h.min.CompareAndSwap(cur, v) {
			break
		}
	}
	for {
		cur := h.max.Load()
		if v <= cur || h.max.CompareAndSwap(cur, v) {
			break
		}
	}
}

// recordMicros adds values in microseconds at once: the shared count, sum,
// minimum and maximum are touched once, and each bucket once per run of
// values falling in it.
func (h *histogram) recordMicros(vals []int64) {
	if len(vals) == 0 {
		return
	}
	var sum int64
	lo, hi := int64(math.MaxInt64), int64(0)
	prev, run := -1, int64(0)
	for _, v := range vals {
		v = max(v, 0)
		if b := bucketOf(v); b != prev {
			if run > 0 {
				h.buckets[prev].Add(run)
			}
			prev, run = b, 0
		}
		run++
		sum += v
		lo, hi = min(lo, v), max(hi, v)
	}
	h.buckets[prev].Add(run)
	h.count.Add(int64(len(vals)))
	h.sum.Add(sum)
	for {
		cur := h.min.Load()
		if lo >= cur || h.min.CompareAndSwap(cur, lo) {
			break
		}
	}
	for {
		cur := h.max.Load()
		if hi <= cur || h.max.CompareAndSwap(cur, hi) {
			break
		}
	}
}

// sampleBatch holds the latest durations of one recorder, such as a
// viewer's read goroutine, and adds them to a shared histogram a batch at a
// time: thousands of goroutines recording a delivery each then touch only
// their own memory, and the shared counters once per batch. A batch
// belongs to one goroutine at a time.
type sampleBatch struct {
	n int
	v [32]int64
}

// add records d, flushing the batch into h when it is full.
func (b *sampleBatch) add(h *histogram, d time.Duration) {
	b.v[b.n] = d.Microseconds()
	b.n++
	if b.n == len(b.v) {
		b.flush(h)
	}
}

// flush adds what the batch holds to h.
func (b *sampleBatch) flush(h *histogram) {
	h.recordMicros(b.v[:b.n])
	b.n = 0
}

// histSnapshot is a histogram at rest: what workers send to the parent and
// what reports are computed from. Buckets lists [index, count] of the
// non-empty buckets.
type histSnapshot struct {
	Buckets [][2]int64 `json:"buckets,omitempty"`
	Count   int64      `json:"count"`
	Sum     int64      `json:"sum_us"`
	Min     int64      `json:"min_us"`
	Max     int64      `json:"max_us"`
}

// Snapshot copies the counts. It is exact once recording has stopped.
func (h *histogram) Snapshot() histSnapshot {
	s := histSnapshot{Count: h.count.Load(), Sum: h.sum.Load(), Max: h.max.Load()}
	if s.Count > 0 {
		s.Min = h.min.Load()
	}
	for i := range h.buckets {
		if n := h.buckets[i].Load(); n > 0 {
			s.Buckets = append(s.Buckets, [2]int64{int64(i), n})
		}
	}
	return s
}

// merge returns the histogram of both snapshots' values.
func (s histSnapshot) merge(o histSnapshot) histSnapshot {
	if o.Count == 0 {
		return s
	}
	if s.Count == 0 {
		return o
	}
	counts := make(map[int64]int64, len(s.Buckets)+len(o.Buckets))
	for _, b := range s.Buckets {
		counts[b[0]] += b[1]
	}
	for _, b := range o.Buckets {
		counts[b[0]] += b[1]
	}
	out := histSnapshot{Count: s.Count + o.Count, Sum: s.Sum + o.Sum, Min: min(s.Min, o.Min), Max: max(s.Max, o.Max)}
	for i := int64(0); i < numBuckets; i++ {
		if n := counts[i]; n > 0 {
			out.Buckets = append(out.Buckets, [2]int64{i, n})
		}
	}
	return out
}

// Quantile returns the value at or below which a fraction q of the values
// lie, as the upper edge of its bucket (never above the largest value).
func (s histSnapshot) Quantile(q float64) time.Duration {
	if s.Count == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(s.Count)))
	rank = min(max(rank, 1), s.Count)
	var seen int64
	for _, b := range s.Buckets {
		seen += b[1]
		if seen >= rank {
			return time.Duration(min(bucketHigh(int(b[0])), s.Max)) * time.Microsecond
		}
	}
	return time.Duration(s.Max) * time.Microsecond
}

// latencySummary is a distribution as reports show it, in milliseconds.
type latencySummary struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

func (s histSnapshot) summary() latencySummary {
	if s.Count == 0 {
		return latencySummary{}
	}
	return latencySummary{
		Count: s.Count,
		Mean:  ms(time.Duration(s.Sum/s.Count) * time.Microsecond),
		P50:   ms(s.Quantile(0.50)),
		P95:   ms(s.Quantile(0.95)),
		P99:   ms(s.Quantile(0.99)),
		Max:   ms(time.Duration(s.Max) * time.Microsecond),
	}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
