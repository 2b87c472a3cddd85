package handlers

import (
	"net/http"

	"github.com/go-chi/cors"

	"github.com/token-service/token-service/middleware"
)

var errPreflightRefused = &apiError{Status: http.StatusForbidden, Code: "forbidden",
	Message: "CORS preflight refused: origin, method or headers not allowed (see CORS_ORIGINS)"}

// corsHandler applies CORS with go-chi/cors. A preflight it does not allow is answered with a JSON
// 403 rather than the library's bare 200, so that a developer sees why the browser blocks.
func corsHandler(origins []string, reply responder) func(http.Handler) http.Handler {
	c := cors.New(cors.Options{
		AllowedOrigins: origins,
		AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodOptions},
		AllowedHeaders: []string{"Content-Type", "Authorization", middleware.RequestIDHeader},
		// So that a browser app can read the request id and back off when rate limited.
		ExposedHeaders:   []string{middleware.RequestIDHeader, "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"},
		AllowCredentials: false,
		MaxAge:           600,
	})
	return func(next http.Handler) http.Handler {
		handler := c.Handler(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			preflight := r.Method == http.MethodOptions && r.Header.Get("Origin") != "" &&
				r.Header.Get("Access-Control-Request-Method") != ""
			if !preflight {
				handler.ServeHTTP(w, r)
				return
			}
			held := &heldStatus{ResponseWriter: w, status: http.StatusOK}
			handler.ServeHTTP(held, r)
			if w.Header().Get("Access-Control-Allow-Origin") == "" {
				reply.error(w, r, errPreflightRefused)
				return
			}
			w.WriteHeader(held.status)
		})
	}
}

// heldStatus keeps a preflight's status back until it is known whether CORS allowed it; a
// preflight reply has no body.
type heldStatus struct {
	http.ResponseWriter
	status int
}

func (h *heldStatus) WriteHeader(status int)      { h.status = status }
func (h *heldStatus) Write(b []byte) (int, error) { return len(b), nil }

// MaxHeaderBytes is the most request headers may hold. net/http's own limit (set above this in
// main) answers in plain text, so this one answers first, in JSON.
const MaxHeaderBytes = 16 << 10

var errHeadersTooLarge = &apiError{Status: http.StatusRequestHeaderFieldsTooLarge, Code: "headers_too_large",
	Message: "request headers must be at most 16 KiB"}

func limitHeaderBytes(reply responder) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return limitHeaders(reply, next)
	}
}

func limitHeaders(reply responder, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		size := requestLineBytes(r)
		for name, values := range r.Header {
			for _, v := range values {
				size += len(name) + len(v) + 4 // ": " and CRLF
			}
		}
		if size > MaxHeaderBytes {
			reply.error(w, r, errHeadersTooLarge)
			return
		}
		next.ServeHTTP(w, r)
	})
}
