// Package moderation keeps the bans a backend makes and removes banned participants from
// LiveKit rooms: when the ban is made, and again whenever LiveKit's webhook says one joined.
package moderation

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/redis/go-redis/v9"

	"github.com/token-service/token-service/redisdb"
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
	// writeBudget bounds a ban's or a lift's write to Redis, which a backend waits for, and
	// each read of the whole set.
	writeBudget = time.Second
	// resyncEvery is how often a replica reads every ban again, which also catches what it
	// missed while Redis or its subscription was down, drops expired bans, and writes back
	// bans Redis lost.
	resyncEvery = 10 * time.Second
)

// Store holds the bans. Every replica answers token requests from a copy in its own memory, so
// that neither a Redis round trip nor a Redis outage stands in front of a join; with Redis the
// copy follows the shared set (a published change at once, the whole set every 10 s).
//
// Bans never evaporate: Redis's set may shrink or vanish (an eviction under allkeys-*, a
// failover that lost the last writes, a flushed database), and a ban missing from it that was
// not lifted is an outage, not an instruction to forget. Lifted bans are recorded in a second
// hash until they would have expired, so that a resync tells "lifted" from "lost": a lost ban
// stays in every replica's copy, is written back, counted and logged.
type Store struct {
	mu    sync.RWMutex
	bans  map[banKey]Ban
	redis *redisdb.Client // nil: bans live in this process only
	// hash holds the bans, lifted the lifts of bans not yet expired; channel announces changes.
	// The two hashes share a cluster slot ({bans}), since the scripts touch both.
	hash, lifted, channel string

	onActive   func(n int) // the number of bans held, after every change (expired ones go within resyncEvery)
	onRestored func(n int) // bans Redis had lost, written back from this replica's copy
}

// NewStore returns a store in Redis when client is not nil, in memory otherwise.
func NewStore(client *redisdb.Client, onActive, onRestored func(int)) *Store {
	if onActive == nil {
		onActive = func(int) {}
	}
	if onRestored == nil {
		onRestored = func(int) {}
	}
	s := &Store{bans: map[banKey]Ban{}, redis: client, onActive: onActive, onRestored: onRestored}
	if client != nil {
		s.hash, s.lifted, s.channel = client.Key("{bans}"), client.Key("{bans}:lifted"), client.Key("bans")
	}
	return s
}

// Shared reports whether bans live in Redis (every replica, across restarts).
func (s *Store) Shared() bool { return s.redis != nil }

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
// KEYS: the bans, the lifts. ARGV: field, ban, MaxBans, channel.
var addBan = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[4], ARGV[1])
return 1
`)

// liftBan deletes a ban, records the lift until the ban would have expired (read by resyncs,
// so that a replica that missed the announcement does not take the ban for lost; at most
// ARGV[3] records), announces it, and returns what the ban was (nil: there was none).
// KEYS: the bans, the lifts. ARGV: field, channel, the most records.
var liftBan = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then
  redis.call('HDEL', KEYS[1], ARGV[1])
  if redis.call('HLEN', KEYS[2]) < tonumber(ARGV[3]) then
    redis.call('HSET', KEYS[2], ARGV[1], cjson.decode(v).expires_at)
  end
  redis.call('PUBLISH', ARGV[2], ARGV[1])
end
return v
`)

// dropExpired deletes each ban (ARGV triples: kind, field, value) whose value is still the
// expired one read, so that a ban renewed meanwhile by another replica stays; kind "l" drops a
// lift record the same way.
var dropExpired = redis.NewScript(`
for i = 1, #ARGV, 3 do
  local key = KEYS[1]
  if ARGV[i] == 'l' then key = KEYS[2] end
  if redis.call('HGET', key, ARGV[i + 1]) == ARGV[i + 2] then redis.call('HDEL', key, ARGV[i + 1]) end
end
return 0
`)

// restoreBans writes back bans Redis lost (ARGV pairs: field, ban), unless one was lifted or
// made again meanwhile, and returns how many it wrote.
var restoreBans = redis.NewScript(`
local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 then
    n = n + redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return n
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
	ctx, cancel := redisdb.Within(ctx, writeBudget)
	defer cancel()
	made, err := addBan.Run(ctx, s.redis.Redis(), []string{s.hash, s.lifted}, k.field(), raw, MaxBans, s.channel).Int()
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
		ctx, cancel := redisdb.Within(ctx, writeBudget)
		defer cancel()
		raw, err := liftBan.Run(ctx, s.redis.Redis(), []string{s.hash, s.lifted}, k.field(), s.channel, MaxBans).Text()
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
	sub := s.redis.Redis().Subscribe(ctx, s.channel)
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

// refresh reads one changed ban from Redis: there, lifted, or (expired, or lost: the next
// resync tells which) left as this replica has it.
func (s *Store) refresh(ctx context.Context, field string) {
	room, identity, ok := cutField(field)
	if !ok {
		return
	}
	ctx, cancel := redisdb.Within(ctx, writeBudget)
	defer cancel()
	raw, err := s.redis.Redis().HGet(ctx, s.hash, field).Result()
	k := banKey{room, identity}
	var b Ban
	switch {
	case err == nil && json.Unmarshal([]byte(raw), &b) == nil:
		s.put(k, b)
	case errors.Is(err, redis.Nil):
		if lifted, err := s.redis.Redis().HExists(ctx, s.lifted, field).Result(); err == nil && lifted {
			s.forget(k)
		}
	}
	// On any other error the next resync catches up.
}

// Resync makes this replica's copy Redis's set (at most MaxBans of it), deletes expired bans and
// lift records from Redis, and writes back every ban this replica holds that Redis lost. When
// Redis does not answer the copy stays as it is: bans known before an outage still hold.
func (s *Store) Resync(ctx context.Context) error {
	ctx, cancel := redisdb.Within(ctx, writeBudget)
	defer cancel()
	pipe := s.redis.Redis().Pipeline()
	all, lifts := pipe.HGetAll(ctx, s.hash), pipe.HGetAll(ctx, s.lifted)
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	now := time.Now()
	fresh := make(map[banKey]Ban, min(len(all.Val()), MaxBans))
	var expired []any // kind, field, value triples
	for field, raw := range all.Val() {
		room, identity, ok := cutField(field)
		var b Ban
		if !ok || json.Unmarshal([]byte(raw), &b) != nil || !b.activeAt(now) {
			expired = append(expired, "b", field, raw)
			continue
		}
		if len(fresh) < MaxBans {
			fresh[banKey{room, identity}] = b
		}
	}
	for field, until := range lifts.Val() {
		if t, err := strconv.ParseInt(until, 10, 64); err != nil || t <= now.Unix() {
			expired = append(expired, "l", field, until)
		}
	}
	if len(expired) > 0 {
		_ = dropExpired.Run(ctx, s.redis.Redis(), []string{s.hash, s.lifted}, expired...).Err()
	}
	lost := s.lost(fresh, lifts.Val(), now)
	if len(lost) > 0 {
		// What was not lifted stays: a missing ban is Redis's loss, not a decision.
		var pairs []any
		for k, b := range lost {
			raw, _ := json.Marshal(b)
			pairs = append(pairs, k.field(), raw)
			fresh[k] = b
		}
		n, err := restoreBans.Run(ctx, s.redis.Redis(), []string{s.hash, s.lifted}, pairs...).Int()
		if err == nil && n > 0 {
			s.onRestored(n)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bans = fresh
	s.onActive(len(fresh))
	return nil
}

// lost are the bans in force in this replica's copy that Redis has neither as a ban nor as a
// lift.
func (s *Store) lost(inRedis map[banKey]Ban, lifted map[string]string, now time.Time) map[banKey]Ban {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var lost map[banKey]Ban
	for k, b := range s.bans {
		if _, ok := inRedis[k]; ok || !b.activeAt(now) {
			continue
		}
		if _, ok := lifted[k.field()]; ok {
			continue
		}
		if lost == nil {
			lost = map[banKey]Ban{}
		}
		lost[k] = b
	}
	return lost
}

func cutField(field string) (room, identity string, ok bool) {
	return strings.Cut(field, "\x00")
}
