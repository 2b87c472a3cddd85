package middleware_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/token-service/token-service/internal/testenv/wait"
	"github.com/token-service/token-service/middleware"
)

// One slot: a second large request waits for the first, a small one never does, and a waiting
// client that gives up is not served.
func TestLargeBodiesTakeTurns(t *testing.T) {
	release := make(chan struct{})
	var inside, served atomic.Int32
	busy := func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTooManyRequests) }
	h := middleware.LargeBodies(10, 1, time.Hour, busy)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if r.ContentLength != 1 {
			inside.Add(1)
			<-release
			inside.Add(-1)
		}
	}))
	large := func(ctx context.Context) *http.Request {
		return httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(strings.Repeat("x", 11))).WithContext(ctx)
	}
	first := make(chan struct{})
	go func() { h.ServeHTTP(httptest.NewRecorder(), large(context.Background())); close(first) }()
	wait.For(t, 5*time.Second, func() error { // the first large request holds the slot
		if inside.Load() != 1 {
			return errors.New("the first large request is not being served")
		}
		return nil
	})

	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/token", strings.NewReader("x")))
	if served.Load() != 2 {
		t.Fatal("a small request waited for the large one")
	}
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan struct{})
	go func() { h.ServeHTTP(httptest.NewRecorder(), large(ctx)); close(gaveUp) }()
	cancel()
	<-gaveUp
	if served.Load() != 2 {
		t.Error("a large request was served beside another, past the one slot")
	}
	close(release)
	<-first
	h.ServeHTTP(httptest.NewRecorder(), large(context.Background()))
	if served.Load() != 3 {
		t.Error("the slot was not given back")
	}
}

// A large request that cannot get a slot in time is told to come back, not held.
func TestLargeBodiesWaitIsBounded(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	busy := func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTooManyRequests) }
	h := middleware.LargeBodies(10, 1, 50*time.Millisecond, busy)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		close(entered)
		<-release
	}))
	body := func() *http.Request {
		return httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(strings.Repeat("x", 11)))
	}
	go h.ServeHTTP(httptest.NewRecorder(), body())
	<-entered // the first request holds the one slot
	w := httptest.NewRecorder()
	h.ServeHTTP(w, body())
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Errorf("a request that found no slot: %d %v", w.Code, w.Header())
	}
}
