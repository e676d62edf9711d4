package apns

import (
	"context"
	"net/http"
)

// apns2 returns the status and the reason of a response but not its
// headers, so the transport hands the Retry-After header to the caller
// through the request's context.

type retryAfterKey struct{}

// withRetryAfter returns a context whose request stores its response's
// Retry-After header in dst.
func withRetryAfter(ctx context.Context, dst *string) context.Context {
	return context.WithValue(ctx, retryAfterKey{}, dst)
}

type retryAfterTransport struct {
	base *http.Transport
}

func (t *retryAfterTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err == nil {
		if dst, ok := r.Context().Value(retryAfterKey{}).(*string); ok {
			*dst = resp.Header.Get("Retry-After")
		}
	}
	return resp, err
}

// CloseIdleConnections lets apns2.Client.CloseIdleConnections reach the
// transport.
func (t *retryAfterTransport) CloseIdleConnections() { t.base.CloseIdleConnections() }
