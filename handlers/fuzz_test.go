package handlers_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzTokenRoutes sends arbitrary bodies to every token route through the real router: the reply
// is always a JSON object with a 2xx or 4xx status, and never carries the secret.
func FuzzTokenRoutes(f *testing.F) {
	for _, seed := range []string{
		`{"room":"r","identity":"a"}`,
		`{"room":"r","identity":"a","ttl_seconds":60,"name":"n","metadata":"m","grants":{"canPublish":false,"hidden":true}}`,
		`{"room":"r","agent_id":"bridge"}`,
		`{"token":"eyJhbGciOiJIUzI1NiJ9.e30.sig"}`,
		`{"room":"r","identity":"a","identity":"b"}`,
		`{"grants":{"canpublish":true}}`,
		`[`, `null`, `{"ttl_seconds":1e999}`, "{\"room\":\"\xff\"}",
		`{"room_name":"r","participant_attributes":{"a":"b"},"room_config":{"agents":[{"agent_name":"x"}]}}`,
	} {
		for _, path := range []string{"/token", "/token/agent", "/token/verify", "/connection-details"} {
			f.Add(path, seed)
		}
	}
	router, _, _ := newRouter(f, "RATE_LIMIT_MAX_REQUESTS=0")
	f.Fuzz(func(t *testing.T, path, body string) {
		switch path {
		case "/token", "/token/agent", "/token/verify", "/connection-details":
		default:
			path = "/token"
		}
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, req)
		if rec.Code >= 500 || (rec.Code >= 300 && rec.Code < 400) {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		var reply map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &reply); err != nil {
			t.Fatalf("reply is not a JSON object: %q", rec.Body)
		}
		if strings.Contains(rec.Body.String(), testSecret) {
			t.Fatal("the reply carries the secret")
		}
		if rec.Code >= 400 && (reply["error"] == nil || reply["message"] == nil) {
			t.Fatalf("error reply without error/message: %s", rec.Body)
		}
	})
}
