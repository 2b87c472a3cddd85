// Package metrics holds token-service's Prometheus metrics, on a registry of its own.
package metrics

import (
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "token_service"

// Metrics records what the service does. A nil *Metrics records nothing.
type Metrics struct {
	registry      *prometheus.Registry
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	issued        *prometheus.CounterVec
	verified      *prometheus.CounterVec
	rateLimited   prometheus.Counter
	decisions     *prometheus.CounterVec
	backendErrors prometheus.Counter
	fallbacks     prometheus.Counter
	fallbackOn    prometheus.Gauge
	bansActive    prometheus.Gauge
	banRemovals   *prometheus.CounterVec
	webhookFailed prometheus.Counter
	dispatches    *prometheus.CounterVec
	dispatchLocks prometheus.Counter
	unusableIP    prometheus.Counter
	bansRestored  prometheus.Counter
}

// New registers every metric, the Go runtime and process collectors, and a build-info gauge.
func New(version string) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP requests by route pattern, method and status."}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern, method and status.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}}, []string{"route", "method", "status"}),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "tokens_issued_total",
			Help: "Tokens issued by type."}, []string{"type"}),
		verified: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "token_verifications_total",
			Help: "Token verifications by result: valid, or the reason it is not."}, []string{"result"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "rate_limited_requests_total",
			Help: "Requests refused by the rate limiter."}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "rate_limit_decisions_total",
			Help: "Rate-limit decisions (allowed, limited, fallback: decided in memory because Redis could not answer) by key kind (ip, user, service)."},
			[]string{"decision", "key_kind"}),
		backendErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "rate_limit_backend_errors_total",
			Help: "Redis calls that failed or missed their latency budget (REDIS_TIMEOUT_MS)."}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "rate_limit_fallbacks_total",
			Help: "Times rate limiting fell back from Redis to in-memory counting."}),
		fallbackOn: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "rate_limit_fallback_active",
			Help: "1 while this replica counts rate limits in memory because Redis keeps missing its budget."}),
		bansActive: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "bans_active",
			Help: "Bans this replica holds (an expired one leaves within 10 s)."}),
		banRemovals: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "ban_removals_total",
			Help: "Removals of banned participants through LiveKit's API, by cause (ban: when it was made; webhook: a banned participant joined) and result (removed, not_present, failed, dropped)."},
			[]string{"cause", "result"}),
		webhookFailed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "webhook_verification_failures_total",
			Help: "LiveKit webhooks refused because their signature, key or body checksum did not verify."}),
		dispatches: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "agent_dispatches_total",
			Help: "Agents named in issued tokens' room configuration, by what became of them (token, explicit, existing, unconfirmed)."},
			[]string{"mode"}),
		dispatchLocks: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "agent_dispatch_lock_unshared_total",
			Help: "Dispatch checks serialised on this replica only, because Redis did not answer for the room's lock."}),
		bansRestored: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "bans_restored_total",
			Help: "Bans Redis had lost (evicted, flushed, lost in a failover) and a replica wrote back from its own copy."}),
		unusableIP: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "client_ip_header_unusable_total",
			Help: "Requests from a trusted proxy whose CLIENT_IP_HEADER named no address that could be read (rate-limited apart from the proxy's own)."}),
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "build_info",
		Help:        "Always 1; the labels say which build runs.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()}})
	buildInfo.Set(1)
	m.registry.MustRegister(m.requests, m.duration, m.issued, m.verified, m.rateLimited, m.decisions, m.backendErrors, m.fallbacks, m.fallbackOn,
		m.bansActive, m.banRemovals, m.webhookFailed, m.dispatches, m.dispatchLocks, m.unusableIP, m.bansRestored,
		buildInfo, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// ObserveRequest counts one finished HTTP request. A method outside GET, POST, OPTIONS and HEAD
// is counted as "other", so that callers cannot add series by inventing methods.
func (m *Metrics) ObserveRequest(route, method string, status int, elapsed time.Duration) {
	if m == nil {
		return
	}
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodOptions, http.MethodHead:
	default:
		method = "other"
	}
	code := statusLabel(status)
	m.requests.WithLabelValues(route, method, code).Inc()
	m.duration.WithLabelValues(route, method, code).Observe(elapsed.Seconds())
}

// Issued counts a token issued of the given type (participant, agent, ...).
func (m *Metrics) Issued(tokenType string) {
	if m != nil {
		m.issued.WithLabelValues(tokenType).Inc()
	}
}

// Verified counts a verification by its result.
func (m *Metrics) Verified(result string) {
	if m != nil {
		m.verified.WithLabelValues(result).Inc()
	}
}

// RateLimitDecision counts one decision of the rate limiter by its key kind; both are from
// ratelimit's fixed sets.
func (m *Metrics) RateLimitDecision(decision, keyKind string) {
	if m == nil {
		return
	}
	m.decisions.WithLabelValues(decision, keyKind).Inc()
	if decision == "limited" {
		m.rateLimited.Inc()
	}
}

// RateLimitBackendError counts a Redis call that failed or missed its budget.
func (m *Metrics) RateLimitBackendError() {
	if m != nil {
		m.backendErrors.Inc()
	}
}

// RateLimitFallback records a switch from Redis to in-memory counting (true) or back.
func (m *Metrics) RateLimitFallback(active bool) {
	if m == nil {
		return
	}
	if active {
		m.fallbacks.Inc()
		m.fallbackOn.Set(1)
	} else {
		m.fallbackOn.Set(0)
	}
}

// statusLabels holds every status as a string once, instead of formatting one per request.
var statusLabels = func() (labels [600]string) {
	for i := range labels {
		labels[i] = strconv.Itoa(i)
	}
	return labels
}()

func statusLabel(status int) string {
	if status >= 0 && status < len(statusLabels) {
		return statusLabels[status]
	}
	return strconv.Itoa(status)
}

// BansActive sets how many bans are in force.
func (m *Metrics) BansActive(n int) {
	if m != nil {
		m.bansActive.Set(float64(n))
	}
}

// BanRemoval counts one removal of a banned participant; cause and result are from
// moderation's fixed sets.
func (m *Metrics) BanRemoval(cause, result string) {
	if m != nil {
		m.banRemovals.WithLabelValues(cause, result).Inc()
	}
}

// WebhookVerificationFailed counts a webhook that did not verify.
func (m *Metrics) WebhookVerificationFailed() {
	if m != nil {
		m.webhookFailed.Inc()
	}
}

// AgentDispatch counts one agent's dispatch outcome; mode is from dispatch's fixed set.
func (m *Metrics) AgentDispatch(mode string) {
	if m != nil {
		m.dispatches.WithLabelValues(mode).Inc()
	}
}

// BansRestored counts bans written back to Redis after it lost them.
func (m *Metrics) BansRestored(n int) {
	if m != nil {
		m.bansRestored.Add(float64(n))
	}
}

// ClientIPUnusable counts a request whose trusted proxy's header named no readable address.
func (m *Metrics) ClientIPUnusable() {
	if m != nil {
		m.unusableIP.Inc()
	}
}

// DispatchLockUnshared counts a dispatch check that Redis could not serialise across replicas.
func (m *Metrics) DispatchLockUnshared() {
	if m != nil {
		m.dispatchLocks.Inc()
	}
}
