package handlers

import (
	"net/http"
	"sync/atomic"
	"time"
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

// handleReady answers 200 until shutdown begins, then 503 (readiness).
func handleReady(readiness *Readiness) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if readiness.draining.Load() {
			encode(w, http.StatusServiceUnavailable, statusNow("not_ready"))
			return
		}
		encode(w, http.StatusOK, statusNow("ready"))
	}
}
