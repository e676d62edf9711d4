package room

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/livehub/livehub/internal/promreg"
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
		m.chat = promreg.Register(reg, m.chat)
		m.likes = promreg.Register(reg, m.likes)
		m.announcements = promreg.Register(reg, m.announcements)
		m.moderation = promreg.Register(reg, m.moderation)
	}
	return m
}
