package dispatch

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/token-service/token-service/internal/testenv/redistest"
)

// exclusive checks that a second lock of the same room waits until the first is released, and
// that another room does not (unless it shares a slot, which the test avoids by checking both).
func exclusive(t *testing.T, a, b locker) {
	t.Helper()
	ctx := context.Background()
	unlock, err := a.lock(ctx, "room-1", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := b.lock(short, "room-1", 5*time.Second); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a second lock of a held room: %v, want it to wait until its deadline", err)
	}
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		release, err := b.lock(ctx, "room-1", 5*time.Second)
		if err == nil {
			release()
		}
		got <- err
	}()
	unlock()
	if err := <-got; err != nil {
		t.Fatalf("the lock was not taken once released: %v", err)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	redistest.StopShared()
	os.Exit(code)
}

// The lock is exclusive across replicas on a cluster and through sentinels too (the room's key
// is one slot; the script touches only it).
func TestRedisLocksOnEveryShape(t *testing.T) {
	for name, env := range map[string][]string{
		"cluster":  {"REDIS_MODE=cluster", "REDIS_URL=" + redistest.SharedCluster(t).URL},
		"sentinel": {"REDIS_MODE=sentinel", "REDIS_URL=" + redistest.SharedSentinel(t).URL},
	} {
		t.Run(name, func(t *testing.T) {
			unshared := func(err error) { t.Errorf("Redis did not answer for the lock: %v", err) }
			a := NewRedisLocks(redistest.Client(t, env...), 5*time.Second, unshared)
			b := NewRedisLocks(redistest.Client(t, env...), 5*time.Second, unshared)
			exclusive(t, a, b)
		})
	}
}

func TestLocalLocks(t *testing.T) {
	l := newLocalLocks()
	exclusive(t, l, l)
}

func TestRedisLocks(t *testing.T) {
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	// Two replicas: the lock must hold across processes, not only within one. A generous
	// attempt: on a loaded machine a missed one would make each replica's lock its own.
	a := NewRedisLocks(redistest.Client(t, "REDIS_URL="+srv.URL), 5*time.Second, nil)
	b := NewRedisLocks(redistest.Client(t, "REDIS_URL="+srv.URL), 5*time.Second, nil)
	exclusive(t, a, b)

	// A lock whose holder outlives its hold expires, and the late holder's release does not
	// remove the lock another has taken since.
	ctx := context.Background()
	late, err := a.lock(ctx, "room-2", 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	taken, err := b.lock(wait, "room-2", 5*time.Second)
	if err != nil {
		t.Fatalf("an expired lock was not taken over: %v", err)
	}
	late()
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	if _, err := a.lock(short, "room-2", time.Second); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the late holder's release removed another's lock: %v", err)
	}
	taken()
	if release, err := a.lock(ctx, "room-2", time.Second); err != nil {
		t.Fatalf("the lock was not free after its holder released it: %v", err)
	} else {
		release()
	}

	// Redis gone: the lock is this replica's own, and says so.
	unshared := 0
	c := NewRedisLocks(redistest.Client(t, "REDIS_URL="+srv.URL), time.Second, func(error) { unshared++ })
	srv.Stop()
	release, err := c.lock(ctx, "room-3", time.Second)
	if err != nil || unshared != 1 {
		t.Fatalf("without Redis: %v, unshared %d", err, unshared)
	}
	release()
}
