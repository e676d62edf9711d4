package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// publisher sends bench publications through the server API, as a backend
// does: POST {api}/api/publish with the X-API-Key header.
type publisher struct {
	url      string
	key      string
	client   *http.Client
	payload  int
	inFlight int

	errors  atomic.Int64
	mu      sync.Mutex
	samples []string
}

func newPublisher(cfg Config, client *http.Client) *publisher {
	return &publisher{
		url:      strings.TrimRight(cfg.API, "/") + "/api/publish",
		key:      cfg.APIKey,
		client:   client,
		payload:  cfg.Payload,
		inFlight: cfg.PublishConcurrency,
	}
}

// publishReport is how publishing went.
type publishReport struct {
	Sent      int     `json:"sent"`
	Errors    int     `json:"errors"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
	// Latency is of the server API calls.
	Latency latencySummary `json:"latency"`
	Samples []string       `json:"error_samples,omitempty"`
}

// run publishes count publications at rate (none when rate is 0: as fast as
// the calls in flight allow), publication k into channels[k % len]. At the
// publication half way through it calls halfway, if set.
func (p *publisher) run(ctx context.Context, channels []string, count int, rate float64, halfway func()) publishReport {
	start := time.Now()
	sem := make(chan struct{}, p.inFlight)
	lat := newHistogram()
	var wg sync.WaitGroup
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	sent := 0
loop:
	for k := 0; k < count; k++ {
		if interval > 0 {
			if wait := time.Until(start.Add(time.Duration(k) * interval)); wait > 0 {
				timer.Reset(wait)
				select {
				case <-timer.C:
				case <-ctx.Done():
					break loop
				}
			}
		}
		if k == count/2 && halfway != nil {
			halfway()
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		sent++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t0 := time.Now()
			err := p.publish(ctx, channels[k%len(channels)], k)
			lat.Record(time.Since(t0))
			if err != nil {
				p.errors.Add(1)
				p.mu.Lock()
				if len(p.samples) < maxErrorSamples {
					p.samples = append(p.samples, err.Error())
				}
				p.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	r := publishReport{Sent: sent, Errors: int(p.errors.Load()), Seconds: took.Seconds(), Latency: lat.Snapshot().summary(), Samples: p.samples}
	if took > 0 {
		r.PerSecond = float64(sent) / took.Seconds()
	}
	return r
}

type publishBody struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// publish sends publication seq, stamped with the time now.
func (p *publisher) publish(ctx context.Context, channel string, seq int) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	body, err := json.Marshal(publishBody{Channel: channel, Data: encodePayload(seq, time.Now().UnixNano(), p.payload)})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", p.key)
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("publish: HTTP %d: %.200s", resp.StatusCode, b)
	}
	var out struct {
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("publish: bad reply: %w", err)
	}
	if out.Error != nil {
		return fmt.Errorf("publish: error %d: %s", out.Error.Code, out.Error.Message)
	}
	return nil
}
