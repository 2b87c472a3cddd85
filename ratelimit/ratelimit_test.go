package ratelimit

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/token-service/token-service/internal/testenv/delayproxy"
	"github.com/token-service/token-service/internal/testenv/redistest"
	"github.com/token-service/token-service/internal/testenv/wait"
)

func startRedis(t *testing.T) *redistest.Server {
	t.Helper()
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

func redisLimiter(t *testing.T, addr string, limit int, window, budget time.Duration, onFallback func(bool)) *Limiter {
	t.Helper()
	l := New(Settings{Limit: limit, Window: window, IPv6Prefix: 64, Redis: redistest.Client(t, "REDIS_URL=redis://"+addr+"/0"),
		RedisTimeout: budget, OnFallback: onFallback})
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// admitted counts, per window (told apart by when it ends), how many of n requests for key
// spread over the limiters were admitted, sending them from 16 goroutines at once.
func admitted(t *testing.T, n, limit int, key string, limiters ...*Limiter) map[int64]int {
	t.Helper()
	var mu sync.Mutex
	perWindow := map[int64]int{}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				l := limiters[int(i)%len(limiters)]
				count, reset, decidedBy := l.count(key)
				if decidedBy == RedisFallback {
					t.Errorf("request %d counted in memory: Redis missed its budget", i)
				}
				if count <= limit {
					mu.Lock()
					perWindow[reset.Round(time.Minute).Unix()]++ // windows end on the hour
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return perWindow
}

// Two replicas on one Redis admit, in each window, exactly the limit between them: the count is
// one atomic script, so the tolerance is zero.
func TestReplicasShareOneLimitExactly(t *testing.T) {
	srv := startRedis(t)
	// A generous budget: this test is about the count, not about latency on a busy machine.
	a := redisLimiter(t, srv.Addr, 50, time.Hour, time.Second, nil)
	b := redisLimiter(t, srv.Addr, 50, time.Hour, time.Second, nil)
	perWindow := admitted(t, 300, 50, "ip:203.0.113.7", a, b)
	total := 0
	for window, n := range perWindow {
		total += n
		if n != 50 {
			t.Errorf("window ending %d admitted %d, want exactly 50", window, n)
		}
	}
	if total == 0 {
		t.Fatal("nothing admitted")
	}
	if state := a.State(); state != Redis {
		t.Errorf("state %q", state)
	}
}

func TestMemoryCounterFixedWindow(t *testing.T) {
	m := newMemoryCounter(time.Minute)
	start := time.UnixMilli(60_000 * 1000) // the start of a window
	for i := 1; i <= 3; i++ {
		if n, reset := m.count("k", start.Add(time.Duration(i)*time.Second)); n != i || !reset.Equal(start.Add(time.Minute)) {
			t.Fatalf("request %d: count %d reset %v", i, n, reset)
		}
	}
	if n, _ := m.count("other", start); n != 1 {
		t.Errorf("another key shares the count: %d", n)
	}
	if n, reset := m.count("k", start.Add(time.Minute)); n != 1 || !reset.Equal(start.Add(2*time.Minute)) {
		t.Errorf("the next window starts at 1: %d %v", n, reset)
	}
}

// A flood of distinct clients cannot grow the counters past their bound, nor let every new
// client through: the client seen least recently is forgotten, and a client that keeps asking
// keeps its count through the flood.
func TestMemoryCounterKeepsLimitingUnderAFlood(t *testing.T) {
	m := newMemoryCounter(time.Minute)
	now := time.UnixMilli(60_000 * 1000)
	steady := 0
	for i := range 300_000 {
		m.count("flood-"+strconv.Itoa(i), now)
		if i%64 == 0 { // a client that keeps asking through the flood
			steady++
			if n, _ := m.count("steady", now); n != steady {
				t.Fatalf("after %d flood keys the steady client counts %d, want %d", i, n, steady)
			}
		}
	}
	for want := 1; want <= 3; want++ { // counted, not waved through
		if n, _ := m.count("a newcomer", now); n != want {
			t.Fatalf("a newcomer after the flood counts %d, want %d", n, want)
		}
	}
	used := 0
	for i := range m.shards {
		used += m.shards[i].used
	}
	if used != shardCount*slotsPerShard {
		t.Errorf("%d slots in use after the flood, want every one of %d", used, shardCount*slotsPerShard)
	}
}

// The shard's index and recency list agree with a plain map and list under random use, evictions
// and deletions included.
func TestMemoryShardAgreesWithAModel(t *testing.T) {
	var s shard
	s.head, s.tail = none, none
	rng := rand.New(rand.NewPCG(1, 2))
	model := map[uint64]bool{}
	var order []uint64 // most recent first
	for step := range 200_000 {
		// Hashes cluster in a few probe runs, so that deletions shift entries around.
		h := uint64(rng.IntN(5000))<<6 | uint64(rng.IntN(3))<<20
		i := s.find(h)
		if (i != none) != model[h] {
			t.Fatalf("step %d: find(%x) = %d, model says present=%v", step, h, i, model[h])
		}
		if i == none {
			if len(order) == slotsPerShard {
				delete(model, order[len(order)-1])
				order = order[:len(order)-1]
			}
			s.insert(h)
			model[h] = true
		} else {
			s.touch(i)
			order = slices.DeleteFunc(order, func(v uint64) bool { return v == h })
		}
		order = append([]uint64{h}, order...)
		if s.slots[s.tail].hash != order[len(order)-1] || s.slots[s.head].hash != h {
			t.Fatalf("step %d: recency list disagrees with the model", step)
		}
	}
}

// Slow is down: a Redis that answers in 80 ms (under no timeout of its own) is answered for a
// few batches, then the replica stops asking until a probe sees it within the budget again. A
// request never waits longer than waitLimit.
func TestStallingRedisFallsBackAndRecovers(t *testing.T) {
	srv := startRedis(t)
	proxy, err := delayproxy.Start(srv.Addr, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	var switches []bool
	var mu sync.Mutex
	l := redisLimiter(t, proxy.Addr, 1000, time.Minute, 5*time.Millisecond, func(on bool) { mu.Lock(); switches = append(switches, on); mu.Unlock() })
	wait.For(t, 5*time.Second, func() error { // the first call dials
		if _, _, by := l.count("k"); by != Redis || l.State() != Redis {
			return errors.New("a fast Redis does not decide")
		}
		return nil
	})

	proxy.SetDelay(40 * time.Millisecond) // 80 ms per round trip
	slowest := time.Duration(0)
	for i := 0; l.State() != RedisFallback; i++ {
		if i == recentBatches {
			t.Fatalf("state %q after %d requests to an 80 ms Redis", l.State(), i)
		}
		start := time.Now()
		l.count("k")
		slowest = max(slowest, time.Since(start))
	}
	// The bound: a request waits for its batch at most waitLimit; the margin is for a busy
	// machine's scheduling.
	if limit := waitLimit(5 * time.Millisecond); slowest > limit+50*time.Millisecond {
		t.Errorf("slowest request waited %s for a stalled Redis (limit %s)", slowest, limit)
	}
	if _, _, by := l.count("k"); by != RedisFallback {
		t.Errorf("with the breaker open a request was decided by %s", by)
	}

	proxy.SetDelay(250 * time.Microsecond)    // a Redis within its budget again, not instantly
	wait.For(t, 5*time.Second, func() error { // a probe off the request path sees it
		if l.State() != Redis {
			return errors.New("still counting in memory")
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if len(switches) != 2 || !switches[0] || switches[1] {
		t.Errorf("switches heard %v, want [true false]: one per switch", switches)
	}
}

func TestKilledRedisFallsBackThenShares(t *testing.T) {
	srv := startRedis(t)
	l := redisLimiter(t, srv.Addr, 1000, time.Minute, 100*time.Millisecond, nil)
	if _, _, by := l.count("k"); by != Redis {
		t.Fatalf("decided by %s", by)
	}
	srv.Stop()
	for i := 0; l.State() != RedisFallback; i++ {
		if i == recentBatches {
			t.Fatalf("state %q after %d requests to a dead Redis", l.State(), i)
		}
		if _, _, by := l.count("k"); by == Redis {
			t.Fatal("a dead Redis decided")
		}
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 5*time.Second, func() error {
		if l.State() != Redis {
			return errors.New("not back on Redis")
		}
		return nil
	})
	if _, _, by := l.count("k"); by != Redis {
		t.Errorf("back on Redis, but a request was decided by %s", by)
	}
}

// The latency estimate leaves out the time the reply waited for this process: a round trip
// stretched by scheduling is not a slow Redis; one stretched before Redis got to it is.
func TestLatencyIsRedisNotTheScheduler(t *testing.T) {
	l := &latency{}
	base := time.Unix(1_800_000_000, 0)
	offset := int64(123_456_789) // Redis's clock minus ours, µs
	at := func(sent time.Time, there, back time.Duration) time.Duration {
		redisNow := sent.Add(there).UnixMicro() + offset
		return l.of(sent, sent.Add(there+back), redisNow)
	}
	// A quiet round trip: 100 µs each way.
	if got := at(base, 100*time.Microsecond, 100*time.Microsecond); got > time.Millisecond {
		t.Fatalf("a quiet round trip is %s", got)
	}
	// The reply waits 30 ms for a core: Redis was fast.
	if got := at(base.Add(time.Second), 100*time.Microsecond, 30*time.Millisecond); got > time.Millisecond {
		t.Errorf("a round trip stretched on our side counts %s", got)
	}
	// Redis (or the way to it) takes 40 ms: slow.
	if got := at(base.Add(2*time.Second), 40*time.Millisecond, 100*time.Microsecond); got < 40*time.Millisecond {
		t.Errorf("a Redis 40 ms late counts %s", got)
	}
	// A Redis 80 ms away from the start is slow too, though no faster trip was ever seen.
	l = &latency{}
	if got := at(base, 40*time.Millisecond, 40*time.Millisecond); got < 60*time.Millisecond {
		t.Errorf("a Redis 80 ms away counts %s", got)
	}
}

// BenchmarkMemoryLimiter is the in-memory counter alone, each goroutine its own client: -cpu 1,2
// shows whether clients wait for each other (docs/performance.md).
func BenchmarkMemoryLimiter(b *testing.B) {
	l := New(Settings{Limit: 1 << 30, Window: time.Minute, IPv6Prefix: 64})
	var clients atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		key := "ip:198.51.100." + string(rune('0'+clients.Add(1)%10))
		for pb.Next() {
			l.count(key)
		}
	})
}

// BenchmarkRedisLimiter is one request's count on a real redis-server over loopback, from as
// many goroutines as -cpu says times 32: concurrent counts share round trips.
func BenchmarkRedisLimiter(b *testing.B) {
	srv, err := redistest.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Stop()
	l := New(Settings{Limit: 1 << 30, Window: time.Minute, IPv6Prefix: 64, Redis: redistest.Client(b, "REDIS_URL="+srv.URL), RedisTimeout: time.Second})
	defer l.Close()
	b.ReportAllocs()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, by := l.count("ip:198.51.100.1"); by != Redis {
				b.Fatal("counted in memory")
			}
		}
	})
}
