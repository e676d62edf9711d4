// Package promreg registers Prometheus collectors so that several
// components of one kind (workers, rooms, test servers, nodes in one
// process) can share a registry.
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with reg and returns it, or returns the collector of
// the same kind already registered under its name. A nil reg registers
// nowhere. Any other registration error is a programming mistake (two
// collectors disagreeing about one name) and panics.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
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
