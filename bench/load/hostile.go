package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// hostileBody is a valid POST /token of the contract's largest size: 64 KiB of metadata, 64 KiB
// of attributes (LiveKit's own limits), padded with JSON whitespace to just under 256 KiB.
func hostileBody() string {
	attributes := make([]string, 0, 64)
	for i := range 64 {
		attributes = append(attributes, fmt.Sprintf("%q:%q", fmt.Sprintf("k%02d", i), strings.Repeat("v", 1000)))
	}
	body := fmt.Sprintf(`{"room":"standup","identity":"alice","metadata":%q,"attributes":{%s}}`,
		strings.Repeat("m", 64<<10-16), strings.Join(attributes, ","))
	return body + strings.Repeat(" ", 256<<10-1024-len(body))
}

var gcTrace = regexp.MustCompile(`gc \d+ @[\d.]+s (\d+)%`)

// runHostile loads the service with the largest valid requests from many client addresses (a
// trusted proxy forwards them), with the default rate limit, for duration, and reports the
// status mix, peak RSS and the share of CPU the garbage collector took (GODEBUG=gctrace).
func runHostile(duration time.Duration, connections int, extraEnv []string) error {
	dir, err := os.MkdirTemp("", "token-service-hostile-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := build(dir, "token-service", "."); err != nil {
		return err
	}
	svc, _, err := start(dir, "token-service", append([]string{"HOST=127.0.0.1", "APP_ENV=production", "LIVEKIT_API_KEY=" + apiKey,
		"LIVEKIT_API_SECRET=" + apiSecret, "LIVEKIT_WS_URL=wss://lk.example.com", "CORS_ORIGINS=" + origin,
		"TRUSTED_PROXIES=127.0.0.1/32", "LOG_LEVEL=info", "GODEBUG=gctrace=1"}, extraEnv...))
	if err != nil {
		return err
	}
	defer stop(svc)
	script := filepath.Join(dir, "hostile.lua")
	lua := fmt.Sprintf(`wrk.method = "POST"
wrk.path = "/token"
wrk.body = %q
wrk.headers["Content-Type"] = "application/json"
request = function()
  wrk.headers["X-Forwarded-For"] = string.format("10.%%d.%%d.%%d", math.random(0, 255), math.random(0, 255), math.random(1, 254))
  return wrk.format()
end
`, hostileBody())
	if err := os.WriteFile(script, []byte(lua), 0o644); err != nil {
		return err
	}
	r, err := measure(svc, script, duration, connections)
	if err != nil {
		return err
	}
	logs, _ := os.ReadFile(filepath.Join(dir, "token-service.log"))
	gcShare := "unknown"
	if m := gcTrace.FindAllSubmatch(logs, -1); len(m) > 0 {
		gcShare = string(m[len(m)-1][1]) + "%" // gctrace's share is since start
	}
	fmt.Printf("hostile POST /token (%d KiB bodies, %d connections, %s): %.0f req/s  p99 %.2f ms  cpu %.0f µs/req  non-2xx %d  peak rss %.1f MiB  GC CPU %s  5xx in log: %d\n",
		len(hostileBody())>>10, connections, duration, r.rps, r.p99, r.cpuPerReq, r.non2xx, r.rssMiB, gcShare, strings.Count(string(logs), `"status":5`))
	if strings.Contains(string(logs), `"status":5`) {
		return fmt.Errorf("5xx replies under hostile load")
	}
	return nil
}

func build(dir, name, pkg string) error {
	if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg).CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %v\n%s", pkg, err, out)
	}
	return nil
}
