// Package fcm is a push.Sender for Android devices on Firebase Cloud
// Messaging's HTTP v1 API, through the Firebase Admin SDK
// (firebase.google.com/go/v4/messaging).
//
// The SDK retries a 503 by itself, up to four times with exponential
// backoff (about seven seconds in all) or after the Retry-After it was
// given, within the send's context; what still fails reaches the worker as
// a Retry.
package fcm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"github.com/livehub/livehub/push"
	"google.golang.org/api/option"
)

var _ push.Sender = (*Sender)(nil)

// maxBatch is the most messages SendEach takes in one call.
const maxBatch = 500

// Options configure a Sender. Credentials come from CredentialsJSON, or
// from ClientOptions (option.WithoutAuthentication, WithEndpoint and
// WithHTTPClient for a test server).
type Options struct {
	// CredentialsJSON is a service account key file's content.
	CredentialsJSON []byte
	// ProjectID is the Firebase project. Zero means the project_id of
	// CredentialsJSON.
	ProjectID string
	// ClientOptions are passed to the SDK after the credentials.
	ClientOptions []option.ClientOption
	// BatchSize is the most messages per SendEach call, at most 500.
	// Zero means 500.
	BatchSize int
}

// Sender sends notifications to Android devices.
type Sender struct {
	client    *messaging.Client
	batchSize int
}

// New returns a Sender. It does not contact FCM.
func New(ctx context.Context, o Options) (*Sender, error) {
	var opts []option.ClientOption
	if len(o.CredentialsJSON) > 0 {
		if o.ProjectID == "" {
			var sa struct {
				ProjectID string `json:"project_id"`
			}
			if err := json.Unmarshal(o.CredentialsJSON, &sa); err != nil {
				return nil, fmt.Errorf("fcm: credentials: %w", err)
			}
			o.ProjectID = sa.ProjectID
		}
		opts = append(opts, option.WithAuthCredentialsJSON(option.ServiceAccount, o.CredentialsJSON))
	}
	if o.ProjectID == "" {
		return nil, errors.New("fcm: no project id: give ProjectID or service account credentials")
	}
	if len(o.CredentialsJSON) == 0 && len(o.ClientOptions) == 0 {
		return nil, errors.New("fcm: no credentials: give CredentialsJSON or ClientOptions")
	}
	opts = append(opts, o.ClientOptions...)
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: o.ProjectID}, opts...)
	if err != nil {
		return nil, fmt.Errorf("fcm: %w", err)
	}
	client, err := app.Messaging(ctx)
	if err != nil {
		return nil, fmt.Errorf("fcm: %w", err)
	}
	s := &Sender{client: client, batchSize: o.BatchSize}
	if s.batchSize <= 0 || s.batchSize > maxBatch {
		s.batchSize = maxBatch
	}
	return s, nil
}

// Platform is push.PlatformAndroid.
func (s *Sender) Platform() string { return push.PlatformAndroid }

// Send sends the targets with SendEach, BatchSize at a time, and returns
// their results in order.
func (s *Sender) Send(ctx context.Context, targets []push.Target) []push.Result {
	results := make([]push.Result, 0, len(targets))
	now := time.Now()
	for start := 0; start < len(targets); start += s.batchSize {
		chunk := targets[start:min(start+s.batchSize, len(targets))]
		msgs := make([]*messaging.Message, len(chunk))
		for i := range chunk {
			msgs[i] = message(&chunk[i], now)
		}
		results = append(results, s.sendEach(ctx, msgs)...)
	}
	return results
}

// sendEach sends msgs in one SendEach call. SendEach refuses the whole call
// when one message fails its checks; then each is sent alone, so one bad
// message does not hold the others back.
func (s *Sender) sendEach(ctx context.Context, msgs []*messaging.Message) []push.Result {
	out := make([]push.Result, len(msgs))
	br, err := s.client.SendEach(ctx, msgs)
	if err != nil {
		for i, m := range msgs {
			_, err := s.client.Send(ctx, m)
			out[i] = result(err)
		}
		return out
	}
	for i := range msgs {
		if i >= len(br.Responses) || br.Responses[i] == nil {
			out[i] = push.Result{Outcome: push.Retry, Reason: "no_response"}
			continue
		}
		out[i] = result(br.Responses[i].Error)
	}
	return out
}

// message builds the FCM message for t.
func message(t *push.Target, now time.Time) *messaging.Message {
	n := &t.Notification
	an := &messaging.AndroidNotification{
		TitleLocKey: n.TitleKey,
		BodyLocKey:  n.BodyKey,
		Tag:         n.CollapseID,
		ClickAction: n.Category,
	}
	if n.TitleKey != "" {
		an.TitleLocArgs = n.TitleArgs
	}
	if n.BodyKey != "" {
		an.BodyLocArgs = n.BodyArgs
	}
	ac := &messaging.AndroidConfig{
		CollapseKey:           n.CollapseID,
		Priority:              "high",
		RestrictedPackageName: t.Device.AppID,
		Notification:          an,
	}
	if n.Priority == push.PriorityNormal {
		ac.Priority = "normal"
	}
	if !n.Expiry.IsZero() {
		ttl := max(n.Expiry.Sub(now).Truncate(time.Second), 0)
		ac.TTL = &ttl
	}
	m := &messaging.Message{
		Token:   t.Device.Token,
		Data:    n.Data,
		Android: ac,
	}
	if n.Title != "" || n.Body != "" {
		m.Notification = &messaging.Notification{Title: n.Title, Body: n.Body}
	}
	return m
}

// result maps a send's error to a push.Result.
func result(err error) push.Result {
	switch {
	case err == nil:
		return push.Result{Outcome: push.Sent}
	case messaging.IsUnregistered(err):
		return push.Result{Outcome: push.DeadToken, Reason: "UNREGISTERED"}
	case messaging.IsSenderIDMismatch(err):
		return push.Result{Outcome: push.DeadToken, Reason: "SENDER_ID_MISMATCH"}
	case messaging.IsQuotaExceeded(err):
		return retry(err, "QUOTA_EXCEEDED")
	case messaging.IsUnavailable(err):
		return retry(err, "UNAVAILABLE")
	case messaging.IsInternal(err):
		return retry(err, "INTERNAL")
	case messaging.IsInvalidArgument(err):
		return push.Result{Outcome: push.Failed, Reason: "INVALID_ARGUMENT"}
	case messaging.IsThirdPartyAuthError(err):
		return push.Result{Outcome: push.Failed, Reason: "THIRD_PARTY_AUTH_ERROR"}
	// Without an FCM error code: a status alone (502 is UNKNOWN), or no
	// answer at all (a refused connection, a timeout).
	case errorutils.IsUnavailable(err), errorutils.IsInternal(err),
		errorutils.IsResourceExhausted(err), errorutils.IsDeadlineExceeded(err),
		errorutils.IsCancelled(err), errorutils.IsUnknown(err):
		return retry(err, "transport")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The context ended while the SDK waited to retry.
		return push.Result{Outcome: push.Retry, Reason: "transport"}
	}
	// Other statuses, and messages the SDK refused to send.
	return push.Result{Outcome: push.Failed, Reason: "other"}
}

func retry(err error, reason string) push.Result {
	r := push.Result{Outcome: push.Retry, Reason: reason}
	if resp := errorutils.HTTPResponse(err); resp != nil {
		r.RetryAfter = push.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return r
}
