// Package handlers is token-service's HTTP surface: the router with its middleware, one handler
// per endpoint, and the one JSON error shape.
package handlers

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"
	"github.com/go-chi/httprate"
	"github.com/rs/zerolog"

	"github.com/token-service/token-service/config"
	"github.com/token-service/token-service/middleware"
)

// NewRouter returns the whole HTTP API: middleware in order, then every route of the contract.
func NewRouter(cfg config.Config, s Services, log zerolog.Logger) http.Handler {
	r := chi.NewRouter()
	reply := responder{log: log}
	// Outermost first: every reply, even a 404, 429 or recovered panic, carries the request id
	// and nosniff, and is logged once.
	r.Use(middleware.NoSniff)
	r.Use(middleware.RequestID)
	r.Use(clientIP(cfg.TrustedProxyCIDRs())...)
	r.Use(middleware.AccessLog(log, s.Metrics.ObserveRequest))
	r.Use(middleware.Recover(log, func(w http.ResponseWriter, r *http.Request) { reply.error(w, r, errInternal) }))
	r.Use(limitHeaderBytes(reply))
	r.Use(corsHandler(cfg.AllowedOrigins(), reply))

	r.NotFound(func(w http.ResponseWriter, r *http.Request) { reply.error(w, r, errNotFound) })
	r.MethodNotAllowed(handleMethodNotAllowed(r, reply))

	r.Get("/health", handleHealth())
	r.Get("/ready", handleReady(s.Readiness, s.RateLimit))
	r.Get("/openapi.yaml", handleOpenAPI())
	if cfg.MetricsAddr() == "" { // else main serves it on a listener of its own
		r.Method(http.MethodGet, "/metrics", s.Metrics.Handler())
	}
	r.Group(func(r chi.Router) {
		r.Use(rateLimit(cfg, s, reply))
		r.Use(middleware.NoStore)
		r.Use(identify(s.Auth, reply))
		r.Post("/token", handleJoin(s.Issuer, reply))
		r.Post("/token/agent", handleAgent(s.Issuer, reply))
		r.Post("/token/verify", handleVerify(s.Issuer, reply))
		r.Post("/connection-details", handleConnectionDetails(s.Issuer, reply))
	})
	return r
}

// clientIP decides who the client is: the TCP peer, or, only when the peer is a trusted proxy,
// the address it forwards (X-Forwarded-For first, else X-Real-IP). Each step overrides the one
// before only when it finds a trustworthy address.
func clientIP(trusted []string) []func(http.Handler) http.Handler {
	steps := []func(http.Handler) http.Handler{chimw.ClientIPFromRemoteAddr}
	if len(trusted) > 0 {
		steps = append(steps,
			chimw.ClientIPFromHeader("X-Real-IP", trusted...),
			chimw.ClientIPFromXFF(trusted...))
	}
	return steps
}

// rateLimit limits the token routes (and /connection-details) per client IP (never health or
// readiness, which load balancers poll). RATE_LIMIT_MAX_REQUESTS=0 turns it off.
//
// A successful reply carries only X-RateLimit-Remaining; a 429 adds X-RateLimit-Limit,
// X-RateLimit-Reset and Retry-After. Two more headers on every reply would take a token reply
// past the eight entries a Go map holds without growing, and net/http clones the header map of
// every reply: that cost 8% of the service's CPU per request under load (docs/performance.md).
func rateLimit(cfg config.Config, s Services, reply responder) func(http.Handler) http.Handler {
	if cfg.RateLimitMaxRequests == 0 {
		return func(next http.Handler) http.Handler { return next }
	}
	limit := []string{strconv.Itoa(cfg.RateLimitMaxRequests)}
	window := cfg.RateLimitWindow()
	options := append(s.RateLimit.Options(),
		httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
			s.Metrics.RateLimited()
			// httprate's Retry-After is the window's length; Reset is when that wait ends.
			w.Header()["X-Ratelimit-Limit"] = limit
			w.Header().Set("X-Ratelimit-Reset", strconv.FormatInt(time.Now().Add(window).Unix(), 10))
			reply.error(w, r, errRateLimited)
		}),
		httprate.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) { reply.error(w, r, err) }),
		// Canonical spellings: net/http allocates to canonicalise any other on every Set.
		httprate.WithResponseHeaders(httprate.ResponseHeaders{Remaining: "X-Ratelimit-Remaining", RetryAfter: "Retry-After"}),
	)
	return httprate.LimitBy(cfg.RateLimitMaxRequests, window,
		func(r *http.Request) (string, error) { return chimw.GetClientIP(r.Context()), nil }, options...)
}

// handleMethodNotAllowed answers 405 with the Allow header that chi only sets on its own
// plain-text 405, found by asking the router which methods match the path.
func handleMethodNotAllowed(router chi.Routes, reply responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allowed []string
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			if router.Match(chi.NewRouteContext(), method, r.URL.Path) {
				allowed = append(allowed, method)
			}
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		reply.error(w, r, errMethodNotAllowed)
	}
}
