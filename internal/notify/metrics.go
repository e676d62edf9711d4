package notify

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/livehub/livehub/internal/promreg"
)

// Why a push was enqueued, the label of livehub_notify_pushes_total.
const (
	pushBackground  = "background"       // no foreground connection on any node
	pushUnacked     = "unacked"          // the ack window ended without an acknowledgement
	pushUnpublished = "unpublished"      // the hub publish failed, so no socket got the event
	pushNoPresence  = "presence_unknown" // presence could not be read
	pushNoWindow    = "window_unavailable"
)

// Results of a window, the label of livehub_notify_windows_total.
const (
	windowAcked   = "acked"
	windowUnacked = "unacked"
)

// Operations that can fail, the label of livehub_notify_errors_total.
const (
	opPresence = "presence"
	opPending  = "pending"
	opEnqueue  = "enqueue"
)

// metrics are the Notifier's Prometheus collectors.
type metrics struct {
	pushes  *prometheus.CounterVec
	windows *prometheus.CounterVec
	open    prometheus.Gauge
	acks    prometheus.Counter
	errors  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livehub_notify_pushes_total",
			Help: "Events of personal channels sent to the push queue, by reason: background, unacked, unpublished, presence_unknown, window_unavailable.",
		}, []string{"reason"}),
		windows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livehub_notify_windows_total",
			Help: "Ack windows this node closed, by result: acked (the app acknowledged in time) or unacked (pushed).",
		}, []string{"result"}),
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "livehub_notify_windows_open",
			Help: "Ack windows this node waits on.",
		}),
		acks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "livehub_notify_acks_total",
			Help: "Event acknowledgements received on this node that came within their window.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livehub_notify_errors_total",
			Help: "Failures of the push fallback, by operation: presence, pending, enqueue.",
		}, []string{"op"}),
	}
	if reg != nil {
		m.pushes = promreg.Register(reg, m.pushes)
		m.windows = promreg.Register(reg, m.windows)
		m.open = promreg.Register(reg, m.open)
		m.acks = promreg.Register(reg, m.acks)
		m.errors = promreg.Register(reg, m.errors)
	}
	for _, r := range []string{pushBackground, pushUnacked, pushUnpublished, pushNoPresence, pushNoWindow} {
		m.pushes.WithLabelValues(r)
	}
	for _, r := range []string{windowAcked, windowUnacked} {
		m.windows.WithLabelValues(r)
	}
	for _, op := range []string{opPresence, opPending, opEnqueue} {
		m.errors.WithLabelValues(op)
	}
	return m
}
