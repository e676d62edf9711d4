package rest

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/room"
)

// RoomOptions configure the live room's moderation API.
type RoomOptions struct {
	Room *room.Room
	// Tokens verifies the Bearer JWTs, the same tokens the hub accepts.
	Tokens *auth.Verifier
	// MaxBodyBytes bounds request bodies. Zero means 64 KiB.
	MaxBodyBytes int64
	// Logger receives request errors. Nil means slog.Default().
	Logger *slog.Logger
}

// roomAPI serves the room routes with the /v1 API's authentication, problem
// documents and strict binding.
type roomAPI struct {
	*v1
	room *room.Room
}

// MountRoom adds the room's routes to r:
//
//	GET    /v1/streams/:id/room                              public room state (no token)
//	GET    /v1/streams/:id/moderation                        the room's whole state
//	POST   /v1/streams/:id/moderation/moderators             {user_id}
//	DELETE /v1/streams/:id/moderation/moderators/:user
//	POST   /v1/streams/:id/moderation/mutes                  {user_id, duration_seconds}
//	DELETE /v1/streams/:id/moderation/mutes/:user
//	POST   /v1/streams/:id/moderation/bans                   {user_id}
//	DELETE /v1/streams/:id/moderation/bans/:user
//	POST   /v1/streams/:id/moderation/messages/:msg/delete
//	PUT    /v1/streams/:id/moderation/slow-mode              {seconds}
//	PUT    /v1/streams/:id/moderation/muted-words            {words, mode}
//	PUT    /v1/streams/:id/moderation/pinned-message         {text}
//	DELETE /v1/streams/:id/moderation/pinned-message
//	PUT    /v1/streams/:id/pinned-product                    {product, price, stock}
//	DELETE /v1/streams/:id/pinned-product
//
// Errors are application/problem+json as in the rest of /v1.
func MountRoom(r gin.IRouter, o RoomOptions) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 64 << 10
	}
	h := &roomAPI{
		v1:   &v1{o: V1Options{Tokens: o.Tokens, MaxBodyBytes: o.MaxBodyBytes, Logger: o.Logger}, log: o.Logger},
		room: o.Room,
	}
	r.GET("/v1/streams/:id/room", h.info)
	g := r.Group("/v1/streams/:id", h.authenticate)
	g.GET("/moderation", h.snapshot)
	m := g.Group("/moderation")
	m.POST("/moderators", h.addModerator)
	m.DELETE("/moderators/:user", h.removeModerator)
	m.POST("/mutes", h.mute)
	m.DELETE("/mutes/:user", h.unmute)
	m.POST("/bans", h.ban)
	m.DELETE("/bans/:user", h.unban)
	m.POST("/messages/:msg/delete", h.deleteMessage)
	m.PUT("/slow-mode", h.slowMode)
	m.PUT("/muted-words", h.mutedWords)
	m.PUT("/pinned-message", h.pinMessage)
	m.DELETE("/pinned-message", h.unpinMessage)
	g.PUT("/pinned-product", h.pinProduct)
	g.DELETE("/pinned-product", h.unpinProduct)
}

func roomActor(c *gin.Context) room.Actor {
	a := actor(c)
	return room.Actor{UserID: a.UserID, Name: a.Name, Roles: a.Roles}
}

// done answers a call with its result, or its error as a problem.
func (h *roomAPI) done(c *gin.Context, err error, status int, body any) {
	if err != nil {
		h.problem(c, err)
		return
	}
	if body == nil {
		c.Status(status)
		return
	}
	c.JSON(status, body)
}

func (h *roomAPI) info(c *gin.Context) {
	info, err := h.room.Info(c.Request.Context(), c.Param("id"))
	h.done(c, err, http.StatusOK, info)
}

func (h *roomAPI) snapshot(c *gin.Context) {
	s, err := h.room.Moderation(c.Request.Context(), roomActor(c), c.Param("id"))
	h.done(c, err, http.StatusOK, s)
}

type userInput struct {
	UserID string `json:"user_id"`
}

func (h *roomAPI) addModerator(c *gin.Context) {
	var in userInput
	if !h.bind(c, &in) {
		return
	}
	err := h.room.AddModerator(c.Request.Context(), roomActor(c), c.Param("id"), in.UserID)
	h.done(c, err, http.StatusOK, gin.H{"user_id": in.UserID, "moderator": true})
}

func (h *roomAPI) removeModerator(c *gin.Context) {
	err := h.room.RemoveModerator(c.Request.Context(), roomActor(c), c.Param("id"), c.Param("user"))
	h.done(c, err, http.StatusNoContent, nil)
}

func (h *roomAPI) mute(c *gin.Context) {
	var in struct {
		UserID          string `json:"user_id"`
		DurationSeconds *int   `json:"duration_seconds"`
	}
	if !h.bind(c, &in) {
		return
	}
	if in.DurationSeconds == nil {
		h.problem(c, commerce.FieldError("duration_seconds", "is required"))
		return
	}
	m, err := h.room.Mute(c.Request.Context(), roomActor(c), c.Param("id"), in.UserID, time.Duration(*in.DurationSeconds)*time.Second)
	h.done(c, err, http.StatusOK, m)
}

func (h *roomAPI) unmute(c *gin.Context) {
	err := h.room.Unmute(c.Request.Context(), roomActor(c), c.Param("id"), c.Param("user"))
	h.done(c, err, http.StatusNoContent, nil)
}

func (h *roomAPI) ban(c *gin.Context) {
	var in userInput
	if !h.bind(c, &in) {
		return
	}
	err := h.room.Ban(c.Request.Context(), roomActor(c), c.Param("id"), in.UserID)
	h.done(c, err, http.StatusOK, gin.H{"user_id": in.UserID, "banned": true})
}

func (h *roomAPI) unban(c *gin.Context) {
	err := h.room.Unban(c.Request.Context(), roomActor(c), c.Param("id"), c.Param("user"))
	h.done(c, err, http.StatusNoContent, nil)
}

func (h *roomAPI) deleteMessage(c *gin.Context) {
	err := h.room.DeleteMessage(c.Request.Context(), roomActor(c), c.Param("id"), c.Param("msg"))
	h.done(c, err, http.StatusNoContent, nil)
}

func (h *roomAPI) slowMode(c *gin.Context) {
	var in struct {
		Seconds *int `json:"seconds"`
	}
	if !h.bind(c, &in) {
		return
	}
	if in.Seconds == nil {
		h.problem(c, commerce.FieldError("seconds", "is required (0 turns slow mode off)"))
		return
	}
	err := h.room.SetSlowMode(c.Request.Context(), roomActor(c), c.Param("id"), *in.Seconds)
	h.done(c, err, http.StatusOK, gin.H{"seconds": *in.Seconds})
}

func (h *roomAPI) mutedWords(c *gin.Context) {
	var in struct {
		Words []string      `json:"words"`
		Mode  room.WordMode `json:"mode"`
	}
	if !h.bind(c, &in) {
		return
	}
	if in.Words == nil {
		h.problem(c, commerce.FieldError("words", "is required ([] clears the list)"))
		return
	}
	words, mode, err := h.room.SetMutedWords(c.Request.Context(), roomActor(c), c.Param("id"), in.Words, in.Mode)
	h.done(c, err, http.StatusOK, gin.H{"words": words, "mode": mode})
}

func (h *roomAPI) pinMessage(c *gin.Context) {
	var in struct {
		Text string `json:"text"`
	}
	if !h.bind(c, &in) {
		return
	}
	m, err := h.room.PinMessage(c.Request.Context(), roomActor(c), c.Param("id"), in.Text)
	h.done(c, err, http.StatusOK, m)
}

func (h *roomAPI) unpinMessage(c *gin.Context) {
	err := h.room.UnpinMessage(c.Request.Context(), roomActor(c), c.Param("id"))
	h.done(c, err, http.StatusNoContent, nil)
}

func (h *roomAPI) pinProduct(c *gin.Context) {
	var in room.ProductPin
	if !h.bind(c, &in) {
		return
	}
	p, err := h.room.PinProduct(c.Request.Context(), roomActor(c), c.Param("id"), in)
	h.done(c, err, http.StatusOK, p)
}

func (h *roomAPI) unpinProduct(c *gin.Context) {
	err := h.room.UnpinProduct(c.Request.Context(), roomActor(c), c.Param("id"))
	h.done(c, err, http.StatusNoContent, nil)
}
