package room

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Chat outcomes, the values of the outcome label.
const (
	outcomePublished = "published"
	outcomeMasked    = "masked"
	outcomeBanned    = "banned"
	outcomeMuted     = "muted"
	outcomeSlow      = "slow_mode"
	outcomeWord      = "muted_word"
	outcomeInvalid   = "invalid"
	outcomeClosed    = "closed" // no such stream, or it ended
	outcomeError     = "error"
)

// metrics are the room's Prometheus collectors.
type metrics struct {
	chat          *prometheus.CounterVec
	likes         prometheus.Counter
	announcements *prometheus.CounterVec
	moderation    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		chat: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livehub_room_chat_messages_total",
			Help: "Chat messages sent to rooms on this node, by outcome: published, masked, banned, muted, slow_mode, muted_word, invalid, closed, error.",
		}, []string{"outcome"}),
		likes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "livehub_room_likes_total",
			Help: "Likes counted on this node (taps, not calls).",
		}),
		announcements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livehub_room_announcements_total",
			Help: "likes.count and viewers.count events this node published, by topic.",
		}, []string{"topic"}),
		moderation: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livehub_room_moderation_actions_total",
			Help: "Moderation actions taken through this node, by event type.",
		}, []string{"type"}),
	}
	if reg != nil {
		m.chat = register(reg, m.chat)
		m.likes = register(reg, m.likes)
		m.announcements = register(reg, m.announcements)
		m.moderation = register(reg, m.moderation)
	}
	return m
}

// register registers c, or returns the collector already registered under
// its name, so several rooms (tests, several nodes in one process) can share
// a registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}
