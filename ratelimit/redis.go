package ratelimit

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/token-service/token-service/redisdb"
)

// fixedWindow counts ARGV[2] requests (a batch's on one key) in the current window of KEYS[1],
// atomically and with Redis's own clock, so that every replica agrees where windows begin. The key is the only one the
// script touches (a cluster routes it by its slot); it expires when its window ends. It returns
// the count, the milliseconds left in the window, and Redis's clock in microseconds (how long
// Redis took to get to the call, package ratelimit's latency estimate).
var fixedWindow = redis.NewScript(`
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
local window = tonumber(ARGV[1])
local ends = (math.floor(ms / window) + 1) * window
local add = tonumber(ARGV[2])
local n = redis.call('INCRBY', KEYS[1], add)
if n == add then redis.call('PEXPIREAT', KEYS[1], ends) end
return {n, ends - ms, now[1] * 1000000 + now[2]}
`)

const (
	// missesToOpen misses among the last recentBatches (batches that failed, or that Redis
	// answered slower than the budget) switch this replica to memory: a Redis that is slow, not
	// a moment when it was (a burst on a busy machine delays a batch now and then).
	missesToOpen  = 12
	recentBatches = 16
	// openFor is how often a replica counting in memory probes Redis.
	openFor = time.Second
)

// waitLimit is the most a request waits for its batch: far above any answer Redis gives in
// its budget, so that a process busy on both cores (whose goroutines wait to be scheduled) is
// not taken for a slow Redis; a stalled Redis still opens the breaker within a fraction of a
// second (five misses of two batches in flight).
func waitLimit(budget time.Duration) time.Duration {
	return min(max(20*budget, 100*time.Millisecond), 2*time.Second)
}

type redisCounter struct {
	batch    *redisdb.Batch
	prefix   func(string) string
	windowMS int64
	budget   time.Duration
	breaker  breaker
	latency  latency
	onMiss   func()
	closed   chan struct{} // closed by Close: ends a probe
}

func newRedisCounter(c *redisdb.Client, window, budget time.Duration, onSwitch func(bool), onMiss func()) *redisCounter {
	windowMS := max(window.Milliseconds(), 1)
	rc := &redisCounter{
		prefix:   func(key string) string { return c.Key("ratelimit:" + key) },
		windowMS: windowMS,
		budget:   budget,
		breaker:  breaker{onSwitch: onSwitch},
		onMiss:   onMiss,
		closed:   make(chan struct{}),
	}
	rc.batch = c.NewBatch(fixedWindow, []any{windowMS}, waitLimit(budget), rc.observe)
	return rc
}

// count is ok when Redis answered; otherwise the caller counts in memory. While the breaker is
// open no request asks Redis at all.
func (c *redisCounter) count(key string) (n int, reset time.Time, ok bool) {
	if c.breaker.open() {
		return 0, time.Time{}, false
	}
	reply, err := c.batch.Do(c.prefix(key))
	if err != nil || len(reply) != 3 {
		return 0, time.Time{}, false
	}
	return int(reply[0]), time.Now().Add(time.Duration(reply[1]) * time.Millisecond), true
}

// observe judges each batch, once: a miss when it failed or when Redis took longer than the
// budget to answer it (as Redis took it: latency), which the breaker counts.
func (c *redisCounter) observe(o redisdb.Observation) {
	fast := c.fast(o)
	if !fast {
		c.onMiss()
	}
	if c.breaker.record(!fast) {
		go c.probe()
	}
}

func (c *redisCounter) fast(o redisdb.Observation) bool {
	if o.Err != nil || len(o.Replies) == 0 {
		return false
	}
	var latest int64 // the clock of the node that got to the batch last
	for _, r := range o.Replies {
		if len(r) != 3 {
			return false
		}
		latest = max(latest, r[2])
	}
	return c.latency.of(o.Sent, o.Received, latest) <= c.budget
}

// probe runs while the breaker is open: every openFor it counts once on a key of its own, and
// the breaker closes when that batch was within the budget (observe hears it).
func (c *redisCounter) probe() {
	ticker := time.NewTicker(openFor)
	defer ticker.Stop()
	for c.breaker.open() {
		select {
		case <-c.closed:
			return
		case <-ticker.C:
		}
		_, _ = c.batch.Do(c.prefix("probe"))
	}
}

// latency estimates how long Redis took to answer a batch, leaving out how long this process
// took to notice the answer. A batch's round trip (Sent to Received) includes the wait of the
// goroutine that reads the reply for a core, which on a busy replica is most of it; Redis's
// clock at the call (TIME, in the reply) is not delayed by that. The two clocks differ by an
// unknown offset, estimated, as NTP does, from the fastest round trip seen lately (for it, the
// way there is about half the round trip). The estimate is then twice the way there.
type latency struct {
	mu sync.Mutex
	// The fastest round trip of this epoch and the last, and the offset each gave.
	epochStart           time.Time
	best, previous       time.Duration
	bestOff, previousOff int64 // Redis's clock minus ours at the middle of the round trip, µs
	bestSet, previousSet bool
}

// epoch is how long an offset estimate stands before a fresher one replaces it (clocks drift,
// and a route can change).
const epoch = 10 * time.Second

func (l *latency) of(sent, received time.Time, redisMicros int64) time.Duration {
	rtt := received.Sub(sent)
	off := redisMicros - (sent.UnixMicro()+received.UnixMicro())/2
	l.mu.Lock()
	if received.Sub(l.epochStart) > epoch {
		l.previous, l.previousOff, l.previousSet = l.best, l.bestOff, l.bestSet
		l.bestSet, l.epochStart = false, received
	}
	if !l.bestSet || rtt < l.best {
		l.best, l.bestOff, l.bestSet = rtt, off, true
	}
	offset := l.bestOff
	if l.previousSet && l.previous < l.best {
		offset = l.previousOff
	}
	l.mu.Unlock()
	there := time.Duration(redisMicros-sent.UnixMicro()-offset) * time.Microsecond
	return max(2*there, 0)
}

// breaker stops a replica from waiting on a Redis that keeps missing its budget: when
// missesToOpen of the last recentBatches missed it opens (count in memory), and a batch within
// the budget (the probe's, off the request path) closes it again.
type breaker struct {
	mu       sync.Mutex
	recent   uint32 // one bit per batch, newest lowest: 1 missed
	isOpen   atomic.Bool
	onSwitch func(open bool)
}

func (b *breaker) open() bool { return b.isOpen.Load() }

// record adds a batch's verdict and reports whether it opened the breaker (once per outage).
func (b *breaker) record(missed bool) (opened bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.recent <<= 1
	if missed {
		b.recent |= 1
	}
	b.recent &= 1<<recentBatches - 1
	switch {
	case !missed && b.isOpen.Load():
		b.recent = 0
		b.isOpen.Store(false)
		b.onSwitch(false)
	case missed && !b.isOpen.Load() && bits.OnesCount32(b.recent) >= missesToOpen:
		b.isOpen.Store(true)
		b.onSwitch(true)
		return true
	}
	return false
}
