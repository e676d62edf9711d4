package rest

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/tracking"
)

// TrackingOptions configure the courier tracking API.
type TrackingOptions struct {
	Tracker *tracking.Tracker
	// Tokens verifies the Bearer JWTs, the same tokens the hub accepts.
	Tokens *auth.Verifier
	// MaxBodyBytes bounds request bodies; a batch of stored points is the
	// largest. Zero means 1 MiB.
	MaxBodyBytes int64
	// Logger receives request errors. Nil means slog.Default().
	Logger *slog.Logger
}

// trackingAPI serves the tracking routes with the /v1 API's authentication,
// problem documents and strict binding.
type trackingAPI struct {
	*v1
	tracker *tracking.Tracker
}

// MountTracking adds the courier tracking routes to r:
//
//	POST /v1/orders/:id/courier    {courier_id, address: {lat, lng, text}}  the merchant or an admin
//	POST /v1/orders/:id/status     {status, proof_photo_url}                the assigned courier
//	POST /v1/orders/:id/locations  {points: [{lat, lng, accuracy, heading, speed, device_time}]}
//	                                                                        the assigned courier, after being offline
//	GET  /v1/orders/:id/tracking   status, courier, last point, ETA, path length
//	                                                                        the buyer, the courier, the merchant, an admin
//
// Errors are application/problem+json as in the rest of /v1.
func MountTracking(r gin.IRouter, o TrackingOptions) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	h := &trackingAPI{
		v1:      &v1{o: V1Options{Tokens: o.Tokens, MaxBodyBytes: o.MaxBodyBytes, Logger: o.Logger}, log: o.Logger},
		tracker: o.Tracker,
	}
	g := r.Group("/v1/orders/:id", h.authenticate)
	g.POST("/courier", h.assign)
	g.POST("/status", h.status)
	g.POST("/locations", h.locations)
	g.GET("/tracking", h.view)
}

func trackingActor(c *gin.Context) tracking.Actor {
	a := actor(c)
	return tracking.Actor{UserID: a.UserID, Roles: a.Roles}
}

func (h *trackingAPI) done(c *gin.Context, err error, status int, body any) {
	if err != nil {
		h.problem(c, err)
		return
	}
	c.JSON(status, body)
}

func (h *trackingAPI) assign(c *gin.Context) {
	var in struct {
		CourierID string `json:"courier_id"`
		Address   *struct {
			Lat  *float64 `json:"lat"`
			Lng  *float64 `json:"lng"`
			Text string   `json:"text"`
		} `json:"address"`
	}
	if !h.bind(c, &in) {
		return
	}
	switch {
	case in.Address == nil:
		h.problem(c, commerce.FieldError("address", "is required"))
		return
	case in.Address.Lat == nil:
		h.problem(c, commerce.FieldError("address.lat", "is required"))
		return
	case in.Address.Lng == nil:
		h.problem(c, commerce.FieldError("address.lng", "is required"))
		return
	}
	addr := tracking.Address{Lat: *in.Address.Lat, Lng: *in.Address.Lng, Text: in.Address.Text}
	a, err := h.tracker.Assign(c.Request.Context(), trackingActor(c), c.Param("id"), in.CourierID, addr)
	h.done(c, err, http.StatusOK, a)
}

func (h *trackingAPI) status(c *gin.Context) {
	var in struct {
		Status        string `json:"status"`
		ProofPhotoURL string `json:"proof_photo_url"`
	}
	if !h.bind(c, &in) {
		return
	}
	a, err := h.tracker.SetStatus(c.Request.Context(), trackingActor(c), c.Param("id"), tracking.Status(in.Status), in.ProofPhotoURL)
	h.done(c, err, http.StatusOK, a)
}

func (h *trackingAPI) locations(c *gin.Context) {
	var in struct {
		Points []json.RawMessage `json:"points"`
	}
	if !h.bind(c, &in) {
		return
	}
	points := make([]tracking.Point, len(in.Points))
	for i, raw := range in.Points {
		p, err := tracking.DecodePoint(raw)
		if err != nil {
			var pe *tracking.PointError
			field := fmt.Sprintf("points[%d]", i)
			msg := err.Error()
			if errors.As(err, &pe) {
				if pe.Field != "" {
					field += "." + pe.Field
				}
				msg = pe.Message
			}
			h.problem(c, commerce.FieldError(field, "%s", msg))
			return
		}
		points[i] = p
	}
	res, err := h.tracker.Batch(c.Request.Context(), trackingActor(c), c.Param("id"), points)
	h.done(c, err, http.StatusOK, res)
}

func (h *trackingAPI) view(c *gin.Context) {
	v, err := h.tracker.View(c.Request.Context(), trackingActor(c), c.Param("id"))
	h.done(c, err, http.StatusOK, v)
}
