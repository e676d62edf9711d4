package campaign

import (
	"context"
	"encoding/json"
	"time"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/push"
)

// run queues c's jobs, page by page, reporting progress. It returns when
// every follower was queued, when the store or the queue keeps failing, or
// when the Service closes.
func (s *Service) run(c Campaign, msg Message) {
	ctx := s.ctx
	select {
	case s.slot <- struct{}{}:
		defer func() { <-s.slot }()
	case <-ctx.Done():
		return
	}
	proto := s.notification(c, msg)
	var (
		cursor   string
		lastSent time.Time
	)
	for {
		var (
			users []string
			next  string
		)
		err := s.retry(ctx, func() error {
			var err error
			users, next, err = s.cfg.Follows.Page(ctx, c.HostID, cursor, s.cfg.BatchSize)
			return err
		})
		if err != nil {
			s.fail(c, "read followers", err)
			return
		}
		for _, u := range users {
			n := proto
			n.ID = "campaign:" + c.ID + ":" + u
			n.UserID = u
			if err := s.retry(ctx, func() error { return s.cfg.Queue.Enqueue(ctx, push.Job{Notification: n}) }); err != nil {
				s.fail(c, "enqueue", err)
				return
			}
			c.Queued++
		}
		if next == "" {
			break
		}
		cursor = next
		if now := s.cfg.Now(); now.Sub(lastSent) >= s.cfg.ProgressInterval {
			lastSent = now
			c.Total = max(c.Total, c.Queued)
			s.report(ctx, c)
		}
	}
	c.State, c.Total = StateDone, c.Queued
	s.report(ctx, c)
}

// notification is the part every follower's notification shares.
func (s *Service) notification(c Campaign, msg Message) push.Notification {
	return push.Notification{
		Title: msg.Title, Body: msg.Body,
		TitleKey: msg.TitleKey, TitleArgs: msg.TitleArgs,
		BodyKey: msg.BodyKey, BodyArgs: msg.BodyArgs,
		Data:       map[string]string{"stream_id": c.StreamID, "type": PushType},
		CollapseID: "stream:" + c.StreamID,
		Priority:   push.PriorityHigh,
		Expiry:     c.CreatedAt.Add(s.cfg.Expiry),
	}
}

// retry calls f until it succeeds, up to defaultAttempts times, waiting
// RetryDelay, doubled each time, between calls. An invalid job is not
// retried: it would fail the same way.
func (s *Service) retry(ctx context.Context, f func() error) error {
	delay := s.cfg.RetryDelay
	var err error
	for attempt := 1; ; attempt++ {
		if err = f(); err == nil {
			return nil
		}
		if attempt == defaultAttempts || ctx.Err() != nil || commerce.ErrorCode(err) == commerce.EINVALID {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay *= 2
	}
}

// fail records that c stopped, unless the Service is closing: a campaign
// cut short by a shutdown stays running as far as it got.
func (s *Service) fail(c Campaign, what string, err error) {
	if s.ctx.Err() != nil {
		s.saveStopped(c)
		return
	}
	s.log.Error("campaign: stopped", "campaign_id", c.ID, "stream_id", c.StreamID, "step", what, "queued", c.Queued, "err", err)
	c.State = StateFailed
	s.report(s.ctx, c)
}

// saveStopped records how far a campaign got when the Service closed.
func (s *Service) saveStopped(c Campaign) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Store.Progress(ctx, c.ID, c.Queued, c.Total, c.State, s.cfg.Now()); err != nil {
		s.log.Warn("campaign: save progress", "campaign_id", c.ID, "err", err)
	}
}

// report saves c's progress and publishes it to the studio.
func (s *Service) report(ctx context.Context, c Campaign) {
	now := s.cfg.Now()
	if err := s.cfg.Store.Progress(ctx, c.ID, c.Queued, c.Total, c.State, now); err != nil {
		s.log.Warn("campaign: save progress", "campaign_id", c.ID, "err", err)
	}
	if s.cfg.Hub == nil {
		return
	}
	ev, err := commerce.NewEvent(EventProgress, now, Progress{CampaignID: c.ID, Queued: c.Queued, Total: c.Total, State: c.State})
	if err != nil {
		s.log.Error("campaign: encode event", "err", err)
		return
	}
	b, err := json.Marshal(ev)
	if err != nil {
		s.log.Error("campaign: encode event", "err", err)
		return
	}
	if _, err := s.cfg.Hub.Publish(ctx, "studio:"+c.StreamID, b, hub.PublishRequest{}); err != nil {
		s.log.Warn("campaign: publish progress", "campaign_id", c.ID, "err", err)
	}
}
