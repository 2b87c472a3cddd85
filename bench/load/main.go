// Command load measures token-service against the standard-library floor (bench/floor) on
// loopback with wrk: the same POST /token request, the same connections and duration, several
// rounds, medians. It prints req/s, p50 and p99 latency, server CPU time per request, peak RSS
// and non-2xx replies for each, then the service/floor ratios. It fails on any non-2xx reply or
// a token that does not verify. Run it with bench/load.sh.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/token-service/token-service/internal/freeport"
	"github.com/token-service/token-service/internal/testenv/delayproxy"
	"github.com/token-service/token-service/internal/testenv/redistest"
)

const (
	apiKey     = "APIloadtest"
	apiSecret  = "load-test-secret-0123456789abcdef-0123"
	serviceKey = "load-test-service-key-0123456789abcdef"
	origin     = "https://app.example.com"
	joinBody   = `{"room":"standup","identity":"alice","name":"Alice","ttl_seconds":3600}`
)

type result struct {
	rps, p50, p99, cpuPerReq float64 // req/s, ms, ms, µs
	rssMiB                   float64
	non2xx                   int
}

type server struct {
	name string
	url  string
	cmd  *exec.Cmd
}

func main() {
	rounds := flag.Int("rounds", 3, "rounds per target; medians are reported")
	duration := flag.Duration("duration", 8*time.Second, "load time per round")
	connections := flag.Int("connections", 64, "concurrent connections")
	var extraEnv envFlags
	flag.Var(&extraEnv, "env", "KEY=VALUE added to the service's environment, to see what a setting costs (repeatable)")
	baseline := flag.String("baseline", "", "a git revision whose service is loaded beside this one, to compare builds in one run")
	hostile := flag.Duration("hostile", 0, "instead: load the service this long with the largest valid requests from many addresses")
	flag.Parse()
	if *hostile > 0 {
		if err := runHostile(*hostile, *connections, extraEnv); err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*rounds, *duration, *connections, extraEnv, *baseline); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

type envFlags []string

func (e *envFlags) String() string      { return strings.Join(*e, " ") }
func (e *envFlags) Set(kv string) error { *e = append(*e, kv); return nil }

func run(rounds int, duration time.Duration, connections int, extraEnv []string, baseline string) error {
	dir, err := os.MkdirTemp("", "token-service-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for name, pkg := range map[string]string{"token-service": ".", "floor": "./bench/floor"} {
		if err := build(dir, name, pkg); err != nil {
			return err
		}
	}
	if baseline != "" {
		if err := buildRevision(dir, baseline); err != nil {
			return err
		}
	}
	common := []string{"HOST=127.0.0.1", "LIVEKIT_API_KEY=" + apiKey, "LIVEKIT_API_SECRET=" + apiSecret, "LIVEKIT_WS_URL=wss://lk.example.com"}
	svc, startup, err := start(dir, "token-service", append(append(common, "APP_ENV=production", "SERVICE_API_KEYS="+serviceKey,
		"CORS_ORIGINS="+origin, "RATE_LIMIT_MAX_REQUESTS=1000000000", "LOG_LEVEL=info"), extraEnv...))
	if err != nil {
		return err
	}
	defer stop(svc)
	floor, _, err := start(dir, "floor", common)
	if err != nil {
		return err
	}
	defer stop(floor)

	// The shapes of issue 13: the same service counting in a real redis-server, directly and
	// behind a proxy that adds a round trip of about 1 ms (this kernel has no netem).
	redisAddr, stopRedis, err := startRedis()
	if err != nil {
		return err
	}
	defer stopRedis()
	slowRedis, err := delayproxy.Start(redisAddr, 500*time.Microsecond)
	if err != nil {
		return err
	}
	defer slowRedis.Close()
	serviceEnv := func(redisURL string) []string {
		return append(append(common, "APP_ENV=production", "SERVICE_API_KEYS="+serviceKey, "CORS_ORIGINS="+origin,
			"RATE_LIMIT_MAX_REQUESTS=1000000000", "LOG_LEVEL=info", "REDIS_URL="+redisURL), extraEnv...)
	}
	svcRedis, _, err := start(dir, "token-service+redis", serviceEnv("redis://"+redisAddr+"/0"))
	if err != nil {
		return err
	}
	defer stop(svcRedis)
	svcSlowRedis, _, err := start(dir, "token-service+slow-redis", serviceEnv("redis://"+slowRedis.Addr+"/0"))
	if err != nil {
		return err
	}
	defer stop(svcSlowRedis)
	// Issue 24's shape: a Redis Cluster of three primaries and three replicas on this machine,
	// reached as the ACL user the README documents.
	cluster, err := redistest.StartCluster(filepath.Join(dir, "cluster"))
	if err != nil {
		return err
	}
	defer cluster.Stop()
	svcCluster, _, err := start(dir, "token-service+cluster", append(serviceEnv(cluster.URL), "REDIS_MODE=cluster"))
	if err != nil {
		return err
	}
	defer stop(svcCluster)

	var svcBaseline *server
	if baseline != "" {
		// The same environment, but in memory: the baseline is what this build is compared to.
		svcBaseline, _, err = start(dir, "baseline", append(append(common, "APP_ENV=production", "SERVICE_API_KEYS="+serviceKey,
			"CORS_ORIGINS="+origin, "RATE_LIMIT_MAX_REQUESTS=1000000000", "LOG_LEVEL=info"), extraEnv...))
		if err != nil {
			return err
		}
		defer stop(svcBaseline)
	}

	validToken, err := checkTokens(svc, floor)
	if err != nil {
		return err
	}
	joinScript := filepath.Join(dir, "join.lua")
	verifyScript := filepath.Join(dir, "verify.lua")
	if err := writeScript(joinScript, "/token", joinBody, ""); err != nil {
		return err
	}
	if err := writeScript(verifyScript, "/token/verify", fmt.Sprintf(`{"token":%q}`, validToken), serviceKey); err != nil {
		return err
	}

	targets := []struct {
		name   string
		srv    *server
		script string
	}{{"floor POST /token", floor, joinScript}, {"service POST /token", svc, joinScript}, {"service POST /token/verify", svc, verifyScript},
		{"service+redis POST /token", svcRedis, joinScript}, {"service+redis+1ms POST /token", svcSlowRedis, joinScript},
		{"service+cluster POST /token", svcCluster, joinScript}}
	if svcBaseline != nil {
		targets = append(targets, struct {
			name   string
			srv    *server
			script string
		}{"baseline " + baseline + " POST /token", svcBaseline, joinScript})
	}
	results := map[string][]result{}
	for round := 1; round <= rounds; round++ {
		for _, t := range targets {
			r, err := measure(t.srv, t.script, duration, connections)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			fmt.Printf("round %d  %-28s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  cpu %6.1f µs/req  rss %5.1f MiB  non-2xx %d\n",
				round, t.name, r.rps, r.p50, r.p99, r.cpuPerReq, r.rssMiB, r.non2xx)
			results[t.name] = append(results[t.name], r)
		}
	}

	fmt.Printf("\nmedians of %d rounds, %d connections, %s each, on %d cores:\n", rounds, connections, duration, cores())
	med := map[string]result{}
	failed := false
	for _, t := range targets {
		m := median(results[t.name])
		med[t.name] = m
		fmt.Printf("  %-28s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  cpu %6.1f µs/req  peak rss %5.1f MiB  non-2xx %d\n",
			t.name, m.rps, m.p50, m.p99, m.cpuPerReq, m.rssMiB, m.non2xx)
		for _, r := range results[t.name] {
			failed = failed || r.non2xx > 0
		}
	}
	s, f, v := med["service POST /token"], med["floor POST /token"], med["service POST /token/verify"]
	fmt.Printf("\nservice / floor (targets in brackets):\n")
	check := func(label string, got float64, ok bool, target string) {
		verdict := "met"
		if !ok {
			verdict = "MISSED"
		}
		fmt.Printf("  %-34s %6.2f  [%s] %s\n", label, got, target, verdict)
	}
	check("throughput", s.rps/f.rps, s.rps/f.rps >= 0.75, ">= 0.75")
	check("cpu per request", s.cpuPerReq/f.cpuPerReq, s.cpuPerReq/f.cpuPerReq <= 1.35, "<= 1.35")
	check("p99 latency", s.p99/f.p99, s.p99/f.p99 <= 1.5, "<= 1.5")
	check("verify throughput / floor's /token", v.rps/f.rps, v.rps/f.rps >= 0.5, ">= 0.5")
	check("peak rss of the service (MiB)", s.rssMiB, s.rssMiB <= 40, "<= 40")
	check("start-up to 200 from /ready (ms)", float64(startup.Microseconds())/1000, startup < 100*time.Millisecond, "< 100")
	if svcBaseline != nil {
		b := med["baseline "+baseline+" POST /token"]
		fmt.Printf("\nthis build / %s:\n", baseline)
		check("cpu per request", s.cpuPerReq/b.cpuPerReq, s.cpuPerReq/b.cpuPerReq <= 1.05, "<= 1.05")
		check("throughput", s.rps/b.rps, s.rps/b.rps >= 0.95, ">= 0.95")
	}
	fmt.Printf("\nwith Redis / in-memory counting (targets in brackets):\n")
	// Each shape's throughput beside the share of its decisions made in memory (Redis could not
	// answer), from the replica's own metrics: a shape that fell back would measure memory.
	for _, shape := range []struct {
		target, label string
		srv           *server
		ratio         float64
	}{
		{"service+redis POST /token", "redis", svcRedis, 0.8},
		{"service+redis+1ms POST /token", "redis +1 ms round trip", svcSlowRedis, 0.5},
		{"service+cluster POST /token", "cluster (3 primaries)", svcCluster, 0.8},
	} {
		r := med[shape.target]
		inMemory := rateLimitCounters(shape.srv)
		check(shape.label+" throughput", r.rps/s.rps, r.rps/s.rps >= shape.ratio, fmt.Sprintf(">= %.1f", shape.ratio))
		check(shape.label+" decided in memory (%)", inMemory.share, inMemory.share < 1, "< 1")
		fmt.Printf("  %-34s %s\n", "", inMemory)
		// Counting in Redis at the end of the load, not only once it has stopped.
		state := readyState(shape.srv)
		check(shape.label+" /ready says redis", 0, state == "redis", "redis, not "+state)
	}

	// A Redis that answers in 80 ms: slow, not down. The first 2 s after it turns slow must
	// already run at half the in-memory rate, and /ready must say so.
	slowRedis.SetDelay(40 * time.Millisecond)
	stalled, err := measure(svcSlowRedis, joinScript, 2*time.Second, connections)
	if err != nil {
		return fmt.Errorf("stalled redis: %w", err)
	}
	fmt.Printf("  %-34s %9.0f req/s  p99 %6.2f ms  /ready %s\n", "first 2 s of an 80 ms redis", stalled.rps, stalled.p99, readyState(svcSlowRedis))
	check("80 ms redis throughput, first 2 s", stalled.rps/s.rps, stalled.rps/s.rps >= 0.5, ">= 0.5")
	if state := readyState(svcSlowRedis); state != "memory-fallback" {
		return fmt.Errorf("with an 80 ms Redis /ready says %q, not memory-fallback", state)
	}
	failed = failed || stalled.non2xx > 0
	if failed {
		return fmt.Errorf("some replies were not 2xx")
	}
	return nil
}

// counters are a replica's Redis misses and breaker openings, and the share of its requests
// decided in memory because Redis could not answer.
type counters struct {
	misses, openings, share float64
}

func (c counters) String() string {
	return fmt.Sprintf("budget misses %.0f  breaker openings %.0f  decided in memory %.2f%%", c.misses, c.openings, c.share)
}

func rateLimitCounters(s *server) counters {
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		return counters{share: 100}
	}
	defer resp.Body.Close()
	values := map[string]float64{}
	decided, fallback := 0.0, 0.0
	scanner := bufio.NewScanner(resp.Body)
	for scanner.Scan() {
		name, value, ok := strings.Cut(scanner.Text(), " ")
		v, err := strconv.ParseFloat(value, 64)
		if !ok || err != nil {
			continue
		}
		values[name] = v
		if strings.HasPrefix(name, "token_service_rate_limit_decisions_total{") {
			decided += v
			if strings.Contains(name, `decision="fallback"`) {
				fallback += v
			}
		}
	}
	return counters{misses: values["token_service_rate_limit_backend_errors_total"],
		openings: values["token_service_rate_limit_fallbacks_total"], share: 100 * fallback / max(decided, 1)}
}

// buildRevision builds the service at a git revision into dir/baseline, from a temporary
// worktree that it removes again.
func buildRevision(dir, revision string) error {
	tree := filepath.Join(dir, "baseline-tree")
	if out, err := exec.Command("git", "worktree", "add", "--detach", tree, revision).CombinedOutput(); err != nil {
		return fmt.Errorf("git worktree add %s: %v\n%s", revision, err, out)
	}
	defer exec.Command("git", "worktree", "remove", "--force", tree).Run()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "baseline"), ".")
	build.Dir = tree
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %v\n%s", revision, err, out)
	}
	return nil
}

// readyState is where /ready says the service counts rate limits.
func readyState(s *server) string {
	resp, err := http.Get(s.url + "/ready")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var ready struct {
		Backend string `json:"rate_limit_backend"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&ready)
	return ready.Backend
}

// startRedis runs a redis-server on a free loopback port, as the deployment's shared Redis.
func startRedis() (addr string, stop func(), err error) {
	port, err := freeport.Pick("tcp")
	if err != nil {
		return "", nil, err
	}
	// Its own directory: Redis loads a dump.rdb it finds where it starts.
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", os.TempDir(), "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("redis-server (apt-get install redis-server): %w", err)
	}
	stop = func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	addr = "127.0.0.1:" + strconv.Itoa(port)
	for begin := time.Now(); time.Since(begin) < 5*time.Second; time.Sleep(10 * time.Millisecond) {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return addr, stop, nil
		}
	}
	stop()
	return "", nil, fmt.Errorf("redis-server did not listen on %s within 5 s", addr)
}

// start runs a binary on a free loopback port and waits for 200 from /ready, timing it.
func start(dir, name string, env []string) (*server, time.Duration, error) {
	port, err := freeport.Pick("tcp")
	if err != nil {
		return nil, 0, err
	}
	logFile, err := os.Create(filepath.Join(dir, name+".log")) // the access log goes to a file, as in production
	if err != nil {
		return nil, 0, err
	}
	binary, _, _ := strings.Cut(name, "+") // "token-service+redis" runs token-service
	cmd := exec.Command(filepath.Join(dir, binary))
	cmd.Env = append(env, "PORT="+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	s := &server{name: name, url: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd}
	client := &http.Client{Timeout: time.Second}
	for time.Since(begin) < 10*time.Second {
		if resp, err := client.Get(s.url + "/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, time.Since(begin), nil
			}
		}
		time.Sleep(time.Millisecond)
	}
	stop(s)
	return nil, 0, fmt.Errorf("%s did not become ready within 10 s", name)
}

func stop(s *server) {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
	}
}

// checkTokens gets a token from each server and has the service verify both: the floor must sign
// what the service signs, or the comparison is meaningless.
func checkTokens(svc, floor *server) (string, error) {
	var serviceToken string
	for _, s := range []*server{svc, floor} {
		resp, err := http.Post(s.url+"/token", "application/json", strings.NewReader(joinBody))
		if err != nil {
			return "", err
		}
		var issued struct{ Token string }
		err = json.NewDecoder(resp.Body).Decode(&issued)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("%s POST /token: %d %v", s.name, resp.StatusCode, err)
		}
		req, _ := http.NewRequest(http.MethodPost, svc.url+"/token/verify", strings.NewReader(fmt.Sprintf(`{"token":%q}`, issued.Token)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+serviceKey)
		vresp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		var verdict struct {
			Valid    bool
			Identity string
		}
		err = json.NewDecoder(vresp.Body).Decode(&verdict)
		vresp.Body.Close()
		if err != nil || !verdict.Valid || verdict.Identity != "alice" {
			return "", fmt.Errorf("the token from %s does not verify: %+v %v", s.name, verdict, err)
		}
		if s == svc {
			serviceToken = issued.Token
		}
	}
	return serviceToken, nil
}

func writeScript(path, route, body, bearer string) error {
	script := fmt.Sprintf("wrk.method = \"POST\"\nwrk.path = %q\nwrk.body = %q\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.headers[\"Origin\"] = %q\n",
		route, body, origin)
	if bearer != "" {
		script += fmt.Sprintf("wrk.headers[\"Authorization\"] = %q\n", "Bearer "+bearer)
	}
	return os.WriteFile(path, []byte(script), 0o644)
}

var (
	rpsLine     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	totalLine   = regexp.MustCompile(`(\d+) requests in`)
	non2xxLine  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	percentLine = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)`)
)

func measure(s *server, script string, duration time.Duration, connections int) (result, error) {
	before, err := cpuTicks(s.cmd.Process.Pid)
	if err != nil {
		return result{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), duration+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "wrk", "-t2", "-c"+strconv.Itoa(connections), "-d"+duration.String(),
		"--latency", "-s", script, s.url).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	after, err := cpuTicks(s.cmd.Process.Pid)
	if err != nil {
		return result{}, err
	}
	var r result
	r.rps = parseFloat(rpsLine, out)
	total := parseFloat(totalLine, out)
	r.non2xx = int(parseFloat(non2xxLine, out))
	for _, m := range percentLine.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(m[2]), 64)
		switch string(m[3]) {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		if string(m[1]) == "50" {
			r.p50 = v
		} else {
			r.p99 = v
		}
	}
	if total == 0 {
		return result{}, fmt.Errorf("wrk made no requests:\n%s", out)
	}
	r.cpuPerReq = float64(after-before) / float64(clockTicks()) / total * 1e6
	r.rssMiB = peakRSS(s.cmd.Process.Pid)
	return r, nil
}

func parseFloat(re *regexp.Regexp, out []byte) float64 {
	m := re.FindSubmatch(out)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// cpuTicks is the process's user+system CPU time in clock ticks (/proc/<pid>/stat, fields 14-15).
func cpuTicks(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:])) // the name may hold spaces
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return utime + stime, nil
}

func clockTicks() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if v, perr := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && perr == nil && v > 0 {
		return v
	}
	return 100
}

// peakRSS is VmHWM, the most resident memory the process has had, in MiB.
func peakRSS(pid int) float64 {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func cores() int {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(raw), "processor\t:")
}

func median(rs []result) result {
	pick := func(get func(result) float64) float64 {
		vs := make([]float64, len(rs))
		for i, r := range rs {
			vs[i] = get(r)
		}
		slices.Sort(vs)
		return vs[len(vs)/2]
	}
	m := result{
		rps:       pick(func(r result) float64 { return r.rps }),
		p50:       pick(func(r result) float64 { return r.p50 }),
		p99:       pick(func(r result) float64 { return r.p99 }),
		cpuPerReq: pick(func(r result) float64 { return r.cpuPerReq }),
		rssMiB:    pick(func(r result) float64 { return r.rssMiB }),
	}
	for _, r := range rs {
		m.non2xx += r.non2xx
	}
	return m
}
