package pushtest

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// APNsReply is how the fake APNs answers one request.
type APNsReply struct {
	// Status is the HTTP status: 200, or an error status.
	Status int
	// Reason is the error's reason, sent as {"reason": ...}.
	Reason string
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter string
}

// WithRetryAfter returns r sending a Retry-After header of v.
func (r APNsReply) WithRetryAfter(v string) APNsReply { r.RetryAfter = v; return r }

// Answers APNs gives, for APNs.Reply.
var (
	APNsOK                     = APNsReply{Status: http.StatusOK}
	APNsUnregistered           = APNsReply{Status: http.StatusGone, Reason: "Unregistered"}
	APNsExpiredToken           = APNsReply{Status: http.StatusGone, Reason: "ExpiredToken"}
	APNsBadDeviceToken         = APNsReply{Status: http.StatusBadRequest, Reason: "BadDeviceToken"}
	APNsDeviceTokenNotForTopic = APNsReply{Status: http.StatusBadRequest, Reason: "DeviceTokenNotForTopic"}
	APNsBadTopic               = APNsReply{Status: http.StatusBadRequest, Reason: "BadTopic"}
	APNsExpiredProviderToken   = APNsReply{Status: http.StatusForbidden, Reason: "ExpiredProviderToken"}
	APNsTooManyRequests        = APNsReply{Status: http.StatusTooManyRequests, Reason: "TooManyRequests"}
	APNsInternalServerError    = APNsReply{Status: http.StatusInternalServerError, Reason: "InternalServerError"}
	APNsServiceUnavailable     = APNsReply{Status: http.StatusServiceUnavailable, Reason: "ServiceUnavailable"}
)

// APNsOptions configure the fake APNs. Either Key, KeyID and TeamID (token
// authentication) or ClientCAs (certificate authentication) are needed.
type APNsOptions struct {
	// Key verifies the provider tokens' ES256 signatures.
	Key *ecdsa.PublicKey
	// KeyID is the kid a token's header must carry.
	KeyID string
	// TeamID is the iss a token's claims must carry.
	TeamID string
	// ClientCAs, when set, makes the fake ask for a client certificate
	// signed by one of them, and accept requests without a token.
	ClientCAs *x509.CertPool
	// Topics are the apns-topic values accepted. Zero means any.
	Topics []string
	// AllowViolations answers malformed requests as APNs does without
	// failing the test.
	AllowViolations bool
}

// APNsRequest is one request the fake received, as decoded.
type APNsRequest struct {
	Token      string
	Topic      string
	PushType   string
	Priority   int // 0 when the header was absent
	CollapseID string
	// Expiration is the apns-expiration header as a time, zero when absent.
	Expiration time.Time
	Header     http.Header
	// Payload is the JSON body decoded.
	Payload map[string]any
	Body    []byte
	At      time.Time
	// Reply is what the fake answered.
	Reply APNsReply
	// Violation says what was wrong with the request, empty if nothing.
	Violation string
}

// Alert returns the payload's aps.alert dictionary, nil if it has none.
func (r *APNsRequest) Alert() map[string]any {
	aps, _ := r.Payload["aps"].(map[string]any)
	alert, _ := aps["alert"].(map[string]any)
	return alert
}

// APNs is a fake APNs provider API over HTTP/2 and TLS.
type APNs struct {
	// URL is the base URL to give the sender as its host.
	URL string

	t       testing.TB
	srv     *httptest.Server
	opts    APNsOptions
	replies script[APNsReply]

	journal[APNsRequest]
}

// NewAPNs starts a fake APNs, closed when the test ends.
func NewAPNs(t testing.TB, o APNsOptions) *APNs {
	t.Helper()
	if o.ClientCAs == nil && (o.Key == nil || o.KeyID == "" || o.TeamID == "") {
		t.Fatal("pushtest: APNsOptions need Key, KeyID and TeamID, or ClientCAs")
	}
	a := &APNs{t: t, opts: o}
	a.srv = httptest.NewUnstartedServer(http.HandlerFunc(a.serve))
	a.srv.EnableHTTP2 = true
	if o.ClientCAs != nil {
		a.srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: o.ClientCAs}
	}
	a.srv.StartTLS()
	t.Cleanup(a.srv.Close)
	a.URL = a.srv.URL
	return a
}

// RootCAs returns a pool trusting the fake's certificate.
func (a *APNs) RootCAs() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(a.srv.Certificate())
	return pool
}

// Reply queues answers for token, used one per request in order; once they
// are used up the fake answers 200.
func (a *APNs) Reply(token string, replies ...APNsReply) { a.replies.add(token, replies) }

var hexToken = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// validPushTypes are the apns-push-type values APNs knows.
var validPushTypes = []string{"alert", "background", "location", "voip", "complication", "fileprovider", "mdm", "liveactivity", "pushtotalk", "widgets", "controls"}

// maxPayload is the largest payload APNs takes for a regular notification.
const maxPayload = 4096

func (a *APNs) serve(w http.ResponseWriter, r *http.Request) {
	req := APNsRequest{
		Topic:      r.Header.Get("apns-topic"),
		PushType:   r.Header.Get("apns-push-type"),
		CollapseID: r.Header.Get("apns-collapse-id"),
		Header:     r.Header.Clone(),
		At:         time.Now(),
	}
	req.Token, _ = strings.CutPrefix(r.URL.Path, "/3/device/")
	req.Body, _ = io.ReadAll(io.LimitReader(r.Body, 1<<20))
	reply, violation := a.check(r, &req)
	if violation != "" {
		req.Violation = violation
		if !a.opts.AllowViolations {
			a.t.Errorf("pushtest: APNs request for %s: %s", req.Token, violation)
		}
	} else if scripted, ok := a.replies.next(req.Token); ok {
		reply = scripted
	}
	req.Reply = reply

	a.record(req)

	if reply.RetryAfter != "" {
		w.Header().Set("Retry-After", reply.RetryAfter)
	}
	w.Header().Set("apns-id", newUUID())
	if reply.Status == http.StatusOK {
		w.WriteHeader(http.StatusOK)
		return
	}
	body := map[string]any{"reason": reply.Reason}
	if reply.Status == http.StatusGone {
		body["timestamp"] = time.Now().UnixMilli()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(reply.Status)
	_ = json.NewEncoder(w).Encode(body)
}

// check validates r as APNs does and returns the answer: 200, or the error
// APNs gives with a violation saying what was wrong.
func (a *APNs) check(r *http.Request, req *APNsRequest) (APNsReply, string) {
	bad := func(status int, reason, format string, args ...any) (APNsReply, string) {
		return APNsReply{Status: status, Reason: reason}, fmt.Sprintf(format, args...)
	}
	if r.ProtoMajor != 2 {
		return bad(http.StatusBadRequest, "BadPath", "protocol %s, want HTTP/2", r.Proto)
	}
	if r.Method != http.MethodPost {
		return bad(http.StatusMethodNotAllowed, "MethodNotAllowed", "method %s", r.Method)
	}
	if !strings.HasPrefix(r.URL.Path, "/3/device/") {
		return bad(http.StatusNotFound, "BadPath", "path %q", r.URL.Path)
	}
	if req.Token == "" {
		return bad(http.StatusBadRequest, "MissingDeviceToken", "no device token in the path")
	}
	if a.opts.ClientCAs == nil {
		if reply, v := a.checkProviderToken(r.Header.Get("Authorization")); v != "" {
			return reply, v
		}
	}
	if !hexToken.MatchString(req.Token) {
		// Not a protocol error: APNs answers this for a token of another
		// environment too.
		return APNsBadDeviceToken, ""
	}
	if req.Topic == "" {
		return bad(http.StatusBadRequest, "MissingTopic", "no apns-topic")
	}
	if len(a.opts.Topics) > 0 && !slices.Contains(a.opts.Topics, req.Topic) {
		return bad(http.StatusBadRequest, "TopicDisallowed", "apns-topic %q not one of %q", req.Topic, a.opts.Topics)
	}
	if req.PushType != "" && !slices.Contains(validPushTypes, req.PushType) {
		return bad(http.StatusBadRequest, "InvalidPushType", "apns-push-type %q", req.PushType)
	}
	if p := r.Header.Get("apns-priority"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || (n != 10 && n != 5 && n != 1) {
			return bad(http.StatusBadRequest, "BadPriority", "apns-priority %q", p)
		}
		req.Priority = n
	}
	if e := r.Header.Get("apns-expiration"); e != "" {
		n, err := strconv.ParseInt(e, 10, 64)
		if err != nil || n < 0 {
			return bad(http.StatusBadRequest, "BadExpirationDate", "apns-expiration %q", e)
		}
		if n > 0 {
			req.Expiration = time.Unix(n, 0)
		}
	}
	if len(req.CollapseID) > 64 {
		return bad(http.StatusBadRequest, "BadCollapseId", "apns-collapse-id of %d bytes", len(req.CollapseID))
	}
	if len(req.Body) == 0 {
		return bad(http.StatusBadRequest, "PayloadEmpty", "empty payload")
	}
	if len(req.Body) > maxPayload {
		return bad(http.StatusRequestEntityTooLarge, "PayloadTooLarge", "payload of %d bytes", len(req.Body))
	}
	if err := json.Unmarshal(req.Body, &req.Payload); err != nil {
		return bad(http.StatusBadRequest, "PayloadEmpty", "payload is not a JSON object: %v", err)
	}
	if _, ok := req.Payload["aps"].(map[string]any); !ok {
		return bad(http.StatusBadRequest, "PayloadEmpty", "payload has no aps dictionary: %s", req.Body)
	}
	return APNsOK, ""
}

// checkProviderToken verifies an authorization header's JWT: ES256, the
// key id in the header, the team id as issuer, issued within the hour.
func (a *APNs) checkProviderToken(h string) (APNsReply, string) {
	bearer, ok := cutPrefixFold(h, "bearer ")
	if !ok || bearer == "" {
		return APNsReply{Status: http.StatusForbidden, Reason: "MissingProviderToken"}, "no bearer provider token"
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(bearer, claims, func(tok *jwt.Token) (any, error) {
		if kid, _ := tok.Header["kid"].(string); kid != a.opts.KeyID {
			return nil, fmt.Errorf("kid %q, want %q", kid, a.opts.KeyID)
		}
		return a.opts.Key, nil
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(a.opts.TeamID), jwt.WithIssuedAt())
	if err != nil {
		return APNsReply{Status: http.StatusForbidden, Reason: "InvalidProviderToken"}, "provider token: " + err.Error()
	}
	iat, err := claims.GetIssuedAt()
	if err != nil || iat == nil {
		return APNsReply{Status: http.StatusForbidden, Reason: "InvalidProviderToken"}, "provider token has no iat"
	}
	if time.Since(iat.Time) > time.Hour {
		return APNsReply{Status: http.StatusForbidden, Reason: "ExpiredProviderToken"}, "provider token issued at " + iat.Time.String()
	}
	return APNsOK, ""
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return strings.ToUpper(h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:])
}

func (r APNsRequest) token() string { return r.Token }
