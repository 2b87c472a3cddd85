package handlers_test

import (
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
)

// series counts the samples of the HTTP request metrics: what an invented method must not grow.
func series(t *testing.T, srv *testServer) int {
	t.Helper()
	n := 0
	for name, family := range scrape(t, srv) {
		if strings.HasPrefix(name, "token_service_http_") {
			n += len(family.Metric)
		}
	}
	return n
}

// A flood of invented methods (no credentials, an unknown path, not rate limited) adds at most
// the one "other" series per metric, and no log line repeats the method.
func TestInventedMethodsAddNoSeries(t *testing.T) {
	srv := newServer(t)
	srv.do(t, "BREW", "/nope", "") // the first invented method creates the "other" series
	series(t, srv)                 // and the first scrape its own
	before := series(t, srv)
	letters := "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	for range 200 {
		method := make([]byte, 200)
		for i := range method {
			method[i] = letters[rand.IntN(len(letters))]
		}
		r := srv.do(t, string(method), "/nope", "")
		if r.status != http.StatusNotFound && r.status != http.StatusMethodNotAllowed {
			t.Fatalf("status %d", r.status)
		}
	}
	if after := series(t, srv); after != before {
		t.Errorf("HTTP request series went from %d to %d", before, after)
	}
	for line := range strings.Lines(srv.log.String()) {
		if len(line) > 1000 {
			t.Fatalf("a %d-byte log line: %.200s…", len(line), line)
		}
	}
	if !strings.Contains(srv.log.String(), `"method":"other"`) {
		t.Errorf("no access log line says method other")
	}
}

// The request line counts within the 16 KiB header limit: a 60 KB method is refused in JSON
// (net/http's own, larger limit lets it through) and logged as other.
func TestHugeMethodCountsAsHeaderBytes(t *testing.T) {
	srv := newServer(t)
	srv.do(t, strings.Repeat("M", 60_000), "/nope", "").wantError(t, http.StatusRequestHeaderFieldsTooLarge, "headers_too_large", "")
	srv.do(t, http.MethodGet, "/nope?q="+strings.Repeat("q", 17<<10), "").wantError(t, http.StatusRequestHeaderFieldsTooLarge, "headers_too_large", "")
	if strings.Contains(srv.log.String(), "MMMMMMMM") {
		t.Errorf("the method reached the log")
	}
}
