package handlers

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/token-service/token-service/api"
	"github.com/token-service/token-service/ratelimit"
)

const serviceName = "token-service"

// Readiness is whether this replica should receive new traffic. It turns false for good when
// shutdown begins, so a load balancer takes the replica out while it still serves.
type Readiness struct {
	draining atomic.Bool
}

// Drain makes /ready answer 503 from now on.
func (r *Readiness) Drain() { r.draining.Store(true) }

type status struct {
	Status    string `json:"status"`
	Service   string `json:"service"`
	Timestamp string `json:"timestamp"`
	// Where rate limits are counted: memory, redis, or memory-fallback while Redis is down.
	RateLimitBackend string `json:"rate_limit_backend,omitzero"`
}

func statusNow(s string) status {
	return status{Status: s, Service: serviceName, Timestamp: time.Now().UTC().Format(time.RFC3339)}
}

// handleHealth answers while the process can serve HTTP at all (liveness).
func handleHealth() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, statusNow("healthy"))
	}
}

// handleReady answers 200 until shutdown begins, then 503 (readiness). A Redis outage does not
// make the replica unready, since it still issues tokens; the body says where counting happens.
func handleReady(readiness *Readiness, limits *ratelimit.Limiter) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		reply, code := statusNow("ready"), http.StatusOK
		if readiness.draining.Load() {
			reply, code = statusNow("not_ready"), http.StatusServiceUnavailable
		}
		reply.RateLimitBackend = limits.State()
		encode(w, code, reply)
	}
}

var yamlContentType = []string{"application/yaml"}

// handleOpenAPI serves the contract.
func handleOpenAPI() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = yamlContentType
		_, _ = w.Write(api.OpenAPI)
	}
}
