//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"

	"github.com/token-service/token-service/internal/testenv"
	"github.com/token-service/token-service/internal/testenv/logtest"
	"github.com/token-service/token-service/internal/testenv/wait"
)

// service is a running token-service binary.
type service struct {
	URL  string
	logs *logtest.Buffer
}

// startService runs the real binary in production mode against the shared LiveKit server, with
// env added to or overriding that configuration, and stops it with SIGTERM when the test ends.
func startService(t *testing.T, env ...string) *service {
	t.Helper()
	port := testenv.FreePort(t)
	for _, kv := range env { // a PORT in env wins, as it does in the child's environment
		if p, ok := strings.CutPrefix(kv, "PORT="); ok {
			port, _ = strconv.Atoi(p)
		}
	}
	cmd := exec.Command(serviceBin)
	cmd.Env = append([]string{"HOST=127.0.0.1", "PORT=" + strconv.Itoa(port), "APP_ENV=production",
		"LIVEKIT_API_KEY=" + lkKey, "LIVEKIT_API_SECRET=" + lkSecret, "LIVEKIT_WS_URL=" + lk.URL,
		"SERVICE_API_KEYS=" + serviceKey}, env...)
	logs := &logtest.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start token-service: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("token-service did not exit cleanly on SIGTERM: %v\n%s", err, logs.String())
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("token-service still running 10 s after SIGTERM")
		}
	})
	s := &service{URL: "http://127.0.0.1:" + strconv.Itoa(port), logs: logs}
	if err := wait.Until(5*time.Second, wait.Status(s.URL+"/ready", http.StatusOK)); err != nil {
		t.Fatalf("token-service not ready: %v\n%s", err, logs.String())
	}
	return s
}

// serviceKey is what backends (the Media Bridge, a debugging operator) present.
const serviceKey = "e2e-service-key-0123456789abcdef0123456789"

// post sends a JSON body and decodes the JSON reply; headers are "Name: value" strings. The
// backend-only routes get the service key, as a backend would send it.
func (s *service) post(t *testing.T, path string, body any, headers ...string) (int, http.Header, map[string]any) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, s.URL+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if path == "/token/agent" || path == "/token/verify" {
		req.Header.Set("Authorization", "Bearer "+serviceKey)
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ": ")
		req.Header.Set(name, value)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(reply, &out); err != nil {
		t.Fatalf("POST %s: reply is not JSON: %q", path, reply)
	}
	return resp.StatusCode, resp.Header, out
}

// issue asks the service for a token and fails the test unless it gets one.
func (s *service) issue(t *testing.T, path string, body any, headers ...string) string {
	t.Helper()
	status, _, reply := s.post(t, path, body, headers...)
	if status != http.StatusOK {
		t.Fatalf("POST %s = %d %v", path, status, reply)
	}
	return reply["token"].(string)
}

// verify asks the service's /token/verify about a token.
func (s *service) verify(t *testing.T, token string) (valid bool, reason string) {
	t.Helper()
	status, _, reply := s.post(t, "/token/verify", map[string]string{"token": token})
	if status != http.StatusOK {
		t.Fatalf("/token/verify = %d %v", status, reply)
	}
	reason, _ = reply["reason"].(string)
	return reply["valid"] == true, reason
}

// join connects a real client to the shared server with token, and disconnects at the end.
func join(t *testing.T, token string) *lksdk.Room {
	t.Helper()
	return joinAt(t, lk.URL, token)
}

func joinAt(t *testing.T, url, token string) *lksdk.Room {
	t.Helper()
	return joinWith(t, url, token, lksdk.NewRoomCallback())
}

// joinWith joins with callbacks of the test's own, to hear what the server tells this client.
func joinWith(t *testing.T, url, token string, callback *lksdk.RoomCallback) *lksdk.Room {
	t.Helper()
	start := time.Now()
	room, err := lksdk.ConnectToRoomWithToken(url, token, callback, lksdk.WithAutoSubscribe(false))
	if err != nil {
		t.Fatalf("join at %s: %v", url, err)
	}
	t.Logf("joined room %q as %q in %s", room.Name(), room.LocalParticipant.Identity(), time.Since(start).Round(time.Millisecond))
	t.Cleanup(room.Disconnect)
	return room
}

func roomService() *lksdk.RoomServiceClient {
	return lksdk.NewRoomServiceClient(lk.HTTPURL, lkKey, lkSecret)
}

// participant asks the server's RoomService for one participant, waiting until cond holds (a
// join or an update reaches RoomService a moment after the client sees it).
func participant(t *testing.T, room, identity string, cond func(*livekit.ParticipantInfo) bool) *livekit.ParticipantInfo {
	t.Helper()
	var found *livekit.ParticipantInfo
	wait.For(t, 5*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		res, err := roomService().ListParticipants(ctx, &livekit.ListParticipantsRequest{Room: room})
		if err != nil {
			return err
		}
		for _, p := range res.Participants {
			if p.Identity == identity && (cond == nil || cond(p)) {
				found = p
				return nil
			}
			if p.Identity == identity {
				return fmt.Errorf("room %q: participant %q not as expected: %v", room, identity, p)
			}
		}
		return fmt.Errorf("room %q: no participant %q", room, identity)
	})
	return found
}

// uniqueRoom keeps tests that share the server out of each other's rooms.
func uniqueRoom(t *testing.T) string {
	return fmt.Sprintf("%s-%d", strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()), time.Now().UnixNano())
}
