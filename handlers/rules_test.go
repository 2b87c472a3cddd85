package handlers_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestHealthAndReady(t *testing.T) {
	srv := newServer(t)
	for path, status := range map[string]string{"/health": "healthy", "/ready": "ready"} {
		r := srv.do(t, http.MethodGet, path, "")
		fields := map[string]int{"/health": 3, "/ready": 4}[path] // /ready also says where rate limits are counted
		if r.status != 200 || r.body["status"] != status || r.body["service"] != "token-service" || len(r.body) != fields {
			t.Fatalf("%s: %d %s", path, r.status, r.raw)
		}
		if _, err := time.Parse(time.RFC3339, r.body["timestamp"].(string)); err != nil {
			t.Errorf("%s timestamp: %v", path, err)
		}
		if r.header.Get("Cache-Control") == "no-store" {
			t.Errorf("%s is not a token route; no-store is for tokens", path)
		}
	}
	srv.readiness.Drain()
	if r := srv.do(t, http.MethodGet, "/ready", ""); r.status != 503 || r.body["status"] != "not_ready" || r.body["rate_limit_backend"] != "memory" {
		t.Errorf("after Drain: %d %s", r.status, r.raw)
	}
	if r := srv.do(t, http.MethodGet, "/health", ""); r.status != 200 {
		t.Errorf("health must stay 200 while draining: %d", r.status)
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	srv := newServer(t)
	srv.do(t, http.MethodGet, "/nope", "").wantError(t, 404, "not_found", "")
	srv.post(t, "/token/nope", `{}`).wantError(t, 404, "not_found", "")
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodGet, "/token", "POST"},
		{http.MethodPut, "/token/verify", "POST"},
		{http.MethodDelete, "/token/agent", "POST"},
		{http.MethodPost, "/health", "GET"},
		{http.MethodPatch, "/ready", "GET"},
	} {
		r := srv.do(t, tc.method, tc.path, "")
		r.wantError(t, 405, "method_not_allowed", "")
		if r.header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: Allow = %q, want %q", tc.method, tc.path, r.header.Get("Allow"), tc.allow)
		}
	}
}

func TestEveryReplyCarriesRequestIDAndNoSniff(t *testing.T) {
	srv := newServer(t)
	for _, r := range []reply{
		srv.do(t, http.MethodGet, "/health", ""),
		srv.do(t, http.MethodGet, "/nope", ""),
		srv.post(t, "/token", `{}`),
		srv.post(t, "/token", `{"room":"r","identity":"a"}`),
	} {
		if len(r.header.Get("X-Request-ID")) < 16 || r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("headers %v", r.header)
		}
	}
	if r := srv.do(t, http.MethodGet, "/health", "", "X-Request-ID: trace-42.a:b_c"); r.header.Get("X-Request-ID") != "trace-42.a:b_c" {
		t.Errorf("a sane request id must be kept: %q", r.header.Get("X-Request-ID"))
	}
	for _, insane := range []string{"has space", "<script>", strings.Repeat("a", 129), "quote\"d"} {
		r := srv.do(t, http.MethodGet, "/health", "", "X-Request-ID: "+insane)
		if got := r.header.Get("X-Request-ID"); got == insane || got == "" {
			t.Errorf("request id %q must be replaced, got %q", insane, got)
		}
	}
}

func TestCORSAnyOrigin(t *testing.T) {
	srv := newServer(t) // CORS_ORIGINS defaults to *
	r := srv.post(t, "/token", `{"room":"r","identity":"a"}`, "Origin: https://app.example.com")
	if r.header.Get("Access-Control-Allow-Origin") != "*" || r.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("headers %v", r.header)
	}
	pre := srv.do(t, http.MethodOptions, "/token", "", "Origin: https://app.example.com",
		"Access-Control-Request-Method: POST", "Access-Control-Request-Headers: content-type, authorization, x-request-id")
	if pre.status != 200 && pre.status != 204 {
		t.Fatalf("preflight %d %s", pre.status, pre.raw)
	}
	if pre.header.Get("Access-Control-Allow-Origin") != "*" || pre.header.Get("Access-Control-Allow-Methods") != "POST" ||
		!strings.EqualFold(pre.header.Get("Access-Control-Allow-Headers"), "content-type, authorization, x-request-id") {
		t.Errorf("preflight headers %v", pre.header)
	}
}

func TestCORSList(t *testing.T) {
	srv := newServer(t, "CORS_ORIGINS=https://app.example.com, http://localhost:5173")
	for _, origin := range []string{"https://app.example.com", "http://localhost:5173"} {
		r := srv.post(t, "/token", `{"room":"r","identity":"a"}`, "Origin: "+origin)
		if r.header.Get("Access-Control-Allow-Origin") != origin || !strings.Contains(r.header.Get("Vary"), "Origin") {
			t.Errorf("%s: headers %v", origin, r.header)
		}
	}
	r := srv.post(t, "/token", `{"room":"r","identity":"a"}`, "Origin: https://evil.example.com")
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("another origin got an allow header: %v", r.header)
	}
	pre := srv.do(t, http.MethodOptions, "/token", "", "Origin: https://evil.example.com", "Access-Control-Request-Method: POST")
	pre.wantError(t, 403, "forbidden", "")
	if pre.header.Get("Access-Control-Allow-Origin") != "" || pre.header.Get("Access-Control-Allow-Methods") != "" {
		t.Errorf("preflight from another origin allowed: %v", pre.header)
	}
	pre = srv.do(t, http.MethodOptions, "/token", "", "Origin: https://app.example.com", "Access-Control-Request-Method: DELETE")
	pre.wantError(t, 403, "forbidden", "")
	pre = srv.do(t, http.MethodOptions, "/token", "", "Origin: https://app.example.com", "Access-Control-Request-Method: POST")
	if pre.status != 200 || pre.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || pre.raw != "" {
		t.Errorf("allowed preflight: %d %v %q", pre.status, pre.header, pre.raw)
	}
}

func TestRateLimit(t *testing.T) {
	srv := newServer(t, "RATE_LIMIT_MAX_REQUESTS=3", "RATE_LIMIT_WINDOW_MS=60000")
	body := `{"room":"r","identity":"a"}`
	for i := range 3 {
		r := srv.post(t, "/token", body)
		// A success carries only what is left (see rateLimit).
		if r.status != 200 || r.header.Get("X-RateLimit-Remaining") != strconv.Itoa(2-i) || r.header.Get("X-RateLimit-Limit") != "" {
			t.Fatalf("request %d: %d %v", i, r.status, r.header)
		}
	}
	// Every token route shares the client's budget; a spoofed X-Forwarded-For from an untrusted
	// peer changes nothing.
	r := srv.post(t, "/token/verify", `{"token":"x"}`, "X-Forwarded-For: 203.0.113.9", "X-Real-IP: 203.0.113.10")
	r.wantError(t, 429, "rate_limited", "")
	// Windows are fixed: the wait is until the current one ends, at most the window's length.
	reset, err := strconv.ParseInt(r.header.Get("X-RateLimit-Reset"), 10, 64)
	retryAfter, retryErr := strconv.Atoi(r.header.Get("Retry-After"))
	now := time.Now().Unix()
	if r.header.Get("X-RateLimit-Limit") != "3" || r.header.Get("X-RateLimit-Remaining") != "0" ||
		err != nil || reset < now || reset > now+60 || retryErr != nil || retryAfter < 1 || retryAfter > 60 ||
		reset-now-int64(retryAfter) > 1 || int64(retryAfter)-(reset-now) > 1 {
		t.Errorf("429 headers %v", r.header)
	}
	for _, path := range []string{"/health", "/ready"} {
		if r := srv.do(t, http.MethodGet, path, ""); r.status != 200 {
			t.Errorf("%s is rate limited: %d", path, r.status)
		}
	}
}

func TestRateLimitTrustsOnlyConfiguredProxies(t *testing.T) {
	srv := newServer(t, "RATE_LIMIT_MAX_REQUESTS=1", "TRUSTED_PROXIES=127.0.0.0/8")
	body := `{"room":"r","identity":"a"}`
	// Behind a trusted proxy each forwarded client has its own budget. Only CLIENT_IP_HEADER
	// (X-Forwarded-For by default) is read: X-Real-IP counts as the proxy itself.
	for _, h := range []string{"X-Forwarded-For: 203.0.113.1", "X-Forwarded-For: 203.0.113.2", "X-Real-IP: 203.0.113.3"} {
		if r := srv.post(t, "/token", body, h); r.status != 200 {
			t.Errorf("%s: %d", h, r.status)
		}
	}
	srv.post(t, "/token", body, "X-Forwarded-For: 203.0.113.1").wantError(t, 429, "rate_limited", "")
	// The rightmost untrusted address is the client: a value the client prepends is ignored.
	srv.post(t, "/token", body, "X-Forwarded-For: 198.51.100.7, 203.0.113.2").wantError(t, 429, "rate_limited", "")
	srv.post(t, "/token", body, "X-Real-IP: 203.0.113.4").wantError(t, 429, "rate_limited", "")
}

func TestRateLimitOff(t *testing.T) {
	srv := newServer(t, "RATE_LIMIT_MAX_REQUESTS=0")
	for range 20 {
		if r := srv.post(t, "/token", `{"room":"r","identity":"a"}`); r.status != 200 || r.header.Get("X-RateLimit-Remaining") != "" {
			t.Fatalf("%d %v", r.status, r.header)
		}
	}
}
