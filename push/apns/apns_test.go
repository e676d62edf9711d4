package apns_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/livehub/livehub/push"
	"github.com/livehub/livehub/push/apns"
	"github.com/livehub/livehub/push/pushtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	bundleID = "com.example.live"
	keyID    = "ABC123DEFG"
	teamID   = "DEF123GHIJ"
)

// newTokenPair returns a fake APNs checking tokens and a token-auth Sender
// pointed at it.
func newTokenPair(t *testing.T, fo pushtest.APNsOptions) (*pushtest.APNs, *apns.Sender) {
	t.Helper()
	p8, pub := pushtest.NewAPNsKey(t)
	fo.Key, fo.KeyID, fo.TeamID = pub, keyID, teamID
	fake := pushtest.NewAPNs(t, fo)
	s, err := apns.New(apns.Options{AuthKey: p8, KeyID: keyID, TeamID: teamID, BundleID: bundleID, Host: fake.URL, RootCAs: fake.RootCAs()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return fake, s
}

func target(n int, appID string) push.Target {
	return push.Target{
		Device:       push.Device{UserID: "u1", Platform: push.PlatformIOS, Token: pushtest.IOSToken(n), AppID: appID},
		Notification: push.Notification{ID: "ev1", UserID: "u1", Title: "Hello", Body: "World"},
	}
}

func TestSender_TokenAuthSendsWithTopicAndProviderToken(t *testing.T) {
	fake, s := newTokenPair(t, pushtest.APNsOptions{Topics: []string{bundleID, "com.example.other"}})
	if s.Platform() != push.PlatformIOS {
		t.Fatalf("Platform = %q", s.Platform())
	}
	res := s.Send(t.Context(), []push.Target{target(1, ""), target(2, "com.example.other")})
	for i, r := range res {
		if r.Outcome != push.Sent {
			t.Fatalf("result %d = %+v, want Sent", i, r)
		}
	}
	reqs := fake.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	topics := map[string]string{}
	for _, r := range reqs {
		topics[r.Token] = r.Topic
		if !strings.HasPrefix(r.Header.Get("Authorization"), "bearer ") {
			t.Errorf("authorization %q", r.Header.Get("Authorization"))
		}
	}
	if topics[pushtest.IOSToken(1)] != bundleID || topics[pushtest.IOSToken(2)] != "com.example.other" {
		t.Fatalf("topics %v: want the bundle id without an AppID, the AppID otherwise", topics)
	}
}

func TestSender_CertificateAuth(t *testing.T) {
	cert, pool := pushtest.NewClientCertificate(t)
	fake := pushtest.NewAPNs(t, pushtest.APNsOptions{ClientCAs: pool})
	s, err := apns.New(apns.Options{Certificate: &cert, BundleID: bundleID, Host: fake.URL, RootCAs: fake.RootCAs()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if res := s.Send(t.Context(), []push.Target{target(1, "")}); res[0].Outcome != push.Sent {
		t.Fatalf("result %+v", res[0])
	}
	if h := fake.Requests()[0].Header.Get("Authorization"); h != "" {
		t.Fatalf("certificate auth sent authorization %q", h)
	}
}

func TestSender_CertificateNotTrustedIsRetry(t *testing.T) {
	_, pool := pushtest.NewClientCertificate(t)
	other, _ := pushtest.NewClientCertificate(t)
	fake := pushtest.NewAPNs(t, pushtest.APNsOptions{ClientCAs: pool})
	s, err := apns.New(apns.Options{Certificate: &other, BundleID: bundleID, Host: fake.URL, RootCAs: fake.RootCAs()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if res := s.Send(t.Context(), []push.Target{target(1, "")}); res[0].Outcome != push.Retry || res[0].Reason != "transport" {
		t.Fatalf("result %+v, want a transport Retry", res[0])
	}
}

func TestSender_MapsAPNsAnswers(t *testing.T) {
	for _, tc := range []struct {
		reply      pushtest.APNsReply
		outcome    push.Outcome
		retryAfter time.Duration
	}{
		{pushtest.APNsOK, push.Sent, 0},
		{pushtest.APNsUnregistered, push.DeadToken, 0},
		{pushtest.APNsExpiredToken, push.DeadToken, 0},
		{pushtest.APNsBadDeviceToken, push.DeadToken, 0},
		{pushtest.APNsDeviceTokenNotForTopic, push.DeadToken, 0},
		{pushtest.APNsTooManyRequests.WithRetryAfter("7"), push.Retry, 7 * time.Second},
		{pushtest.APNsTooManyRequests, push.Retry, 0},
		{pushtest.APNsInternalServerError, push.Retry, 0},
		{pushtest.APNsServiceUnavailable.WithRetryAfter("30"), push.Retry, 30 * time.Second},
		{pushtest.APNsExpiredProviderToken, push.Retry, 0},
		{pushtest.APNsBadTopic, push.Failed, 0},
	} {
		t.Run(tc.reply.Reason, func(t *testing.T) {
			fake, s := newTokenPair(t, pushtest.APNsOptions{})
			fake.Reply(pushtest.IOSToken(1), tc.reply)
			r := s.Send(t.Context(), []push.Target{target(1, "")})[0]
			if r.Outcome != tc.outcome || r.RetryAfter != tc.retryAfter {
				t.Fatalf("result %+v, want %v after %v", r, tc.outcome, tc.retryAfter)
			}
			if tc.reply.Reason != "" && r.Reason != tc.reply.Reason {
				t.Fatalf("reason %q, want %q", r.Reason, tc.reply.Reason)
			}
		})
	}
}

func TestSender_ExpiredProviderTokenSignsANewOne(t *testing.T) {
	fake, s := newTokenPair(t, pushtest.APNsOptions{})
	fake.Reply(pushtest.IOSToken(1), pushtest.APNsExpiredProviderToken)
	s.Send(t.Context(), []push.Target{target(1, "")})
	s.Send(t.Context(), []push.Target{target(1, "")})
	s.Send(t.Context(), []push.Target{target(1, "")})
	reqs := fake.Requests()
	a0, a1, a2 := reqs[0].Header.Get("Authorization"), reqs[1].Header.Get("Authorization"), reqs[2].Header.Get("Authorization")
	if a0 == a1 {
		t.Fatal("the token APNs called expired was sent again")
	}
	if a1 != a2 {
		t.Fatal("a fresh token was not reused")
	}
}

func TestSender_WrongKeyIsFailed(t *testing.T) {
	_, pub := pushtest.NewAPNsKey(t)
	fake := pushtest.NewAPNs(t, pushtest.APNsOptions{Key: pub, KeyID: keyID, TeamID: teamID, AllowViolations: true})
	p8, _ := pushtest.NewAPNsKey(t)
	s, err := apns.New(apns.Options{AuthKey: p8, KeyID: keyID, TeamID: teamID, BundleID: bundleID, Host: fake.URL, RootCAs: fake.RootCAs()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	r := s.Send(t.Context(), []push.Target{target(1, "")})[0]
	if r.Outcome != push.Failed || r.Reason != "InvalidProviderToken" {
		t.Fatalf("result %+v, want Failed InvalidProviderToken", r)
	}
	if v := fake.Requests()[0].Violation; !strings.Contains(v, "provider token") {
		t.Fatalf("violation %q", v)
	}
}

func TestSender_NoTopicIsFailedWithoutARequest(t *testing.T) {
	p8, pub := pushtest.NewAPNsKey(t)
	fake := pushtest.NewAPNs(t, pushtest.APNsOptions{Key: pub, KeyID: keyID, TeamID: teamID})
	s, err := apns.New(apns.Options{AuthKey: p8, KeyID: keyID, TeamID: teamID, Host: fake.URL, RootCAs: fake.RootCAs()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if r := s.Send(t.Context(), []push.Target{target(1, "")})[0]; r.Outcome != push.Failed || r.Reason != "MissingTopic" {
		t.Fatalf("result %+v", r)
	}
	if n := len(fake.Requests()); n != 0 {
		t.Fatalf("%d requests", n)
	}
}

func TestSender_UnreachableHostIsRetry(t *testing.T) {
	srv := httptest.NewTLSServer(nil)
	url := srv.URL
	srv.Close()
	p8, _ := pushtest.NewAPNsKey(t)
	s, err := apns.New(apns.Options{AuthKey: p8, KeyID: keyID, TeamID: teamID, BundleID: bundleID, Host: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if r := s.Send(t.Context(), []push.Target{target(1, "")})[0]; r.Outcome != push.Retry || r.Reason != "transport" {
		t.Fatalf("result %+v", r)
	}
}

func TestSender_ManyTargetsKeepTheirOrder(t *testing.T) {
	fake, s := newTokenPair(t, pushtest.APNsOptions{})
	const n = 150
	targets := make([]push.Target, n)
	for i := range targets {
		targets[i] = target(i, "")
		if i%3 == 0 {
			fake.Reply(pushtest.IOSToken(i), pushtest.APNsUnregistered)
		}
	}
	res := s.Send(t.Context(), targets)
	if len(res) != n {
		t.Fatalf("%d results", len(res))
	}
	for i, r := range res {
		want := push.Sent
		if i%3 == 0 {
			want = push.DeadToken
		}
		if r.Outcome != want {
			t.Fatalf("result %d = %v, want %v", i, r.Outcome, want)
		}
	}
	if got := len(fake.Requests()); got != n {
		t.Fatalf("%d requests", got)
	}
}

func TestSender_CancelledContextIsRetry(t *testing.T) {
	_, s := newTokenPair(t, pushtest.APNsOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, r := range s.Send(ctx, []push.Target{target(1, ""), target(2, "")}) {
		if r.Outcome != push.Retry {
			t.Fatalf("result %+v", r)
		}
	}
}

func TestNew_RefusesMissingOrDoubleCredentials(t *testing.T) {
	p8, _ := pushtest.NewAPNsKey(t)
	cert, _ := pushtest.NewClientCertificate(t)
	for name, o := range map[string]apns.Options{
		"none":           {},
		"both":           {AuthKey: p8, KeyID: keyID, TeamID: teamID, Certificate: &cert},
		"key without id": {AuthKey: p8, TeamID: teamID},
		"not a key":      {AuthKey: []byte("nope"), KeyID: keyID, TeamID: teamID},
	} {
		if _, err := apns.New(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
