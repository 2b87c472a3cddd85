package redisdb_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/token-service/token-service/internal/testenv/redistest"
	"github.com/token-service/token-service/redisdb"
)

// Counts on one key coalesced into one script call still give every caller a count of its own:
// over any interleaving, the counts a key's callers get are exactly 1..N. A node that forgot the
// script (SCRIPT FLUSH, as after a restart or a failover) is sent it again within the batch.
func TestBatchGivesEveryCallerItsOwnCount(t *testing.T) {
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	for _, shape := range []struct {
		name string
		env  func() (env, nodes []string)
	}{
		{"single", func() ([]string, []string) { return []string{"REDIS_URL=" + srv.URL}, []string{srv.Addr} }},
		{"cluster", func() ([]string, []string) {
			cluster := redistest.SharedCluster(t)
			return []string{"REDIS_URL=" + cluster.URL, "REDIS_MODE=cluster"}, cluster.Addrs()
		}},
	} {
		t.Run(shape.name, func(t *testing.T) {
			env, nodes := shape.env()
			c := redistest.Client(t, append(env, "LIVEKIT_API_KEY=k", "LIVEKIT_API_SECRET=s")...)
			var batches int
			var mu sync.Mutex
			batch := c.NewBatch(incr, nil, 5*time.Second, func(o redisdb.Observation) {
				mu.Lock()
				defer mu.Unlock()
				if o.Err == nil {
					batches++
				}
			})
			defer batch.Close()
			const goroutines, calls, keys = 64, 40, 5
			prefix := c.Key("batch-test:" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":")
			got := make([][]int64, keys)
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					for i := range calls {
						if g == 0 && i == calls/2 {
							flushScripts(t, nodes)
						}
						k := (g + i) % keys
						reply, err := batch.Do(prefix + strconv.Itoa(k))
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						got[k] = append(got[k], reply[0])
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			for k, counts := range got {
				slices.Sort(counts)
				for i, n := range counts {
					if n != int64(i+1) {
						t.Fatalf("key %d: the counts callers got, sorted, are %v: want 1..%d, each once", k, counts, len(counts))
					}
				}
			}
			if batches >= goroutines*calls {
				t.Errorf("%d batches for %d calls: nothing was sent together", batches, goroutines*calls)
			}
		})
	}
}

// flushScripts makes every node forget every script, as the default (administrator) user.
func flushScripts(t *testing.T, nodes []string) {
	for _, addr := range nodes {
		admin := redis.NewClient(&redis.Options{Addr: addr})
		err := admin.ScriptFlush(context.Background()).Err()
		_ = admin.Close()
		if err != nil && !strings.Contains(err.Error(), "READONLY") {
			t.Errorf("SCRIPT FLUSH on %s: %v", addr, err)
		}
	}
}
