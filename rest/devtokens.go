package rest

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/livehub/livehub/internal/auth"
)

// devTokenTTL is how long a demo token minted by POST /dev/token lasts.
const devTokenTTL = 12 * time.Hour

type devTokenRequest struct {
	Sub   string   `json:"sub"`
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
}

// MountDevTokens mounts POST /dev/token, which mints a connection token for
// any user and roles the caller asks for: {"sub","name","roles"} answers
// {"token","sub","name","roles","expires_at"}. It lets the demo pages of
// web/static sign in without a backend. It hands out host and admin tokens
// to anyone, so it must only be mounted in development mode (-dev).
func MountDevTokens(r gin.IRouter, secret []byte) {
	r.POST("/dev/token", func(c *gin.Context) {
		var req devTokenRequest
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, 4096)
		if err := c.ShouldBindJSON(&req); err != nil {
			devProblem(c, "send {\"sub\": \"...\", \"name\": \"...\", \"roles\": [...]}", "")
			return
		}
		req.Sub = strings.TrimSpace(req.Sub)
		if req.Sub == "" || len(req.Sub) > 100 {
			devProblem(c, "must be 1 to 100 characters", "sub")
			return
		}
		roles := make([]auth.Role, 0, len(req.Roles))
		for _, s := range req.Roles {
			role, err := auth.ParseRole(s)
			if err != nil {
				devProblem(c, err.Error(), "roles")
				return
			}
			roles = append(roles, role)
		}
		tok, err := auth.Mint(secret, auth.Claims{Subject: req.Sub, Name: req.Name, Roles: roles}, devTokenTTL)
		if err != nil {
			devProblem(c, err.Error(), "")
			return
		}
		c.Header("Cache-Control", "no-store")
		c.JSON(http.StatusOK, gin.H{
			"token":      tok,
			"sub":        req.Sub,
			"name":       req.Name,
			"roles":      roles,
			"expires_at": time.Now().Add(devTokenTTL).UTC().Format(time.RFC3339),
		})
	})
}

// WithDevTokens serves POST /dev/token (MountDevTokens) in front of next, so
// the binary can add it in development mode with one line.
func WithDevTokens(next http.Handler, secret []byte) http.Handler {
	r := gin.New()
	r.Use(gin.Recovery())
	MountDevTokens(r, secret)
	r.NoRoute(gin.WrapH(next))
	r.NoMethod(gin.WrapH(next))
	return r
}

func devProblem(c *gin.Context, detail, field string) {
	body := gin.H{"code": "invalid", "title": "Invalid request", "status": http.StatusBadRequest,
		"type": "https://livehub.dev/problems/invalid", "detail": detail}
	if field != "" {
		body["field"] = field
	}
	c.Header("Content-Type", "application/problem+json")
	c.AbortWithStatusJSON(http.StatusBadRequest, body)
}
