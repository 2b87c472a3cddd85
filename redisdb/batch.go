package redisdb

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Batch counts for many callers with one script, sending the counts that arrive while batches
// are in flight together as one pipeline: under load, one round trip carries many requests (a
// cluster client splits a pipeline by node and sends the parts at once). Counts on the same key
// in one batch are added in one call of the script (a busy client, such as a backend minting
// with its service key, costs Redis one call per batch, not one per request), and each caller
// still gets a count of its own. Each call's key is the script's only key, so a call never spans
// cluster slots. At most two batches are in flight while that keeps up (larger batches cost less
// per call); when calls wait in numbers, as behind a Redis far away, up to maxInFlight are, so
// that throughput follows the round trip. It is safe for concurrent use.
//
// The script's contract: KEYS[1] is the key, its ARGV are the batch's args followed by how many
// to add, and its reply is a list of integers whose first is the key's count after adding.
type Batch struct {
	rdb      redis.UniversalClient
	script   *redis.Script
	args     []any
	limit    time.Duration
	observe  func(Observation)
	calls    chan *call
	inFlight chan struct{} // a slot per batch in flight
	landed   chan struct{} // a batch came back
	stop     chan struct{}
	closed   atomic.Bool
	done     sync.WaitGroup
}

// Observation is what became of one batch, once per batch: when it went out and came back, the
// replies, and the first error. What Redis itself took can be told from what waiting for a core
// took (package ratelimit does, from the script's own clock in the replies).
type Observation struct {
	Sent, Received time.Time
	Replies        [][]int64 // the calls that succeeded
	Err            error
}

type call struct {
	key   string
	reply []int64
	err   error
	done  chan struct{}
}

var calls = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}

// ErrBusy means the queue of calls was full: the caller decides without Redis.
var ErrBusy = errors.New("redis call queue full")

const (
	maxBatch    = 256  // calls in one pipeline
	queueSize   = 4096 // calls waiting for a batch; past it, ErrBusy
	maxInFlight = 16   // batches out at once, at most
	steady      = 2    // batches out at once while calls do not pile up
	pileUp      = 16   // calls waiting that make another batch worth sending at once
)

// NewBatch starts sending batches of script with args (the same for every call, before the
// count to add), each batch within limit on the socket; observe hears of each batch.
func (c *Client) NewBatch(script *redis.Script, args []any, limit time.Duration, observe func(Observation)) *Batch {
	b := &Batch{rdb: c.rdb, script: script, args: args, limit: limit, observe: observe,
		calls: make(chan *call, queueSize), inFlight: make(chan struct{}, maxInFlight),
		landed: make(chan struct{}, 1), stop: make(chan struct{})}
	b.done.Go(b.run)
	return b
}

// Do counts one on key, in the next batch, and returns the script's reply with this caller's
// own count first, when the batch is answered: within the batch's limit, plus the time waiting
// for a batch to start.
func (b *Batch) Do(key string) ([]int64, error) {
	if b.closed.Load() {
		return nil, ErrBusy
	}
	c := calls.Get().(*call)
	c.key = key
	select {
	case b.calls <- c:
	default:
		calls.Put(c)
		return nil, ErrBusy
	}
	<-c.done
	reply, err := c.reply, c.err
	c.reply, c.err = nil, nil
	calls.Put(c)
	return reply, err
}

// Close stops sending once the batches out are back; a call still queued is answered ErrBusy.
func (b *Batch) Close() {
	b.closed.Store(true)
	close(b.stop)
	b.done.Wait()
	refuse(b.drain(nil))
}

func refuse(batch []*call) {
	for _, c := range batch {
		c.err = ErrBusy
		c.done <- struct{}{}
	}
}

// run forms batches: whatever waits when a batch may go goes in it, with no timer.
func (b *Batch) run() {
	var sending sync.WaitGroup
	defer sending.Wait()
	for {
		var batch []*call
		select {
		case <-b.stop:
			return
		case first := <-b.calls:
			batch = append(make([]*call, 0, 16), first)
		}
		batch = b.drain(batch)
		// Two batches out and few calls waiting: let this one grow until one lands.
		for len(b.inFlight) >= steady && len(batch) < pileUp {
			select {
			case <-b.stop:
				refuse(batch)
				return
			case <-b.landed:
			case c := <-b.calls:
				batch = b.drain(append(batch, c))
			}
		}
		select { // at most maxInFlight: past that, wait for a slot
		case <-b.stop:
			refuse(batch)
			return
		case b.inFlight <- struct{}{}:
		}
		sending.Go(func() {
			b.send(batch)
			<-b.inFlight
			select {
			case b.landed <- struct{}{}:
			default:
			}
		})
	}
}

// drain adds what is queued now to batch, up to maxBatch.
func (b *Batch) drain(batch []*call) []*call {
	for len(batch) < maxBatch {
		select {
		case c := <-b.calls:
			batch = append(batch, c)
		default:
			return batch
		}
	}
	return batch
}

func (b *Batch) send(batch []*call) {
	ctx, cancel := context.WithTimeout(context.Background(), b.limit)
	defer cancel()
	slices.SortFunc(batch, func(x, y *call) int { return strings.Compare(x.key, y.key) })
	var runs []int // where each key's calls begin in batch, and len(batch) last
	for i, c := range batch {
		if i == 0 || c.key != batch[i-1].key {
			runs = append(runs, i)
		}
	}
	runs = append(runs, len(batch))
	cmds := make([]*redis.Cmd, len(runs)-1)
	send := func(which []int) {
		pipe := b.rdb.Pipeline()
		for _, r := range which {
			args := append(slices.Clip(b.args), runs[r+1]-runs[r])
			cmds[r] = b.script.EvalSha(ctx, pipe, []string{batch[runs[r]].key}, args...)
		}
		_, _ = pipe.Exec(ctx)
	}
	all := make([]int, len(cmds))
	for r := range all {
		all[r] = r
	}
	sent := time.Now()
	send(all)
	// A restarted or promoted node forgot the script: load it (on every node of a cluster) and
	// send again, within what is left of the limit, only the calls it refused: the others
	// counted already.
	forgot := slices.DeleteFunc(all, func(r int) bool { return !redis.HasErrorPrefix(cmds[r].Err(), "NOSCRIPT") })
	if len(forgot) > 0 && b.script.Load(ctx, b.rdb).Err() == nil {
		send(forgot)
	}
	o := Observation{Sent: sent, Received: time.Now(), Replies: make([][]int64, 0, len(cmds))}
	for r, cmd := range cmds {
		reply, err := cmd.Int64Slice()
		if err == nil && len(reply) == 0 {
			err = errors.New("the script replied with no count")
		}
		if err != nil && o.Err == nil {
			o.Err = err
		}
		if err == nil {
			o.Replies = append(o.Replies, reply)
		}
		// The run's callers share its total: the last gets it, each before one less.
		run := batch[runs[r]:runs[r+1]]
		for i, c := range run {
			if c.err = err; err == nil {
				c.reply = append([]int64{reply[0] - int64(len(run)-1-i)}, reply[1:]...)
			}
		}
	}
	b.observe(o) // before the callers go on, so that the breaker is current for the next ones
	for _, c := range batch {
		c.done <- struct{}{}
	}
}
