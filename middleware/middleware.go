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

// RequestIDHeader carries the request id both ways.
const RequestIDHeader = "X-Request-ID"

// A caller's request id is kept only when it is short and plain, so that it cannot inject log
// lines, header values or markup; otherwise a fresh one is made.
var saneRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// RequestID gives every request an id, echoes it in the reply and adds it to the request's
// logger, so a caller's report can be matched to the log line.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !saneRequestID.MatchString(id) {
			id = rand.Text()
		}
		w.Header().Set(RequestIDHeader, id)
		zerolog.Ctx(r.Context()).UpdateContext(func(c zerolog.Context) zerolog.Context {
			return c.Str("request_id", id)
		})
		next.ServeHTTP(w, r)
	})
}

// NoSniff stops browsers from guessing a reply's type.
func NoSniff(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// NoStore keeps tokens out of every cache between the service and the caller.
func NoStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// Observer hears about every finished request (for metrics).
type Observer func(route, method string, status int, elapsed time.Duration)

// AccessLog writes one line per request: method, route pattern (never the raw URL, which could
// carry a token in its query), status, duration, client ip; the request id comes with the logger.
// observe hears the same facts.
func AccessLog(observe Observer) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return accessLog(observe, next)
	}
}

func accessLog(observe Observer, next http.Handler) http.Handler {
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
			observe(route, r.Method, status, elapsed)
			zerolog.Ctx(r.Context()).Info().
				Str("method", r.Method).
				Str("route", route).
				Int("status", status).
				Dur("duration", elapsed).
				Str("client_ip", chimw.GetClientIP(r.Context())).
				Msg("request")
		}()
		next.ServeHTTP(ww, r)
	})
}

// Recover turns a panic in a handler into reply (a JSON 500) and a log line, so that nothing a
// caller sends can take the process down or see a stack trace.
func Recover(reply http.HandlerFunc) func(http.Handler) http.Handler {
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
				zerolog.Ctx(r.Context()).Error().
					Interface("panic", v).
					Bytes("stack", debug.Stack()).
					Msg("handler panicked")
				reply(w, r)
			}()
			next.ServeHTTP(w, r)
		})
	}
}
