package app_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/token-service/token-service/config"
	"github.com/token-service/token-service/handlers"
	"github.com/token-service/token-service/internal/app"
	"github.com/token-service/token-service/internal/testenv/logtest"
	"github.com/token-service/token-service/internal/testenv/redistest"
	"github.com/token-service/token-service/internal/testenv/wait"
	"github.com/token-service/token-service/logging"
)

func TestMain(m *testing.M) {
	code := m.Run()
	redistest.StopShared()
	os.Exit(code)
}

const (
	serviceKey = "redis-shapes-service-key-0123456789abcdef"
	limit      = 20
)

// replica is one service on the test's Redis: the real wiring (app.New) and the real router.
type replica struct {
	*httptest.Server
	logs *logtest.Buffer
}

func newReplica(t *testing.T, env ...string) *replica {
	t.Helper()
	cfg, err := config.Load(append([]string{"APP_ENV=production", "LIVEKIT_API_KEY=APIshapes",
		"LIVEKIT_API_SECRET=redis-shapes-livekit-secret-0123456789", "LIVEKIT_WS_URL=wss://lk.example.com",
		"LIVEKIT_API_URL=http://127.0.0.1:9", "SERVICE_API_KEYS=" + serviceKey, "TRUSTED_PROXIES=127.0.0.1/32",
		"RATE_LIMIT_MAX_REQUESTS=" + strconv.Itoa(limit), "RATE_LIMIT_WINDOW_MS=3600000", "LOG_LEVEL=info",
		// The share is what these tests are about; a budget a busy machine keeps is another's.
		"REDIS_TIMEOUT_MS=1000"}, env...))
	if err != nil {
		t.Fatal(err)
	}
	logs := &logtest.Buffer{}
	log := logging.New(logs, zerolog.InfoLevel, false)
	deps, stop, err := app.New(t.Context(), cfg, "test", log, logging.New(&logtest.Buffer{}, zerolog.Disabled, false))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handlers.NewRouter(deps))
	t.Cleanup(func() { srv.Close(); _ = stop() })
	return &replica{Server: srv, logs: logs}
}

func (r *replica) post(t *testing.T, path, body, client string, headers ...string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", client)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := r.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (r *replica) ready(t *testing.T) string {
	t.Helper()
	resp, err := r.Client().Get(r.URL + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// shape is one way production Redis comes: a replica's environment on it, and the addresses
// whose ACL LOG must stay empty.
type shape struct {
	env   []string
	nodes []string
}

// shapes are the ways production Redis comes.
func shapes(t *testing.T) map[string]shape {
	dir := t.TempDir()
	single, err := redistest.StartWithACL(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(single.Stop)
	certs, err := redistest.MakeCertificates(dir, "redis")
	if err != nil {
		t.Fatal(err)
	}
	tlsServer, err := redistest.StartTLS(dir, certs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tlsServer.Stop)
	cluster, sentinel := redistest.SharedCluster(t), redistest.SharedSentinel(t)
	return map[string]shape{
		"single":   {[]string{"REDIS_URL=" + single.URL}, []string{single.Addr}},
		"cluster":  {[]string{"REDIS_MODE=cluster", "REDIS_URL=" + cluster.URL}, cluster.Addrs()},
		"sentinel": {[]string{"REDIS_MODE=sentinel", "REDIS_URL=" + sentinel.URL}, sentinel.Addrs()},
		"tls":      {[]string{"REDIS_URL=" + tlsServer.URL, "REDIS_CA_FILE=" + certs.CA}, nil},
	}
}

// Every shape, as the ACL user the README documents: two replicas share one limit exactly, and
// a ban made through one holds on the other.
func TestSharedStateOnEveryShape(t *testing.T) {
	for name, sh := range shapes(t) {
		t.Run(name, func(t *testing.T) {
			a, b := newReplica(t, sh.env...), newReplica(t, sh.env...)
			for _, r := range []*replica{a, b} {
				if got := r.ready(t); !strings.Contains(got, `"rate_limit_backend":"redis"`) {
					t.Fatalf("/ready: %s\n%s", got, r.logs)
				}
			}
			client := "203.0.113." + strconv.Itoa(len(name)) // one client per shape: fresh counts
			if admitted := shareOfLimit(t, client, a, b); admitted != limit {
				t.Errorf("two replicas admitted %d of 64 concurrent requests, want exactly %d", admitted, limit)
			}
			identity := "banned-" + name
			if status := a.post(t, "/moderation/bans", `{"room":"r","identity":"`+identity+`"}`, "198.51.100.1", "Authorization", "Bearer "+serviceKey); status != http.StatusCreated {
				t.Fatalf("ban through a: %d\n%s", status, a.logs)
			}
			wait.For(t, 5*time.Second, func() error {
				if status := b.post(t, "/token", `{"room":"r","identity":"`+identity+`"}`, "198.51.100.2"); status != http.StatusForbidden {
					return fmt.Errorf("replica b issued the banned identity a token: %d", status)
				}
				return nil
			})
			if denied, err := redistest.Denied(sh.nodes...); err != nil || denied != "" {
				t.Errorf("the documented ACL was not enough: %v\n%s", err, denied)
			}
		})
	}
}

// shareOfLimit sends 64 concurrent requests of one client, alternating replicas, and returns how
// many were admitted. The window is an hour: a test that would cross its end waits for it.
func shareOfLimit(t *testing.T, client string, replicas ...*replica) int {
	t.Helper()
	if toNext := time.Hour - time.Duration(time.Now().UnixNano())%time.Hour; toNext < 10*time.Second {
		time.Sleep(toNext + time.Second) // the clock is the condition here: the window's end
	}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			if replicas[i%len(replicas)].post(t, "/token", `{"room":"r","identity":"u`+strconv.Itoa(i)+`"}`, client) == http.StatusOK {
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	return int(admitted.Load())
}

// A CA that did not sign Redis's certificate stops start-up with a message naming Redis's host,
// never the URL's password.
func TestWrongCAIsAStartUpError(t *testing.T) {
	dir := t.TempDir()
	certs, err := redistest.MakeCertificates(dir, "redis")
	if err != nil {
		t.Fatal(err)
	}
	other, err := redistest.MakeCertificates(dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := redistest.StartTLS(dir, certs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	cfg, err := config.Load([]string{"LIVEKIT_API_KEY=devkey", "LIVEKIT_API_SECRET=secret", "REDIS_URL=" + srv.URL, "REDIS_CA_FILE=" + other.CA})
	if err != nil {
		t.Fatal(err)
	}
	log := logging.New(&logtest.Buffer{}, zerolog.Disabled, false)
	_, _, err = app.New(t.Context(), cfg, "test", log, log)
	if err == nil || !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), srv.Addr) ||
		strings.Contains(err.Error(), redistest.Password) {
		t.Fatalf("start-up with the wrong CA: %v", err)
	}
}

// load sends requests of many clients through replicas until stop is closed, and returns how
// many were decided where (from the replicas' own metrics, when the test reads them).
func load(t *testing.T, stop <-chan struct{}, replicas ...*replica) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				replicas[n%len(replicas)].post(t, "/token", `{"room":"r","identity":"u"}`, fmt.Sprintf("192.0.2.%d", (i*31+n)%250+1))
			}
		})
	}
	return &wg
}

// backOnRedis waits until every replica counts in Redis again, and says how long that took.
func backOnRedis(t *testing.T, within time.Duration, replicas ...*replica) time.Duration {
	t.Helper()
	start := time.Now()
	wait.For(t, within, func() error {
		for _, r := range replicas {
			if got := r.ready(t); !strings.Contains(got, `"rate_limit_backend":"redis"`) {
				return fmt.Errorf("%s: %s", r.URL, got)
			}
		}
		return nil
	})
	return time.Since(start)
}

// bansHold checks that every ban holds on every replica.
func bansHold(t *testing.T, identities []string, replicas ...*replica) {
	t.Helper()
	wait.For(t, 15*time.Second, func() error { // within a resync of Redis's coming back
		for _, r := range replicas {
			for _, id := range identities {
				if status := r.post(t, "/token", `{"room":"r","identity":"`+id+`"}`, "198.51.100.9", "Authorization", "Bearer "+serviceKey); status != http.StatusForbidden {
					return fmt.Errorf("%s issued banned %s a token: %d", r.URL, id, status)
				}
			}
		}
		return nil
	})
}

func banAll(t *testing.T, r *replica, prefix string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		if status := r.post(t, "/moderation/bans", `{"room":"r","identity":"`+id+`"}`, "198.51.100.1", "Authorization", "Bearer "+serviceKey); status != http.StatusCreated {
			t.Fatalf("ban %s: %d\n%s", id, status, r.logs)
		}
		ids = append(ids, id)
	}
	return ids
}

// A cluster's manual failover and then a primary killed, both under load: no ban is lost, and
// the limiter is back on Redis within 10 s of the cluster being whole again.
func TestClusterFailoverUnderLoad(t *testing.T) {
	cluster := redistest.SharedCluster(t)
	env := []string{"REDIS_MODE=cluster", "REDIS_URL=" + cluster.URL}
	a, b := newReplica(t, env...), newReplica(t, env...)
	bans := banAll(t, a, "cluster-failover", 20)
	stop := make(chan struct{})
	running := load(t, stop, a, b)
	if err := cluster.Failover(cluster.Replicas()[0]); err != nil {
		t.Fatal(err)
	}
	if err := cluster.Whole(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("manual failover: back on Redis %s after the cluster was whole", backOnRedis(t, 10*time.Second, a, b).Round(time.Millisecond))
	cluster.Primaries()[0].Stop()
	if err := cluster.Whole(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("primary killed: back on Redis %s after the cluster was whole", backOnRedis(t, 10*time.Second, a, b).Round(time.Millisecond))
	close(stop)
	running.Wait()
	bansHold(t, bans, a, b)
}

// A sentinel failover under load: the same.
func TestSentinelFailoverUnderLoad(t *testing.T) {
	group := redistest.SharedSentinel(t)
	env := []string{"REDIS_MODE=sentinel", "REDIS_URL=" + group.URL}
	a, b := newReplica(t, env...), newReplica(t, env...)
	bans := banAll(t, a, "sentinel-failover", 20)
	stop := make(chan struct{})
	running := load(t, stop, a, b)
	if err := group.Failover(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("sentinel failover: back on Redis %s after the sentinels named the new primary", backOnRedis(t, 10*time.Second, a, b).Round(time.Millisecond))
	close(stop)
	running.Wait()
	bansHold(t, bans, a, b)
}

// The eviction attack: under allkeys-lru, rate-limit keys of many clients evict the bans; every
// ban still holds on both replicas, written back from their copies, and start-up warned.
func TestEvictionLosesNoBan(t *testing.T) {
	srv, err := redistest.StartWithACL(t.TempDir(), "--maxmemory-policy", "allkeys-lru", "--maxmemory-samples", "10")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	env := []string{"REDIS_URL=" + srv.URL}
	a, b := newReplica(t, env...), newReplica(t, env...)
	if !strings.Contains(a.logs.String(), "maxmemory-policy allkeys-lru") {
		t.Errorf("no start-up warning about allkeys-lru:\n%s", a.logs)
	}
	bans := banAll(t, a, "evicted", 50)
	flood := func(from, to int) {
		var wg sync.WaitGroup
		for i := from; i < to; i++ {
			wg.Go(func() {
				[]*replica{a, b}[i%2].post(t, "/token", `{"room":"r","identity":"u"}`, fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255))
			})
			if i%64 == 63 {
				wg.Wait()
			}
		}
		wg.Wait()
	}
	flood(0, 200) // the replicas' connections warm, so that what is left for keys is what counts
	// Memory for a little more than what is there: the clients' counters must push the rest out.
	info, err := srv.Command("INFO", "memory")
	if err != nil {
		t.Fatal(err)
	}
	used := 0
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			used, _ = strconv.Atoi(v)
		}
	}
	if _, err := srv.Command("CONFIG", "SET", "maxmemory", strconv.Itoa(used+128<<10)); err != nil {
		t.Fatal(err)
	}
	flood(200, 2700)
	if stats, _ := srv.Command("INFO", "stats"); !strings.Contains(stats, "evicted_keys:") || strings.Contains(stats, "evicted_keys:0\r") {
		t.Fatalf("nothing was evicted: the test did not reproduce the attack")
	}
	bansHold(t, bans, a, b)
	wait.For(t, 15*time.Second, func() error { // written back into Redis, not only kept in memory
		n, err := srv.Command("HLEN", redistest.Prefix+"{bans}")
		if err != nil || n != "50" {
			keys, _ := srv.Command("HKEYS", redistest.Prefix+"{bans}")
			return fmt.Errorf("Redis holds %s bans (%v): %q", n, err, keys)
		}
		return nil
	})
	if !strings.Contains(a.logs.String()+b.logs.String(), "Redis had lost bans") {
		t.Errorf("no error logged for the lost bans")
	}
}
