//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/token-service/token-service/internal/testenv/redistest"
	"github.com/token-service/token-service/internal/testenv/wait"
)

// joinStatus asks for a token as the client at ip (behind a trusted proxy) and returns the status.
func (s *service) joinStatus(t *testing.T, ip string) int {
	t.Helper()
	status, _, _ := s.post(t, "/token", map[string]string{"room": "r", "identity": "a"}, "X-Forwarded-For: "+ip)
	return status
}

// rateLimitBackend reads where the replica counts, from /ready.
func (s *service) rateLimitBackend(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(s.URL + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Backend string `json:"rate_limit_backend"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 200 {
		t.Fatalf("/ready = %d during a Redis outage; the replica can still issue tokens", resp.StatusCode)
	}
	return body.Backend
}

func waitBackend(t *testing.T, want string, replicas ...*service) {
	t.Helper()
	for _, s := range replicas {
		wait.For(t, 10*time.Second, func() error {
			// A replica learns that Redis is back only from a request that probes it; this
			// client's budget is used by nothing else.
			s.joinStatus(t, "198.51.100.250")
			if got := s.rateLimitBackend(t); got != want {
				return fmt.Errorf("%s: rate_limit_backend is %q, want %q", s.URL, got, want)
			}
			return nil
		})
	}
}

// sharedLimit checks that two replicas share one limit of 100 for the client at ip.
func sharedLimit(t *testing.T, a, b *service, ip string) {
	t.Helper()
	for i := range 100 {
		replica := []*service{a, b}[i%2]
		if got := replica.joinStatus(t, ip); got != 200 {
			t.Fatalf("request %d of 100 across both replicas = %d", i+1, got)
		}
	}
	for _, replica := range []*service{a, b} {
		if got := replica.joinStatus(t, ip); got != 429 {
			t.Fatalf("request 101 across both replicas = %d, want 429", got)
		}
	}
}

func TestReplicasShareRateLimitsOnRedis(t *testing.T) {
	redis, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(redis.Stop)
	// A window of a day, so that no phase is likely to straddle a window boundary, and a budget
	// that a race-instrumented binary on a busy machine meets, so that every request of the
	// sharing phases is counted in Redis.
	env := []string{"REDIS_URL=" + redis.URL, "RATE_LIMIT_MAX_REQUESTS=100", "RATE_LIMIT_WINDOW_MS=86400000",
		"TRUSTED_PROXIES=127.0.0.1/32", "REDIS_TIMEOUT_MS=100"}
	a, b := startService(t, env...), startService(t, env...)
	waitBackend(t, "redis", a, b)
	sharedLimit(t, a, b, "203.0.113.1")

	// Kill Redis while both replicas serve: no request is lost and none is a 5xx. The traffic runs
	// until the outage has been seen (and for at most 20 s), since a replica only notices a dead
	// Redis when a request needs it.
	statuses := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	stop := make(chan struct{})
	stopTraffic := sync.OnceFunc(func() { close(stop) })
	time.AfterFunc(20*time.Second, stopTraffic)
	t.Cleanup(func() { stopTraffic(); wg.Wait() })
	for _, replica := range []*service{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				got := replica.joinStatus(t, "203.0.113.2")
				mu.Lock()
				statuses[got]++
				mu.Unlock()
			}
		}()
	}
	// Traffic is flowing before Redis dies, and goes on being answered after the switch.
	answered := func() int { mu.Lock(); defer mu.Unlock(); return statuses[200] + statuses[429] }
	atLeast := func(n int) func() error {
		return func() error {
			if got := answered(); got < n {
				return fmt.Errorf("%d requests answered, want %d", got, n)
			}
			return nil
		}
	}
	wait.For(t, 10*time.Second, atLeast(20))
	redis.Stop()
	waitBackend(t, "memory-fallback", a, b)
	wait.For(t, 10*time.Second, atLeast(answered()+20))
	stopTraffic()
	wg.Wait()
	for status, n := range statuses {
		if status != 200 && status != 429 {
			t.Errorf("%d replies of status %d while Redis died", n, status)
		}
	}
	t.Logf("while Redis died: %v", statuses)
	for _, replica := range []*service{a, b} {
		if n := strings.Count(replica.logs.String(), "redis missed its latency budget"); n != 1 {
			t.Errorf("%s logged the outage %d times, want once", replica.URL, n)
		}
	}

	// Redis comes back: sharing resumes by itself.
	if err := redis.Restart(); err != nil {
		t.Fatal(err)
	}
	waitBackend(t, "redis", a, b)
	sharedLimit(t, a, b, "203.0.113.3")

	resp, err := http.Get(a.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	metrics := string(raw)
	if !strings.Contains(metrics, "token_service_rate_limit_fallbacks_total 1") ||
		strings.Contains(metrics, "token_service_rate_limit_backend_errors_total 0") {
		t.Errorf("fallback and error counters did not move:\n%s", grepLines(metrics, "rate_limit"))
	}
}

func grepLines(text, substr string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
