package handlers_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/token-service/token-service/config"
	"github.com/token-service/token-service/handlers"
	"github.com/token-service/token-service/internal/app"
	"github.com/token-service/token-service/internal/testenv/logtest"
	"github.com/token-service/token-service/logging"
)

const (
	testKey    = "APIhandlerkey"
	testSecret = "handler-test-secret-0123456789abcdef"
	testWSURL  = "wss://lk.example.com"
)

type testServer struct {
	*httptest.Server
	log       *logtest.Buffer
	readiness *handlers.Readiness
}

// newServer starts the real router, configured through the real config loader, on 127.0.0.1.
// env adds to or overrides a test configuration.
func newServer(t *testing.T, env ...string) *testServer {
	t.Helper()
	router, logs, readiness := newRouter(t, env...)
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	return &testServer{Server: srv, log: logs, readiness: readiness}
}

// newRouter is the real router with a test configuration, for callers that need no socket.
func newRouter(t testing.TB, env ...string) (http.Handler, *logtest.Buffer, *handlers.Readiness) {
	t.Helper()
	environ := append([]string{"APP_ENV=development", "LIVEKIT_API_KEY=" + testKey, "LIVEKIT_API_SECRET=" + testSecret,
		"LIVEKIT_WS_URL=" + testWSURL, "LOG_LEVEL=debug",
		// LiveKit's server API (bans, agent dispatch) on a port nothing listens on: a call fails at once.
		"LIVEKIT_API_URL=http://127.0.0.1:9"}, env...)
	cfg, err := config.Load(environ)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &logtest.Buffer{}
	log := logging.New(logs, zerolog.DebugLevel, false)
	deps, closeDeps, err := app.New(t.Context(), cfg, "test", log, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeDeps() })
	return handlers.NewRouter(deps), logs, deps.Readiness
}

type reply struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

// do sends one request; headers are "Name: value" strings. A body is sent as JSON unless a
// Content-Type header says otherwise.
func (s *testServer) do(t *testing.T, method, path, body string, headers ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ": ")
		if name == "Host" {
			req.Host = value
			continue
		}
		req.Header.Set(name, value)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 && resp.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("%s %s: reply is not a JSON object: %q", method, path, raw)
		}
	}
	// Every exchange of every handler test is held to the documented contract.
	checkContract(t, method, s.URL+path, req.Header.Get("Content-Type"), body, r)
	return r
}

func (s *testServer) post(t *testing.T, path, body string, headers ...string) reply {
	t.Helper()
	return s.do(t, http.MethodPost, path, body, headers...)
}

// wantError checks the one error shape: status, code and, when given, the field.
func (r reply) wantError(t *testing.T, status int, code, field string) {
	t.Helper()
	if r.status != status || r.body["error"] != code || r.body["message"] == nil || r.body["message"] == "" {
		t.Fatalf("got %d %s, want %d with error %q", r.status, r.raw, status, code)
	}
	if got, _ := r.body["field"].(string); got != field {
		t.Fatalf("field = %q, want %q (reply %s)", got, field, r.raw)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q", ct)
	}
}

// wantErrorCode checks status, code and JSON shape, whatever the field.
func (r reply) wantErrorCode(t *testing.T, status int, code string) {
	t.Helper()
	field, _ := r.body["field"].(string)
	r.wantError(t, status, code, field)
}
