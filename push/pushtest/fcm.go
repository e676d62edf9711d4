package pushtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/api/option"
)

// FCMReply is how the fake FCM answers one request.
type FCMReply struct {
	// Status is the HTTP status: 200, or an error status.
	Status int
	// Code is the error's canonical status (NOT_FOUND, UNAVAILABLE, ...).
	Code string
	// ErrorCode is the FcmError detail's errorCode (UNREGISTERED, ...).
	ErrorCode string
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter string
}

// WithRetryAfter returns r sending a Retry-After header of v.
func (r FCMReply) WithRetryAfter(v string) FCMReply { r.RetryAfter = v; return r }

// Answers FCM gives, for FCM.Reply.
var (
	FCMOK               = FCMReply{Status: http.StatusOK}
	FCMUnregistered     = FCMReply{Status: http.StatusNotFound, Code: "NOT_FOUND", ErrorCode: "UNREGISTERED"}
	FCMSenderIDMismatch = FCMReply{Status: http.StatusForbidden, Code: "PERMISSION_DENIED", ErrorCode: "SENDER_ID_MISMATCH"}
	FCMQuotaExceeded    = FCMReply{Status: http.StatusTooManyRequests, Code: "RESOURCE_EXHAUSTED", ErrorCode: "QUOTA_EXCEEDED"}
	FCMUnavailable      = FCMReply{Status: http.StatusServiceUnavailable, Code: "UNAVAILABLE", ErrorCode: "UNAVAILABLE"}
	FCMInternal         = FCMReply{Status: http.StatusInternalServerError, Code: "INTERNAL", ErrorCode: "INTERNAL"}
	FCMInvalidArgument  = FCMReply{Status: http.StatusBadRequest, Code: "INVALID_ARGUMENT", ErrorCode: "INVALID_ARGUMENT"}
)

// FCMMessage is the message of an FCM HTTP v1 send request, with the fields
// the fake checks. The fake refuses fields it does not know, so a field
// misnamed on the wire fails the test.
type FCMMessage struct {
	Token        string            `json:"token"`
	Topic        string            `json:"topic"`
	Condition    string            `json:"condition"`
	Data         map[string]string `json:"data"`
	Notification *struct {
		Title string `json:"title"`
		Body  string `json:"body"`
		Image string `json:"image"`
	} `json:"notification"`
	Android *FCMAndroidConfig `json:"android"`
	APNS    json.RawMessage   `json:"apns"`
	Webpush json.RawMessage   `json:"webpush"`
}

// FCMAndroidConfig is a message's android block.
type FCMAndroidConfig struct {
	CollapseKey           string                  `json:"collapse_key"`
	Priority              string                  `json:"priority"`
	TTL                   string                  `json:"ttl"`
	RestrictedPackageName string                  `json:"restricted_package_name"`
	Data                  map[string]string       `json:"data"`
	Notification          *FCMAndroidNotification `json:"notification"`
	DirectBootOK          bool                    `json:"direct_boot_ok"`
}

// FCMAndroidNotification is the android block's notification.
type FCMAndroidNotification struct {
	Title        string   `json:"title"`
	Body         string   `json:"body"`
	TitleLocKey  string   `json:"title_loc_key"`
	TitleLocArgs []string `json:"title_loc_args"`
	BodyLocKey   string   `json:"body_loc_key"`
	BodyLocArgs  []string `json:"body_loc_args"`
	Tag          string   `json:"tag"`
	ClickAction  string   `json:"click_action"`
	ChannelID    string   `json:"channel_id"`
	Sound        string   `json:"sound"`
	Icon         string   `json:"icon"`
	Color        string   `json:"color"`
}

// TTLDuration returns the android ttl ("3.5s") as a duration.
func (c *FCMAndroidConfig) TTLDuration() (time.Duration, error) {
	return time.ParseDuration(c.TTL)
}

// FCMRequest is one send request the fake received, as decoded.
type FCMRequest struct {
	Project      string
	Token        string
	ValidateOnly bool
	Message      FCMMessage
	Header       http.Header
	Body         []byte
	At           time.Time
	Reply        FCMReply
	Violation    string
}

// FCMOptions configure the fake FCM.
type FCMOptions struct {
	// ProjectID is the project the fake serves. Zero means "livehub-test".
	ProjectID string
	// AllowViolations answers malformed requests as FCM does without
	// failing the test.
	AllowViolations bool
}

// FCM is a fake FCM HTTP v1 API: POST /v1/projects/{p}/messages:send.
type FCM struct {
	// URL is the API's base URL, ending in /v1, for option.WithEndpoint.
	URL string
	// ProjectID is the project the fake serves.
	ProjectID string

	t       testing.TB
	srv     *httptest.Server
	opts    FCMOptions
	replies script[FCMReply]
	ids     atomic.Int64

	journal[FCMRequest]
}

// NewFCM starts a fake FCM, closed when the test ends.
func NewFCM(t testing.TB, o FCMOptions) *FCM {
	t.Helper()
	if o.ProjectID == "" {
		o.ProjectID = "livehub-test"
	}
	f := &FCM{t: t, opts: o, ProjectID: o.ProjectID}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	f.URL = f.srv.URL + "/v1"
	return f
}

// ClientOptions point the Firebase SDK at the fake, without credentials.
func (f *FCM) ClientOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithoutAuthentication(),
		option.WithEndpoint(f.URL),
		option.WithHTTPClient(f.srv.Client()),
	}
}

// Reply queues answers for token, used one per request in order; once they
// are used up the fake answers 200.
func (f *FCM) Reply(token string, replies ...FCMReply) { f.replies.add(token, replies) }

var (
	sendPath = regexp.MustCompile(`^/v1/projects/([^/]+)/messages:send$`)
	ttlValue = regexp.MustCompile(`^\d+(\.\d{1,9})?s$`)
)

func (f *FCM) serve(w http.ResponseWriter, r *http.Request) {
	req := FCMRequest{Header: r.Header.Clone(), At: time.Now()}
	req.Body, _ = io.ReadAll(io.LimitReader(r.Body, 1<<20))
	reply, violation := f.check(r, &req)
	if violation != "" {
		req.Violation = violation
		if !f.opts.AllowViolations {
			f.t.Errorf("pushtest: FCM request for %s: %s", req.Token, violation)
		}
	} else if scripted, ok := f.replies.next(req.Token); ok {
		reply = scripted
	}
	req.Reply = reply

	f.record(req)

	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	if reply.RetryAfter != "" {
		w.Header().Set("Retry-After", reply.RetryAfter)
	}
	if reply.Status == http.StatusOK {
		name := fmt.Sprintf("projects/%s/messages/0:%d%%%d", req.Project, time.Now().UnixMicro(), f.ids.Add(1))
		_ = json.NewEncoder(w).Encode(map[string]string{"name": name})
		return
	}
	w.WriteHeader(reply.Status)
	_ = json.NewEncoder(w).Encode(errorBody(reply))
}

// errorBody is a Google API error as FCM sends it, with the FcmError detail
// the SDK reads the messaging error code from.
func errorBody(r FCMReply) map[string]any {
	e := map[string]any{
		"code":    r.Status,
		"message": fmt.Sprintf("%s (%s)", http.StatusText(r.Status), r.ErrorCode),
		"status":  r.Code,
	}
	if r.ErrorCode != "" {
		e["details"] = []map[string]any{{
			"@type":     "type.googleapis.com/google.firebase.fcm.v1.FcmError",
			"errorCode": r.ErrorCode,
		}}
	}
	return map[string]any{"error": e}
}

// reservedData are data keys FCM refuses.
var reservedData = []string{"from", "notification", "message_type"}

// check validates r as FCM does and returns the answer: 200, or the error
// FCM gives with a violation saying what was wrong.
func (f *FCM) check(r *http.Request, req *FCMRequest) (FCMReply, string) {
	bad := func(reply FCMReply, format string, args ...any) (FCMReply, string) {
		return reply, fmt.Sprintf(format, args...)
	}
	notFound := FCMReply{Status: http.StatusNotFound, Code: "NOT_FOUND"}
	m := sendPath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		return bad(notFound, "path %q", r.URL.Path)
	}
	req.Project = m[1]
	if r.Method != http.MethodPost {
		return bad(FCMReply{Status: http.StatusMethodNotAllowed, Code: "INVALID_ARGUMENT"}, "method %s", r.Method)
	}
	if req.Project != f.ProjectID {
		return bad(notFound, "project %q, want %q", req.Project, f.ProjectID)
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return bad(FCMInvalidArgument, "content type %q", r.Header.Get("Content-Type"))
	}
	var body struct {
		ValidateOnly bool        `json:"validate_only"`
		Message      *FCMMessage `json:"message"`
	}
	dec := json.NewDecoder(bytes.NewReader(req.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return bad(FCMInvalidArgument, "body: %v: %s", err, req.Body)
	}
	if body.Message == nil {
		return bad(FCMInvalidArgument, "no message: %s", req.Body)
	}
	req.ValidateOnly, req.Message, req.Token = body.ValidateOnly, *body.Message, body.Message.Token
	msg := &req.Message
	targets := 0
	for _, s := range []string{msg.Token, msg.Topic, msg.Condition} {
		if s != "" {
			targets++
		}
	}
	if targets != 1 {
		return bad(FCMInvalidArgument, "%d targets, want one of token, topic, condition", targets)
	}
	if msg.Token != "" && strings.TrimSpace(msg.Token) != msg.Token {
		return bad(FCMInvalidArgument, "token %q", msg.Token)
	}
	for k := range msg.Data {
		if slices.Contains(reservedData, k) || strings.HasPrefix(k, "google.") || strings.HasPrefix(k, "gcm.") {
			return bad(FCMInvalidArgument, "reserved data key %q", k)
		}
	}
	if a := msg.Android; a != nil {
		if a.Priority != "" && a.Priority != "high" && a.Priority != "normal" {
			return bad(FCMInvalidArgument, "android priority %q", a.Priority)
		}
		if a.TTL != "" && !ttlValue.MatchString(a.TTL) {
			return bad(FCMInvalidArgument, "android ttl %q", a.TTL)
		}
		if n := a.Notification; n != nil {
			if len(n.TitleLocArgs) > 0 && n.TitleLocKey == "" {
				return bad(FCMInvalidArgument, "title_loc_args without title_loc_key")
			}
			if len(n.BodyLocArgs) > 0 && n.BodyLocKey == "" {
				return bad(FCMInvalidArgument, "body_loc_args without body_loc_key")
			}
		}
	}
	if v := r.Header.Get("X-GOOG-API-FORMAT-VERSION"); v != "" {
		if _, err := strconv.Atoi(v); err != nil {
			return bad(FCMInvalidArgument, "X-GOOG-API-FORMAT-VERSION %q", v)
		}
	}
	return FCMOK, ""
}

func (r FCMRequest) token() string { return r.Token }
