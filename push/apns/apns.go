// Package apns is a push.Sender for Apple devices on the APNs HTTP/2
// provider API, through github.com/sideshow/apns2. One client, and so one
// pool of long-lived HTTP/2 connections, serves every send, as Apple asks:
// APNs treats rapid connecting and disconnecting as an attack.
package apns

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/livehub/livehub/push"
	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/payload"
	"github.com/sideshow/apns2/token"
)

var _ push.Sender = (*Sender)(nil)

// Defaults of Options.
const (
	defaultConcurrency = 32
	defaultTimeout     = 10 * time.Second
)

// Options configure a Sender. Exactly one of AuthKey and Certificate is
// needed.
type Options struct {
	// AuthKey is the provider token signing key: the content of the .p8
	// file from the Apple developer account. KeyID and TeamID go with it.
	AuthKey []byte
	// KeyID is the key's id (the JWT kid).
	KeyID string
	// TeamID is the developer team's id (the JWT iss).
	TeamID string
	// Certificate is a provider certificate with its private key, used
	// instead of a token.
	Certificate *tls.Certificate
	// BundleID is the topic for a device registered without an AppID.
	BundleID string
	// Production sends through api.push.apple.com; otherwise through the
	// sandbox, api.sandbox.push.apple.com. Ignored when Host is set.
	Production bool
	// Host is the APNs base URL (https://host:port), for a test server.
	Host string
	// RootCAs are the CAs trusted for the server's certificate. Zero means
	// the system's.
	RootCAs *x509.CertPool
	// Concurrency is the most requests in flight at once. Zero means 32.
	Concurrency int
	// Timeout bounds one request. Zero means 10s.
	Timeout time.Duration
}

// Sender sends notifications to Apple devices.
type Sender struct {
	client      *apns2.Client
	token       *token.Token // nil with certificate auth
	bundleID    string
	concurrency int
}

// New returns a Sender. It does not connect until the first send.
func New(o Options) (*Sender, error) {
	s := &Sender{bundleID: o.BundleID, concurrency: o.Concurrency}
	if s.concurrency <= 0 {
		s.concurrency = defaultConcurrency
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	tlsConfig := &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12}
	client := &apns2.Client{Host: o.Host}
	switch {
	case len(o.AuthKey) > 0 && o.Certificate != nil:
		return nil, errors.New("apns: give AuthKey or Certificate, not both")
	case len(o.AuthKey) > 0:
		if o.KeyID == "" || o.TeamID == "" {
			return nil, errors.New("apns: AuthKey needs KeyID and TeamID")
		}
		key, err := token.AuthKeyFromBytes(o.AuthKey)
		if err != nil {
			return nil, fmt.Errorf("apns: auth key: %w", err)
		}
		s.token = &token.Token{AuthKey: key, KeyID: o.KeyID, TeamID: o.TeamID}
		if _, err := s.token.Generate(); err != nil {
			return nil, fmt.Errorf("apns: provider token: %w", err)
		}
		client.Token = s.token
	case o.Certificate != nil:
		tlsConfig.Certificates = []tls.Certificate{*o.Certificate}
		client.Certificate = *o.Certificate
	default:
		return nil, errors.New("apns: no credentials: AuthKey with KeyID and TeamID, or Certificate")
	}
	if client.Host == "" {
		client.Host = apns2.HostDevelopment
		if o.Production {
			client.Host = apns2.HostProduction
		}
	}
	client.HTTPClient = &http.Client{Transport: newTransport(tlsConfig), Timeout: o.Timeout}
	s.client = client
	return s, nil
}

// newTransport returns an HTTP/2-only transport that pings idle connections
// so a dead one is noticed before a send waits on it.
func newTransport(tlsConfig *tls.Config) *retryAfterTransport {
	t := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 20 * time.Second, KeepAlive: 15 * time.Second}).DialContext,
		TLSClientConfig:     tlsConfig,
		TLSHandshakeTimeout: 20 * time.Second,
		ForceAttemptHTTP2:   true,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: 15 * time.Second,
			PingTimeout:     15 * time.Second,
		},
	}
	t.Protocols = new(http.Protocols)
	t.Protocols.SetHTTP2(true)
	return &retryAfterTransport{base: t}
}

// Platform is push.PlatformIOS.
func (s *Sender) Platform() string { return push.PlatformIOS }

// Close closes the idle connections. The Sender may still be used; it
// connects again.
func (s *Sender) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// Send sends each target, Concurrency at a time, and returns their results
// in order.
func (s *Sender) Send(ctx context.Context, targets []push.Target) []push.Result {
	results := make([]push.Result, len(targets))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(s.concurrency, len(targets)) {
		wg.Go(func() {
			for i := range next {
				results[i] = s.push(ctx, &targets[i])
			}
		})
	}
	for i := range targets {
		next <- i
	}
	close(next)
	wg.Wait()
	return results
}

// push sends one target.
func (s *Sender) push(ctx context.Context, t *push.Target) push.Result {
	topic := t.Device.AppID
	if topic == "" {
		topic = s.bundleID
	}
	if topic == "" {
		return push.Result{Outcome: push.Failed, Reason: apns2.ReasonMissingTopic}
	}
	n := notification(t, topic)
	var retryAfter string
	res, err := s.client.PushWithContext(withRetryAfter(ctx, &retryAfter), n)
	if err != nil {
		return push.Result{Outcome: push.Retry, Reason: "transport"}
	}
	return s.result(res, retryAfter)
}

// notification builds the APNs request for t.
func notification(t *push.Target, topic string) *apns2.Notification {
	m := &t.Notification
	p := payload.NewPayload()
	if m.Title != "" {
		p.AlertTitle(m.Title)
	}
	if m.Body != "" {
		p.AlertBody(m.Body)
	}
	if m.TitleKey != "" {
		p.AlertTitleLocKey(m.TitleKey)
		if len(m.TitleArgs) > 0 {
			p.AlertTitleLocArgs(m.TitleArgs)
		}
	}
	if m.BodyKey != "" {
		p.AlertLocKey(m.BodyKey)
		if len(m.BodyArgs) > 0 {
			p.AlertLocArgs(m.BodyArgs)
		}
	}
	if m.Category != "" {
		p.Category(m.Category)
	}
	for k, v := range m.Data {
		if k != "aps" { // the key APNs reserves for itself
			p.Custom(k, v)
		}
	}
	n := &apns2.Notification{
		DeviceToken: t.Device.Token,
		Topic:       topic,
		PushType:    apns2.PushTypeAlert,
		Priority:    apns2.PriorityHigh,
		CollapseID:  m.CollapseID,
		Payload:     p,
	}
	if m.Priority == push.PriorityNormal {
		n.Priority = apns2.PriorityLow
	}
	if !m.Expiry.IsZero() {
		n.Expiration = m.Expiry
	}
	return n
}

// result maps an APNs response to a push.Result.
func (s *Sender) result(res *apns2.Response, retryAfter string) push.Result {
	if res.Sent() {
		return push.Result{Outcome: push.Sent}
	}
	reason := res.Reason
	if reason == "" {
		reason = fmt.Sprintf("status_%d", res.StatusCode)
	}
	switch {
	case res.Reason == apns2.ReasonUnregistered, res.Reason == apns2.ReasonBadDeviceToken,
		res.Reason == apns2.ReasonDeviceTokenNotForTopic, res.Reason == apns2.ReasonExpiredToken:
		return push.Result{Outcome: push.DeadToken, Reason: reason}
	case res.Reason == apns2.ReasonExpiredProviderToken && s.token != nil:
		// APNs finds the provider token stale, maybe because of clock skew:
		// sign a new one for the next request, and retry this one.
		s.token.Lock()
		s.token.IssuedAt = 0
		s.token.Unlock()
		return push.Result{Outcome: push.Retry, Reason: reason}
	case res.StatusCode == http.StatusTooManyRequests, res.StatusCode >= 500:
		return push.Result{Outcome: push.Retry, Reason: reason, RetryAfter: push.ParseRetryAfter(retryAfter, time.Now())}
	}
	return push.Result{Outcome: push.Failed, Reason: reason}
}
