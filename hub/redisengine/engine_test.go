package redisengine_test

import (
	"strings"
	"testing"

	"github.com/livehub/livehub/hub/hubtest"
	"github.com/livehub/livehub/internal/redistest"
)

func TestEngine_SharedSuite(t *testing.T) {
	srv := redistest.Start(t)
	hubtest.RunEngineTests(t, func(t *testing.T) hubtest.Engine {
		return newEngine(t, srv.URL)
	})
}

func TestEngine_SharedSuiteOverTCP(t *testing.T) {
	if testing.Short() {
		t.Skip("one transport is enough in -short")
	}
	srv := redistest.Start(t, redistest.WithTCP())
	hubtest.RunEngineTests(t, func(t *testing.T) hubtest.Engine {
		return newEngine(t, srv.URL)
	})
}

func TestEngine_SharedSuiteOnCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	url := "redis+cluster://" + strings.Join(cluster.Addrs, ",")
	hubtest.RunEngineTests(t, func(t *testing.T) hubtest.Engine {
		return newEngine(t, url)
	})
}

func TestEngine_SharedSuiteThroughSentinel(t *testing.T) {
	master := redistest.Start(t, redistest.WithTCP())
	sentinel := redistest.StartSentinel(t, "livehub", master)
	url := "redis+sentinel://" + sentinel.Addr + "/livehub"
	hubtest.RunEngineTests(t, func(t *testing.T) hubtest.Engine {
		return newEngine(t, url)
	})
}
