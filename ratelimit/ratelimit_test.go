package ratelimit_test

import (
	"testing"
	"time"

	"github.com/token-service/token-service/ratelimit"
)

func TestBackends(t *testing.T) {
	memory, err := ratelimit.New("", time.Minute, ratelimit.Events{})
	if err != nil || memory.State() != ratelimit.Memory || len(memory.Options()) != 0 || memory.Close() != nil {
		t.Fatalf("no REDIS_URL: %v %s", err, memory.State())
	}
	// Password, user, database and TLS forms parse; nothing is dialled until a request needs Redis.
	for _, url := range []string{"redis://127.0.0.1:6379/0", "redis://:s3cret@redis:6379/2", "rediss://user:s3cret@redis.example.com:6380/1"} {
		backend, err := ratelimit.New(url, time.Minute, ratelimit.Events{})
		if err != nil {
			t.Errorf("%s: %v", url, err)
			continue
		}
		if backend.State() != ratelimit.Redis || len(backend.Options()) != 1 {
			t.Errorf("%s: state %s", url, backend.State())
		}
		_ = backend.Close()
	}
	if _, err := ratelimit.New("http://redis:6379", time.Minute, ratelimit.Events{}); err == nil {
		t.Error("an http:// URL was accepted")
	}
}
