package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/livehub/livehub/hub/redisengine"
	"github.com/livehub/livehub/internal/config"
	"github.com/livehub/livehub/internal/notify"
	"github.com/livehub/livehub/push"
	"github.com/livehub/livehub/push/apns"
	"github.com/livehub/livehub/push/fcm"
)

// pushSide is the push fallback: the Notifier the shop publishes through,
// which pushes what users may not have seen; the device registry; and the
// worker that sends the queued pushes through APNs and FCM.
type pushSide struct {
	notifier *notify.Notifier
	queue    push.Queue
	worker   *push.Worker
	devices  push.DeviceStore
	closers  []io.Closer
	log      *slog.Logger
}

// newPush builds the push side on the engine: memory stores without Redis,
// the engine's Redis client with it. A platform without credentials is off;
// the worker says so once when it starts.
func newPush(m *Main, eng *engine) (*pushSide, error) {
	cfg := m.Config
	senders, closers, err := pushSenders(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	p := &pushSide{closers: closers, log: m.Logger}
	var (
		queue   push.Queue
		dedupe  push.Dedupe
		pending notify.PendingStore
	)
	if client := engineRedis(eng); client != nil {
		ro := push.RedisOptions{Client: client, Prefix: cfg.RedisPrefix + ".push"}
		var errs [4]error
		p.devices, errs[0] = push.NewRedisDeviceStore(ro)
		queue, errs[1] = push.NewRedisQueue(push.RedisQueueOptions{RedisOptions: ro, Logger: m.Logger})
		dedupe, errs[2] = push.NewRedisDedupe(push.RedisDedupeOptions{RedisOptions: ro})
		pending, errs[3] = notify.NewRedisPending(notify.RedisPendingOptions{Client: client, Prefix: cfg.RedisPrefix + ".notify"})
		if err := errors.Join(errs[:]...); err != nil {
			p.close()
			return nil, err
		}
	} else {
		p.devices = push.NewMemoryDeviceStore()
		queue = push.NewMemoryQueue(push.MemoryQueueOptions{})
		dedupe = push.NewMemoryDedupe(push.DedupeOptions{})
		pending = notify.NewMemoryPending()
	}
	p.queue = queue
	p.worker, err = push.NewWorker(push.WorkerOptions{
		Queue: queue, Devices: p.devices, Senders: senders, Dedupe: dedupe,
		Registerer: m.registry, Logger: m.Logger,
	})
	if err != nil {
		p.close()
		return nil, err
	}
	p.notifier, err = notify.New(notify.Options{
		Queue: queue, Pending: pending, AckWindow: cfg.PushAckWindow,
		Registerer: m.registry, Logger: m.Logger,
	})
	if err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// engineRedis returns the Redis client of a Redis engine, nil for the
// memory engine.
func engineRedis(eng *engine) redis.UniversalClient {
	if e, ok := eng.broker.(*redisengine.Engine); ok {
		return e.Client()
	}
	return nil
}

// pushSenders builds a sender for each platform that has credentials.
func pushSenders(ctx context.Context, cfg *config.Config) ([]push.Sender, []io.Closer, error) {
	var (
		senders []push.Sender
		closers []io.Closer
	)
	switch {
	case cfg.APNsKeyFile != "":
		if cfg.APNsKeyID == "" || cfg.APNsTeamID == "" || cfg.APNsBundleID == "" {
			return nil, nil, errors.New("-apns-key-file (LIVEHUB_APNS_KEY_FILE) needs -apns-key-id (LIVEHUB_APNS_KEY_ID), -apns-team-id (LIVEHUB_APNS_TEAM_ID) and -apns-bundle-id (LIVEHUB_APNS_BUNDLE_ID)")
		}
		key, err := os.ReadFile(cfg.APNsKeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("-apns-key-file (LIVEHUB_APNS_KEY_FILE): %w", err)
		}
		s, err := apns.New(apns.Options{
			AuthKey: key, KeyID: cfg.APNsKeyID, TeamID: cfg.APNsTeamID,
			BundleID: cfg.APNsBundleID, Production: cfg.APNsProduction,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("-apns-key-file (LIVEHUB_APNS_KEY_FILE): %w", err)
		}
		senders, closers = append(senders, s), append(closers, s)
	case cfg.APNsKeyID != "" || cfg.APNsTeamID != "":
		return nil, nil, errors.New("-apns-key-id and -apns-team-id need -apns-key-file (LIVEHUB_APNS_KEY_FILE)")
	}
	if cfg.FCMCredentialsFile != "" {
		creds, err := os.ReadFile(cfg.FCMCredentialsFile)
		if err != nil {
			return nil, nil, fmt.Errorf("-fcm-credentials-file (LIVEHUB_FCM_CREDENTIALS_FILE): %w", err)
		}
		s, err := fcm.New(ctx, fcm.Options{CredentialsJSON: creds})
		if err != nil {
			return nil, nil, fmt.Errorf("-fcm-credentials-file (LIVEHUB_FCM_CREDENTIALS_FILE): %w", err)
		}
		senders = append(senders, s)
	}
	return senders, closers, nil
}

// Run closes ack windows and sends pushes until ctx is done. It then closes
// the windows still open, lets the worker take what that enqueued while it
// finishes its batch, and returns once both have stopped.
func (p *pushSide) Run(ctx context.Context) {
	wctx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { p.worker.Run(wctx) })
	p.notifier.Run(ctx)
	stopWorker()
	wg.Wait()
	p.close()
}

// close releases the senders' connections.
func (p *pushSide) close() {
	for _, c := range p.closers {
		_ = c.Close()
	}
}
