// Package redistest runs a real redis-server on 127.0.0.1 for tests. Import it only from
// _test.go files.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/token-service/token-service/config"
	"github.com/token-service/token-service/internal/freeport"
	"github.com/token-service/token-service/internal/testenv/wait"
	"github.com/token-service/token-service/redisdb"
)

// InstallHint tells a person how to get the binary.
const InstallHint = "install it with `apt-get install redis-server` (scripts/test does this)"

// Server is a redis-server that a test can stop and start again on the same port.
type Server struct {
	Addr   string // 127.0.0.1:port
	URL    string // redis://127.0.0.1:port/0
	bin    string
	port   int
	cmd    *exec.Cmd
	cancel context.CancelFunc
	dir    string
}

// Start runs redis-server on a free loopback port with persistence off.
func Start() (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found: %s", InstallHint)
	}
	port, err := freeport.Pick("tcp")
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, port: port, Addr: "127.0.0.1:" + strconv.Itoa(port)}
	s.URL = "redis://" + s.Addr + "/0"
	return s, s.Restart()
}

// Restart starts the server again after Stop, on the same port and with no data.
func (s *Server) Restart() error {
	ctx, cancel := context.WithCancel(context.Background())
	// A directory of its own: Redis loads a dump.rdb it finds in its working directory.
	dir, err := os.MkdirTemp("", "redis-server")
	if err != nil {
		cancel()
		return err
	}
	s.cmd = exec.CommandContext(ctx, s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "yes")
	s.dir = dir
	s.cmd.WaitDelay = 5 * time.Second
	s.cancel = cancel
	if err := s.cmd.Start(); err != nil {
		cancel()
		return fmt.Errorf("start redis-server: %w", err)
	}
	if err := wait.Until(5*time.Second, s.ping); err != nil {
		s.Stop()
		return fmt.Errorf("redis-server on %s: %w", s.Addr, err)
	}
	return nil
}

// Stop kills the server, as a crash would.
func (s *Server) Stop() {
	s.cancel()
	_ = s.cmd.Wait()
	_ = os.RemoveAll(s.dir)
}

func (s *Server) ping() error {
	conn, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q: %v", line, err)
	}
	return nil
}

// Client is the service's own Redis client for env (REDIS_URL, REDIS_MODE, ...), read by
// config.Load as start-up reads it; it is closed when the test ends.
func Client(tb testing.TB, env ...string) *redisdb.Client {
	tb.Helper()
	cfg, err := config.Load(env)
	if err != nil {
		tb.Fatal(err)
	}
	r := cfg.Redis
	c := redisdb.Open(redisdb.Settings{Mode: r.Mode, Single: r.Single, Cluster: r.Cluster, Failover: r.Failover, Host: r.Host, Prefix: r.Prefix})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}
