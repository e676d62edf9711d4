package rest

import (
	"testing"

	"github.com/gin-gonic/gin"
)

// The tracking routes live under /v1/orders/:id next to the order routes;
// gin panics on a conflicting wildcard, so mounting both must not.
func TestMountTracking_CoexistsWithTheOrderRoutes(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	mountV1(r, V1Options{})
	MountTracking(r, TrackingOptions{})
	want := map[string]bool{
		"POST /v1/orders/:id/courier": false, "POST /v1/orders/:id/status": false,
		"POST /v1/orders/:id/locations": false, "GET /v1/orders/:id/tracking": false,
		"GET /v1/orders/:id": false,
	}
	for _, rt := range r.Routes() {
		if _, ok := want[rt.Method+" "+rt.Path]; ok {
			want[rt.Method+" "+rt.Path] = true
		}
	}
	for route, found := range want {
		if !found {
			t.Errorf("route %s not mounted", route)
		}
	}
}
