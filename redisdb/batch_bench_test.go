package redisdb_test

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/token-service/token-service/internal/testenv/redistest"
	"github.com/token-service/token-service/redisdb"
)

func TestMain(m *testing.M) {
	code := m.Run()
	redistest.StopShared()
	os.Exit(code)
}

var incr = redis.NewScript(`return {redis.call('INCRBY', KEYS[1], ARGV[1]), 1, 2}`)

// BenchmarkBatch is one count through a Batch from 64 goroutines, as a loaded replica makes
// them: on one node and on a three-primary cluster, each goroutine counting on a key of its own
// (many clients) or all on one (one busy client), with the CPU the client and Redis spent.
func BenchmarkBatch(b *testing.B) {
	single, err := redistest.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer single.Stop()
	for _, shape := range []struct {
		name string
		env  func() []string
	}{
		{"single", func() []string { return []string{"REDIS_URL=" + single.URL} }},
		{"cluster", func() []string {
			return []string{"REDIS_URL=" + redistest.SharedCluster(b).URL, "REDIS_MODE=cluster"}
		}},
	} {
		for _, keys := range []string{"many-keys", "one-key"} {
			b.Run(shape.name+"/"+keys, func(b *testing.B) {
				c := redistest.Client(b, append(shape.env(), "LIVEKIT_API_KEY=k", "LIVEKIT_API_SECRET=s")...)
				batch := c.NewBatch(incr, nil, time.Second, func(redisdb.Observation) {})
				defer batch.Close()
				var n atomic.Int64
				b.SetParallelism(32)
				b.ReportAllocs()
				before := cpuTimes()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					key := c.Key("bench:" + strconv.FormatInt(n.Add(1), 10))
					if keys == "one-key" {
						key = c.Key("bench:one")
					}
					for pb.Next() {
						if _, err := batch.Do(key); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.StopTimer()
				after := cpuTimes()
				b.ReportMetric(float64((after.self-before.self).Microseconds())/float64(b.N), "client-µs/op")
				b.ReportMetric(float64((after.redis-before.redis).Microseconds())/float64(b.N), "redis-µs/op")
			})
		}
	}
}

type times struct{ self, redis time.Duration }

// cpuTimes is the CPU this process and the redis-servers it started have used.
func cpuTimes() times {
	var t times
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	t.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil || !strings.Contains(string(stat), "(redis-server)") {
			continue
		}
		f := strings.Fields(string(stat)[strings.LastIndexByte(string(stat), ')')+2:])
		if ppid, _ := strconv.Atoi(f[1]); ppid != os.Getpid() {
			continue
		}
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		t.redis += time.Duration(utime+stime) * 10 * time.Millisecond
	}
	return t
}
