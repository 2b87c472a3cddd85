// Package ratelimit chooses where rate-limit counters live: in memory per replica, or in Redis so
// that every replica behind a load balancer shares one limit per client.
package ratelimit

import (
	"fmt"
	"time"

	"github.com/go-chi/httprate"
	httprateredis "github.com/go-chi/httprate-redis"
	"github.com/redis/go-redis/v9"
)

// Backend states, as /ready reports them.
const (
	Memory        = "memory"          // no Redis configured
	Redis         = "redis"           // counting in Redis, shared by every replica
	RedisFallback = "memory-fallback" // Redis unreachable: counting in memory until it is back
)

// redisTimeout bounds every Redis command; past it the request is counted in memory instead, so a
// slow or dead Redis adds at most this much to a request.
const redisTimeout = 100 * time.Millisecond

// Events hears about Redis trouble (for logs and metrics).
type Events struct {
	OnError    func(error)
	OnFallback func(activated bool) // true when counting moves to memory, false when Redis is back
}

// Backend is where the counters live.
type Backend struct {
	counter interface {
		httprate.LimitCounter
		IsFallbackActivated() bool
		Close() error
	}
}

// New returns the in-memory backend when redisURL is empty, else a Redis one (redis://, or
// rediss:// for TLS, with user, password and database in the URL). It does not wait for Redis:
// an unreachable Redis means in-memory counting until it answers.
func New(redisURL string, window time.Duration, events Events) (*Backend, error) {
	if redisURL == "" {
		return &Backend{}, nil
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	// Short timeouts and no retries, so that the fallback takes over quickly.
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = 2*redisTimeout, redisTimeout, redisTimeout
	opts.MaxRetries = -1
	opts.DisableIdentity = true
	counter := httprateredis.NewCounter(&httprateredis.Config{
		Client:           redis.NewClient(opts),
		WindowLength:     window,
		PrefixKey:        "token-service:ratelimit",
		FallbackTimeout:  redisTimeout,
		OnError:          events.OnError,
		OnFallbackChange: events.OnFallback,
	})
	return &Backend{counter: counter}, nil
}

// Options are the httprate options that put the counters in this backend.
func (b *Backend) Options() []httprate.Option {
	if b.counter == nil {
		return nil
	}
	return []httprate.Option{httprate.WithLimitCounter(b.counter)}
}

// State says where counting happens right now.
func (b *Backend) State() string {
	switch {
	case b.counter == nil:
		return Memory
	case b.counter.IsFallbackActivated():
		return RedisFallback
	}
	return Redis
}

// Close releases the Redis connections.
func (b *Backend) Close() error {
	if b.counter == nil {
		return nil
	}
	return b.counter.Close()
}
