package rest

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/internal/promreg"
	"github.com/livehub/livehub/internal/shop"
)

// V1Options configure the commerce API under /v1.
type V1Options struct {
	Shop *shop.Service
	// Tokens verifies the Bearer JWTs, the same tokens the hub accepts.
	Tokens *auth.Verifier
	// Simulated enables POST /v1/payments/simulated/{order_id}/pay.
	Simulated bool
	// Notifications handles the payment gateway's notification webhook at
	// POST /v1/payments/{Gateway}/notifications; nil mounts none.
	Notifications NotificationHandler
	MaxBodyBytes  int64
	Logger        *slog.Logger
	// CheckoutLimits bound POST /v1/checkout per buyer and per client IP.
	CheckoutLimits CheckoutLimits
	// CheckoutAdmission bounds the checkouts in progress on the node.
	CheckoutAdmission CheckoutAdmission
	// Registerer receives livehub_rest_rate_limited_total and
	// livehub_payment_notifications_total. Nil registers nowhere.
	Registerer prometheus.Registerer
}

// NotificationHandler turns a gateway's notification body into a decision.
type NotificationHandler interface {
	// Gateway names the gateway in the webhook path.
	Gateway() string
	// Handle verifies and applies a notification. An error with code
	// ESIGNATURE means it was forged and nothing changed.
	Handle(r *http.Request, body []byte) error
}

type v1 struct {
	o   V1Options
	log *slog.Logger
	// notifications counts gateway notifications by result: applied,
	// forged (bad signature), invalid, error.
	notifications *prometheus.CounterVec
}

// mountV1 adds the /v1 routes.
func mountV1(r *gin.Engine, o V1Options) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	h := &v1{o: o, log: o.Logger, notifications: promreg.Register(o.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "livehub_payment_notifications_total",
		Help: "Payment gateway notifications received, by result (applied, forged, invalid, error).",
	}, []string{"result"}))}
	g := r.Group("/v1")
	authed := g.Group("", h.authenticate)
	authed.POST("/streams", h.createStream)
	authed.GET("/streams/:id", h.getStream)
	authed.POST("/streams/:id/end", h.endStream)
	authed.POST("/streams/:id/flash-sales", h.createFlashSale)
	authed.GET("/flash-sales/:id", h.getFlashSale)
	authed.POST("/flash-sales/:id/end", h.endFlashSale)
	// Checkouts are admitted first, before the token is checked: under
	// overload a refusal should cost the node as little as it can.
	g.POST("/checkout", newAdmission(o.CheckoutAdmission, h, o.Registerer).handle, h.authenticate,
		newCheckoutGuard(o.CheckoutLimits, h, o.Registerer).handle, h.checkout)
	authed.GET("/orders/:id", h.getOrder)
	authed.GET("/orders", h.listOrders)
	if o.Simulated {
		authed.POST("/payments/simulated/:order_id/pay", h.simulatedPay)
	}
	if o.Notifications != nil {
		// Gateways sign their notifications; they carry no JWT.
		g.POST("/payments/"+o.Notifications.Gateway()+"/notifications", h.notification)
	}
}

const actorKey = "livehub.actor"

// authenticate reads the Bearer token into the request's actor.
func (h *v1) authenticate(c *gin.Context) {
	tok, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !ok || tok == "" {
		h.problem(c, commerce.Errorf(commerce.EUNAUTHORIZED, "send a token in the Authorization header: Bearer <token>"))
		c.Abort()
		return
	}
	claims, err := h.o.Tokens.VerifyConnect(tok)
	if errors.Is(err, auth.ErrKeysUnavailable) {
		// The token could not be checked: the identity provider's keys
		// are out of reach. 503 tells the app to retry, not to sign out.
		h.log.Warn("token could not be checked", "err", err)
		c.Header("Retry-After", "5")
		h.problem(c, commerce.Errorf(commerce.EUNAVAILABLE, "the token cannot be checked right now; retry shortly"))
		c.Abort()
		return
	}
	if err != nil {
		msg := "the token is not valid"
		if errors.Is(err, auth.ErrTokenExpired) {
			msg = "the token has expired"
		}
		h.problem(c, commerce.Errorf(commerce.EUNAUTHORIZED, "%s", msg))
		c.Abort()
		return
	}
	a := shop.Actor{UserID: claims.Subject, Name: claims.Name}
	for _, r := range claims.Roles {
		a.Roles = append(a.Roles, string(r))
	}
	c.Set(actorKey, a)
	c.Next()
}

func actor(c *gin.Context) shop.Actor {
	a, _ := c.Get(actorKey)
	return a.(shop.Actor)
}

// problem writes err as application/problem+json (RFC 9457) with a stable
// code and, for bad input, the field at fault. Internal details are logged,
// never sent.
func (h *v1) problem(c *gin.Context, err error) {
	var ce *commerce.Error
	if !errors.As(err, &ce) {
		ce = &commerce.Error{Code: commerce.EINTERNAL, Message: "internal error", Err: err}
	}
	if statusOf(ce.Code) >= 500 {
		h.log.Error("request failed", "method", c.Request.Method, "path", c.FullPath(), "code", ce.Code, "err", err)
	}
	h.writeProblem(c, ce)
}

// writeProblem writes ce as a problem document, without logging.
func (h *v1) writeProblem(c *gin.Context, ce *commerce.Error) {
	status := statusOf(ce.Code)
	body := gin.H{
		"type":   "https://livehub.dev/problems/" + strings.ReplaceAll(string(ce.Code), "_", "-"),
		"title":  titleOf(ce.Code),
		"status": status,
		"code":   ce.Code,
		"detail": ce.Message,
	}
	if ce.Field != "" {
		body["field"] = ce.Field
	}
	if ce.Code == commerce.ERATELIMIT && c.Writer.Header().Get("Retry-After") == "" {
		c.Header("Retry-After", "1")
	}
	c.Header("Content-Type", "application/problem+json")
	c.Status(status)
	_ = json.NewEncoder(c.Writer).Encode(body)
}

func statusOf(code commerce.Code) int {
	switch code {
	case commerce.EINVALID:
		return http.StatusBadRequest
	case commerce.EUNAUTHORIZED, commerce.ESIGNATURE:
		return http.StatusUnauthorized
	case commerce.EFORBIDDEN:
		return http.StatusForbidden
	case commerce.ENOTFOUND:
		return http.StatusNotFound
	case commerce.ECONFLICT, commerce.ESOLDOUT, commerce.ELIMIT, commerce.ENOTSTARTED, commerce.EENDED:
		return http.StatusConflict
	case commerce.EIDEMPOTENCY:
		return http.StatusUnprocessableEntity
	case commerce.ERATELIMIT:
		return http.StatusTooManyRequests
	case commerce.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func titleOf(code commerce.Code) string {
	switch code {
	case commerce.EINVALID:
		return "Invalid request"
	case commerce.EUNAUTHORIZED:
		return "Unauthorized"
	case commerce.ESIGNATURE:
		return "Bad signature"
	case commerce.EFORBIDDEN:
		return "Forbidden"
	case commerce.ENOTFOUND:
		return "Not found"
	case commerce.ECONFLICT:
		return "Conflict"
	case commerce.ESOLDOUT:
		return "Sold out"
	case commerce.ELIMIT:
		return "Per-user limit reached"
	case commerce.ENOTSTARTED:
		return "Sale not started"
	case commerce.EENDED:
		return "Sale ended"
	case commerce.EIDEMPOTENCY:
		return "Idempotency key reused with another request"
	case commerce.ERATELIMIT:
		return "Too many requests"
	case commerce.EUNAVAILABLE:
		return "Service unavailable"
	}
	return "Internal error"
}

// bind reads a JSON body strictly into v, answering a problem when it cannot.
func (h *v1) bind(c *gin.Context, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, h.o.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.problem(c, commerce.Errorf(commerce.EINVALID, "the body is larger than %d bytes", h.o.MaxBodyBytes))
			return false
		}
		h.problem(c, commerce.Errorf(commerce.EINVALID, "could not read the body"))
		return false
	}
	if derr := decodeStrict(body, v); derr != nil {
		h.problem(c, &commerce.Error{Code: commerce.EINVALID, Field: derr.Field, Message: derr.Msg})
		return false
	}
	return true
}

func (h *v1) createStream(c *gin.Context) {
	var in struct {
		Title string `json:"title"`
	}
	if !h.bind(c, &in) {
		return
	}
	st, err := h.o.Shop.CreateStream(c.Request.Context(), actor(c), in.Title)
	if err != nil {
		h.problem(c, err)
		return
	}
	c.JSON(http.StatusCreated, st)
}

func (h *v1) getStream(c *gin.Context) {
	st, err := h.o.Shop.GetStream(c.Request.Context(), c.Param("id"))
	if err != nil {
		h.problem(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

func (h *v1) endStream(c *gin.Context) {
	st, err := h.o.Shop.EndStream(c.Request.Context(), actor(c), c.Param("id"))
	if err != nil {
		h.problem(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

func (h *v1) createFlashSale(c *gin.Context) {
	var in shop.FlashSaleInput
	if !h.bind(c, &in) {
		return
	}
	sale, err := h.o.Shop.CreateFlashSale(c.Request.Context(), actor(c), c.Param("id"), in)
	if err != nil {
		h.problem(c, err)
		return
	}
	c.JSON(http.StatusCreated, sale)
}

func (h *v1) getFlashSale(c *gin.Context) {
	sale, err := h.o.Shop.GetFlashSale(c.Request.Context(), c.Param("id"))
	if err != nil {
		h.problem(c, err)
		return
	}
	c.JSON(http.StatusOK, sale)
}

func (h *v1) endFlashSale(c *gin.Context) {
	sale, err := h.o.Shop.EndFlashSale(c.Request.Context(), actor(c), c.Param("id"))
	if err != nil {
		h.problem(c, err)
		return
	}
	c.JSON(http.StatusOK, sale)
}

func (h *v1) checkout(c *gin.Context) {
	var in shop.CheckoutInput
	if !h.bind(c, &in) {
		return
	}
	o, created, err := h.o.Shop.Checkout(c.Request.Context(), actor(c), in, c.GetHeader("Idempotency-Key"))
	if err != nil {
		h.problem(c, err)
		return
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
		c.Header("Idempotent-Replayed", "true")
	}
	c.Header("Location", "/v1/orders/"+o.ID)
	c.JSON(status, o)
}

func (h *v1) getOrder(c *gin.Context) {
	o, err := h.o.Shop.GetOrder(c.Request.Context(), actor(c), c.Param("id"))
	if err != nil {
		h.problem(c, err)
		return
	}
	c.JSON(http.StatusOK, o)
}

// listOrders answers GET /v1/orders?mine (the caller's orders).
func (h *v1) listOrders(c *gin.Context) {
	if _, mine := c.GetQuery("mine"); !mine {
		h.problem(c, commerce.FieldError("mine", "only ?mine listings are available"))
		return
	}
	limit := 50
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			h.problem(c, commerce.FieldError("limit", "must be between 1 and 100"))
			return
		}
		limit = n
	}
	orders, err := h.o.Shop.ListMyOrders(c.Request.Context(), actor(c), limit)
	if err != nil {
		h.problem(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"orders": orders})
}

// simulatedPay settles an order through the simulated gateway, as the
// buyer's "pay" button in development does.
func (h *v1) simulatedPay(c *gin.Context) {
	a := actor(c)
	ctx := c.Request.Context()
	o, err := h.o.Shop.GetOrder(ctx, a, c.Param("order_id"))
	if err != nil {
		h.problem(c, err)
		return
	}
	if o.BuyerID != a.UserID && !a.HasRole("admin") {
		h.problem(c, commerce.Errorf(commerce.EFORBIDDEN, "only the buyer pays"))
		return
	}
	if o.Payment.Gateway != "simulated" {
		h.problem(c, commerce.Errorf(commerce.ECONFLICT, "the order is not charged through the simulated gateway"))
		return
	}
	p := o.Payment
	p.Status, p.Method = "settlement", "simulated"
	o, err = h.o.Shop.MarkPaid(ctx, o.ID, p)
	if err != nil {
		h.problem(c, err)
		return
	}
	c.JSON(http.StatusOK, o)
}

// notification receives the gateway's HTTP notification. It answers fast:
// a verified notification is applied (idempotently) before 200; a forged one
// gets 401 and changes nothing.
func (h *v1) notification(c *gin.Context) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, 64<<10))
	if err != nil {
		h.notifications.WithLabelValues("invalid").Inc()
		h.problem(c, commerce.Errorf(commerce.EINVALID, "could not read the body"))
		return
	}
	if err := h.o.Notifications.Handle(c.Request, body); err != nil {
		var ce *commerce.Error
		switch {
		case errors.As(err, &ce) && ce.Code == commerce.ESIGNATURE:
			h.notifications.WithLabelValues("forged").Inc()
			h.log.Warn("payment notification refused: failed verification", "gateway", h.o.Notifications.Gateway(), "remote", c.ClientIP(), "reason", ce.Message)
		case errors.As(err, &ce) && ce.Code == commerce.EINVALID:
			h.notifications.WithLabelValues("invalid").Inc()
		default:
			h.notifications.WithLabelValues("error").Inc()
		}
		h.problem(c, err)
		return
	}
	h.notifications.WithLabelValues("applied").Inc()
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}
