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
	// openFor is how often a replica counting in memory probes Redis.
	openFor = time.Second
)

type redisCounter struct {
	client   *redis.Client
	windowMS int64
	budget   time.Duration
	breaker  breaker
	onMiss   func()
	closed   chan struct{} // closed by Close: ends a probe
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
		closed:   make(chan struct{}),
	}
}

// count is ok when Redis answered within the budget; otherwise the caller counts in memory.
// While the breaker is open no request asks Redis at all.
func (c *redisCounter) count(ctx context.Context, key string) (n int, reset time.Time, ok bool) {
	if c.breaker.open() {
		return 0, time.Time{}, false
	}
	// The budget, not the client, ends the call: a client that hangs up must not count as a
	// Redis miss, or hanging up at once would switch replicas off the shared count.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.budget)
	defer cancel()
	reply, err := fixedWindow.Run(ctx, c.client, []string{keyPrefix + key}, c.windowMS).Int64Slice()
	if err != nil || len(reply) != 2 {
		c.onMiss()
		if c.breaker.miss() {
			go c.probe()
		}
		return 0, time.Time{}, false
	}
	c.breaker.hit()
	return int(reply[0]), time.Now().Add(time.Duration(reply[1]) * time.Millisecond), true
}

// probe runs while the breaker is open: every openFor it asks Redis, off any request, whether
// it answers within the budget again, and closes the breaker when it does. The first command
// may dial and so gets a generous deadline; only the second, on a warm connection, is timed
// against the budget, so a Redis that answers but slowly stays "down".
func (c *redisCounter) probe() {
	ticker := time.NewTicker(openFor)
	defer ticker.Stop()
	for {
		select {
		case <-c.closed:
			return
		case <-ticker.C:
		}
		warm, cancel := context.WithTimeout(context.Background(), max(10*c.budget, 100*time.Millisecond))
		err := c.client.Ping(warm).Err()
		cancel()
		if err != nil {
			continue
		}
		timed, cancel := context.WithTimeout(context.Background(), c.budget)
		err = fixedWindow.Run(timed, c.client, []string{keyPrefix + "probe"}, c.windowMS).Err()
		cancel()
		if err == nil {
			c.breaker.close()
			return
		}
		c.onMiss()
	}
}

// breaker stops a replica from waiting on a Redis that keeps missing its budget: after
// missesToOpen misses in a row it opens (count in memory), and a probe off the request path
// closes it again.
type breaker struct {
	misses   atomic.Int32
	isOpen   atomic.Bool
	onSwitch func(open bool)
}

func (b *breaker) open() bool { return b.isOpen.Load() }

func (b *breaker) hit() { b.misses.Store(0) }

// miss counts a miss and reports whether it opened the breaker (once per outage).
func (b *breaker) miss() bool {
	if b.misses.Add(1) < missesToOpen || !b.isOpen.CompareAndSwap(false, true) {
		return false
	}
	b.onSwitch(true)
	return true
}

func (b *breaker) close() {
	b.misses.Store(0)
	b.isOpen.Store(false)
	b.onSwitch(false)
}
