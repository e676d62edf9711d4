package rest

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/campaign"
)

// defaultCampaignBodyBytes bounds a campaign request: a title and a body of
// a few hundred characters with keys and arguments.
const defaultCampaignBodyBytes = 16 << 10

// CampaignOptions configure the follow and campaign API.
type CampaignOptions struct {
	// Campaigns runs follows and campaigns. Required.
	Campaigns *campaign.Service
	// Tokens verifies the Bearer JWTs, the same tokens the hub accepts.
	Tokens *auth.Verifier
	// MaxBodyBytes bounds request bodies. Zero means 16 KiB.
	MaxBodyBytes int64
	// Logger receives request errors. Nil means slog.Default().
	Logger *slog.Logger
}

// campaignAPI serves the follow and campaign routes with the /v1 API's
// authentication, problem documents and strict binding.
type campaignAPI struct {
	*v1
	svc *campaign.Service
}

// MountCampaigns adds follows and follower campaigns to r:
//
//	POST   /v1/hosts/:id/follow              the caller follows the host: 204
//	DELETE /v1/hosts/:id/follow              the caller unfollows it: 204
//	GET    /v1/hosts/:id/follow              {"host_id", "following"}
//	GET    /v1/hosts/:id/followers/count     {"host_id", "followers"}
//	POST   /v1/streams/:id/notify-followers  {title, body, title_key,
//	                                         title_args, body_key, body_args}
//	                                         by the stream's host or an admin:
//	                                         202 with the campaign
//	GET    /v1/campaigns/:id                 the campaign, to its host or an admin
//
// Following and unfollowing are idempotent. A second campaign for a stream
// within the service's window is 429 with Retry-After. Errors are
// application/problem+json as in the rest of /v1, with the field at fault
// for invalid bodies.
func MountCampaigns(r gin.IRouter, o CampaignOptions) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = defaultCampaignBodyBytes
	}
	h := &campaignAPI{
		v1:  &v1{o: V1Options{Tokens: o.Tokens, MaxBodyBytes: o.MaxBodyBytes, Logger: o.Logger}, log: o.Logger},
		svc: o.Campaigns,
	}
	g := r.Group("/v1", h.authenticate)
	g.POST("/hosts/:id/follow", h.follow)
	g.DELETE("/hosts/:id/follow", h.unfollow)
	g.GET("/hosts/:id/follow", h.following)
	g.GET("/hosts/:id/followers/count", h.followers)
	g.POST("/streams/:id/notify-followers", h.notify)
	g.GET("/campaigns/:id", h.get)
}

func campaignActor(c *gin.Context) campaign.Actor {
	a := actor(c)
	return campaign.Actor{UserID: a.UserID, Roles: a.Roles}
}

func (h *campaignAPI) follow(c *gin.Context) {
	if err := h.svc.Follow(c.Request.Context(), campaignActor(c), c.Param("id")); err != nil {
		h.problem(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (h *campaignAPI) unfollow(c *gin.Context) {
	if err := h.svc.Unfollow(c.Request.Context(), campaignActor(c), c.Param("id")); err != nil {
		h.problem(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (h *campaignAPI) following(c *gin.Context) {
	ok, err := h.svc.IsFollowing(c.Request.Context(), campaignActor(c), c.Param("id"))
	if err != nil {
		h.problem(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"host_id": c.Param("id"), "following": ok})
}

func (h *campaignAPI) followers(c *gin.Context) {
	n, err := h.svc.FollowerCount(c.Request.Context(), c.Param("id"))
	if err != nil {
		h.problem(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"host_id": c.Param("id"), "followers": n})
}

func (h *campaignAPI) notify(c *gin.Context) {
	var in campaign.Message
	if !h.bind(c, &in) {
		return
	}
	cmp, err := h.svc.NotifyFollowers(c.Request.Context(), campaignActor(c), c.Param("id"), in)
	if err != nil {
		if wait, ok := campaign.RetryAfter(err); ok {
			// Whole seconds, rounded up, so a client that waits as told
			// is not refused again.
			secs := int64((wait + time.Second - 1) / time.Second)
			c.Writer = &retryAfterWriter{ResponseWriter: c.Writer, value: strconv.FormatInt(max(secs, 1), 10)}
		}
		h.problem(c, err)
		return
	}
	c.Header("Location", "/v1/campaigns/"+cmp.ID)
	c.JSON(http.StatusAccepted, cmp)
}

func (h *campaignAPI) get(c *gin.Context) {
	cmp, err := h.svc.GetCampaign(c.Request.Context(), campaignActor(c), c.Param("id"))
	if err != nil {
		h.problem(c, err)
		return
	}
	c.JSON(http.StatusOK, cmp)
}

// retryAfterWriter sets Retry-After as the headers go out, over the
// one-second default the problem writer gives every rate-limited answer.
type retryAfterWriter struct {
	gin.ResponseWriter
	value string
}

func (w *retryAfterWriter) WriteHeader(code int) {
	w.Header().Set("Retry-After", w.value)
	w.ResponseWriter.WriteHeader(code)
}

func (w *retryAfterWriter) WriteHeaderNow() {
	w.Header().Set("Retry-After", w.value)
	w.ResponseWriter.WriteHeaderNow()
}

func (w *retryAfterWriter) Write(b []byte) (int, error) {
	w.Header().Set("Retry-After", w.value)
	return w.ResponseWriter.Write(b)
}

func (w *retryAfterWriter) WriteString(s string) (int, error) {
	w.Header().Set("Retry-After", w.value)
	return w.ResponseWriter.WriteString(s)
}
