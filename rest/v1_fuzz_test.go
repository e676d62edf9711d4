package rest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/auth"
)

// FuzzV1Checkout sends arbitrary bodies to POST /v1/checkout and
// POST /v1/streams/{id}/flash-sales through the real handler. Every answer
// is a success or a problem document with a code and a status that match,
// never a 5xx; and whatever the bodies, the sale never sells more than its
// units.
func FuzzV1Checkout(f *testing.F) {
	s := newV1Server(f, time.Minute)
	host := v1Token(f, "host1", auth.RoleHost)
	buyer := v1Token(f, "buyer1")
	stream := fuzzCreate(f, s, "/v1/streams", host, `{"title":"Live"}`)
	const units = 5
	sale := fuzzCreate(f, s, "/v1/streams/"+stream+"/flash-sales", host, fmt.Sprintf(
		`{"product":{"id":"p1","name":"Case"},"price":49000,"quantity":%d,"per_user_limit":%d,"countdown_seconds":0,"duration_seconds":300}`, units, units))

	f.Add(true, fmt.Sprintf(`{"flash_sale_id":%q,"quantity":1}`, sale), "k1")
	f.Add(true, fmt.Sprintf(`{"flash_sale_id":%q,"quantity":-1}`, sale), "k2")
	f.Add(true, fmt.Sprintf(`{"flash_sale_id":%q,"quantity":1e9}`, sale), "k3")
	f.Add(true, fmt.Sprintf(`{"flash_sale_id":%q,"quantity":"2"}`, sale), "")
	f.Add(true, `{"flash_sale_id":null,"quantity":1,"extra":true}`, "k4")
	f.Add(true, `[]`, "k5")
	f.Add(false, `{"product":{"id":"p2","name":""},"price":-5,"quantity":0}`, "")
	f.Add(false, `{"product":{"id":"p2","name":"X"},"price":1,"quantity":1,"per_user_limit":1,"duration_seconds":99999999999}`, "")
	f.Fuzz(func(t *testing.T, checkout bool, body, idem string) {
		path, token := "/v1/streams/"+stream+"/flash-sales", host
		if checkout {
			path, token = "/v1/checkout", buyer
		}
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if idem != "" && len(idem) < 200 && !strings.ContainsAny(idem, "\r\n\x00") {
			req.Header.Set("Idempotency-Key", idem)
		}
		rec := httptest.NewRecorder()
		s.handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("POST %s %q: %d %s", path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var p problem
			if rec.Header().Get("Content-Type") != "application/problem+json" || json.Unmarshal(rec.Body.Bytes(), &p) != nil {
				t.Fatalf("POST %s %q: %d without a problem document: %s", path, body, rec.Code, rec.Body)
			}
			if p.Code == "" || p.Status != rec.Code {
				t.Fatalf("POST %s %q: problem %+v with status %d", path, body, p, rec.Code)
			}
		}
		var got struct {
			StockLeft int `json:"stock_left"`
			Sold      int `json:"sold"`
		}
		req = httptest.NewRequest("GET", "/v1/flash-sales/"+sale, nil)
		req.Header.Set("Authorization", "Bearer "+host)
		rec = httptest.NewRecorder()
		s.handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &got) != nil {
			t.Fatalf("GET sale: %d %s", rec.Code, rec.Body)
		}
		if got.StockLeft < 0 || got.StockLeft > units {
			t.Fatalf("stock left %d of %d units", got.StockLeft, units)
		}
	})
}

func fuzzCreate(tb testing.TB, s *v1Server, path, token, body string) string {
	tb.Helper()
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	var out idOnly
	if rec.Code != http.StatusCreated || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
		tb.Fatalf("POST %s: %d %s", path, rec.Code, rec.Body)
	}
	return out.ID
}
