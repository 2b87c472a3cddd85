// Package moderation keeps the bans a backend makes and removes banned participants from
// LiveKit rooms: when the ban is made, and again whenever LiveKit's webhook says one joined.
package moderation

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/redis/go-redis/v9"
)

// AnyRoom is the room of a ban that holds in every room.
const AnyRoom = "*"

// MaxBans bounds how many bans the service holds at once, so that a backend's loop cannot grow
// every replica's memory without end. An expired ban no longer counts.
const MaxBans = 10_000

// Ban keeps an identity out of a room (or of every room) until it expires.
type Ban struct {
	Room      string `json:"room"`
	Identity  string `json:"identity"`
	Reason    string `json:"reason"`
	CreatedBy string `json:"created_by"` // the service key's id (a digest prefix), never the key
	CreatedAt int64  `json:"created_at"` // Unix seconds
	ExpiresAt int64  `json:"expires_at"` // Unix seconds
}

func (b Ban) activeAt(now time.Time) bool { return now.Unix() < b.ExpiresAt }

type banKey struct{ room, identity string }

// field is the ban's name in Redis. Rooms and identities hold no control characters (the
// request rules), so NUL cannot occur inside either.
func (k banKey) field() string { return k.room + "\x00" + k.identity }

var (
	// ErrUnavailable means Redis did not take the change: it was made nowhere.
	ErrUnavailable = errors.New("the ban store (Redis) did not answer; nothing was changed")
	// ErrFull means MaxBans bans are active already.
	ErrFull = errors.New("too many active bans")
)

const (
	redisHash    = "token-service:bans"
	redisChannel = "token-service:bans"
	// writeBudget bounds a ban's or a lift's write to Redis, which a backend waits for, and
	// each read of the whole set.
	writeBudget = time.Second
	// resyncEvery is how often a replica reads every ban again, which also catches what it
	// missed while Redis or its subscription was down, and drops expired bans.
	resyncEvery = 10 * time.Second
)

// Store holds the bans. Every replica answers token requests from a copy in its own memory, so
// that neither a Redis round trip nor a Redis outage stands in front of a join; with Redis the
// copy follows the shared set (a published change at once, the whole set every 10 s).
type Store struct {
	mu    sync.RWMutex
	bans  map[banKey]Ban
	redis *redis.Client // nil: bans live in this process only

	onActive func(n int) // the number of bans held, after every change (expired ones go within resyncEvery)
}

// NewStore returns a store in Redis when opts is not nil, in memory otherwise.
func NewStore(opts *redis.Options, onActive func(int)) *Store {
	if onActive == nil {
		onActive = func(int) {}
	}
	s := &Store{bans: map[banKey]Ban{}, onActive: onActive}
	if opts != nil {
		o := *opts
		o.ContextTimeoutEnabled = true
		o.MaxRetries = -1 // a write the backend waits for is not retried behind its back
		o.DisableIdentity = true
		s.redis = redis.NewClient(&o)
	}
	return s
}

// Shared reports whether bans live in Redis (every replica, across restarts).
func (s *Store) Shared() bool { return s.redis != nil }

// Close releases the Redis connections.
func (s *Store) Close() error {
	if s.redis == nil {
		return nil
	}
	return s.redis.Close()
}

// Banned reports whether identity may not be in room: banned from it, or from every room. It
// reads this replica's copy only, so no token request waits for Redis.
func (s *Store) Banned(room, identity string) bool {
	_, banned := s.BanFor(room, identity)
	return banned
}

// BanFor is the ban in force that keeps identity out of room, in this replica's copy.
func (s *Store) BanFor(room, identity string) (Ban, bool) {
	now := time.Now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.bans) == 0 {
		return Ban{}, false
	}
	for _, k := range [2]banKey{{room, identity}, {AnyRoom, identity}} {
		if b, ok := s.bans[k]; ok && b.activeAt(now) {
			return b, true
		}
	}
	return Ban{}, false
}

// addBan makes or renews a ban in Redis and announces it, unless MaxBans are held already.
var addBan = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[4], ARGV[1])
return 1
`)

// liftBan deletes a ban from Redis, announces it, and returns what it was (nil: there was none).
var liftBan = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('PUBLISH', ARGV[2], ARGV[1])
end
return v
`)

// dropExpired deletes each field (ARGV pairs: field, value) whose value is still the expired
// one read, so that a ban renewed in the meantime by another replica stays.
var dropExpired = redis.NewScript(`
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then redis.call('HDEL', KEYS[1], ARGV[i]) end
end
return 0
`)

// Add makes or renews a ban. With Redis, the ban is made only once Redis has it.
func (s *Store) Add(ctx context.Context, b Ban) error {
	k := banKey{b.Room, b.Identity}
	if s.redis == nil {
		return s.putBounded(k, b)
	}
	raw, err := json.Marshal(b)
	if err != nil {
		return err
	}
	// A caller that hangs up after the write was sent must not be told nothing changed.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeBudget)
	defer cancel()
	made, err := addBan.Run(ctx, s.redis, []string{redisHash}, k.field(), raw, MaxBans, redisChannel).Int()
	switch {
	case err != nil:
		return ErrUnavailable
	case made == 0:
		return ErrFull
	}
	s.put(k, b)
	return nil
}

// putBounded is Add in memory: a new ban past MaxBans is refused; renewing one never is.
func (s *Store) putBounded(k banKey, b Ban) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, renewal := s.bans[k]; !renewal && len(s.bans) >= MaxBans {
		s.dropExpiredLocked(time.Now())
		if len(s.bans) >= MaxBans {
			return ErrFull
		}
	}
	s.bans[k] = b
	s.onActive(len(s.bans))
	return nil
}

// Lift removes the ban of identity from room (AnyRoom lifts the every-room ban only). It reports
// whether there was one in force.
func (s *Store) Lift(ctx context.Context, room, identity string) (Ban, bool, error) {
	k := banKey{room, identity}
	s.mu.RLock()
	b, existed := s.bans[k]
	s.mu.RUnlock()
	if s.redis != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeBudget)
		defer cancel()
		raw, err := liftBan.Run(ctx, s.redis, []string{redisHash}, k.field(), redisChannel).Text()
		switch {
		case errors.Is(err, redis.Nil):
			existed = false
		case err != nil:
			return Ban{}, false, ErrUnavailable
		default:
			existed = json.Unmarshal([]byte(raw), &b) == nil
		}
	}
	s.forget(k)
	return b, existed && b.activeAt(time.Now()), nil
}

// List returns the active bans this replica knows, filtered by room and identity when they are
// not empty, ordered by room and identity.
func (s *Store) List(room, identity string) []Ban {
	now := time.Now()
	s.mu.RLock()
	out := make([]Ban, 0, min(len(s.bans), 64))
	for k, b := range s.bans {
		if (room == "" || k.room == room) && (identity == "" || k.identity == identity) && b.activeAt(now) {
			out = append(out, b)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Ban) int {
		return cmp.Or(cmp.Compare(a.Room, b.Room), cmp.Compare(a.Identity, b.Identity))
	})
	return out
}

// put and forget change this replica's copy; the gauge is set under the lock, so that it
// follows the changes in order.
func (s *Store) put(k banKey, b Ban) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bans[k] = b
	s.onActive(len(s.bans))
}

func (s *Store) forget(k banKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.bans, k)
	s.onActive(len(s.bans))
}

func (s *Store) dropExpiredLocked(now time.Time) {
	for k, b := range s.bans {
		if !b.activeAt(now) {
			delete(s.bans, k)
		}
	}
}

// Run keeps this replica's copy current until ctx ends: with Redis, it applies every published
// change and reads the whole set every resyncEvery; in memory, it drops expired bans.
func (s *Store) Run(ctx context.Context) {
	if s.redis == nil {
		s.expireEvery(ctx, resyncEvery)
		return
	}
	sub := s.redis.Subscribe(ctx, redisChannel)
	defer sub.Close()
	// Subscribed before the first read of the set, so that no change falls between the two.
	confirm, cancel := context.WithTimeout(ctx, writeBudget)
	_, _ = sub.Receive(confirm)
	cancel()
	changes := sub.Channel(redis.WithChannelSize(256))
	_ = s.Resync(ctx)
	tick := time.NewTicker(resyncEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			_ = s.Resync(ctx)
		case msg, ok := <-changes:
			if !ok {
				return
			}
			s.refresh(ctx, msg.Payload)
		}
	}
}

func (s *Store) expireEvery(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.mu.Lock()
			s.dropExpiredLocked(time.Now())
			s.onActive(len(s.bans))
			s.mu.Unlock()
		}
	}
}

// refresh reads one changed ban from Redis: there, or gone.
func (s *Store) refresh(ctx context.Context, field string) {
	room, identity, ok := cutField(field)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, writeBudget)
	defer cancel()
	raw, err := s.redis.HGet(ctx, redisHash, field).Result()
	k := banKey{room, identity}
	var b Ban
	switch {
	case errors.Is(err, redis.Nil):
		s.forget(k)
	case err == nil && json.Unmarshal([]byte(raw), &b) == nil:
		s.put(k, b)
	}
	// On any other error the next resync catches up.
}

// Resync replaces this replica's copy with Redis's set (at most MaxBans of it), and deletes
// expired bans from Redis. When Redis does not answer the copy stays as it is: bans known
// before an outage still hold.
func (s *Store) Resync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, writeBudget)
	defer cancel()
	all, err := s.redis.HGetAll(ctx, redisHash).Result()
	if err != nil {
		return err
	}
	now := time.Now()
	fresh := make(map[banKey]Ban, min(len(all), MaxBans))
	var expired []any // field, value pairs
	for field, raw := range all {
		room, identity, ok := cutField(field)
		var b Ban
		if !ok || json.Unmarshal([]byte(raw), &b) != nil || !b.activeAt(now) {
			expired = append(expired, field, raw)
			continue
		}
		if len(fresh) < MaxBans {
			fresh[banKey{room, identity}] = b
		}
	}
	if len(expired) > 0 {
		_ = dropExpired.Run(ctx, s.redis, []string{redisHash}, expired...).Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bans = fresh
	s.onActive(len(fresh))
	return nil
}

func cutField(field string) (room, identity string, ok bool) {
	return strings.Cut(field, "\x00")
}
