package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/livehub/livehub/internal/campaign"
	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/config"
	"github.com/livehub/livehub/internal/orderevents"
	"github.com/livehub/livehub/internal/payment"
	"github.com/livehub/livehub/internal/room"
	"github.com/livehub/livehub/internal/shop"
	"github.com/livehub/livehub/rest"
)

// eventLog keeps the shop's order events in the order event log.
type eventLog struct{ log orderevents.Log }

func (l eventLog) Append(ctx context.Context, orderID string, e commerce.Event) error {
	return l.log.Append(ctx, orderevents.FromCommerce(orderID, e))
}

// roomAudience gives the shop the room's figures for the stream summary.
type roomAudience struct{ rooms *room.Room }

func (r roomAudience) Audience(ctx context.Context, streamID string) (int, int64, error) {
	sum, err := r.rooms.Summary(ctx, streamID)
	return sum.PeakViewers, sum.Likes, err
}

// gateway builds the configured payment gateway and, for gateways that
// notify, the webhook handler.
func gateway(cfg *config.Config, s func() *shop.Service) (shop.Charger, func() rest.NotificationHandler, error) {
	switch cfg.PaymentGateway {
	case "midtrans":
		m, err := payment.NewMidtrans(payment.MidtransOptions{
			ServerKey: cfg.MidtransServerKey, BaseURL: cfg.MidtransBaseURL, PaymentExpiry: cfg.PaymentExpiry,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("midtrans: %w", err)
		}
		return m, func() rest.NotificationHandler { return &shop.Notifications{Shop: s(), Parser: m} }, nil
	default:
		return payment.Simulated{Expiry: cfg.PaymentExpiry}, nil, nil
	}
}

// newShop builds the commerce service on store.
func newShop(m *Main, store commerce.Store) (*shop.Service, rest.V1Options, error) {
	cfg := m.Config
	var svc *shop.Service
	charger, notif, err := gateway(cfg, func() *shop.Service { return svc })
	if err != nil {
		return nil, rest.V1Options{}, err
	}
	svc, err = shop.New(shop.Config{
		Store:          store,
		Publisher:      m.push.notifier,
		Charger:        charger,
		ReservationTTL: cfg.ReservationTTL,
		StockInterval:  cfg.StockEventInterval,
		TickerInterval: cfg.OrderTickerInterval,
		Log:            eventLog{m.events},
		Rooms:          roomAudience{m.rooms},
		Logger:         m.Logger,
	})
	if err != nil {
		return nil, rest.V1Options{}, err
	}
	v1 := rest.V1Options{Shop: svc, Simulated: cfg.PaymentGateway == "simulated"}
	if notif != nil {
		v1.Notifications = notif()
	}
	return svc, v1, nil
}

// newCampaigns builds follows and follower campaigns on the engine; the
// campaigns feed the push queue.
func newCampaigns(m *Main, eng *engine) (*campaign.Service, error) {
	follows, store := campaign.Follows(campaign.NewMemoryFollows()), campaign.Store(campaign.NewMemoryStore())
	if client := engineRedis(eng); client != nil {
		ro := campaign.RedisOptions{Client: client, Prefix: m.Config.RedisPrefix}
		f, ferr := campaign.NewRedisFollows(ro)
		s, serr := campaign.NewRedisStore(ro)
		if err := errors.Join(ferr, serr); err != nil {
			return nil, err
		}
		follows, store = f, s
	}
	return campaign.New(campaign.Config{Streams: eng.store, Follows: follows, Store: store, Queue: m.push.queue, Hub: m.Node, Logger: m.Logger})
}
