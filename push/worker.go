package push

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of WorkerOptions.
const (
	defaultMaxAttempts = 5
	defaultBackoffBase = time.Second
	defaultBackoffCap  = 5 * time.Minute
	defaultPerUserRate = 10
	defaultBatchSize   = 64
	defaultBlock       = time.Second
	defaultSendTimeout = 30 * time.Second
	readErrorPause     = time.Second
)

// WorkerOptions configure a Worker.
type WorkerOptions struct {
	// Queue is where the jobs come from. Required.
	Queue Queue
	// Devices lists each user's devices and forgets dead tokens. Required.
	Devices DeviceStore
	// Senders deliver, one per platform; nil entries are ignored. Devices
	// on a platform without a sender are skipped.
	Senders []Sender
	// Dedupe keeps an event from reaching a device twice. With several
	// workers it must be shared (RedisDedupe). Zero means a MemoryDedupe
	// with its defaults.
	Dedupe Dedupe
	// Consumer names this worker in the queue. Zero means the host name,
	// the process id and a random suffix.
	Consumer string
	// MaxAttempts bounds the sends of one notification to one device.
	// Zero means 5.
	MaxAttempts int
	// BackoffBase is the delay before the first retry, doubled for each
	// later one up to BackoffCap; half of each delay is random. A
	// Retry-After from the service is honoured when longer. Zero means 1s.
	BackoffBase time.Duration
	// BackoffCap bounds the backoff. Zero means five minutes.
	BackoffCap time.Duration
	// PerUserRate is the notifications a user may get per minute, over a
	// burst of PerUserBurst; more are dropped and counted. Only new jobs
	// spend from the budget, not retries. The buckets are this worker's:
	// with N workers a user may get up to N times the rate. Zero means 10;
	// negative means no limit.
	PerUserRate int
	// PerUserBurst is the bucket size of PerUserRate. Zero means
	// PerUserRate.
	PerUserBurst int
	// BatchSize is the most jobs read and sent together. Zero means 64.
	BatchSize int
	// Block is how long a read waits for a job when the queue is empty;
	// Run returns at most this long after its context is done. Zero means
	// one second.
	Block time.Duration
	// SendTimeout bounds the handling of one batch once read, sends
	// included. A batch under way when Run's context ends is finished
	// within this time. Zero means 30s.
	SendTimeout time.Duration
	// Registerer receives the worker's metrics. Zero means none are
	// registered.
	Registerer prometheus.Registerer
	// Logger receives errors of the stores and the senders' platforms being
	// off. Zero means slog.Default().
	Logger *slog.Logger
}

// Worker moves jobs from the Queue to the push services.
type Worker struct {
	queue       Queue
	devices     DeviceStore
	senders     map[string]Sender
	dedupe      Dedupe
	consumer    string
	maxAttempts int
	base, cap   time.Duration
	limiter     *userLimiter
	batchSize   int
	block       time.Duration
	sendTimeout time.Duration
	metrics     *metrics
	log         *slog.Logger
}

// NewWorker returns a Worker. It contacts nothing until Run.
func NewWorker(o WorkerOptions) (*Worker, error) {
	if o.Queue == nil || o.Devices == nil {
		return nil, errors.New("push: WorkerOptions.Queue and Devices are required")
	}
	w := &Worker{
		queue:       o.Queue,
		devices:     o.Devices,
		senders:     make(map[string]Sender),
		dedupe:      o.Dedupe,
		consumer:    o.Consumer,
		maxAttempts: orDefault(o.MaxAttempts, defaultMaxAttempts),
		base:        orDefault(o.BackoffBase, defaultBackoffBase),
		cap:         orDefault(o.BackoffCap, defaultBackoffCap),
		batchSize:   orDefault(o.BatchSize, defaultBatchSize),
		block:       orDefault(o.Block, defaultBlock),
		sendTimeout: orDefault(o.SendTimeout, defaultSendTimeout),
		metrics:     newMetrics(o.Registerer),
		log:         o.Logger,
	}
	for _, s := range o.Senders {
		if s == nil {
			continue
		}
		if _, dup := w.senders[s.Platform()]; dup {
			return nil, fmt.Errorf("push: two senders for platform %q", s.Platform())
		}
		w.senders[s.Platform()] = s
	}
	if w.dedupe == nil {
		w.dedupe = NewMemoryDedupe(DedupeOptions{})
	}
	if w.consumer == "" {
		w.consumer = defaultConsumer()
	}
	w.cap = max(w.cap, w.base)
	if o.PerUserRate >= 0 {
		rate := orDefault(o.PerUserRate, defaultPerUserRate)
		w.limiter = newUserLimiter(rate, orDefault(o.PerUserBurst, rate))
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	return w, nil
}

// orDefault returns v, or def when v is zero or less.
func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

func defaultConsumer() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// credentialsName names what a platform's sender needs, for the log line
// saying it is off.
var credentialsName = map[string]string{PlatformIOS: "APNs", PlatformAndroid: "FCM"}

// Run reads and sends jobs until ctx is done, then finishes the batch under
// way and returns. Every goroutine it started has ended when it returns.
// Run must not be called again before it returned.
func (w *Worker) Run(ctx context.Context) {
	for _, p := range []string{PlatformIOS, PlatformAndroid} {
		if w.senders[p] == nil {
			w.log.Info(fmt.Sprintf("push for %s is off: no %s credentials", p, credentialsName[p]))
		}
	}
	for ctx.Err() == nil {
		ds, err := w.queue.Read(ctx, w.consumer, w.batchSize, w.block)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.log.Warn("push: reading the queue", "err", err)
			pause(ctx, readErrorPause)
			continue
		}
		if len(ds) > 0 {
			w.process(ctx, ds)
		}
	}
}

// pause waits for d or until ctx is done.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// jobRun is the handling of one delivery within a batch.
type jobRun struct {
	d Delivery
	// ack is false when the job must come back: a store failed before
	// anything was decided.
	ack bool
	// sent and release are the tokens whose dedupe claims to confirm and
	// to drop.
	sent, release []string
	// retry are the devices to try again, after retryAfter at least.
	retry      []Device
	retryAfter time.Duration
	// busy are the devices another send holds a claim on; they are tried
	// again without counting an attempt, since that send may fail.
	busy []Device
}

// sendItem is one device of one job, on its way to a sender.
type sendItem struct {
	run    *jobRun
	device Device
}

// process handles one batch. Once read, a batch is seen through even if ctx
// ends meanwhile: its sends, dedupe marks, retries and acks run on a context
// of their own bounded by SendTimeout, so a stopping worker does not leave
// notifications sent but unrecorded.
func (w *Worker) process(ctx context.Context, ds []Delivery) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.sendTimeout)
	defer cancel()
	now := time.Now()

	oldest := now
	for i := range ds {
		oldest = minTime(oldest, ds[i].Job.readyAt())
	}
	w.metrics.lag.Set(now.Sub(oldest).Seconds())

	runs := make([]*jobRun, len(ds))
	batches := make(map[string][]sendItem)
	for i, d := range ds {
		r := &jobRun{d: d, ack: true}
		runs[i] = r
		for _, dev := range w.expand(sctx, r, now) {
			batches[dev.Platform] = append(batches[dev.Platform], sendItem{run: r, device: dev})
		}
	}
	w.send(sctx, batches)
	// Retry-After and backoff count from the answers, not from the send.
	answered := time.Now()
	for _, r := range runs {
		w.finish(sctx, r, answered)
	}
	var ids []string
	for _, r := range runs {
		if r.ack {
			ids = append(ids, r.d.ID)
		}
	}
	if err := w.queue.Ack(sctx, ids...); err != nil {
		w.log.Warn("push: acknowledging jobs", "jobs", len(ids), "err", err)
	}
}

// expand returns the devices r's job is to be sent to now: the user's
// devices (those the job names, if it names any) on a platform with a
// sender, not yet sent to, within the user's rate.
func (w *Worker) expand(ctx context.Context, r *jobRun, now time.Time) []Device {
	job := &r.d.Job
	n := &job.Notification
	if n.Expired(now) {
		w.metrics.dropped.WithLabelValues(reasonExpired).Inc()
		return nil
	}
	if job.Attempt == 0 && w.limiter != nil && !w.limiter.allow(n.UserID, now) {
		w.metrics.dropped.WithLabelValues(reasonRateLimited).Inc()
		return nil
	}
	all, err := w.devices.List(ctx, n.UserID)
	if err != nil {
		w.log.Warn("push: listing devices", "user", n.UserID, "err", err)
		r.ack = false
		return nil
	}
	var devs []Device
	for _, d := range all {
		if len(job.Tokens) > 0 && !slices.Contains(job.Tokens, d.Token) {
			continue
		}
		if w.senders[d.Platform] == nil {
			w.metrics.dropped.WithLabelValues(reasonPlatformOff).Inc()
			continue
		}
		devs = append(devs, d)
	}
	if len(devs) == 0 {
		if len(all) == 0 {
			w.metrics.dropped.WithLabelValues(reasonNoDevices).Inc()
		}
		return nil
	}
	if n.ID == "" {
		return devs
	}
	tokens := make([]string, len(devs))
	for i, d := range devs {
		tokens[i] = d.Token
	}
	states, err := w.dedupe.Claim(ctx, n.ID, tokens)
	if err != nil {
		w.log.Warn("push: claiming sends", "event", n.ID, "err", err)
		r.ack = false
		return nil
	}
	claimed := devs[:0]
	for i, d := range devs {
		switch states[i] {
		case Claimed:
			claimed = append(claimed, d)
		case InFlight:
			r.busy = append(r.busy, d)
		default:
			w.metrics.dropped.WithLabelValues(reasonDuplicate).Inc()
		}
	}
	return claimed
}

// send hands each platform's items to its sender, the platforms side by
// side, and records each outcome on its run.
func (w *Worker) send(ctx context.Context, batches map[string][]sendItem) {
	var wg sync.WaitGroup
	results := make(map[string][]Result, len(batches))
	var mu sync.Mutex
	for platform, items := range batches {
		sender := w.senders[platform]
		targets := make([]Target, len(items))
		for i, it := range items {
			targets[i] = Target{Device: it.device, Notification: it.run.d.Job.Notification}
		}
		wg.Go(func() {
			start := time.Now()
			res := sender.Send(ctx, targets)
			w.metrics.duration.WithLabelValues(platform).Observe(time.Since(start).Seconds())
			mu.Lock()
			results[platform] = res
			mu.Unlock()
		})
	}
	wg.Wait()
	for platform, items := range batches {
		res := results[platform]
		for i, it := range items {
			r := Result{Outcome: Retry, Reason: "no_result"}
			if i < len(res) {
				r = res[i]
			}
			w.record(ctx, it, r)
		}
	}
}

// record applies one send's result.
func (w *Worker) record(ctx context.Context, it sendItem, res Result) {
	r, d := it.run, it.device
	switch res.Outcome {
	case Sent:
		w.metrics.sent.WithLabelValues(d.Platform).Inc()
		r.sent = append(r.sent, d.Token)
	case DeadToken:
		w.metrics.failed.WithLabelValues(d.Platform, reasonLabel(res.Reason)).Inc()
		if err := w.devices.Remove(ctx, d.Token); err != nil {
			w.log.Warn("push: removing a dead token", "user", d.UserID, "platform", d.Platform, "err", err)
		} else {
			w.metrics.pruned.WithLabelValues(d.Platform).Inc()
		}
		r.release = append(r.release, d.Token)
	case Failed:
		w.metrics.failed.WithLabelValues(d.Platform, reasonLabel(res.Reason)).Inc()
		r.release = append(r.release, d.Token)
	default:
		r.release = append(r.release, d.Token)
		r.retry = append(r.retry, d)
		r.retryAfter = max(r.retryAfter, res.RetryAfter)
	}
}

// finish records r's dedupe marks and enqueues its retries.
func (w *Worker) finish(ctx context.Context, r *jobRun, now time.Time) {
	job := r.d.Job
	if id := job.Notification.ID; id != "" {
		if len(r.sent) > 0 {
			if err := w.dedupe.Confirm(ctx, id, r.sent); err != nil {
				w.log.Warn("push: confirming sends", "event", id, "err", err)
			}
		}
		if len(r.release) > 0 {
			if err := w.dedupe.Release(ctx, id, r.release); err != nil {
				w.log.Warn("push: releasing claims", "event", id, "err", err)
			}
		}
	}
	if len(r.retry) > 0 {
		if job.Attempt+1 >= w.maxAttempts {
			for _, d := range r.retry {
				w.metrics.failed.WithLabelValues(d.Platform, reasonMaxAttempts).Inc()
			}
		} else {
			delay := max(backoff(job.Attempt, w.base, w.cap), r.retryAfter)
			w.again(ctx, r, job.Attempt+1, r.retry, now.Add(delay), true)
		}
	}
	if len(r.busy) > 0 {
		w.again(ctx, r, job.Attempt, r.busy, now.Add(backoff(job.Attempt, w.base, w.cap)), false)
	}
}

// again enqueues r's notification for devs at notBefore, unless it will
// have expired by then.
func (w *Worker) again(ctx context.Context, r *jobRun, attempt int, devs []Device, notBefore time.Time, count bool) {
	n := r.d.Job.Notification
	if n.Expired(notBefore) {
		for _, d := range devs {
			w.metrics.failed.WithLabelValues(d.Platform, reasonExpired).Inc()
		}
		return
	}
	tokens := make([]string, len(devs))
	for i, d := range devs {
		tokens[i] = d.Token
	}
	err := w.queue.Enqueue(ctx, Job{Notification: n, Attempt: attempt, Tokens: tokens, NotBefore: notBefore})
	if err != nil {
		// The job stays pending and comes back whole after the queue's
		// claim idle time; the dedupe marks keep what went from going
		// twice.
		w.log.Warn("push: enqueueing a retry", "event", n.ID, "err", err)
		r.ack = false
		return
	}
	if count {
		for _, d := range devs {
			w.metrics.retried.WithLabelValues(d.Platform).Inc()
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
