package orderevents

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/livehub/livehub/internal/promreg"
)

// Delivery results, the values of the result label.
const (
	resultDelivered = "delivered" // the receiver answered 2xx
	resultRejected  = "rejected"  // the receiver refused the event for good (4xx, 3xx)
	resultRetry     = "retry"     // an attempt failed and another will follow
	resultDropped   = "dropped"   // every attempt failed; the event was given up
)

// webhookMetrics are the webhook worker's Prometheus collectors.
type webhookMetrics struct {
	deliveries *prometheus.CounterVec
	seconds    prometheus.Histogram
}

func newWebhookMetrics(reg prometheus.Registerer) *webhookMetrics {
	m := &webhookMetrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livehub_webhook_deliveries_total",
			Help: "Order event webhook attempts by result: delivered, rejected, retry, dropped.",
		}, []string{"result"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "livehub_webhook_delivery_seconds",
			Help:    "Time of one webhook request, until the receiver's status line or the failure.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}),
	}
	if reg != nil {
		m.deliveries = promreg.Register(reg, m.deliveries)
		m.seconds = promreg.Register(reg, m.seconds)
	}
	for _, r := range []string{resultDelivered, resultRejected, resultRetry, resultDropped} {
		m.deliveries.WithLabelValues(r)
	}
	return m
}
