package ratelimit

import (
	"hash/maphash"
	"sync"
	"time"
)

const (
	shardCount = 64
	// maxKeysPerShard bounds memory under a flood of distinct clients (64 × 4096 keys, a few
	// MiB). Past it, a new key of a full shard is not counted until the window ends: counting
	// them together would let whoever filled the shards lock every new client out, and a flood
	// of that many addresses is not slowed by a per-client limit anyway.
	maxKeysPerShard = 4096
)

// memoryCounter is a fixed-window counter in this process, sharded so that requests for
// different keys rarely wait for each other and no lock is global.
type memoryCounter struct {
	window time.Duration
	seed   maphash.Seed
	shards [shardCount]shard
}

type shard struct {
	mu      sync.Mutex
	current int64 // the window index the counts belong to
	counts  map[string]int
}

func newMemoryCounter(window time.Duration) *memoryCounter {
	m := &memoryCounter{window: window, seed: maphash.MakeSeed()}
	for i := range m.shards {
		m.shards[i].counts = map[string]int{}
	}
	return m
}

// count adds one request to key's window at now and returns the window's count and its end.
func (m *memoryCounter) count(key string, now time.Time) (int, time.Time) {
	windowMS := max(m.window.Milliseconds(), 1)
	index := now.UnixMilli() / windowMS
	s := &m.shards[maphash.String(m.seed, key)%shardCount]
	s.mu.Lock()
	if s.current != index { // a new window: every earlier count is over
		clear(s.counts)
		s.current = index
	}
	if _, known := s.counts[key]; !known && len(s.counts) >= maxKeysPerShard {
		s.mu.Unlock()
		return 1, time.UnixMilli((index + 1) * windowMS)
	}
	s.counts[key]++
	n := s.counts[key]
	s.mu.Unlock()
	return n, time.UnixMilli((index + 1) * windowMS)
}
