package push

import (
	"context"
	"time"

	"github.com/livehub/livehub/internal/commerce"
)

// Queue is the durable list of push jobs that workers share. A job read is
// pending on its consumer until acknowledged; one left pending for the
// queue's claim idle time (a worker died) is handed to the next Read, of any
// consumer. Delivery is at least once: a worker may see a job again.
type Queue interface {
	// Enqueue adds j, to be read once j.NotBefore has passed. It sets
	// j.EnqueuedAt. An invalid notification is EINVALID; a full queue is
	// ErrQueueFull.
	Enqueue(ctx context.Context, j Job) error
	// Read returns up to count jobs: first those left pending past the
	// claim idle time, then new ones. When there are none it waits up to
	// block for one (not at all for block <= 0), and returns an empty
	// slice after. It may return later than ctx is done, by up to block.
	Read(ctx context.Context, consumer string, count int, block time.Duration) ([]Delivery, error)
	// Ack removes the deliveries with ids. An unknown id is ignored.
	Ack(ctx context.Context, ids ...string) error
}

// Job is a notification on its way to a user's devices.
type Job struct {
	Notification Notification `json:"notification"`
	// Attempt counts the sends tried before: 0 for a new job.
	Attempt int `json:"attempt,omitempty"`
	// Tokens, when set, limits the job to these of the user's devices: a
	// retry goes only to the devices that asked for it.
	Tokens []string `json:"tokens,omitempty"`
	// NotBefore delays the job. Zero means now.
	NotBefore time.Time `json:"not_before,omitzero"`
	// EnqueuedAt is when Enqueue took the job.
	EnqueuedAt time.Time `json:"enqueued_at"`
}

// readyAt is when the job became readable.
func (j *Job) readyAt() time.Time {
	if j.NotBefore.After(j.EnqueuedAt) {
		return j.NotBefore
	}
	return j.EnqueuedAt
}

// Delivery is one job handed to a consumer.
type Delivery struct {
	// ID names the delivery for Ack.
	ID  string
	Job Job
}

// ErrQueueFull is returned by Enqueue when the queue holds its MaxLen jobs.
var ErrQueueFull = &commerce.Error{Code: commerce.EUNAVAILABLE, Message: "push queue is full"}

// Defaults of the queue options.
const (
	defaultClaimIdle = time.Minute
	defaultQueueLen  = 1_000_000
)

// prepareJob validates j and stamps it.
func prepareJob(j Job, now time.Time) (Job, error) {
	if err := j.Notification.Validate(); err != nil {
		return j, err
	}
	j.EnqueuedAt = now.UTC()
	if !j.NotBefore.IsZero() {
		j.NotBefore = j.NotBefore.UTC()
	}
	return j, nil
}
