package rest

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/centrifugal/protocol"
	"github.com/gin-gonic/gin"

	"github.com/livehub/livehub/hub"
)

// serverAPI answers /api/<method> with the request and response shapes of
// Centrifugo's server HTTP API, so existing backend SDKs work: a result in
// {"result": ...} or an error in {"error": {"code", "message"}}.
type serverAPI struct {
	node    *hub.Node
	key     string
	maxBody int64
	log     *slog.Logger
}

type apiError struct {
	Code    uint32 `json:"code"`
	Message string `json:"message"`
}

// Server API error codes, as Centrifugo's.
var (
	errAPIInternal     = apiError{100, "internal server error"}
	errAPIUnauthorized = apiError{101, "unauthorized"}
	errAPIMethod       = apiError{104, "method not found"}
	errAPIBadRequest   = apiError{107, "bad request"}
)

func (a *serverAPI) authorized(r *http.Request) bool {
	if a.key == "" {
		return false
	}
	got := r.Header.Get("X-API-Key")
	if got == "" {
		if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "apikey "); ok {
			got = v
		}
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(a.key)) == 1
}

func (a *serverAPI) handle(c *gin.Context) {
	if !a.authorized(c.Request) {
		c.JSON(http.StatusUnauthorized, gin.H{"error": errAPIUnauthorized})
		return
	}
	method := c.Param("method")
	h, ok := apiMethods[method]
	if !ok {
		c.JSON(http.StatusNotFound, gin.H{"error": errAPIMethod})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, a.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			c.JSON(http.StatusRequestEntityTooLarge, gin.H{"error": apiError{107, fmt.Sprintf("body larger than %d bytes", a.maxBody)}})
			return
		}
		c.JSON(http.StatusBadRequest, gin.H{"error": errAPIBadRequest})
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 10*time.Second)
	defer cancel()
	res, err := h(ctx, a.node, body)
	if err != nil {
		status, e := a.toAPIError(method, err)
		c.JSON(status, gin.H{"error": e})
		return
	}
	c.JSON(http.StatusOK, gin.H{"result": res})
}

// badRequest is a request the caller must fix; its message says what.
type badRequest struct{ msg string }

func (b badRequest) Error() string { return b.msg }

func (a *serverAPI) toAPIError(method string, err error) (int, apiError) {
	var br badRequest
	if errors.As(err, &br) {
		return http.StatusBadRequest, apiError{107, br.msg}
	}
	var he *hub.Error
	if errors.As(err, &he) {
		if he.Code == hub.ErrorInternal.Code {
			a.log.Error("server api", "method", method, "err", err)
		}
		return http.StatusOK, apiError{he.Code, he.Message}
	}
	a.log.Error("server api", "method", method, "err", err)
	return http.StatusOK, errAPIInternal
}

// decodeError is a body that could not be read; Field names the JSON field
// at fault when there is one.
type decodeError struct {
	Field string
	Msg   string
}

func (e *decodeError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("field %q: %s", e.Field, e.Msg)
	}
	return e.Msg
}

// decodeStrict reads a JSON object strictly: unknown fields, wrong types and
// trailing data are refused with the field named.
func decodeStrict(body []byte, v any) *decodeError {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &decodeError{Field: te.Field, Msg: "expected " + jsonTypeName(te.Type.Kind().String())}
		}
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return &decodeError{Field: strings.Trim(f, `"`), Msg: "unknown field"}
		}
		return &decodeError{Msg: "malformed JSON: " + strings.TrimPrefix(err.Error(), "json: ")}
	}
	if dec.More() {
		return &decodeError{Msg: "trailing data after the JSON object"}
	}
	return nil
}

func jsonTypeName(kind string) string {
	switch kind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	}
	return kind
}

// decode reads a server API request strictly.
func decode(body []byte, v any) error {
	if err := decodeStrict(body, v); err != nil {
		return badRequest{err.Error()}
	}
	return nil
}

func required(field, v string) error {
	if v == "" {
		return badRequest{fmt.Sprintf("field %q is required", field)}
	}
	return nil
}

type apiMethod func(ctx context.Context, n *hub.Node, body []byte) (any, error)

var apiMethods = map[string]apiMethod{
	"publish":        apiPublish,
	"broadcast":      apiBroadcast,
	"subscribe":      apiSubscribe,
	"unsubscribe":    apiUnsubscribe,
	"disconnect":     apiDisconnect,
	"presence":       apiPresence,
	"presence_stats": apiPresenceStats,
	"history":        apiHistory,
	"history_remove": apiHistoryRemove,
	"channels":       apiChannels,
	"info":           apiInfo,
}

type publishRequest struct {
	Channel        string            `json:"channel"`
	Data           json.RawMessage   `json:"data"`
	Tags           map[string]string `json:"tags,omitempty"`
	IdempotencyKey string            `json:"idempotency_key,omitempty"`
}

type publishResult struct {
	Offset uint64 `json:"offset,omitempty"`
	Epoch  string `json:"epoch,omitempty"`
}

func apiPublish(ctx context.Context, n *hub.Node, body []byte) (any, error) {
	var req publishRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := required("channel", req.Channel); err != nil {
		return nil, err
	}
	if len(req.Data) == 0 {
		return nil, badRequest{`field "data" is required`}
	}
	sp, err := n.Publish(ctx, req.Channel, req.Data, hub.PublishRequest{IdempotencyKey: req.IdempotencyKey, Tags: req.Tags})
	if err != nil {
		return nil, err
	}
	return publishResult{Offset: sp.Offset, Epoch: sp.Epoch}, nil
}

type broadcastRequest struct {
	Channels       []string          `json:"channels"`
	Data           json.RawMessage   `json:"data"`
	Tags           map[string]string `json:"tags,omitempty"`
	IdempotencyKey string            `json:"idempotency_key,omitempty"`
}

type broadcastResponse struct {
	Result *publishResult `json:"result,omitempty"`
	Error  *apiError      `json:"error,omitempty"`
}

// maxBroadcastChannels bounds one broadcast call.
const maxBroadcastChannels = 1000

func apiBroadcast(ctx context.Context, n *hub.Node, body []byte) (any, error) {
	var req broadcastRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if len(req.Channels) == 0 {
		return nil, badRequest{`field "channels" is required`}
	}
	if len(req.Channels) > maxBroadcastChannels {
		return nil, badRequest{fmt.Sprintf(`field "channels": at most %d channels`, maxBroadcastChannels)}
	}
	if len(req.Data) == 0 {
		return nil, badRequest{`field "data" is required`}
	}
	out := make([]broadcastResponse, len(req.Channels))
	// One call for every channel: the Redis engine publishes them in one
	// round trip.
	for i, r := range n.Broadcast(ctx, req.Channels, req.Data, hub.PublishRequest{IdempotencyKey: req.IdempotencyKey, Tags: req.Tags}) {
		if r.Err != nil {
			e := errAPIInternal
			var he *hub.Error
			if errors.As(r.Err, &he) {
				e = apiError{he.Code, he.Message}
			}
			out[i].Error = &e
			continue
		}
		out[i].Result = &publishResult{Offset: r.Position.Offset, Epoch: r.Position.Epoch}
	}
	return gin.H{"responses": out}, nil
}

type userChannelRequest struct {
	User    string `json:"user"`
	Channel string `json:"channel"`
}

func apiSubscribe(ctx context.Context, n *hub.Node, body []byte) (any, error) {
	var req userChannelRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := errors.Join(required("user", req.User), required("channel", req.Channel)); err != nil {
		return nil, badRequest{err.Error()}
	}
	return struct{}{}, n.Subscribe(ctx, req.User, req.Channel)
}

func apiUnsubscribe(ctx context.Context, n *hub.Node, body []byte) (any, error) {
	var req userChannelRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := errors.Join(required("user", req.User), required("channel", req.Channel)); err != nil {
		return nil, badRequest{err.Error()}
	}
	return struct{}{}, n.Unsubscribe(ctx, req.User, req.Channel)
}

type disconnectRequest struct {
	User       string `json:"user"`
	Client     string `json:"client,omitempty"`
	Disconnect *struct {
		Code   uint32 `json:"code"`
		Reason string `json:"reason"`
	} `json:"disconnect,omitempty"`
}

func apiDisconnect(ctx context.Context, n *hub.Node, body []byte) (any, error) {
	var req disconnectRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := required("user", req.User); err != nil {
		return nil, err
	}
	d := hub.DisconnectForceNoReconnect
	if req.Disconnect != nil {
		// 3000 means the peer went away; it cannot be sent.
		if req.Disconnect.Code < 3001 || req.Disconnect.Code > 4999 {
			return nil, badRequest{`field "disconnect.code": must be within 3001-4999`}
		}
		if len(req.Disconnect.Reason) > 100 {
			return nil, badRequest{`field "disconnect.reason": at most 100 bytes`}
		}
		d = hub.Disconnect{Code: req.Disconnect.Code, Reason: req.Disconnect.Reason}
	}
	return struct{}{}, n.DisconnectUser(ctx, req.User, req.Client, d)
}

type channelRequest struct {
	Channel string `json:"channel"`
}

func decodeChannel(body []byte) (string, error) {
	var req channelRequest
	if err := decode(body, &req); err != nil {
		return "", err
	}
	return req.Channel, required("channel", req.Channel)
}

type clientInfo struct {
	User     string          `json:"user"`
	Client   string          `json:"client"`
	ConnInfo json.RawMessage `json:"conn_info,omitempty"`
	ChanInfo json.RawMessage `json:"chan_info,omitempty"`
}

func toClientInfo(i *hub.ClientInfo) *clientInfo {
	if i == nil {
		return nil
	}
	return &clientInfo{User: i.UserID, Client: i.ClientID, ConnInfo: i.ConnInfo, ChanInfo: i.ChanInfo}
}

func apiPresence(ctx context.Context, n *hub.Node, body []byte) (any, error) {
	ch, err := decodeChannel(body)
	if err != nil {
		return nil, err
	}
	p, err := n.Presence(ctx, ch)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*clientInfo, len(p))
	for k, v := range p {
		out[k] = toClientInfo(v)
	}
	return gin.H{"presence": out}, nil
}

func apiPresenceStats(ctx context.Context, n *hub.Node, body []byte) (any, error) {
	ch, err := decodeChannel(body)
	if err != nil {
		return nil, err
	}
	return n.PresenceStats(ctx, ch)
}

type historyRequest struct {
	Channel string              `json:"channel"`
	Limit   int                 `json:"limit"`
	Since   *hub.StreamPosition `json:"since,omitempty"`
	Reverse bool                `json:"reverse,omitempty"`
}

type publication struct {
	Data   json.RawMessage   `json:"data"`
	Offset uint64            `json:"offset,omitempty"`
	Info   *clientInfo       `json:"info,omitempty"`
	Tags   map[string]string `json:"tags,omitempty"`
}

func apiHistory(ctx context.Context, n *hub.Node, body []byte) (any, error) {
	var req historyRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := required("channel", req.Channel); err != nil {
		return nil, err
	}
	pubs, sp, err := n.History(ctx, req.Channel, req.Limit, req.Since, req.Reverse)
	if err != nil {
		return nil, err
	}
	out := make([]publication, len(pubs))
	for i, p := range pubs {
		out[i] = publication{Data: json.RawMessage(p.Data), Offset: p.Offset, Tags: p.Tags, Info: fromProtoInfo(p.Info)}
	}
	return gin.H{"publications": out, "offset": sp.Offset, "epoch": sp.Epoch}, nil
}

func fromProtoInfo(i *protocol.ClientInfo) *clientInfo {
	if i == nil {
		return nil
	}
	return &clientInfo{User: i.User, Client: i.Client, ConnInfo: json.RawMessage(i.ConnInfo), ChanInfo: json.RawMessage(i.ChanInfo)}
}

func apiHistoryRemove(ctx context.Context, n *hub.Node, body []byte) (any, error) {
	ch, err := decodeChannel(body)
	if err != nil {
		return nil, err
	}
	return struct{}{}, n.RemoveHistory(ctx, ch)
}

func apiChannels(ctx context.Context, n *hub.Node, body []byte) (any, error) {
	var req struct {
		Pattern string `json:"pattern,omitempty"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := decode(body, &req); err != nil {
			return nil, err
		}
	}
	// A trailing '*' is the only wildcard: a prefix match. Without it the
	// pattern names one channel.
	prefix, wildcard := strings.CutSuffix(req.Pattern, "*")
	chans, err := n.Channels(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make(map[string]gin.H, len(chans))
	for ch, cnt := range chans {
		if req.Pattern != "" && !wildcard && ch != req.Pattern {
			continue
		}
		out[ch] = gin.H{"num_clients": cnt}
	}
	return gin.H{"channels": out}, nil
}

func apiInfo(ctx context.Context, n *hub.Node, _ []byte) (any, error) {
	nodes, err := n.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	return gin.H{"nodes": nodes}, nil
}
