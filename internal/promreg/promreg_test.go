package promreg_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/livehub/livehub/internal/promreg"
)

func TestRegister_SharesTheCollectorAlreadyRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "livehub_test_total", Help: "test"}
	a := promreg.Register(reg, prometheus.NewCounter(opts))
	b := promreg.Register(reg, prometheus.NewCounter(opts))
	if a != b {
		t.Fatal("a second registration under the same name got its own counter")
	}
	a.Inc()
	if got := promreg.Register[prometheus.Counter](nil, prometheus.NewCounter(opts)); got == nil {
		t.Fatal("a nil registerer returned nothing")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a conflicting registration did not panic")
		}
	}()
	promreg.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "livehub_test_total", Help: "other"}))
}
