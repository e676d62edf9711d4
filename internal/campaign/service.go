package campaign

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/push"
)

// EventProgress is published on studio:{stream} as a campaign advances, at
// most once per Config.ProgressInterval, and once when it ends. Its data is
// Progress.
const EventProgress = "campaign.progress"

// PushType is the "type" in the data of a campaign's notifications.
const PushType = "stream.promo"

// Progress is the data of a campaign.progress event.
type Progress struct {
	CampaignID string `json:"campaign_id"`
	Queued     int64  `json:"queued"`
	Total      int64  `json:"total"`
	State      State  `json:"state"`
}

// Streams finds streams: commerce.Store provides it.
type Streams interface {
	GetStream(ctx context.Context, id string) (commerce.Stream, error)
}

// Queue takes push jobs: push.Queue provides it.
type Queue interface {
	Enqueue(ctx context.Context, j push.Job) error
}

// Publisher publishes into hub channels: *hub.Node provides it.
type Publisher interface {
	Publish(ctx context.Context, channel string, data []byte, req hub.PublishRequest) (hub.StreamPosition, error)
}

// Defaults of Config.
const (
	defaultWindow           = 5 * time.Minute
	defaultBatchSize        = 500
	defaultProgressInterval = time.Second
	defaultExpiry           = 10 * time.Minute
	defaultMaxRunning       = 16
	defaultAttempts         = 5
)

// Config configures a Service. Zero values take the defaults given per
// field.
type Config struct {
	// Streams tells who hosts a stream and whether it ended. Required.
	Streams Streams
	// Follows keeps the followers. Required.
	Follows Follows
	// Store keeps the campaigns. Required.
	Store Store
	// Queue receives one push job per follower. Required.
	Queue Queue
	// Hub receives the campaign.progress events. Nil publishes none.
	Hub Publisher
	// Window is the least time between two campaigns of one stream.
	// Zero means 5 minutes.
	Window time.Duration
	// BatchSize is how many followers are read per page. Zero means 500.
	BatchSize int
	// ProgressInterval is the least time between two progress updates of
	// a campaign, in the store and on the studio channel. Zero means 1s.
	ProgressInterval time.Duration
	// Expiry is how long a notification is worth showing after its
	// campaign started. Zero means 10 minutes.
	Expiry time.Duration
	// MaxRunning bounds the campaigns that queue jobs at once on this
	// node; more wait their turn. Zero means 16.
	MaxRunning int
	// RetryDelay is the first wait after a failed read or enqueue; it
	// doubles with each of the 5 attempts. Zero means 200ms.
	RetryDelay time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Logger receives failures. Nil means slog.Default().
	Logger *slog.Logger
}

// Service runs follows and campaigns. Each campaign is queued by a
// goroutine the Service owns; Close stops them and waits.
type Service struct {
	cfg  Config
	log  *slog.Logger
	slot chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	// mu guards closed against wg.Add, so Close's Wait sees every
	// campaign started before it.
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Streams == nil || cfg.Follows == nil || cfg.Store == nil || cfg.Queue == nil {
		return nil, errors.New("campaign: Config needs Streams, Follows, Store and Queue")
	}
	if cfg.Window <= 0 {
		cfg.Window = defaultWindow
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = defaultBatchSize
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = defaultProgressInterval
	}
	if cfg.Expiry <= 0 {
		cfg.Expiry = defaultExpiry
	}
	if cfg.MaxRunning <= 0 {
		cfg.MaxRunning = defaultMaxRunning
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = 200 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{
		cfg: cfg, log: cfg.Logger, slot: make(chan struct{}, cfg.MaxRunning),
		ctx: ctx, cancel: cancel,
	}, nil
}

// Run blocks until ctx is done, then stops the campaigns as Close does.
func (s *Service) Run(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-s.ctx.Done():
	}
	s.Close()
}

// Close stops the running campaigns and waits for their goroutines. A
// stopped campaign keeps its record as far as it got, in state running.
// Close may be called more than once.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// Follow makes the actor a follower of host.
func (s *Service) Follow(ctx context.Context, a Actor, host string) error {
	if err := checkFollow(host, a.UserID); err != nil {
		return err
	}
	if host == a.UserID {
		return commerce.FieldError("host_id", "you cannot follow yourself")
	}
	return s.cfg.Follows.Follow(ctx, host, a.UserID)
}

// Unfollow stops the actor following host.
func (s *Service) Unfollow(ctx context.Context, a Actor, host string) error {
	if err := checkFollow(host, a.UserID); err != nil {
		return err
	}
	return s.cfg.Follows.Unfollow(ctx, host, a.UserID)
}

// IsFollowing reports whether the actor follows host.
func (s *Service) IsFollowing(ctx context.Context, a Actor, host string) (bool, error) {
	if err := checkFollow(host, a.UserID); err != nil {
		return false, err
	}
	return s.cfg.Follows.IsFollowing(ctx, host, a.UserID)
}

// FollowerCount returns the number of host's followers.
func (s *Service) FollowerCount(ctx context.Context, host string) (int64, error) {
	if err := checkID("host_id", host); err != nil {
		return 0, err
	}
	return s.cfg.Follows.Count(ctx, host)
}

// NotifyFollowers starts a campaign that notifies the followers of the
// stream's host with msg, and returns its record. Only the host or an
// admin may (EFORBIDDEN); an ended stream is ECONFLICT; a stream that had
// a campaign within Config.Window is ERATELIMIT, with RetryAfter telling
// how long to wait.
func (s *Service) NotifyFollowers(ctx context.Context, a Actor, streamID string, msg Message) (Campaign, error) {
	if err := checkID("stream_id", streamID); err != nil {
		return Campaign{}, err
	}
	st, err := s.cfg.Streams.GetStream(ctx, streamID)
	if err != nil {
		return Campaign{}, err
	}
	if a.UserID != st.HostID && !a.HasRole(roleAdmin) {
		return Campaign{}, commerce.Errorf(commerce.EFORBIDDEN, "only the stream's host notifies its followers")
	}
	msg, err = msg.normalize()
	if err != nil {
		return Campaign{}, err
	}
	if st.State == commerce.StreamEnded || st.EndedAt != nil {
		return Campaign{}, commerce.Errorf(commerce.ECONFLICT, "the stream has ended")
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return Campaign{}, commerce.Errorf(commerce.EUNAVAILABLE, "the server is shutting down; try again")
	}
	now := s.cfg.Now()
	wait, err := s.cfg.Store.Claim(ctx, streamID, s.cfg.Window, now)
	if err != nil {
		return Campaign{}, err
	}
	if wait > 0 {
		return Campaign{}, rateLimitError(s.cfg.Window, wait)
	}
	total, err := s.cfg.Follows.Count(ctx, st.HostID)
	if err != nil {
		s.release(streamID)
		return Campaign{}, err
	}
	c := Campaign{
		ID: commerce.NewID("cmp"), StreamID: streamID, HostID: st.HostID,
		Total: total, State: StateRunning, CreatedAt: now.UTC(), UpdatedAt: now.UTC(),
	}
	if err := s.cfg.Store.Create(ctx, c); err != nil {
		s.release(streamID)
		return Campaign{}, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return Campaign{}, commerce.Errorf(commerce.EUNAVAILABLE, "the server is shutting down; try again")
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		s.run(c, msg)
	}()
	return c, nil
}

func (s *Service) release(streamID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Store.Release(ctx, streamID); err != nil {
		s.log.Warn("campaign: release window", "stream_id", streamID, "err", err)
	}
}

// GetCampaign returns a campaign to its host or an admin.
func (s *Service) GetCampaign(ctx context.Context, a Actor, id string) (Campaign, error) {
	if err := checkID("id", id); err != nil {
		return Campaign{}, err
	}
	c, err := s.cfg.Store.Get(ctx, id)
	if err != nil {
		return Campaign{}, err
	}
	if a.UserID != c.HostID && !a.HasRole(roleAdmin) {
		return Campaign{}, commerce.Errorf(commerce.EFORBIDDEN, "only the stream's host sees its campaigns")
	}
	return c, nil
}
