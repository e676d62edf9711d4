package hub_test

import (
	"testing"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/hub/hubtest"
)

func TestMemoryEngine(t *testing.T) {
	hubtest.RunEngineTests(t, func(t *testing.T) hubtest.Engine {
		return hub.NewMemoryEngine()
	})
}
