package push

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/livehub/livehub/internal/promreg"
)

// Reasons the worker itself gives, next to the senders' own.
const (
	reasonExpired      = "expired"      // the notification expired before it could be sent
	reasonMaxAttempts  = "max_attempts" // the last attempt asked for a retry
	reasonRateLimited  = "rate_limited" // the user's push budget was spent
	reasonDuplicate    = "duplicate"    // the event already reached the device
	reasonNoDevices    = "no_devices"   // the user has no device to send to
	reasonPlatformOff  = "platform_off" // the device's platform has no sender
	reasonOther        = "other"        // a sender reason not fit for a label
	maxReasonLabelSize = 40
)

// metrics are the worker's Prometheus collectors.
type metrics struct {
	sent     *prometheus.CounterVec
	failed   *prometheus.CounterVec
	retried  *prometheus.CounterVec
	pruned   *prometheus.CounterVec
	dropped  *prometheus.CounterVec
	lag      prometheus.Gauge
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livehub_push_sent_total",
			Help: "Notifications the push services accepted, by platform.",
		}, []string{"platform"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livehub_push_failed_total",
			Help: "Notifications given up for a device, by platform and reason (the service's error code, expired, max_attempts).",
		}, []string{"platform", "reason"}),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livehub_push_retried_total",
			Help: "Sends to a device put back on the queue for a later attempt, by platform.",
		}, []string{"platform"}),
		pruned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livehub_push_pruned_tokens_total",
			Help: "Device tokens removed because the push service reported them dead, by platform.",
		}, []string{"platform"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livehub_push_dropped_total",
			Help: "Jobs or sends skipped before reaching a push service, by reason: expired, rate_limited, duplicate, no_devices, platform_off.",
		}, []string{"reason"}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "livehub_push_queue_lag_seconds",
			Help: "Age of the oldest job in the last batch read, from when it became due to when a worker read it.",
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "livehub_push_send_duration_seconds",
			Help:    "Time of one batch send to a push service, by platform.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}, []string{"platform"}),
	}
	if reg != nil {
		m.sent = promreg.Register(reg, m.sent)
		m.failed = promreg.Register(reg, m.failed)
		m.retried = promreg.Register(reg, m.retried)
		m.pruned = promreg.Register(reg, m.pruned)
		m.dropped = promreg.Register(reg, m.dropped)
		m.lag = promreg.Register(reg, m.lag)
		m.duration = promreg.Register(reg, m.duration)
	}
	for _, p := range []string{PlatformIOS, PlatformAndroid} {
		m.sent.WithLabelValues(p)
		m.retried.WithLabelValues(p)
		m.pruned.WithLabelValues(p)
	}
	for _, r := range []string{reasonExpired, reasonRateLimited, reasonDuplicate, reasonNoDevices, reasonPlatformOff} {
		m.dropped.WithLabelValues(r)
	}
	return m
}

// reasonLabel keeps a sender's reason fit for a label: a short word of
// letters, digits and underscores, "other" otherwise.
func reasonLabel(reason string) string {
	if reason == "" || len(reason) > maxReasonLabelSize {
		return reasonOther
	}
	for _, c := range reason {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return reasonOther
		}
	}
	return reason
}
