package moderation

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/token-service/token-service/internal/testenv/redistest"
	"github.com/token-service/token-service/internal/testenv/wait"
)

func ban(room, identity string, lasts time.Duration) Ban {
	now := time.Now()
	return Ban{Room: room, Identity: identity, Reason: "test", CreatedBy: "k1", CreatedAt: now.Unix(), ExpiresAt: now.Add(lasts).Unix()}
}

// replica is one service's store on a shared Redis, kept current until the test ends.
func replica(t *testing.T, url string) *Store {
	t.Helper()
	s := NewStore(redistest.Client(t, "REDIS_URL="+url), nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func banned(s *Store, room, identity string, want bool) func() error {
	return func() error {
		if got := s.Banned(room, identity); got != want {
			return fmt.Errorf("Banned(%q, %q) = %v, want %v", room, identity, got, want)
		}
		return nil
	}
}

func TestBansAreSharedThroughRedis(t *testing.T) {
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	a, b := replica(t, srv.URL), replica(t, srv.URL)
	ctx := context.Background()

	if err := a.Add(ctx, ban("r1", "alice", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := a.Add(ctx, ban(AnyRoom, "mallory", time.Hour)); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 5*time.Second, banned(b, "r1", "alice", true))
	wait.For(t, 5*time.Second, banned(b, "any-room", "mallory", true))
	if b.Banned("r2", "alice") || b.Banned("r1", "bob") {
		t.Fatal("a ban reached beyond its room and identity")
	}

	// A replica that starts later reads every ban at once.
	late := replica(t, srv.URL)
	wait.For(t, 5*time.Second, banned(late, "r1", "alice", true))

	// Lifted through b: a follows.
	if _, existed, err := b.Lift(ctx, "r1", "alice"); err != nil || !existed {
		t.Fatalf("lift: %v %v", existed, err)
	}
	wait.For(t, 5*time.Second, banned(a, "r1", "alice", false))
	if _, existed, err := b.Lift(ctx, "r1", "alice"); err != nil || existed {
		t.Fatalf("second lift: %v %v", existed, err)
	}

	// Redis goes away: what each replica knew still holds, and a change is refused, not made
	// on one replica only.
	srv.Stop()
	for _, s := range []*Store{a, b} {
		if !s.Banned("r9", "mallory") {
			t.Fatal("a replica forgot a ban when Redis went away")
		}
		if err := s.Resync(ctx); err == nil {
			t.Fatal("Resync without Redis reported success")
		}
		if !s.Banned("r9", "mallory") {
			t.Fatal("a failed resync dropped the bans")
		}
	}
	if err := a.Add(ctx, ban("r1", "eve", time.Hour)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Add without Redis: %v", err)
	}
	if a.Banned("r1", "eve") {
		t.Fatal("a ban Redis did not take holds on one replica")
	}
	if _, _, err := a.Lift(ctx, AnyRoom, "mallory"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Lift without Redis: %v", err)
	}
}

func TestExpiredBansGo(t *testing.T) {
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	s := replica(t, srv.URL)
	ctx := context.Background()
	if err := s.Add(ctx, ban("r1", "alice", -time.Second)); err != nil {
		t.Fatal(err)
	}
	if s.Banned("r1", "alice") || len(s.List("", "")) != 0 {
		t.Fatal("an expired ban still holds")
	}
	if err := s.Resync(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := s.redis.Redis().HLen(ctx, s.hash).Result(); err != nil || n != 0 {
		t.Fatalf("expired bans left in Redis: %d %v", n, err)
	}
}

func TestBansAreBounded(t *testing.T) {
	s := NewStore(nil, nil, nil)
	ctx := context.Background()
	if err := s.Add(ctx, ban("r", "expired", -time.Second)); err != nil {
		t.Fatal(err)
	}
	for i := range MaxBans - 1 {
		if err := s.Add(ctx, ban("r", fmt.Sprint("u", i), time.Hour)); err != nil {
			t.Fatalf("ban %d: %v", i, err)
		}
	}
	// The expired ban makes room for one more, and no more.
	if err := s.Add(ctx, ban("r", "one-more", time.Hour)); err != nil {
		t.Fatalf("ban in the room an expired one left: %v", err)
	}
	if err := s.Add(ctx, ban("r", "two-more", time.Hour)); !errors.Is(err, ErrFull) {
		t.Fatalf("ban past MaxBans: %v", err)
	}
	if err := s.Add(ctx, ban("r", "u0", 2*time.Hour)); err != nil {
		t.Fatalf("renewing a ban when full: %v", err)
	}
}
