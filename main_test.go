package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/token-service/token-service/config"
	"github.com/token-service/token-service/internal/testenv"
	"github.com/token-service/token-service/internal/testenv/logtest"
	"github.com/token-service/token-service/internal/testenv/wait"
)

// TestMain lets a test run the real main in a child process, to see its exit status.
func TestMain(m *testing.M) {
	if os.Getenv("TOKEN_SERVICE_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const testSecret = "main-test-secret-0123456789abcdef-xyz"

// waitForCleanExit fails the test unless run returns nil within 5 s.
func waitForCleanExit(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return within 5 s")
	}
}

// startRun runs the service as main would, on 127.0.0.1, and waits for /health.
func startRun(t *testing.T, env ...string) (base string, cancel context.CancelFunc, done <-chan error, logs *logtest.Buffer) {
	t.Helper()
	port := testenv.FreePort(t)
	environ := append([]string{"HOST=127.0.0.1", "PORT=" + strconv.Itoa(port), "APP_ENV=production",
		"LIVEKIT_API_KEY=mainkey", "LIVEKIT_API_SECRET=" + testSecret, "LIVEKIT_WS_URL=wss://lk.example.com"}, env...)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	logs = &logtest.Buffer{}
	go func() { errc <- run(ctx, environ, logs) }()
	base = "http://127.0.0.1:" + strconv.Itoa(port)
	if err := wait.Until(5*time.Second, wait.Status(base+"/health", 200)); err != nil {
		cancel()
		t.Fatalf("service not healthy: %v\n%s", err, logs)
	}
	t.Cleanup(cancel)
	return base, cancel, errc, logs
}

func status(t *testing.T, method, url, body string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func TestRunDrainsThenStops(t *testing.T) {
	base, cancel, done, logs := startRun(t, "SHUTDOWN_DELAY_SECONDS=1")
	// Start-up lines are written at once; only the access log waits for its buffer's flush.
	if out := logs.String(); !strings.Contains(out, `"listening"`) {
		t.Errorf("the start-up line is not written yet once /health answers:\n%s", out)
	}
	if got := status(t, "POST", base+"/token", `{"room":"r","identity":"a"}`); got != 200 {
		t.Fatalf("POST /token = %d", got)
	}
	cancel() // as SIGTERM does
	// During the delay /ready says 503, but requests are still served.
	wait.For(t, time.Second, wait.Status(base+"/ready", 503))
	if got := status(t, "POST", base+"/token", `{"room":"r","identity":"a"}`); got != 200 {
		t.Errorf("POST /token during the delay = %d, want 200", got)
	}
	waitForCleanExit(t, done)
	if _, err := http.Get(base + "/health"); err == nil {
		t.Error("still accepting connections after shutdown")
	}
	if out := logs.String(); !strings.Contains(out, `"stopped"`) || !strings.HasPrefix(out, "{") {
		t.Errorf("production logs must be JSON and end with stopped:\n%s", out)
	}
}

// A request in flight when the listener closes is finished, not cut off.
func TestRunFinishesInFlightRequests(t *testing.T) {
	base, cancel, done, _ := startRun(t) // SHUTDOWN_DELAY_SECONDS=0: the listener closes at once
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"room":"r","identity":"slow"}`
	fmt.Fprintf(conn, "POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:5])
	// The request is active once a new one can see the server: its headers have been read.
	if got := status(t, "GET", base+"/health", ""); got != 200 {
		t.Fatalf("/health = %d", got)
	}
	cancel()
	// Shutdown has begun when the listener refuses new connections.
	wait.For(t, 5*time.Second, func() error {
		c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			return nil
		}
		c.Close()
		return errors.New("still accepting connections after cancel")
	})
	fmt.Fprint(conn, body[5:])
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request lost: %v", err)
	}
	if resp.StatusCode != 200 {
		t.Errorf("in-flight request = %d", resp.StatusCode)
	}
	resp.Body.Close()
	waitForCleanExit(t, done)
}

func TestRunRefusesBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	// Bounded: were the port taken anyway, run would serve until the context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = run(ctx, []string{"HOST=127.0.0.1", "PORT=" + port}, io.Discard)
	if err == nil || errors.Is(err, config.ErrInvalid) {
		t.Errorf("err = %v, want a listen error", err)
	}
}

// Bad configuration: exit status 2, one line per problem naming the variable, no secret.
func TestMainExitsTwoOnBadConfig(t *testing.T) {
	shortSecret := "too-short-secret"
	cmd := exec.Command(os.Args[0]) // TestMain runs main before any test flag is read
	cmd.Env = []string{"TOKEN_SERVICE_TEST_MAIN=1", "APP_ENV=production", "LIVEKIT_API_SECRET=" + shortSecret, "PORT=0"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("exit = %v, want status 2; stderr:\n%s", err, stderr.String())
	}
	out := stderr.String()
	for _, v := range []string{"PORT:", "LIVEKIT_API_KEY:", "LIVEKIT_API_SECRET:", "LIVEKIT_WS_URL:"} {
		if !strings.Contains(out, v) {
			t.Errorf("stderr does not name %s:\n%s", v, out)
		}
	}
	if strings.Contains(out, shortSecret) {
		t.Errorf("stderr shows the secret:\n%s", out)
	}
}

func TestHealthcheckSubcommand(t *testing.T) {
	base, _, _, _ := startRun(t)
	port := base[strings.LastIndex(base, ":")+1:]
	if got := subcommand("healthcheck", []string{"HOST=127.0.0.1", "PORT=" + port}); got != 0 {
		t.Errorf("healthcheck against a running service = %d, want 0", got)
	}
	if got := subcommand("healthcheck", []string{"HOST=127.0.0.1", "PORT=" + strconv.Itoa(testenv.FreePort(t))}); got != 1 {
		t.Errorf("healthcheck with nothing listening = %d, want 1", got)
	}
	// A bad configuration says so (exit 2), instead of "connection refused".
	if got := subcommand("healthcheck", []string{"HOST=127.0.0.1", "PORT=abc"}); got != 2 {
		t.Errorf("healthcheck with PORT=abc = %d, want 2", got)
	}
	if got := subcommand("bogus", nil); got != 2 {
		t.Errorf("unknown subcommand = %d, want 2", got)
	}
}

func TestVersionSubcommand(t *testing.T) {
	cmd := exec.Command(os.Args[0], "version")
	cmd.Env = []string{"TOKEN_SERVICE_TEST_MAIN=1"}
	out, err := cmd.Output()
	if err != nil || !strings.HasPrefix(string(out), "token-service dev (go1.") {
		t.Errorf("version: %q %v", out, err)
	}
}

// METRICS_PORT moves /metrics off the main port, so that it need not be public.
func TestMetricsPort(t *testing.T) {
	metricsPort := testenv.FreePort(t)
	base, _, _, _ := startRun(t, "METRICS_PORT="+strconv.Itoa(metricsPort))
	if got := status(t, "GET", base+"/metrics", ""); got != 404 {
		t.Errorf("main port /metrics = %d, want 404", got)
	}
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(metricsPort) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "token_service_build_info") {
		t.Errorf("metrics port: %d %.200s", resp.StatusCode, body)
	}
}

// A policy file caught mid-write on SIGHUP is never applied, even where the half written so far
// parses (a rule cut before its rooms: would admit anonymous callers to any room): the reload
// waits until two reads a moment apart agree.
func TestReloadNeverAppliesAHalfWrittenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	head := "version: 1\nprofiles: {guest: {grants: {canSubscribe: true}}}\nrules:\n  - name: guests\n    caller: anonymous\n    profile: guest\n"
	if err := os.WriteFile(path, []byte(head+"    rooms: [\"lobby-*\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base, _, _, logs := startRun(t, "POLICY_FILE="+path)
	secret := func() int { return status(t, "POST", base+"/token", `{"room":"secret-room","identity":"a"}`) }
	if got := secret(); got != 403 {
		t.Fatalf("before the reload: %d", got)
	}
	// A writer that has written the rule but not yet its rooms when the signal comes.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(head); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// The rest of the file follows while the reload is still reading.
	if _, err := f.WriteString("    rooms: [\"lobby-*\", \"stage-*\"]\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, func() error {
		if got := secret(); got == 200 {
			t.Fatal("the half-written policy was applied: anonymous callers got any room")
		}
		if !strings.Contains(logs.String(), "grant policy reloaded") {
			return errors.New("not reloaded yet")
		}
		return nil
	})
	if got, stage := secret(), status(t, "POST", base+"/token", `{"room":"stage-1","identity":"a"}`); got != 403 || stage != 200 {
		t.Errorf("after the reload: secret-room %d, stage-1 %d; want the whole new file", got, stage)
	}
}
