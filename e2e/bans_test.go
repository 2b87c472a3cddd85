//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"

	"github.com/token-service/token-service/internal/testenv"
	"github.com/token-service/token-service/internal/testenv/livekittest"
	"github.com/token-service/token-service/internal/testenv/redistest"
	"github.com/token-service/token-service/internal/testenv/wait"
)

// removalBound is the issue's target for the time from a banned participant's join to its
// removal.
const removalBound = 2 * time.Second

// webhookLiveKit is a livekit-server of this test's own whose webhooks go to the token-service
// that will listen on port, as the README's webhook: block configures it.
func webhookLiveKit(t *testing.T, port int) *livekittest.Server {
	t.Helper()
	srv, err := livekittest.StartWithConfig(lkKey, lkSecret, fmt.Sprintf(
		"webhook:\n  api_key: %s\n  urls: [\"http://127.0.0.1:%d/webhooks/livekit\"]\n", lkKey, port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

// serviceFor starts the binary on port against the given LiveKit server.
func serviceFor(t *testing.T, lks *livekittest.Server, port int, env ...string) *service {
	t.Helper()
	return startService(t, append([]string{"PORT=" + strconv.Itoa(port), "LIVEKIT_WS_URL=" + lks.URL}, env...)...)
}

// call sends one request with a backend's key and returns the status and raw reply.
func (s *service) call(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+serviceKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

func (s *service) ban(t *testing.T, room, identity string) {
	t.Helper()
	if status, reply := s.call(t, http.MethodPost, "/moderation/bans", fmt.Sprintf(`{"room":%q,"identity":%q,"reason":"e2e"}`, room, identity)); status != http.StatusCreated {
		t.Fatalf("ban %s from %s: %d %s", identity, room, status, reply)
	}
}

func (s *service) lift(t *testing.T, room, identity string) {
	t.Helper()
	if status, reply := s.call(t, http.MethodDelete, "/moderation/bans?"+url.Values{"room": {room}, "identity": {identity}}.Encode(), ""); status != http.StatusNoContent {
		t.Fatalf("lift %s from %s: %d %s", identity, room, status, reply)
	}
}

// tokenStatus is the status of a join token request.
func (s *service) tokenStatus(t *testing.T, room, identity string) (int, map[string]any) {
	t.Helper()
	status, _, reply := s.post(t, "/token", map[string]any{"room": room, "identity": identity})
	return status, reply
}

// connection is one client's join, and the moment the server removed it.
type connection struct {
	room    *lksdk.Room
	joined  time.Time
	removed chan time.Time
}

// connect joins with token; a join the server ends while it is still being made counts as a
// removal at that moment.
func connect(t *testing.T, url, token string) *connection {
	t.Helper()
	c := &connection{removed: make(chan time.Time, 1)}
	cb := lksdk.NewRoomCallback()
	cb.OnDisconnectedWithReason = func(reason lksdk.DisconnectionReason) {
		if reason == lksdk.ParticipantRemoved {
			c.removed <- time.Now()
		}
	}
	start := time.Now()
	room, err := lksdk.ConnectToRoomWithToken(url, token, cb, lksdk.WithAutoSubscribe(false))
	c.joined = time.Now()
	if err != nil {
		t.Logf("join ended while it was made (%v): counted as removed", err)
		c.joined = start
		select { // the callback may have heard the removal already
		case c.removed <- time.Now():
		default:
		}
		return c
	}
	t.Cleanup(room.Disconnect)
	c.room = room
	return c
}

// waitRemoved waits (at most 10 s) for the server to remove the connection and returns how long
// after the join that was.
func (c *connection) waitRemoved(t *testing.T) time.Duration {
	t.Helper()
	select {
	case at := <-c.removed:
		return at.Sub(c.joined)
	case <-time.After(10 * time.Second):
		t.Fatal("the banned participant was not removed within 10 s")
		return 0
	}
}

// waitRemovalResult waits until the service has counted a removal with this cause and result,
// so that a test knows the ban's own removal attempt is over before it joins.
func (s *service) waitRemovalResult(t *testing.T, cause, result string) {
	t.Helper()
	want := fmt.Sprintf(`token_service_ban_removals_total{cause=%q,result=%q}`, cause, result)
	wait.For(t, 10*time.Second, func() error {
		resp, err := http.Get(s.URL + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(raw), want) {
			return fmt.Errorf("no %s yet:\n%s", want, grepLines(string(raw), "ban_removals"))
		}
		return nil
	})
}

func listIdentities(t *testing.T, lks *livekittest.Server, room string) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res, err := lksdk.NewRoomServiceClient(lks.HTTPURL, lkKey, lkSecret).ListParticipants(ctx, &livekit.ListParticipantsRequest{Room: room})
	if err != nil {
		return map[string]bool{}
	}
	in := map[string]bool{}
	for _, p := range res.Participants {
		in[p.Identity] = true
	}
	return in
}

// TestBanRemovesAndKeepsOut: a ban removes alice from the room she is in; the token she still
// holds gets her back in only until LiveKit's webhook reaches the service, which removes her
// again; no new token is issued to her; once the ban is lifted she joins and stays.
func TestBanRemovesAndKeepsOut(t *testing.T) {
	port := testenv.FreePort(t)
	lks := webhookLiveKit(t, port)
	svc := serviceFor(t, lks, port)
	room := uniqueRoom(t)
	held := svc.issue(t, "/token", map[string]any{"room": room, "identity": "alice"})
	first := connect(t, lks.URL, held)
	if first.room == nil {
		t.Fatal("alice could not join before any ban")
	}

	banned := time.Now()
	svc.ban(t, room, "alice")
	first.waitRemoved(t)
	t.Logf("removed %s after the ban was asked for", time.Since(banned).Round(time.Millisecond))

	// The token is still valid for LiveKit: verify says so, and that she is banned.
	status, _, v := svc.post(t, "/token/verify", map[string]string{"token": held})
	if status != http.StatusOK || v["valid"] != true || v["banned"] != true {
		t.Fatalf("verify of alice's token: %d %v", status, v)
	}
	rejoin := connect(t, lks.URL, held)
	took := rejoin.waitRemoved(t)
	t.Logf("rejoined with the held token, removed %s after the join (bound %s)", took.Round(time.Millisecond), removalBound)
	if took > removalBound {
		t.Errorf("join to removal took %s, more than %s", took, removalBound)
	}
	if status, reply := svc.tokenStatus(t, room, "alice"); status != http.StatusForbidden || reply["field"] != "identity" {
		t.Fatalf("new token for banned alice: %d %v", status, reply)
	}

	svc.lift(t, room, "alice")
	fresh := svc.issue(t, "/token", map[string]any{"room": room, "identity": "alice"})
	joinAt(t, lks.URL, fresh)
	wait.For(t, 5*time.Second, func() error {
		if !listIdentities(t, lks, room)["alice"] {
			return fmt.Errorf("alice is not in %s after the lift", room)
		}
		return nil
	})
	logs := svc.logs.String()
	for _, audit := range []string{`"audit":"ban"`, `"audit":"ban_removal"`, `"cause":"webhook"`, `"audit":"ban_lifted"`} {
		if !strings.Contains(logs, audit) {
			t.Errorf("no %s audit line:\n%s", audit, grepLines(logs, "audit"))
		}
	}
	if strings.Contains(logs, held) {
		t.Error("a token is in the log")
	}
}

// TestEveryRoomBan: a "*" ban removes alice from both rooms she is in.
func TestEveryRoomBan(t *testing.T) {
	port := testenv.FreePort(t)
	lks := webhookLiveKit(t, port)
	svc := serviceFor(t, lks, port)
	var conns []*connection
	for _, room := range []string{uniqueRoom(t) + "-a", uniqueRoom(t) + "-b"} {
		c := connect(t, lks.URL, svc.issue(t, "/token", map[string]any{"room": room, "identity": "alice"}))
		if c.room == nil {
			t.Fatalf("alice could not join %s", room)
		}
		conns = append(conns, c)
	}
	svc.ban(t, "*", "alice")
	for _, c := range conns {
		c.waitRemoved(t)
	}
	if status, _ := svc.tokenStatus(t, "a-third-room", "alice"); status != http.StatusForbidden {
		t.Fatalf("new token after a * ban: %d", status)
	}
}

// TestForgedWebhooksRemoveNobody: on a LiveKit server that sends no webhooks, alice is banned
// but joins with the token she held. Webhooks that claim she joined but are unsigned, signed
// with another secret or altered after signing are refused and leave her in; the same event
// signed as LiveKit signs it removes her.
func TestForgedWebhooksRemoveNobody(t *testing.T) {
	svc := startService(t)
	room := uniqueRoom(t)
	held := svc.issue(t, "/token", map[string]any{"room": room, "identity": "alice"})
	svc.ban(t, room, "alice")
	svc.waitRemovalResult(t, "ban", "not_present") // she was not in the room yet
	c := connect(t, lk.URL, held)
	if c.room == nil {
		t.Fatal("alice could not join a server without webhooks")
	}
	event := fmt.Sprintf(`{"event":"participant_joined","id":"EV_e2e","room":{"name":%q},"participant":{"identity":"alice"}}`, room)
	sign := func(secret, body string) string {
		sum := sha256.Sum256([]byte(body))
		jwt, err := auth.NewAccessToken(lkKey, secret).SetValidFor(time.Minute).SetSha256(base64.StdEncoding.EncodeToString(sum[:])).ToJWT()
		if err != nil {
			t.Fatal(err)
		}
		return jwt
	}
	deliver := func(body, authorization string) int {
		req, _ := http.NewRequest(http.MethodPost, svc.URL+"/webhooks/livekit", bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", "application/webhook+json")
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for name, status := range map[string]int{
		"no signature":  deliver(event, ""),
		"wrong key":     deliver(event, sign("not-the-livekit-secret-0123456789abcdef", event)),
		"altered body":  deliver(strings.Replace(event, "EV_e2e", "EV_e2f", 1), sign(lkSecret, event)),
		"a service key": deliver(event, "Bearer "+serviceKey),
	} {
		if status != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, status)
		}
	}
	if !listIdentities(t, lk, room)["alice"] {
		t.Fatal("a forged webhook removed alice")
	}
	select {
	case <-c.removed:
		t.Fatal("a forged webhook removed alice")
	default:
	}
	if status := deliver(event, sign(lkSecret, event)); status != http.StatusOK {
		t.Fatalf("signed webhook: %d", status)
	}
	c.waitRemoved(t)
}

// TestBansAcrossReplicasOnRedis: a ban made through replica a is enforced by replica b, which
// LiveKit's webhooks reach; with Redis stopped, tokens are still issued and the ban still holds.
func TestBansAcrossReplicasOnRedis(t *testing.T) {
	redis, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(redis.Stop)
	port := testenv.FreePort(t)
	lks := webhookLiveKit(t, port)
	a := serviceFor(t, lks, testenv.FreePort(t), "REDIS_URL="+redis.URL)
	b := serviceFor(t, lks, port, "REDIS_URL="+redis.URL)
	room := uniqueRoom(t)
	held := a.issue(t, "/token", map[string]any{"room": room, "identity": "alice"})

	a.ban(t, room, "alice")
	a.waitRemovalResult(t, "ban", "not_present") // she is not in the room yet
	wait.For(t, 5*time.Second, func() error {
		if status, _ := b.tokenStatus(t, room, "alice"); status != http.StatusForbidden {
			return fmt.Errorf("replica b issued banned alice a token: %d", status)
		}
		return nil
	})
	took := connect(t, lks.URL, held).waitRemoved(t)
	t.Logf("replica b removed alice %s after her join", took.Round(time.Millisecond))

	redis.Stop()
	for _, replica := range []*service{a, b} {
		if status, reply := replica.tokenStatus(t, room, "bob"); status != http.StatusOK {
			t.Fatalf("%s without Redis: a token for bob is %d %v", replica.URL, status, reply)
		}
		if status, _ := replica.tokenStatus(t, room, "alice"); status != http.StatusForbidden {
			t.Fatalf("%s without Redis forgot alice's ban: %d", replica.URL, status)
		}
	}
	took = connect(t, lks.URL, held).waitRemoved(t)
	t.Logf("with Redis stopped, replica b removed alice %s after her join", took.Round(time.Millisecond))
	if status, reply := a.call(t, http.MethodPost, "/moderation/bans", `{"room":"r","identity":"eve"}`); status != http.StatusServiceUnavailable {
		t.Fatalf("a ban while Redis is down: %d %s, want 503", status, reply)
	}
}
