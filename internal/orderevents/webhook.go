package orderevents

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Options.
const (
	defaultGroup         = "webhook"
	defaultMaxAttempts   = 8
	defaultBackoff       = time.Second
	defaultTimeout       = 10 * time.Second
	defaultConcurrency   = 4
	defaultReadBlock     = 2 * time.Second
	defaultTouchInterval = 20 * time.Second
	// maxBackoff caps the wait between two attempts, Retry-After included.
	maxBackoff = 5 * time.Minute
	// maxResponseDrain is what is read of a response body so the connection
	// can be reused; the rest is dropped with the connection.
	maxResponseDrain = 64 << 10
	// ackTimeout bounds an acknowledgment made after the worker was told to
	// stop, for an event the receiver already has.
	ackTimeout = 5 * time.Second
)

// Options configure a Webhook.
type Options struct {
	// URL receives the events, http or https. Required.
	URL string
	// Secret keys the HMAC in X-LiveHub-Signature. Required.
	Secret string
	// Log holds the events to deliver. Required.
	Log Log
	// Group is the log's consumer group; workers on every node share it.
	// Zero means "webhook".
	Group string
	// Consumer names this worker within Group. Zero means the host name.
	Consumer string
	// MaxAttempts bounds the requests made for one event; after the last
	// one fails the event is dropped (acknowledged, counted, logged). Zero
	// means 8.
	MaxAttempts int
	// Backoff is the wait after the first failed attempt; it doubles with
	// each further one up to 5 minutes, and each wait is drawn between half
	// and all of it. A Retry-After header replaces it (also capped at 5
	// minutes). Zero means one second.
	Backoff time.Duration
	// Timeout bounds one request, response headers included. Zero means 10s.
	Timeout time.Duration
	// HTTPClient makes the requests. Zero means a client that does not
	// follow redirects: a 3xx is a refusal, since following it would turn
	// the POST into a GET.
	HTTPClient *http.Client
	// Concurrency bounds the events being delivered at once; each is
	// retried on its own, so one failing event does not hold up others.
	// Zero means 4.
	Concurrency int
	// ReadBlock is how long one read of the log waits for new events. A
	// Redis read is not interrupted when Run's context ends, so it also
	// bounds how long Run takes to return. Zero means 2s.
	ReadBlock time.Duration
	// TouchInterval is how often the events being delivered are touched in
	// the log, so that a long retry is not taken over by another consumer.
	// It must be well under the log's claim idle time. Zero means 20s.
	TouchInterval time.Duration
	// Logger receives refusals, drops and log errors; a delivery that
	// succeeds logs nothing. Zero means slog.Default().
	Logger *slog.Logger
	// Registerer receives the worker's metrics. Zero registers nothing.
	Registerer prometheus.Registerer
}

// Webhook delivers the events of a Log to the merchant's URL, signed, at
// least once. Run it on every node: the log's consumer group shares the
// events among the workers.
type Webhook struct {
	o       Options
	client  *http.Client
	log     *slog.Logger
	metrics *webhookMetrics
	running atomic.Bool

	mu sync.Mutex
	// inflight are the log ids of the deliveries being worked on, so a
	// delivery the log hands out again is not delivered twice at once.
	inflight map[string]struct{}
}

// NewWebhook returns a Webhook worker; Run starts it.
func NewWebhook(o Options) (*Webhook, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("orderevents: webhook URL %q is not an http(s) URL", o.URL)
	}
	if o.Secret == "" {
		return nil, errors.New("orderevents: webhook needs a secret")
	}
	if o.Log == nil {
		return nil, errors.New("orderevents: webhook needs a log")
	}
	if o.Group == "" {
		o.Group = defaultGroup
	}
	if o.Consumer == "" {
		if o.Consumer, err = os.Hostname(); err != nil || o.Consumer == "" {
			return nil, fmt.Errorf("orderevents: no consumer name and no host name: %v", err)
		}
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = defaultMaxAttempts
	}
	if o.Backoff <= 0 {
		o.Backoff = defaultBackoff
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	if o.Concurrency <= 0 {
		o.Concurrency = defaultConcurrency
	}
	if o.ReadBlock <= 0 {
		o.ReadBlock = defaultReadBlock
	}
	if o.TouchInterval <= 0 {
		o.TouchInterval = defaultTouchInterval
	}
	w := &Webhook{
		o:        o,
		client:   o.HTTPClient,
		log:      o.Logger,
		metrics:  newWebhookMetrics(o.Registerer),
		inflight: make(map[string]struct{}),
	}
	if w.client == nil {
		w.client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	w.log = w.log.With("url", redactURL(u))
	return w, nil
}

// Run delivers events until ctx is done, then waits for every goroutine it
// started. Deliveries cut short stay pending in the log and go out again
// once they have been idle for the log's claim time. Run returns nil when ctx
// ends, and an error only if the worker is already running.
func (w *Webhook) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("orderevents: webhook worker already running")
	}
	defer w.running.Store(false)

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.touchLoop(ctx)
	}()

	// slots holds a token per delivery in progress.
	slots := make(chan struct{}, w.o.Concurrency)
	readFailures := 0
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		free := 1
		for free < w.o.Concurrency && tryAcquire(slots) {
			free++
		}
		ds, err := w.o.Log.Read(ctx, w.o.Group, w.o.Consumer, free, w.o.ReadBlock)
		if err != nil {
			release(slots, free)
			if ctx.Err() != nil {
				return nil
			}
			readFailures++
			if readFailures == 1 {
				w.log.Warn("orderevents: webhook cannot read the log; retrying", "err", err)
			}
			if !sleep(ctx, backoff(time.Second, 30*time.Second, readFailures)) {
				return nil
			}
			continue
		}
		if readFailures > 0 {
			w.log.Info("orderevents: webhook reads the log again", "failures", readFailures)
			readFailures = 0
		}
		started := 0
		for _, d := range ds {
			if started == free || !w.claim(d.ID) {
				continue
			}
			started++
			wg.Add(1)
			go func(d Delivery) {
				defer wg.Done()
				defer func() { <-slots }()
				defer w.unclaim(d.ID)
				w.deliver(ctx, d)
			}(d)
		}
		release(slots, free-started)
	}
}

func tryAcquire(slots chan struct{}) bool {
	select {
	case slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func release(slots chan struct{}, n int) {
	for range n {
		<-slots
	}
}

func (w *Webhook) claim(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, busy := w.inflight[id]; busy {
		return false
	}
	w.inflight[id] = struct{}{}
	return true
}

func (w *Webhook) unclaim(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.inflight, id)
}

// touchLoop keeps the deliveries in progress from looking abandoned.
func (w *Webhook) touchLoop(ctx context.Context) {
	t := time.NewTicker(w.o.TouchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		ids := make([]string, 0, len(w.inflight))
		for id := range w.inflight {
			ids = append(ids, id)
		}
		w.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		tctx, cancel := context.WithTimeout(ctx, w.o.TouchInterval)
		err := w.o.Log.Touch(tctx, w.o.Group, w.o.Consumer, ids...)
		cancel()
		if err != nil && ctx.Err() == nil {
			w.log.Warn("orderevents: webhook cannot touch its deliveries", "count", len(ids), "err", err)
		}
	}
}

// attemptResult is how one request went.
type attemptResult int

const (
	attemptDelivered attemptResult = iota
	attemptRejected
	attemptFailed
)

// deliver makes up to MaxAttempts requests for d and acknowledges it unless
// ctx ended first.
func (w *Webhook) deliver(ctx context.Context, d Delivery) {
	body, err := json.Marshal(d.Event)
	if err != nil {
		w.log.Error("orderevents: event cannot be encoded; dropping it", "event", d.Event.ID, "err", err)
		w.finish(ctx, d, resultDropped)
		return
	}
	for attempt := 1; ; attempt++ {
		res, status, retryAfter, err := w.attempt(ctx, d.Event, body)
		switch {
		case res == attemptDelivered:
			w.finish(ctx, d, resultDelivered)
			return
		case res == attemptRejected:
			w.log.Warn("orderevents: webhook receiver refused an event; not retrying",
				"event", d.Event.ID, "type", d.Event.Type, "order", d.Event.OrderID, "status", status)
			w.finish(ctx, d, resultRejected)
			return
		case ctx.Err() != nil:
			return // stopping: the event stays pending for the next worker
		case attempt >= w.o.MaxAttempts:
			w.log.Error("orderevents: webhook event dropped after its last attempt",
				"event", d.Event.ID, "type", d.Event.Type, "order", d.Event.OrderID,
				"attempts", attempt, "status", status, "err", err)
			w.finish(ctx, d, resultDropped)
			return
		}
		w.metrics.deliveries.WithLabelValues(resultRetry).Inc()
		wait := retryAfter
		if wait < 0 {
			wait = backoff(w.o.Backoff, maxBackoff, attempt)
		}
		w.log.Debug("orderevents: webhook attempt failed; retrying",
			"event", d.Event.ID, "attempt", attempt, "status", status, "wait", wait, "err", err)
		if !sleep(ctx, wait) {
			return
		}
	}
}

// finish acknowledges d and counts result. The event is done with even if
// ctx ended meanwhile, so the acknowledgment gets a short context of its own.
func (w *Webhook) finish(ctx context.Context, d Delivery, result string) {
	w.metrics.deliveries.WithLabelValues(result).Inc()
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ackTimeout)
	defer cancel()
	if err := w.o.Log.Ack(actx, w.o.Group, d.ID); err != nil {
		// The event will come back after the claim idle time and be
		// delivered again, which receivers tolerate.
		w.log.Warn("orderevents: webhook cannot acknowledge an event", "event", d.Event.ID, "err", err)
	}
}

// attempt POSTs body once. retryAfter is the receiver's Retry-After, or
// negative when it sent none.
func (w *Webhook) attempt(ctx context.Context, e Event, body []byte) (res attemptResult, status int, retryAfter time.Duration, err error) {
	retryAfter = -1
	actx, cancel := context.WithTimeout(ctx, w.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, w.o.URL, bytes.NewReader(body))
	if err != nil {
		return attemptFailed, 0, retryAfter, err
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "LiveHub-Webhook/1")
	req.Header.Set(HeaderEvent, e.Type)
	req.Header.Set(HeaderDelivery, e.ID)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(w.o.Secret, ts, body))

	start := time.Now()
	resp, err := w.client.Do(req)
	w.metrics.seconds.Observe(time.Since(start).Seconds())
	if err != nil {
		return attemptFailed, 0, retryAfter, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseDrain))
	resp.Body.Close()
	status = resp.StatusCode
	switch {
	case status >= 200 && status <= 299:
		return attemptDelivered, status, retryAfter, nil
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500:
		return attemptFailed, status, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), fmt.Errorf("HTTP %d", status)
	}
	return attemptRejected, status, retryAfter, fmt.Errorf("HTTP %d", status)
}

// parseRetryAfter reads a Retry-After value, delay-seconds or an HTTP date,
// capped at maxBackoff; it returns a negative duration when there is none.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return -1
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return -1
		}
		if secs > int64(maxBackoff/time.Second) {
			return maxBackoff
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = max(t.Sub(now), 0)
	} else {
		return -1
	}
	return min(d, maxBackoff)
}

// backoff returns the wait before attempt+1: base doubled attempt-1 times,
// capped, and drawn between half and all of it so that workers which failed
// together do not retry together.
func backoff(base, ceiling time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	half := d / 2
	return half + rand.N(d-half+1)
}

// sleep waits d or until ctx is done, reporting whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// redactURL keeps the user's password and the query (which may hold a
// token) out of the logs.
func redactURL(u *url.URL) string {
	r := *u
	if r.User != nil {
		r.User = url.User(r.User.Username())
	}
	if r.RawQuery != "" {
		r.RawQuery = "redacted"
	}
	return r.String()
}
