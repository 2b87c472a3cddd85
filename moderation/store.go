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
	// writeBudget bounds a ban's or a lift's write to Redis, which a backend waits for.
	writeBudget = time.Second
	// lookupBudget bounds the Redis read a webhook makes for a ban this replica has not heard of.
	lookupBudget = 250 * time.Millisecond
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
// reads this replica's copy only.
func (s *Store) Banned(room, identity string) bool {
	now := time.Now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.bans) == 0 {
		return false
	}
	for _, k := range [2]banKey{{room, identity}, {AnyRoom, identity}} {
		if b, ok := s.bans[k]; ok && b.activeAt(now) {
			return true
		}
	}
	return false
}

// BanFor is the ban that keeps identity out of room, looked up in Redis as well when this
// replica's copy has none: a webhook may arrive at one replica moments after another made the
// ban, before the change reached it.
func (s *Store) BanFor(ctx context.Context, room, identity string) (Ban, bool) {
	if b, ok := s.local(room, identity); ok || s.redis == nil {
		return b, ok
	}
	ctx, cancel := context.WithTimeout(ctx, lookupBudget)
	defer cancel()
	keys := [2]banKey{{room, identity}, {AnyRoom, identity}}
	values, err := s.redis.HMGet(ctx, redisHash, keys[0].field(), keys[1].field()).Result()
	if err != nil {
		return Ban{}, false
	}
	for i, v := range values {
		raw, _ := v.(string)
		var b Ban
		if raw != "" && json.Unmarshal([]byte(raw), &b) == nil && b.activeAt(time.Now()) {
			s.put(keys[i], b)
			return b, true
		}
	}
	return Ban{}, false
}

func (s *Store) local(room, identity string) (Ban, bool) {
	now := time.Now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, k := range [2]banKey{{room, identity}, {AnyRoom, identity}} {
		if b, ok := s.bans[k]; ok && b.activeAt(now) {
			return b, true
		}
	}
	return Ban{}, false
}

// Add makes or renews a ban. With Redis, the ban is made only once Redis has it.
func (s *Store) Add(ctx context.Context, b Ban) error {
	k := banKey{b.Room, b.Identity}
	if s.full(k) {
		return ErrFull
	}
	if s.redis != nil {
		raw, err := json.Marshal(b)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, writeBudget)
		defer cancel()
		pipe := s.redis.TxPipeline()
		pipe.HSet(ctx, redisHash, k.field(), raw)
		pipe.Publish(ctx, redisChannel, k.field())
		if _, err := pipe.Exec(ctx); err != nil {
			return ErrUnavailable
		}
	}
	s.put(k, b)
	return nil
}

// full reports whether a new ban would exceed MaxBans; renewing one never does.
func (s *Store) full(k banKey) bool {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, renewal := s.bans[k]; renewal || len(s.bans) < MaxBans {
		return false
	}
	s.dropExpiredLocked(now)
	return len(s.bans) >= MaxBans
}

// Lift removes the ban of identity from room (AnyRoom lifts the every-room ban only). It reports
// whether there was an active one.
func (s *Store) Lift(ctx context.Context, room, identity string) (Ban, bool, error) {
	k := banKey{room, identity}
	s.mu.RLock()
	b, existed := s.bans[k]
	s.mu.RUnlock()
	if s.redis != nil {
		ctx, cancel := context.WithTimeout(ctx, writeBudget)
		defer cancel()
		raw, err := s.redis.HGet(ctx, redisHash, k.field()).Result()
		switch {
		case errors.Is(err, redis.Nil):
			existed = false
		case err != nil:
			return Ban{}, false, ErrUnavailable
		default:
			existed = json.Unmarshal([]byte(raw), &b) == nil
		}
		pipe := s.redis.TxPipeline()
		pipe.HDel(ctx, redisHash, k.field())
		pipe.Publish(ctx, redisChannel, k.field())
		if _, err := pipe.Exec(ctx); err != nil {
			return Ban{}, false, ErrUnavailable
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

func (s *Store) put(k banKey, b Ban) {
	s.mu.Lock()
	s.bans[k] = b
	n := len(s.bans)
	s.mu.Unlock()
	s.onActive(n)
}

func (s *Store) forget(k banKey) {
	s.mu.Lock()
	delete(s.bans, k)
	n := len(s.bans)
	s.mu.Unlock()
	s.onActive(n)
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
			n := len(s.bans)
			s.mu.Unlock()
			s.onActive(n)
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

// Resync replaces this replica's copy with Redis's set, and deletes expired bans from Redis.
// When Redis does not answer the copy stays as it is: bans known before an outage still hold.
func (s *Store) Resync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, writeBudget)
	defer cancel()
	all, err := s.redis.HGetAll(ctx, redisHash).Result()
	if err != nil {
		return err
	}
	now := time.Now()
	fresh := make(map[banKey]Ban, len(all))
	var expired []string
	for field, raw := range all {
		room, identity, ok := cutField(field)
		var b Ban
		if !ok || json.Unmarshal([]byte(raw), &b) != nil || !b.activeAt(now) {
			expired = append(expired, field)
			continue
		}
		fresh[banKey{room, identity}] = b
	}
	if len(expired) > 0 {
		_ = s.redis.HDel(ctx, redisHash, expired...).Err()
	}
	s.mu.Lock()
	s.bans = fresh
	s.mu.Unlock()
	s.onActive(len(fresh))
	return nil
}

func cutField(field string) (room, identity string, ok bool) {
	return strings.Cut(field, "\x00")
}
