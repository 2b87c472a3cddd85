// Package middleware holds the small HTTP wrappers that chi and zerolog do not provide.
package middleware

import (
	"crypto/rand"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"
	"github.com/rs/zerolog"
)

// RequestIDHeader carries the request id both ways. It is spelled in canonical form because
// net/http allocates to canonicalise any other spelling on every Get and Set.
const RequestIDHeader = "X-Request-Id"

// Constant header values are shared slices assigned directly, since Header.Set allocates a new
// one-element slice per call. Nothing appends to them (append would copy: len == cap).
var (
	nosniff = []string{"nosniff"}
	noStore = []string{"no-store"}
)

// A caller's request id is kept only when it is short and plain, so that it cannot inject log
// lines, header values or markup; otherwise a fresh one is made.
var saneRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// RequestID gives every request an id and echoes it in the reply. Log lines read it back from the
// reply's headers (RequestIDOf) rather than from a per-request logger in the context, which would
// cost four allocations per request.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !saneRequestID.MatchString(id) {
			id = rand.Text()
		}
		w.Header()[RequestIDHeader] = []string{id}
		next.ServeHTTP(w, r)
	})
}

// RequestIDOf is the id RequestID gave the request that w answers.
func RequestIDOf(w http.ResponseWriter) string {
	if id := w.Header()[RequestIDHeader]; len(id) > 0 {
		return id[0]
	}
	return ""
}

// NoSniff stops browsers from guessing a reply's type.
func NoSniff(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-Content-Type-Options"] = nosniff
		next.ServeHTTP(w, r)
	})
}

// NoStore keeps tokens out of every cache between the service and the caller.
func NoStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Cache-Control"] = noStore
		next.ServeHTTP(w, r)
	})
}

// MethodLabel is the method as logs and metrics name it: one of the few the API answers, or
// "other". The raw method is the caller's to choose, and each new value would be a new series
// and a log line as long as the method (issue 14: 500 invented methods made 8,048 series).
func MethodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodOptions, http.MethodHead:
		return method
	}
	return "other"
}

// Observer hears about every finished request (for metrics), with the method as MethodLabel
// names it.
type Observer func(route, method string, status int, elapsed time.Duration)

// AccessLog writes one line per request: method, route pattern (never the raw URL, which could
// carry a token in its query), status, duration, request id and client ip. observe hears the
// same facts.
func AccessLog(log zerolog.Logger, observe Observer) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return accessLog(log, observe, next)
	}
}

func accessLog(log zerolog.Logger, observe Observer, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := chimw.NewWrapResponseWriter(w, r.ProtoMajor)
		defer func() {
			route := "unmatched"
			if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.RoutePattern() != "" {
				route = rctx.RoutePattern()
			}
			status := ww.Status()
			if status == 0 { // the handler wrote nothing, net/http sends 200
				status = http.StatusOK
			}
			elapsed := time.Since(start)
			method := MethodLabel(r.Method)
			observe(route, method, status, elapsed)
			var ip [64]byte // formatted in place: Addr.String would allocate a string per line
			log.Info().
				Str("request_id", RequestIDOf(w)).
				Str("method", method).
				Str("route", route).
				Int("status", status).
				Dur("duration", elapsed).
				Bytes("client_ip", ClientOf(r.Context()).Addr.AppendTo(ip[:0])).
				Msg("request")
		}()
		next.ServeHTTP(ww, r)
	})
}

// Recover turns a panic in a handler into reply (a JSON 500) and a log line, so that nothing a
// caller sends can take the process down or see a stack trace.
func Recover(log zerolog.Logger, reply http.HandlerFunc) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if v == http.ErrAbortHandler { // net/http's own way to abort a reply; let it through
					panic(v)
				}
				log.Error().
					Str("request_id", RequestIDOf(w)).
					Interface("panic", v).
					Bytes("stack", debug.Stack()).
					Msg("handler panicked")
				reply(w, r)
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// LargeBodies lets at most n requests whose body may exceed threshold bytes (by Content-Length,
// or of unknown length) be served at once; the others wait their turn for at most wait, then
// get busy (a 429 with Retry-After), so that a few slow uploads holding the slots cannot hold
// everyone else. The service's heap is a few MiB and its soft memory limit 24 MiB: dozens of
// concurrent 256 KiB bodies, each decoded and signed into a token as large, kept the collector
// running all the time (3.7x the CPU per request, docs/performance.md). Small requests, which
// are nearly all of them, never wait.
func LargeBodies(threshold int64, n int, wait time.Duration, busy http.HandlerFunc) func(http.Handler) http.Handler {
	slots := make(chan struct{}, n)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength >= 0 && r.ContentLength <= threshold {
				next.ServeHTTP(w, r)
				return
			}
			timer := time.NewTimer(wait)
			defer timer.Stop()
			select {
			case slots <- struct{}{}:
			case <-timer.C:
				w.Header().Set("Retry-After", "1")
				busy(w, r)
				return
			case <-r.Context().Done():
				return // the client left; nothing to answer
			}
			defer func() { <-slots }()
			next.ServeHTTP(w, r)
		})
	}
}
