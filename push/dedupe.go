package push

import (
	"context"
	"time"
)

// Dedupe remembers which event reached which device token, so a job
// enqueued twice or delivered again after a worker died does not show the
// same notification twice. A worker claims each (event, token) before it
// sends, confirms the claim when the platform accepted the notification and
// releases it when the send is to be retried.
type Dedupe interface {
	// Claim tries to claim eventID for each token and returns what it
	// found for each, in order. A claim lasts the claim TTL unless
	// confirmed.
	Claim(ctx context.Context, eventID string, tokens []string) ([]ClaimState, error)
	// Confirm marks eventID as sent to tokens, for the TTL.
	Confirm(ctx context.Context, eventID string, tokens []string) error
	// Release drops the claims of eventID on tokens.
	Release(ctx context.Context, eventID string, tokens []string) error
}

// ClaimState is what Dedupe.Claim found for one token.
type ClaimState int

// Claim states.
const (
	// Claimed: nobody had claimed the pair; the caller now has.
	Claimed ClaimState = iota + 1
	// InFlight: another send holds the claim; it may still fail.
	InFlight
	// AlreadySent: the notification reached the device.
	AlreadySent
)

// Defaults of the dedupe options.
const (
	defaultDedupeTTL = 24 * time.Hour
	defaultClaimTTL  = 2 * time.Minute
)

// DedupeOptions configure the dedupe implementations.
type DedupeOptions struct {
	// TTL is how long a sent (event, token) pair is remembered. It bounds
	// how late a duplicate is still caught. Zero means 24 hours.
	TTL time.Duration
	// ClaimTTL is how long a claim lasts unconfirmed, so a worker that
	// died while sending does not block the pair for the whole TTL. Keep
	// it above the send timeout. Zero means two minutes.
	ClaimTTL time.Duration
}

func (o DedupeOptions) withDefaults() DedupeOptions {
	if o.TTL <= 0 {
		o.TTL = defaultDedupeTTL
	}
	if o.ClaimTTL <= 0 {
		o.ClaimTTL = defaultClaimTTL
	}
	return o
}
