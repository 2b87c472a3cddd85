// Package handlers is token-service's HTTP surface: the router with its middleware, one handler
// per endpoint, and the one JSON error shape.
package handlers

import (
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/livekit/protocol/auth"
	"github.com/rs/zerolog"

	"github.com/token-service/token-service/authn"
	"github.com/token-service/token-service/issuance"
	"github.com/token-service/token-service/metrics"
	"github.com/token-service/token-service/middleware"
	"github.com/token-service/token-service/moderation"
	"github.com/token-service/token-service/policy"
	"github.com/token-service/token-service/ratelimit"
)

// Deps are what the router serves with; run builds them (internal/app) and the router only
// mounts them.
type Deps struct {
	// Service runs the pass from request to token: validate, decide, sign, dispatch.
	Service   *issuance.Service
	Policy    *policy.Engine // what Service decides with; run reloads it on SIGHUP
	Auth      *authn.Authenticator
	Limiter   *ratelimit.Limiter
	Readiness *Readiness
	Metrics   *metrics.Metrics
	Moderator *moderation.Moderator
	// WebhookKeys verify LiveKit's webhooks: the configured key and the verify-only ones.
	WebhookKeys auth.KeyProvider
	Log         zerolog.Logger // warnings, errors, recovered panics
	AccessLog   zerolog.Logger // one line per request

	CORSOrigins    []string       // ["*"] allows every origin
	TrustedProxies []netip.Prefix // proxies whose ClientIPHeader is believed
	ClientIPHeader string
	ServeMetrics   bool // false when /metrics has a listener of its own
}

// NewRouter returns the whole HTTP API: middleware in order, then every route of the contract.
func NewRouter(d Deps) http.Handler {
	r := chi.NewRouter()
	reply := responder{log: d.Log}
	// Outermost first: every reply, even a 404, 429 or recovered panic, carries the request id
	// and nosniff, and is logged once.
	r.Use(middleware.NoSniff)
	r.Use(middleware.RequestID)
	r.Use(middleware.ClientIP(d.ClientIPHeader, d.TrustedProxies, d.Metrics.ClientIPUnusable))
	r.Use(middleware.AccessLog(d.AccessLog, d.Metrics.ObserveRequest))
	r.Use(middleware.Recover(d.Log, func(w http.ResponseWriter, r *http.Request) { reply.error(w, r, errInternal) }))
	r.Use(limitHeaderBytes(reply))
	r.Use(corsHandler(d.CORSOrigins, reply))

	r.NotFound(func(w http.ResponseWriter, r *http.Request) { reply.error(w, r, errNotFound) })
	r.MethodNotAllowed(handleMethodNotAllowed(r, reply))

	r.Get("/health", handleHealth())
	r.Get("/ready", handleReady(d.Readiness, d.Limiter))
	r.Get("/openapi.yaml", handleOpenAPI())
	if d.ServeMetrics {
		r.Method(http.MethodGet, "/metrics", d.Metrics.Handler())
	}
	// The token routes (never health or readiness, which load balancers poll): who is calling,
	// then the rate limit keyed by it, then the refusal of credentials that did not verify, so
	// that a flood of bad credentials is limited by its address; then whether any rule could
	// admit this caller at all (a 401 before a byte of the body is read).
	rateLimited := func(w http.ResponseWriter, r *http.Request) { reply.error(w, r, errRateLimited) }
	// One bound on large bodies for every route that reads one.
	largeBodies := middleware.LargeBodies(largeBody, runtime.GOMAXPROCS(0), 2*time.Second, rateLimited)
	admit := func(ep policy.Endpoint) func(http.Handler) http.Handler { return admission(d.Service, ep, reply) }
	r.Group(func(r chi.Router) {
		r.Use(d.Auth.Middleware)
		r.Use(d.Limiter.Middleware(rateLimited))
		r.Use(refuseBadCredentials(reply))
		r.Use(middleware.NoStore)
		r.With(admit(policy.Participant), largeBodies).Post("/token", handleJoin(d.Service, reply))
		r.With(admit(policy.Agent), largeBodies).Post("/token/agent", handleAgent(d.Service, reply))
		r.With(admit(policy.Backend), largeBodies).Post("/token/verify", handleVerify(d.Service, reply))
		r.With(admit(policy.Participant), largeBodies).Post("/connection-details", handleConnectionDetails(d.Service, reply))
		r.With(admit(policy.Backend), largeBodies).Post("/moderation/bans", handleBan(d.Moderator, reply))
		r.With(admit(policy.Backend)).Get("/moderation/bans", handleListBans(d.Moderator, reply))
		r.With(admit(policy.Backend)).Delete("/moderation/bans", handleLiftBan(d.Moderator, reply))
	})
	// LiveKit's webhooks carry LiveKit's signature, not a caller's credentials, and are not rate
	// limited: one LiveKit server sends every room's events from one address.
	r.Group(func(r chi.Router) {
		r.Use(largeBodies)
		r.Post("/webhooks/livekit", handleWebhook(d.WebhookKeys, d.Moderator, d.Metrics, reply))
	})
	return r
}

// largeBody is where a request starts to count as large: past the whole of a typical join (a
// few hundred bytes), well short of the 64 KiB metadata and attributes LiveKit allows.
const largeBody = 16 << 10

// refuseBadCredentials answers 401 when the Authorization header did not verify; what a caller
// that did verify may ask for is the policy's to decide.
func refuseBadCredentials(reply responder) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := authn.CallerOf(r); err != nil {
				reply.error(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// admission answers, before the body is read, a caller that no rule could admit to ep with the
// credentials it sent (policy.Engine.Admit): credentials first, then the body's 400s, then 403s.
func admission(svc *issuance.Service, ep policy.Endpoint, reply responder) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := svc.Admit(callerOf(r), ep); err != nil {
				reply.error(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// handleMethodNotAllowed answers 405 with the Allow header that chi only sets on its own
// plain-text 405, found by asking the router which methods match the path.
func handleMethodNotAllowed(router chi.Routes, reply responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allowed []string
		for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
			if router.Match(chi.NewRouteContext(), method, r.URL.Path) {
				allowed = append(allowed, method)
			}
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		reply.error(w, r, errMethodNotAllowed)
	}
}
