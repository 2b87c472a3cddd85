// Package livekittest runs a real, pinned livekit-server on 127.0.0.1 for tests. Import it only
// from _test.go files.
package livekittest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/token-service/token-service/internal/freeport"
	"github.com/token-service/token-service/internal/testenv/wait"
)

// Version is the livekit-server the tests run against; newer tags carry replace directives that
// the module proxy cannot serve.
const Version = "v1.13.5"

// Module is what `go install` builds; its binary is named "server".
const Module = "github.com/livekit/livekit-server/cmd/server"

// InstallHint tells a person how to get the binary by hand.
var InstallHint = fmt.Sprintf("install it with `go install %s@%s` (scripts/test does this), or point LIVEKIT_SERVER_BIN at it", Module, Version)

// Binary returns the path of the pinned livekit-server: LIVEKIT_SERVER_BIN if set, else the
// `server` that `go install` puts in $(go env GOPATH)/bin, checked to be Version.
func Binary() (string, error) {
	path := os.Getenv("LIVEKIT_SERVER_BIN")
	if path == "" {
		out, err := exec.Command("go", "env", "GOPATH").Output()
		if err != nil {
			return "", fmt.Errorf("find GOPATH: %w", err)
		}
		path = filepath.Join(strings.TrimSpace(strings.Split(string(out), string(os.PathListSeparator))[0]), "bin", "server")
	}
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("livekit-server %s not found at %s: %s", Version, path, InstallHint)
	}
	if !strings.Contains(string(out), strings.TrimPrefix(Version, "v")) {
		return "", fmt.Errorf("%s is %q, not livekit-server %s: %s", path, strings.TrimSpace(string(out)), Version, InstallHint)
	}
	return path, nil
}

// Install builds the pinned server with `go install` when Binary cannot find it (about 90 s),
// so that a fresh machine needs nothing by hand.
func Install() (string, error) {
	if path, err := Binary(); err == nil {
		return path, nil
	}
	cmd := exec.Command("go", "install", Module+"@"+Version)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w", Module, Version, err)
	}
	return Binary()
}

// Server is a running livekit-server.
type Server struct {
	URL       string // ws://127.0.0.1:port, what clients connect to
	HTTPURL   string // http://127.0.0.1:port, for RoomService and /rtc/validate
	APIKey    string
	APISecret string
	Started   time.Duration // from exec to the first 200 from its HTTP port

	cmd     *exec.Cmd
	cancel  context.CancelFunc
	logPath string
}

// Start runs livekit-server with its own key and secret, bound to 127.0.0.1 only; Stop ends it.
// It is meant to be started once per test package (from TestMain), since tests share it. Every
// packet stays on loopback: one TCP port for signalling and one UDP port for media, no ICE/TCP,
// no external IP discovery (the STUN server named is a port nobody listens on), loopback
// candidates only.
func Start(apiKey, apiSecret string) (*Server, error) {
	return StartWithConfig(apiKey, apiSecret, "")
}

// StartWithConfig is Start with more of livekit-server's YAML configuration appended: top-level
// sections the base leaves out, such as `room: {auto_create: false}` or a `webhook:` block.
func StartWithConfig(apiKey, apiSecret, extra string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	httpPort, err := freeport.Pick("tcp")
	if err != nil {
		return nil, err
	}
	udpPort, err := freeport.Pick("udp")
	if err != nil {
		return nil, err
	}
	config := fmt.Sprintf(`
port: %d
bind_addresses: [127.0.0.1]
rtc:
  tcp_port: 0
  udp_port: %d
  node_ip: 127.0.0.1
  use_external_ip: false
  enable_loopback_candidate: true
  interfaces: {includes: [lo]}
  ips: {includes: [127.0.0.0/8]}
  stun_servers: [127.0.0.1:3478]
keys:
  %s: %s
logging: {level: warn}
`, httpPort, udpPort, apiKey, apiSecret) + extra

	logs, err := os.CreateTemp("", "livekit-*.log")
	if err != nil {
		return nil, err
	}
	defer logs.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config-body", config)
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.WaitDelay = 5 * time.Second
	s := &Server{
		URL:       fmt.Sprintf("ws://127.0.0.1:%d", httpPort),
		HTTPURL:   fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		APIKey:    apiKey,
		APISecret: apiSecret,
		cmd:       cmd,
		cancel:    cancel,
		logPath:   logs.Name(),
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("start livekit-server: %w", err)
	}
	if err := s.waitReady(15 * time.Second); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w\n%s", err, s.Logs())
	}
	s.Started = time.Since(start)
	return s, nil
}

func (s *Server) waitReady(limit time.Duration) error {
	if err := wait.Until(limit, wait.Status(s.HTTPURL, http.StatusOK)); err != nil {
		return fmt.Errorf("livekit-server on %s: %w", s.HTTPURL, err)
	}
	return nil
}

// Stop ends the server and removes its log.
func (s *Server) Stop() {
	s.cancel()
	_ = s.cmd.Wait()
	_ = os.Remove(s.logPath)
}

// Logs returns what the server has printed so far, for a failing test to show.
func (s *Server) Logs() string {
	out, _ := os.ReadFile(s.logPath)
	return string(out)
}

// Validate asks the server whether it would accept token for a connection, as clients do before
// they join; it returns the HTTP status (200 accepted, 401 refused).
func (s *Server) Validate(tb testing.TB, token string) int {
	tb.Helper()
	resp, err := http.Get(s.HTTPURL + "/rtc/validate?access_token=" + url.QueryEscape(token))
	if err != nil {
		tb.Fatalf("validate: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
