package ratelimit

import (
	"hash/maphash"
	"sync"
	"time"
)

const (
	shardCount = 64
	// slotsPerShard bounds memory under a flood of distinct clients: 64 × 2,048 = 131,072
	// clients are counted at once, in 3.5 MiB allocated at start and never grown (nothing in it
	// is a pointer, so the collector does not scan it). Past that, the client seen least
	// recently is forgotten for the newest: every client that keeps asking keeps its count, and
	// a flood of new addresses can only push out clients that have gone quiet.
	slotsPerShard = 2048
	// tableSize is the open-addressing index of a shard: twice its slots, a power of two.
	tableSize = 2 * slotsPerShard
)

// memoryCounter is a fixed-window counter in this process, sharded so that requests for
// different keys rarely wait for each other and no lock is global. Each shard is a fixed-size
// least-recently-seen cache of counts.
type memoryCounter struct {
	window time.Duration
	seed   maphash.Seed
	shards [shardCount]shard
}

// slot is one client's count. Keys are kept as a 64-bit hash under a per-process random seed:
// two clients share a count only if their hashes collide, which no client can arrange.
type slot struct {
	hash       uint64
	window     int64 // the window index count belongs to
	count      uint32
	prev, next uint16 // the recency list; slotsPerShard marks its end
}

const none = slotsPerShard

type shard struct {
	mu    sync.Mutex
	slots [slotsPerShard]slot
	// table maps a hash to slot index+1 by linear probing; 0 is empty.
	table      [tableSize]uint16
	used       int
	head, tail uint16 // most and least recently seen
}

func newMemoryCounter(window time.Duration) *memoryCounter {
	m := &memoryCounter{window: window, seed: maphash.MakeSeed()}
	for i := range m.shards {
		m.shards[i].head, m.shards[i].tail = none, none
	}
	return m
}

// count adds one request to key's window at now and returns the window's count and its end.
func (m *memoryCounter) count(key string, now time.Time) (int, time.Time) {
	windowMS := max(m.window.Milliseconds(), 1)
	index := now.UnixMilli() / windowMS
	h := maphash.String(m.seed, key)
	s := &m.shards[h%shardCount]
	s.mu.Lock()
	i := s.find(h)
	if i == none {
		i = s.insert(h)
	} else {
		s.touch(i)
	}
	e := &s.slots[i]
	if e.window != index { // a new window: the earlier count is over
		e.window, e.count = index, 0
	}
	if e.count < ^uint32(0) {
		e.count++
	}
	n := int(e.count)
	s.mu.Unlock()
	return n, time.UnixMilli((index + 1) * windowMS)
}

func (s *shard) probe(h uint64) uint64 { return (h >> 6) & (tableSize - 1) } // the low bits chose the shard

// find returns the slot holding h, or none.
func (s *shard) find(h uint64) uint16 {
	for p := s.probe(h); ; p = (p + 1) & (tableSize - 1) {
		v := s.table[p]
		if v == 0 {
			return none
		}
		if s.slots[v-1].hash == h {
			return v - 1
		}
	}
}

// insert puts h in a free slot, or in the least recently seen one's, and makes it the most
// recent. Its count starts at zero in no window.
func (s *shard) insert(h uint64) uint16 {
	var i uint16
	if s.used < slotsPerShard {
		i = uint16(s.used)
		s.used++
	} else {
		i = s.tail
		s.unlink(i)
		s.remove(s.slots[i].hash)
	}
	s.slots[i] = slot{hash: h, window: -1, prev: none, next: none}
	p := s.probe(h)
	for s.table[p] != 0 {
		p = (p + 1) & (tableSize - 1)
	}
	s.table[p] = i + 1
	s.pushFront(i)
	return i
}

// remove deletes h from the index, shifting later entries of its probe run back so that no
// lookup stops early (deletion without tombstones in linear probing).
func (s *shard) remove(h uint64) {
	p := s.probe(h)
	for s.slots[s.table[p]-1].hash != h {
		p = (p + 1) & (tableSize - 1)
	}
	for {
		s.table[p] = 0
		q := p
		for {
			q = (q + 1) & (tableSize - 1)
			v := s.table[q]
			if v == 0 {
				return
			}
			// The entry at q may move to p if its home is not cyclically within (p, q].
			home := s.probe(s.slots[v-1].hash)
			if (q > p && (home <= p || home > q)) || (q < p && home <= p && home > q) {
				s.table[p] = v
				p = q
				break
			}
		}
	}
}

func (s *shard) touch(i uint16) {
	if s.head != i {
		s.unlink(i)
		s.pushFront(i)
	}
}

func (s *shard) pushFront(i uint16) {
	e := &s.slots[i]
	e.prev, e.next = none, s.head
	if s.head != none {
		s.slots[s.head].prev = i
	}
	s.head = i
	if s.tail == none {
		s.tail = i
	}
}

func (s *shard) unlink(i uint16) {
	e := &s.slots[i]
	if e.prev != none {
		s.slots[e.prev].next = e.next
	} else {
		s.head = e.next
	}
	if e.next != none {
		s.slots[e.next].prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = none, none
}
