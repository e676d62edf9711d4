package hub

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the hub's Prometheus collectors. Names follow
// livehub_<subsystem>_<what>_<unit>.
type metrics struct {
	connections      prometheus.Gauge
	subscriptions    prometheus.Gauge
	commands         *prometheus.CounterVec
	commandErrors    *prometheus.CounterVec
	publicationsIn   prometheus.Counter
	framesOut        prometheus.Counter
	bytesOut         prometheus.Counter
	bytesIn          prometheus.Counter
	messagesOut      prometheus.Counter
	disconnects      *prometheus.CounterVec
	slowDisconnects  prometheus.Counter
	shed             prometheus.Counter
	fanoutSeconds    prometheus.Histogram
	recoveries       *prometheus.CounterVec
	brokerPublishErr prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "livehub_hub_connections", Help: "Open client connections on this node.",
		}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "livehub_hub_subscriptions", Help: "Client subscriptions on this node.",
		}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livehub_hub_commands_total", Help: "Commands received from clients, by type.",
		}, []string{"type"}),
		commandErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livehub_hub_command_errors_total", Help: "Commands answered with an error, by type and code.",
		}, []string{"type", "code"}),
		publicationsIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "livehub_hub_publications_total", Help: "Publications delivered to this node by the broker.",
		}),
		framesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "livehub_hub_frames_out_total", Help: "WebSocket messages written to clients.",
		}),
		messagesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "livehub_hub_messages_out_total", Help: "Protocol replies and pushes written to clients (several may share a frame).",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "livehub_hub_bytes_out_total", Help: "Payload bytes written to clients.",
		}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "livehub_hub_bytes_in_total", Help: "Payload bytes read from clients.",
		}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livehub_hub_disconnects_total", Help: "Connections closed, by disconnect code.",
		}, []string{"code"}),
		shed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "livehub_hub_shed_publications_total",
			Help: "Low-priority publications dropped for connections whose write queue was congested.",
		}),
		slowDisconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "livehub_hub_slow_disconnects_total", Help: "Connections closed because their write queue overflowed.",
		}),
		fanoutSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "livehub_hub_fanout_duration_seconds",
			Help:    "Time to queue one publication to every local subscriber.",
			Buckets: prometheus.ExponentialBuckets(0.00001, 4, 10),
		}),
		recoveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livehub_hub_recoveries_total", Help: "Subscriptions that asked to recover, by outcome.",
		}, []string{"recovered"}),
		brokerPublishErr: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "livehub_hub_publish_errors_total", Help: "Publishes the engine refused or could not make.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.connections, m.subscriptions, m.commands, m.commandErrors,
			m.publicationsIn, m.framesOut, m.messagesOut, m.bytesOut, m.bytesIn,
			m.disconnects, m.slowDisconnects, m.shed, m.fanoutSeconds, m.recoveries, m.brokerPublishErr)
	}
	return m
}
