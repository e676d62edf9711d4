package rest

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/livehub/livehub/internal/auth"
	"github.com/livehub/livehub/internal/commerce"
	"github.com/livehub/livehub/push"
)

// Defaults of DevicesOptions.
const (
	defaultMaxDevices       = 10
	defaultDevicesBodyBytes = 16 << 10
)

// Bounds of a device's fields. APNs tokens are 64 hex digits today, but
// Apple may lengthen them; FCM registration tokens are about 160
// characters.
const (
	maxDeviceToken = 4096
	minIOSToken    = 32
	maxIOSToken    = 200
	maxAppID       = 255
	maxLocale      = 35
	maxAppVersion  = 64
)

// DevicesOptions configure the device registration API.
type DevicesOptions struct {
	// Store keeps the devices. Required.
	Store push.DeviceStore
	// Tokens verifies the Bearer JWTs, the same tokens the hub accepts.
	Tokens *auth.Verifier
	// MaxPerUser bounds the devices of one user. Registering one more
	// forgets the user's least recently registered device: a user who
	// reinstalls the app or changes phones leaves stale tokens behind, and
	// the new phone must not be the one refused. Zero means 10.
	MaxPerUser int
	// MaxBodyBytes bounds request bodies. Zero means 16 KiB.
	MaxBodyBytes int64
	// Logger receives request errors. Nil means slog.Default().
	Logger *slog.Logger
}

// devicesAPI serves the device routes with the /v1 API's authentication,
// problem documents and strict binding.
type devicesAPI struct {
	*v1
	store push.DeviceStore
	max   int
}

// MountDevices adds the signed-in user's push devices to r:
//
//	POST   /v1/devices          {platform, token, app_id, locale, app_version}
//	                            registers the device, or updates it: 201 when
//	                            the token is new to the user, 200 otherwise
//	GET    /v1/devices          {"devices": [...]}
//	DELETE /v1/devices/:token   204; 404 unless the caller owns the token
//
// Errors are application/problem+json as in the rest of /v1, with the
// field at fault for invalid bodies.
func MountDevices(r gin.IRouter, o DevicesOptions) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = defaultDevicesBodyBytes
	}
	if o.MaxPerUser <= 0 {
		o.MaxPerUser = defaultMaxDevices
	}
	h := &devicesAPI{
		v1:    &v1{o: V1Options{Tokens: o.Tokens, MaxBodyBytes: o.MaxBodyBytes, Logger: o.Logger}, log: o.Logger},
		store: o.Store,
		max:   o.MaxPerUser,
	}
	g := r.Group("/v1/devices", h.authenticate)
	g.POST("", h.register)
	g.GET("", h.list)
	g.DELETE("/:token", h.unregister)
}

// deviceInput is the body of POST /v1/devices.
type deviceInput struct {
	Platform   string `json:"platform"`
	Token      string `json:"token"`
	AppID      string `json:"app_id"`
	Locale     string `json:"locale"`
	AppVersion string `json:"app_version"`
}

// deviceView is a device as the API shows it to its owner.
type deviceView struct {
	Platform   string    `json:"platform"`
	Token      string    `json:"token"`
	AppID      string    `json:"app_id,omitempty"`
	Locale     string    `json:"locale,omitempty"`
	AppVersion string    `json:"app_version,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
}

func viewOf(d push.Device) deviceView {
	return deviceView{Platform: d.Platform, Token: d.Token, AppID: d.AppID, Locale: d.Locale, AppVersion: d.AppVersion, UpdatedAt: d.UpdatedAt}
}

func (in *deviceInput) validate() error {
	switch {
	case in.Platform == "":
		return commerce.FieldError("platform", "is required: %s or %s", push.PlatformIOS, push.PlatformAndroid)
	case in.Platform != push.PlatformIOS && in.Platform != push.PlatformAndroid:
		return commerce.FieldError("platform", "must be %s or %s", push.PlatformIOS, push.PlatformAndroid)
	case in.Token == "":
		return commerce.FieldError("token", "is required")
	case len(in.Token) > maxDeviceToken || !printable(in.Token):
		return commerce.FieldError("token", "must be 1 to %d printable characters without spaces", maxDeviceToken)
	case in.Platform == push.PlatformIOS && (len(in.Token) < minIOSToken || len(in.Token) > maxIOSToken || !isHex(in.Token)):
		return commerce.FieldError("token", "an APNs device token is %d to %d hex digits", minIOSToken, maxIOSToken)
	case len(in.AppID) > maxAppID || !matches(in.AppID, appIDByte):
		return commerce.FieldError("app_id", "must be a bundle id or package name: up to %d letters, digits, '.', '_' or '-'", maxAppID)
	case len(in.Locale) > maxLocale || !matches(in.Locale, localeByte):
		return commerce.FieldError("locale", "must be a language tag such as id-ID, up to %d characters", maxLocale)
	case len(in.AppVersion) > maxAppVersion || (in.AppVersion != "" && !printableText(in.AppVersion)):
		return commerce.FieldError("app_version", "must be up to %d printable characters", maxAppVersion)
	}
	return nil
}

// printable reports whether s is printable ASCII without space.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// printableText reports whether s is printable ASCII, spaces allowed.
func printableText(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	return matches(s, func(b byte) bool { return b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F' })
}

func appIDByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-'
}

func localeByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '-'
}

// matches reports whether every byte of s passes ok.
func matches(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

// register adds or updates the caller's device, then forgets the least
// recently registered ones past MaxPerUser. Two registrations racing may
// leave one device more than the bound until the next registration.
func (h *devicesAPI) register(c *gin.Context) {
	var in deviceInput
	if !h.bind(c, &in) {
		return
	}
	if err := in.validate(); err != nil {
		h.problem(c, err)
		return
	}
	ctx := c.Request.Context()
	user := actor(c).UserID
	before, err := h.store.List(ctx, user)
	if err != nil {
		h.problem(c, deviceStoreError(err))
		return
	}
	known := slices.ContainsFunc(before, func(d push.Device) bool { return d.Token == in.Token })
	d := push.Device{
		UserID: user, Platform: in.Platform, Token: in.Token,
		AppID: in.AppID, Locale: in.Locale, AppVersion: in.AppVersion,
		UpdatedAt: time.Now().UTC().Truncate(time.Millisecond),
	}
	if err := h.store.Register(ctx, d); err != nil {
		h.problem(c, deviceStoreError(err))
		return
	}
	h.evictOldest(ctx, user, in.Token)
	status := http.StatusCreated
	if known {
		status = http.StatusOK
	}
	c.JSON(status, viewOf(d))
}

// evictOldest forgets user's least recently registered devices past the
// bound, never keep. A failure is logged: the registration stands.
func (h *devicesAPI) evictOldest(ctx context.Context, user, keep string) {
	all, err := h.store.List(ctx, user)
	if err != nil {
		h.log.Warn("devices: listing for the per-user bound", "user", user, "err", err)
		return
	}
	if len(all) <= h.max {
		return
	}
	slices.SortStableFunc(all, func(a, b push.Device) int { return a.UpdatedAt.Compare(b.UpdatedAt) })
	extra := len(all) - h.max
	for _, d := range all {
		if extra == 0 {
			break
		}
		if d.Token == keep {
			continue
		}
		if err := h.store.Unregister(ctx, user, d.Token); err != nil {
			h.log.Warn("devices: forgetting the oldest device", "user", user, "err", err)
			return
		}
		extra--
	}
}

func (h *devicesAPI) list(c *gin.Context) {
	ds, err := h.store.List(c.Request.Context(), actor(c).UserID)
	if err != nil {
		h.problem(c, deviceStoreError(err))
		return
	}
	out := make([]deviceView, len(ds))
	for i, d := range ds {
		out[i] = viewOf(d)
	}
	c.JSON(http.StatusOK, gin.H{"devices": out})
}

// unregister forgets a device of the caller. Another user's token is not
// found rather than forbidden: tokens are not to be probed.
func (h *devicesAPI) unregister(c *gin.Context) {
	ctx := c.Request.Context()
	user, token := actor(c).UserID, c.Param("token")
	ds, err := h.store.List(ctx, user)
	if err != nil {
		h.problem(c, deviceStoreError(err))
		return
	}
	if !slices.ContainsFunc(ds, func(d push.Device) bool { return d.Token == token }) {
		h.problem(c, commerce.Errorf(commerce.ENOTFOUND, "no such device"))
		return
	}
	if err := h.store.Unregister(ctx, user, token); err != nil {
		h.problem(c, deviceStoreError(err))
		return
	}
	c.Status(http.StatusNoContent)
}

// deviceStoreError keeps a store's domain error, and makes any other a
// temporary failure: the store is down, the client may retry.
func deviceStoreError(err error) error {
	if commerce.ErrorCode(err) != commerce.EINTERNAL {
		return err
	}
	return &commerce.Error{Code: commerce.EUNAVAILABLE, Message: "the device registry is not answering; try again", Err: err}
}
