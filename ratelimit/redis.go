package ratelimit

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// fixedWindow counts one request in the current window of KEYS[1], in one round trip and
// atomically, with Redis's own clock so that every replica agrees where windows begin. It
// returns the count and the milliseconds left in the window. The window's key lives two
// windows, so it outlasts its window whatever the clocks do.
var fixedWindow = redis.NewScript(`
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
local window = tonumber(ARGV[1])
local index = math.floor(ms / window)
local key = KEYS[1] .. ':' .. index
local n = redis.call('INCR', key)
if n == 1 then redis.call('PEXPIRE', key, window * 2) end
return {n, (index + 1) * window - ms}
`)

const (
	keyPrefix = "token-service:ratelimit:"
	// missesToOpen consecutive misses (errors or answers over budget) switch this replica to
	// memory; one success resets the count, so a single slow answer does not.
	missesToOpen = 5
	// openFor is how long the replica then counts in memory before one request probes Redis.
	openFor = time.Second
)

type redisCounter struct {
	client   *redis.Client
	windowMS int64
	budget   time.Duration
	breaker  breaker
	onMiss   func()
}

func newRedisCounter(opts *redis.Options, window, budget time.Duration, onSwitch func(bool), onMiss func()) *redisCounter {
	o := *opts
	// The request's deadline bounds every wait (for a pooled connection, a dial, a reply), and
	// nothing is retried: a miss is counted in memory at once.
	o.ContextTimeoutEnabled = true
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = max(budget, 100*time.Millisecond), budget, budget
	o.PoolTimeout = budget
	o.MaxRetries = -1
	o.DisableIdentity = true
	if o.PoolSize == 0 {
		o.PoolSize = 64 // one per concurrent request at the load the benchmarks drive
	}
	return &redisCounter{
		client:   redis.NewClient(&o),
		windowMS: max(window.Milliseconds(), 1),
		budget:   budget,
		breaker:  breaker{onSwitch: onSwitch},
		onMiss:   onMiss,
	}
}

// count is ok when Redis answered within the budget; otherwise the caller counts in memory.
func (c *redisCounter) count(ctx context.Context, key string) (n int, reset time.Time, ok bool) {
	probe, ask := c.breaker.allow()
	if !ask {
		return 0, time.Time{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, c.budget)
	defer cancel()
	reply, err := fixedWindow.Run(ctx, c.client, []string{keyPrefix + key}, c.windowMS).Int64Slice()
	if err != nil || len(reply) != 2 {
		c.onMiss()
		c.breaker.miss(probe)
		return 0, time.Time{}, false
	}
	c.breaker.hit(probe)
	return int(reply[0]), time.Now().Add(time.Duration(reply[1]) * time.Millisecond), true
}

// breaker stops a replica from waiting on a Redis that keeps missing its budget: after
// missesToOpen misses in a row it opens (count in memory), and after openFor it lets one
// request probe; the probe's answer closes it or keeps it open for another openFor.
type breaker struct {
	misses    atomic.Int32
	openUntil atomic.Int64 // Unix nanoseconds; 0 while closed
	probing   atomic.Bool
	onSwitch  func(open bool)
}

func (b *breaker) open() bool { return b.openUntil.Load() != 0 }

// allow says whether this request asks Redis, and whether it is the probe.
func (b *breaker) allow() (probe, ask bool) {
	until := b.openUntil.Load()
	if until == 0 {
		return false, true
	}
	if time.Now().UnixNano() < until || !b.probing.CompareAndSwap(false, true) {
		return false, false
	}
	return true, true
}

func (b *breaker) hit(probe bool) {
	b.misses.Store(0)
	if probe {
		b.openUntil.Store(0)
		b.probing.Store(false)
		b.onSwitch(false)
	}
}

func (b *breaker) miss(probe bool) {
	if probe {
		b.openUntil.Store(time.Now().Add(openFor).UnixNano())
		b.probing.Store(false)
		return
	}
	if b.misses.Add(1) >= missesToOpen && b.openUntil.CompareAndSwap(0, time.Now().Add(openFor).UnixNano()) {
		b.onSwitch(true)
	}
}
