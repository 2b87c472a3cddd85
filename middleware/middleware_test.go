package middleware_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/token-service/token-service/middleware"
)

func TestRecoverAnswersAndLogs(t *testing.T) {
	var logs bytes.Buffer
	reply := func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"internal"}`, http.StatusInternalServerError)
	}
	h := middleware.RequestID(middleware.Recover(zerolog.New(&logs), reply)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	})))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "internal") || strings.Contains(rec.Body.String(), "boom") {
		t.Errorf("reply %d %q", rec.Code, rec.Body)
	}
	if !strings.Contains(logs.String(), "boom") || !strings.Contains(logs.String(), "handler panicked") {
		t.Errorf("log %q", logs.String())
	}
}

func TestRecoverLetsAbortThrough(t *testing.T) {
	h := middleware.Recover(zerolog.Nop(), nil)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	defer func() {
		if recover() != http.ErrAbortHandler {
			t.Error("http.ErrAbortHandler must reach net/http")
		}
	}()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
}
