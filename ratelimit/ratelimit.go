// Package ratelimit limits the token routes per client: the signed-in user or service key when
// there is one, else the client address. Counters live in memory on each replica, or in Redis so
// that every replica behind a load balancer shares one limit per client.
//
// The algorithm is a fixed window: a key may make at most Limit requests in each window
// [k·W, (k+1)·W), where W is the window length and windows are aligned to the clock (Redis's
// clock when counting there, so every replica agrees on the boundaries). A request refused
// still counts. Over an arbitrary span of length W a key can therefore be admitted up to 2·Limit
// times (the end of one window and the start of the next), and no more.
package ratelimit

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/token-service/token-service/redisdb"
)

// States, as /ready reports them.
const (
	Memory        = "memory"          // no Redis configured
	Redis         = "redis"           // counting in Redis, shared by every replica
	RedisFallback = "memory-fallback" // Redis missed its budget: counting in memory on this replica
)

// Decisions and key kinds, as the metrics label them.
const (
	Allowed  = "allowed"  // under the limit, counted where the limit is shared (or in memory mode)
	Limited  = "limited"  // refused with 429
	Fallback = "fallback" // decided by this replica's memory because Redis could not answer in time

	KindIP      = "ip"
	KindUser    = "user"
	KindService = "service"
)

// Settings configure a Limiter.
type Settings struct {
	Limit        int // requests per window per client; 0 turns limiting off
	ServiceLimit int // requests per window per service key; 0 means no limit for them
	Window       time.Duration
	IPv6Prefix   int             // IPv6 clients are grouped by this many leading bits
	Redis        *redisdb.Client // nil: count in memory only
	RedisTimeout time.Duration   // how long Redis may take to answer a batch of counts
	// OnDecision hears every decision, for metrics; OnFallback hears each switch of this
	// replica from Redis to memory (true) and back (false). Either may be nil.
	OnDecision  func(decision, keyKind string)
	OnFallback  func(active bool)
	OnRedisMiss func() // a Redis call failed or missed its budget
}

// Limiter counts requests per key and refuses those over the limit. It is safe for concurrent
// use and holds no lock across I/O.
type Limiter struct {
	s         Settings
	memory    *memoryCounter
	redis     *redisCounter // nil without Redis
	closeOnce sync.Once
	// remaining holds "0" … Limit as strings, so a reply's header costs no formatting.
	remaining []string
}

// New returns a Limiter. It does not wait for Redis: an unreachable Redis means counting in
// memory until it answers.
func New(s Settings) *Limiter {
	if s.OnDecision == nil {
		s.OnDecision = func(string, string) {}
	}
	if s.OnFallback == nil {
		s.OnFallback = func(bool) {}
	}
	if s.OnRedisMiss == nil {
		s.OnRedisMiss = func() {}
	}
	l := &Limiter{s: s, memory: newMemoryCounter(s.Window)}
	if s.Redis != nil {
		l.redis = newRedisCounter(s.Redis, s.Window, s.RedisTimeout, s.OnFallback, s.OnRedisMiss)
	}
	for i := range min(max(s.Limit, s.ServiceLimit), 4096) + 1 {
		l.remaining = append(l.remaining, strconv.Itoa(i))
	}
	return l
}

// State says where counting happens right now.
func (l *Limiter) State() string {
	switch {
	case l.redis == nil:
		return Memory
	case l.redis.breaker.open():
		return RedisFallback
	}
	return Redis
}

// Close stops counting in Redis (the connections are the shared client's).
func (l *Limiter) Close() error {
	if l.redis != nil {
		l.closeOnce.Do(func() {
			close(l.redis.closed)
			l.redis.batch.Close()
		})
	}
	return nil
}

// Middleware counts each request against its key and hands the ones over the limit to refuse,
// which writes the 429 body; the headers are set already.
//
// A successful reply carries only X-RateLimit-Remaining; a 429 adds X-RateLimit-Limit,
// X-RateLimit-Reset and Retry-After. Two more headers on every reply would take a token reply
// past the eight entries a Go map holds without growing, and net/http clones the header map of
// every reply: that cost 8% of the service's CPU per request under load (docs/performance.md).
func (l *Limiter) Middleware(refuse http.HandlerFunc) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if l.s.Limit == 0 && l.s.ServiceLimit == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			k := l.keyOf(r)
			if k.limit == 0 {
				next.ServeHTTP(w, r)
				return
			}
			count, reset, decidedBy := l.count(k.name)
			h := w.Header()
			h["X-Ratelimit-Remaining"] = []string{l.formatInt(max(k.limit-count, 0))}
			decision := Allowed
			if decidedBy == RedisFallback {
				decision = Fallback
			}
			if count > k.limit {
				decision = Limited
			}
			l.s.OnDecision(decision, k.kind)
			if decision == Limited {
				wait := time.Until(reset)
				h["X-Ratelimit-Limit"] = []string{l.formatInt(k.limit)}
				h["X-Ratelimit-Reset"] = []string{strconv.FormatInt(reset.Unix(), 10)}
				h["Retry-After"] = []string{strconv.FormatInt(int64(max((wait+time.Second-1)/time.Second, 1)), 10)}
				refuse(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func (l *Limiter) formatInt(n int) string {
	if n < len(l.remaining) {
		return l.remaining[n]
	}
	return strconv.Itoa(n)
}

// count adds one request to key's current window and returns the window's count, when it ends,
// and which state decided it.
func (l *Limiter) count(key string) (int, time.Time, string) {
	if l.redis != nil {
		if count, reset, ok := l.redis.count(key); ok {
			return count, reset, Redis
		}
		count, reset := l.memory.count(key, time.Now())
		return count, reset, RedisFallback
	}
	count, reset := l.memory.count(key, time.Now())
	return count, reset, Memory
}
