package dispatch

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"hash/maphash"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/token-service/token-service/redisdb"
)

// LiveKit does not de-duplicate dispatches (each gets a random id), so the list-then-create of
// one room must not run twice at once, or two joins would dispatch the agent twice.
type locker interface {
	// lock waits until this caller holds room's lock or ctx ends; the lock is released by the
	// returned function, or by itself after hold at the latest.
	lock(ctx context.Context, room string, hold time.Duration) (unlock func(), err error)
}

// localLocks serialise within one process: rooms hash onto a fixed set of slots (two rooms may
// share a slot and wait for each other; memory stays fixed whatever rooms callers name).
type localLocks struct {
	seed  maphash.Seed
	slots [256]chan struct{}
}

func newLocalLocks() *localLocks {
	l := &localLocks{seed: maphash.MakeSeed()}
	for i := range l.slots {
		l.slots[i] = make(chan struct{}, 1)
	}
	return l
}

func (l *localLocks) lock(ctx context.Context, room string, _ time.Duration) (func(), error) {
	slot := l.slots[maphash.String(l.seed, room)%uint64(len(l.slots))]
	select {
	case slot <- struct{}{}:
		return func() { <-slot }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// RedisLocks serialise across replicas with one key per room: SET NX PX to take it, and a
// compare-and-delete to release only a lock still ours (it may have expired and been taken).
type RedisLocks struct {
	client     *redisdb.Client
	attempt    time.Duration // the most one Redis call may take
	local      *localLocks   // used only when Redis does not answer
	onUnshared func(error)
}

// NewRedisLocks returns locks in client's Redis, each call within attempt; onUnshared hears when
// Redis did not answer and a lock of this replica's own had to do.
func NewRedisLocks(client *redisdb.Client, attempt time.Duration, onUnshared func(error)) *RedisLocks {
	if onUnshared == nil {
		onUnshared = func(error) {}
	}
	return &RedisLocks{client: client, attempt: attempt, local: newLocalLocks(), onUnshared: onUnshared}
}

const lockRetry = 20 * time.Millisecond

var release = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// key is a room's lock. The room is encoded: a caller's { } would otherwise choose the cluster
// slot, and its bytes are any the identifier rules allow.
func (r *RedisLocks) key(room string) string {
	return r.client.Key("dispatch-lock:" + base64.RawURLEncoding.EncodeToString([]byte(room)))
}

func (r *RedisLocks) lock(ctx context.Context, room string, hold time.Duration) (func(), error) {
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	owner := hex.EncodeToString(raw[:])
	key := r.key(room)
	rdb := r.client.Redis()
	for {
		attemptCtx, cancel := context.WithTimeout(ctx, r.attempt)
		ok, err := rdb.SetNX(attemptCtx, key, owner, hold).Result()
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			// Redis did not answer: this replica's own lock is all there is. A rare duplicate
			// dispatch (another replica in the same moment) beats an agent that never comes.
			r.onUnshared(err)
			return r.local.lock(ctx, room, hold)
		case err == nil && ok:
			return func() {
				// Released even when the request's budget is spent, within a budget of its own.
				ctx, cancel := redisdb.Within(context.Background(), r.attempt)
				defer cancel()
				_ = release.Run(ctx, rdb, []string{key}, owner).Err()
			}, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(lockRetry):
		}
	}
}
