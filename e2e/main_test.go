//go:build e2e

// Package e2e proves token-service against a real livekit-server with real clients: the service
// binary as it ships, LiveKit's own server, and server-sdk-go joining rooms over WebRTC.
package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/livekit/protocol/logger"
	lksdk "github.com/livekit/server-sdk-go/v2"

	"github.com/token-service/token-service/internal/testenv/livekittest"
)

const (
	lkKey    = "APIe2ekey"
	lkSecret = "e2e-secret-0123456789abcdef0123456789abcdef"

	// Set in the child process that runs inside the private network namespace.
	netnsEnv      = "TOKEN_SERVICE_E2E_NETNS"
	serviceBinEnv = "TOKEN_SERVICE_E2E_BIN"
)

var (
	lk         *livekittest.Server
	serviceBin string
)

// netnsSetup runs as root inside a new network namespace before the tests: loopback up, and a
// veth pair whose address exists only in there, because the pion client inside server-sdk-go
// gathers no loopback candidate; the default route over it gives Chromium a "default interface"
// for WebRTC. Both ends of the pair are in the namespace, so nothing can reach any other network.
const netnsSetup = `set -e
ip link set lo up
ip link add veth-e2e0 type veth peer name veth-e2e1
ip addr add 198.18.0.1/32 dev veth-e2e0
ip link set veth-e2e0 up
ip link set veth-e2e1 up
ip route add default dev veth-e2e0
exec "$0" "$@"`

func TestMain(m *testing.M) {
	if os.Getenv(netnsEnv) == "" {
		os.Exit(reexecInPrivateNetwork())
	}
	serviceBin = os.Getenv(serviceBinEnv)
	// The SDK and pion log every ICE step (and whole tokens) at their default level.
	lksdk.SetLogger(logger.GetDiscardLogger())
	var err error
	lk, err = livekittest.Start(lkKey, lkSecret)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	fmt.Printf("e2e: livekit-server %s answered in %s at %s\n", livekittest.Version, lk.Started.Round(1e6), lk.URL)
	code := m.Run()
	lk.Stop()
	os.Exit(code)
}

// reexecInPrivateNetwork installs the pinned livekit-server if needed and builds the service
// while the module proxy is still reachable, then runs this test binary again inside a fresh
// network namespace and returns its exit status.
func reexecInPrivateNetwork() int {
	if _, err := livekittest.Install(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: no livekit-server:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "token-service-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "token-service")
	build := exec.Command("go", "build", "-o", bin, "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build token-service:", err)
		return 1
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: the end-to-end tests must run as root: they create a private network namespace (unshare --net) so that no packet leaves the machine")
		return 1
	}
	args := append([]string{"--net", "--", "/bin/sh", "-c", netnsSetup, os.Args[0]}, os.Args[1:]...)
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), netnsEnv+"=1", serviceBinEnv+"="+bin)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: cannot enter a private network namespace (needs unshare from util-linux and ip from iproute2):", err)
		return 1
	}
	return 0
}
