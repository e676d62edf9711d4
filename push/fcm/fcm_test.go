package fcm_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/livehub/livehub/push"
	"github.com/livehub/livehub/push/fcm"
	"github.com/livehub/livehub/push/pushtest"
	"go.uber.org/goleak"
	"google.golang.org/api/option"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newPair(t *testing.T, batch int) (*pushtest.FCM, *fcm.Sender) {
	t.Helper()
	fake := pushtest.NewFCM(t, pushtest.FCMOptions{})
	s, err := fcm.New(t.Context(), fcm.Options{ProjectID: fake.ProjectID, ClientOptions: fake.ClientOptions(), BatchSize: batch})
	if err != nil {
		t.Fatal(err)
	}
	return fake, s
}

func target(n int) push.Target {
	return push.Target{
		Device:       push.Device{UserID: "u1", Platform: push.PlatformAndroid, Token: pushtest.AndroidToken(n), AppID: "com.example.live"},
		Notification: push.Notification{ID: "ev1", UserID: "u1", BodyKey: "order_shipped", BodyArgs: []string{"A-42"}, Body: "Shipped"},
	}
}

func TestSender_SendsTheMessageOnTheWire(t *testing.T) {
	fake, s := newPair(t, 0)
	if s.Platform() != push.PlatformAndroid {
		t.Fatalf("Platform = %q", s.Platform())
	}
	tg := target(1)
	tg.Notification.Data = map[string]string{"order_id": "A-42"}
	tg.Notification.Expiry = time.Now().Add(90 * time.Second)
	tg.Notification.CollapseID = "order-A-42"
	if r := s.Send(t.Context(), []push.Target{tg})[0]; r.Outcome != push.Sent {
		t.Fatalf("result %+v", r)
	}
	req := fake.Requests()[0]
	if req.Project != fake.ProjectID || req.Token != tg.Device.Token {
		t.Fatalf("project %q token %q", req.Project, req.Token)
	}
	m := req.Message
	if m.Notification == nil || m.Notification.Body != "Shipped" || m.Notification.Title != "" {
		t.Errorf("notification %+v", m.Notification)
	}
	if m.Data["order_id"] != "A-42" {
		t.Errorf("data %v", m.Data)
	}
	a := m.Android
	ttl, err := a.TTLDuration()
	if err != nil || ttl < 80*time.Second || ttl > 90*time.Second {
		t.Errorf("ttl %q", a.TTL)
	}
	if a.Priority != "high" || a.CollapseKey != "order-A-42" || a.RestrictedPackageName != "com.example.live" {
		t.Errorf("android %+v", a)
	}
	if n := a.Notification; n.BodyLocKey != "order_shipped" || len(n.BodyLocArgs) != 1 || n.BodyLocArgs[0] != "A-42" || n.TitleLocKey != "" || n.Tag != "order-A-42" {
		t.Errorf("android notification %+v", n)
	}
}

func TestSender_BatchesKeepTheirOrder(t *testing.T) {
	fake, s := newPair(t, 4)
	const n = 11
	targets := make([]push.Target, n)
	for i := range targets {
		targets[i] = target(i)
		if i%4 == 1 {
			fake.Reply(pushtest.AndroidToken(i), pushtest.FCMUnregistered)
		}
	}
	res := s.Send(t.Context(), targets)
	if len(res) != n {
		t.Fatalf("%d results", len(res))
	}
	for i, r := range res {
		want := push.Sent
		if i%4 == 1 {
			want = push.DeadToken
		}
		if r.Outcome != want {
			t.Fatalf("result %d = %+v, want %v", i, r, want)
		}
	}
	if got := len(fake.Requests()); got != n {
		t.Fatalf("%d requests", got)
	}
}

func TestSender_MapsFCMErrors(t *testing.T) {
	for _, tc := range []struct {
		name       string
		reply      pushtest.FCMReply
		outcome    push.Outcome
		reason     string
		retryAfter time.Duration
	}{
		{"UNREGISTERED", pushtest.FCMUnregistered, push.DeadToken, "UNREGISTERED", 0},
		{"SENDER_ID_MISMATCH", pushtest.FCMSenderIDMismatch, push.DeadToken, "SENDER_ID_MISMATCH", 0},
		{"QUOTA_EXCEEDED", pushtest.FCMQuotaExceeded.WithRetryAfter("7"), push.Retry, "QUOTA_EXCEEDED", 7 * time.Second},
		// A Retry-After past the SDK's two-minute limit makes it give up
		// at once and hand the delay over.
		{"UNAVAILABLE", pushtest.FCMUnavailable.WithRetryAfter("3600"), push.Retry, "UNAVAILABLE", time.Hour},
		{"INTERNAL", pushtest.FCMInternal, push.Retry, "INTERNAL", 0},
		{"INVALID_ARGUMENT", pushtest.FCMInvalidArgument, push.Failed, "INVALID_ARGUMENT", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, s := newPair(t, 0)
			fake.Reply(pushtest.AndroidToken(1), tc.reply)
			r := s.Send(t.Context(), []push.Target{target(1)})[0]
			if r.Outcome != tc.outcome || r.Reason != tc.reason || r.RetryAfter != tc.retryAfter {
				t.Fatalf("result %+v, want %v %s after %v", r, tc.outcome, tc.reason, tc.retryAfter)
			}
			if n := len(fake.Requests()); n != 1 {
				t.Fatalf("%d requests, want 1", n)
			}
		})
	}
}

func TestSender_SDKRetriesAnUnavailableOnce(t *testing.T) {
	fake, s := newPair(t, 0)
	fake.Reply(pushtest.AndroidToken(1), pushtest.FCMUnavailable)
	if r := s.Send(t.Context(), []push.Target{target(1)})[0]; r.Outcome != push.Sent {
		t.Fatalf("result %+v", r)
	}
	if n := len(fake.Requests()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

func TestSender_UnreachableIsRetry(t *testing.T) {
	srv := httptest.NewServer(nil)
	url := srv.URL
	srv.Close()
	s, err := fcm.New(t.Context(), fcm.Options{ProjectID: "p", ClientOptions: []option.ClientOption{
		option.WithoutAuthentication(), option.WithEndpoint(url + "/v1"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	// The SDK retries a refused connection with backoff; the deadline
	// ends that.
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if r := s.Send(ctx, []push.Target{target(1)})[0]; r.Outcome != push.Retry {
		t.Fatalf("result %+v", r)
	}
}

func TestNew_NeedsAProjectAndCredentials(t *testing.T) {
	if _, err := fcm.New(t.Context(), fcm.Options{ClientOptions: []option.ClientOption{option.WithoutAuthentication()}}); err == nil {
		t.Error("no project: no error")
	}
	if _, err := fcm.New(t.Context(), fcm.Options{ProjectID: "p"}); err == nil {
		t.Error("no credentials: no error")
	}
	if _, err := fcm.New(t.Context(), fcm.Options{CredentialsJSON: []byte("{")}); err == nil {
		t.Error("bad credentials: no error")
	}
}
