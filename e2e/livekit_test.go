//go:build e2e

package e2e

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"

	"github.com/token-service/token-service/internal/testenv"
	"github.com/token-service/token-service/internal/testenv/wait"
)

// 1. What the service grants is what LiveKit reports for the participant.
func TestParticipantJoinsWithRequestedGrants(t *testing.T) {
	svc := startService(t)
	for _, tc := range []struct {
		name   string
		grants map[string]bool
	}{
		{"defaults", map[string]bool{}},
		{"everything off but subscribe", map[string]bool{"canPublish": false, "canSubscribe": true, "canPublishData": false, "canUpdateOwnMetadata": false, "hidden": false}},
		{"hidden publisher who may update metadata", map[string]bool{"canPublish": true, "canSubscribe": false, "canPublishData": true, "canUpdateOwnMetadata": true, "hidden": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			room := uniqueRoom(t)
			want := map[string]bool{"canPublish": true, "canSubscribe": true, "canPublishData": true, "canUpdateOwnMetadata": false, "hidden": false}
			for k, v := range tc.grants {
				want[k] = v
			}
			// Minted by a backend, since a hidden participant is a privileged grant in production.
			tok := svc.issue(t, "/token", map[string]any{"room": room, "identity": "alice", "name": "Alice A.",
				"metadata": `{"role":"host"}`, "grants": tc.grants}, "Authorization: Bearer "+serviceKey)
			join(t, tok)
			p := participant(t, room, "alice", nil)
			perm := p.Permission
			got := map[string]bool{"canPublish": perm.CanPublish, "canSubscribe": perm.CanSubscribe, "canPublishData": perm.CanPublishData,
				"canUpdateOwnMetadata": perm.CanUpdateMetadata, "hidden": perm.Hidden}
			if p.Name != "Alice A." || p.Metadata != `{"role":"host"}` || p.Kind != livekit.ParticipantInfo_STANDARD {
				t.Errorf("participant = name %q metadata %q kind %v", p.Name, p.Metadata, p.Kind)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("server reports %s = %v, requested %v", k, got[k], v)
				}
			}
		})
	}
}

func opusTrack(t *testing.T) *lksdk.LocalTrack {
	t.Helper()
	track, err := lksdk.NewLocalSampleTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	return track
}

// 2. LiveKit enforces what the token grants: publishing and metadata updates.
func TestServerEnforcesPublishPermission(t *testing.T) {
	svc := startService(t)
	room := uniqueRoom(t)

	allowed := join(t, svc.issue(t, "/token", map[string]any{"room": room, "identity": "publisher"}))
	if _, err := allowed.LocalParticipant.PublishTrack(opusTrack(t), &lksdk.TrackPublicationOptions{Name: "mic", Source: livekit.TrackSource_MICROPHONE}); err != nil {
		t.Fatalf("publish with canPublish:true: %v", err)
	}
	participant(t, room, "publisher", func(p *livekit.ParticipantInfo) bool { return len(p.Tracks) == 1 })

	denied := join(t, svc.issue(t, "/token", map[string]any{"room": room, "identity": "listener", "grants": map[string]bool{"canPublish": false}}))
	// The server refuses a publish at once, but server-sdk-go only reports it after its 10 s
	// publish timeout; the permissions the server sent the client show the refusal at once.
	if perm := denied.LocalParticipant.Permissions(); perm == nil || perm.CanPublish {
		t.Fatalf("permissions the server sent: %v, want canPublish false", perm)
	}
	start := time.Now()
	if _, err := denied.LocalParticipant.PublishTrack(opusTrack(t), &lksdk.TrackPublicationOptions{Name: "mic", Source: livekit.TrackSource_MICROPHONE}); err == nil {
		t.Fatal("publish with canPublish:false succeeded")
	}
	t.Logf("publish refused after %s", time.Since(start).Round(time.Millisecond))
	if p := participant(t, room, "listener", nil); len(p.Tracks) != 0 {
		t.Errorf("server lists tracks for a participant without canPublish: %v", p.Tracks)
	}
}

func TestServerEnforcesMetadataPermission(t *testing.T) {
	svc := startService(t)
	room := uniqueRoom(t)
	deniedLeft := make(chan string, 1) // denied's metadata as the watcher last saw it
	callback := lksdk.NewRoomCallback()
	callback.OnParticipantDisconnected = func(p *lksdk.RemoteParticipant) {
		if p.Identity() == "denied" {
			deniedLeft <- p.Metadata()
		}
	}
	watcher := joinWith(t, lk.URL, svc.issue(t, "/token", map[string]any{"room": room, "identity": "watcher"}), callback)
	denied := join(t, svc.issue(t, "/token", map[string]any{"room": room, "identity": "denied", "metadata": "before"}))
	allowed := join(t, svc.issue(t, "/token", map[string]any{"room": room, "identity": "allowed", "metadata": "before",
		"grants": map[string]bool{"canUpdateOwnMetadata": true}}))
	wait.For(t, 5*time.Second, func() error {
		if watcher.GetParticipantByIdentity("denied") == nil {
			return errors.New("the watcher does not know denied yet")
		}
		return nil
	})

	allowed.LocalParticipant.SetMetadata("after")
	participant(t, room, "allowed", func(p *livekit.ParticipantInfo) bool { return p.Metadata == "after" })
	// LiveKit handles one client's signal requests in order and sends the room's updates about one
	// participant in order: once the watcher hears denied leave, an accepted update would have
	// reached it first.
	denied.LocalParticipant.SetMetadata("after")
	denied.Disconnect()
	select {
	case metadata := <-deniedLeft:
		if metadata != "before" {
			t.Errorf("metadata changed to %q without canUpdateOwnMetadata", metadata)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the watcher did not hear denied leave within 5 s")
	}
}

// 3. An agent token joins as an agent, and nobody else can take its identity.
func TestAgentJoinsAsAgent(t *testing.T) {
	svc := startService(t)
	room := uniqueRoom(t)
	join(t, svc.issue(t, "/token/agent", map[string]any{"room": room, "agent_id": "media-bridge", "name": "Media Bridge"}))
	p := participant(t, room, "agent-media-bridge", nil)
	//lint:ignore SA1019 the server still reports the worker flag here, and an agent token must not carry it
	workerFlag := p.Permission.Agent
	if p.Kind != livekit.ParticipantInfo_AGENT || p.Name != "Media Bridge" || !p.Permission.CanPublish || !p.Permission.CanSubscribe ||
		!p.Permission.CanPublishData || !p.Permission.CanUpdateMetadata || p.Permission.Hidden || workerFlag {
		t.Errorf("agent participant = kind %v name %q permission %v", p.Kind, p.Name, p.Permission)
	}
	status, _, reply := svc.post(t, "/token", map[string]any{"room": room, "identity": "agent-media-bridge"})
	if status != http.StatusForbidden || reply["field"] != "identity" {
		t.Errorf("a user token for the agent's identity: %d %v", status, reply)
	}
}

func claims(room string, mutate func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"iss": lkKey, "sub": "mallory", "nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"video": map[string]any{"room": room, "roomJoin": true}}
	if mutate != nil {
		mutate(c)
	}
	return c
}

// 4 and 5. /token/verify gives the verdict LiveKit gives, on every kind of token.
func TestVerifyAgreesWithServer(t *testing.T) {
	svc := startService(t)
	other := startService(t, "LIVEKIT_API_SECRET=another-secret-that-livekit-does-not-know-0123")
	room := uniqueRoom(t)
	valid := svc.issue(t, "/token", map[string]any{"room": room, "identity": "alice"})
	hs := func(secret string, mutate func(jwt.MapClaims)) string {
		return testenv.MintJWT(t, jwt.SigningMethodHS256, []byte(secret), "", claims(room, mutate))
	}
	// livekit-server v1.13.5 predates livekit/protocol's WithExpirationRequired and accepts a token
	// with no exp; /token/verify refuses it, as newer LiveKit servers do.
	serverAcceptsAnyway := map[string]bool{"no exp": true}
	for _, tc := range []struct {
		name, token, reason string // reason "" means valid
	}{
		{"valid", valid, ""},
		{"agent", svc.issue(t, "/token/agent", map[string]any{"room": room, "agent_id": "a"}), ""},
		{"expired", hs(lkSecret, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-2 * time.Minute).Unix() }), "expired"},
		{"not yet valid", hs(lkSecret, func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }), "not_yet_valid"},
		{"issued with another secret", other.issue(t, "/token", map[string]any{"room": room, "identity": "a"}), "bad_signature"},
		{"unknown key", hs(lkSecret, func(c jwt.MapClaims) { c["iss"] = "APIunknown" }), "unknown_key"},
		{"no iss", hs(lkSecret, func(c jwt.MapClaims) { delete(c, "iss") }), "unknown_key"},
		{"no exp", hs(lkSecret, func(c jwt.MapClaims) { delete(c, "exp") }), "malformed"},
		{"alg none", testenv.MintJWT(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims(room, nil)), "bad_signature"},
		{"HS512", testenv.MintJWT(t, jwt.SigningMethodHS512, []byte(lkSecret), "", claims(room, nil)), "bad_signature"},
		{"truncated", valid[:len(valid)-10], "malformed"},
		{"two segments", valid[:strings.LastIndex(valid, ".")], "malformed"},
		{"garbage", "garbage", "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			serverAccepts := lk.Validate(t, tc.token) == http.StatusOK
			valid, reason := svc.verify(t, tc.token)
			if serverAccepts != (valid || serverAcceptsAnyway[tc.name]) {
				t.Fatalf("LiveKit accepts: %v, /token/verify valid: %v (%s)", serverAccepts, valid, reason)
			}
			if valid != (tc.reason == "") || reason != tc.reason {
				t.Errorf("verify = valid %v reason %q, want reason %q", valid, reason, tc.reason)
			}
		})
	}
}

// 4. Refused tokens cannot join, and a room-A token never lands in room B.
func TestServerRefusesWhatVerifyRefuses(t *testing.T) {
	svc := startService(t)
	room := uniqueRoom(t)
	expired := testenv.MintJWT(t, jwt.SigningMethodHS256, []byte(lkSecret), "", claims(room, func(c jwt.MapClaims) {
		c["nbf"], c["iat"], c["exp"] = time.Now().Add(-time.Hour).Unix(), time.Now().Add(-time.Hour).Unix(), time.Now().Add(-2*time.Minute).Unix()
	}))
	wrongSecret := testenv.MintJWT(t, jwt.SigningMethodHS256, []byte("not-the-secret"), "", claims(room, nil))
	for name, tok := range map[string]string{"expired": expired, "wrong secret": wrongSecret} {
		if _, err := lksdk.ConnectToRoomWithToken(lk.URL, tok, lksdk.NewRoomCallback()); err == nil {
			t.Errorf("%s token joined the room", name)
		}
		if valid, _ := svc.verify(t, tok); valid {
			t.Errorf("%s token reported valid", name)
		}
	}

	roomA, roomB := room+"-a", room+"-b"
	joined := join(t, svc.issue(t, "/token", map[string]any{"room": roomA, "identity": "alice"}))
	if joined.Name() != roomA {
		t.Errorf("joined %q, want %q", joined.Name(), roomA)
	}
	participant(t, roomA, "alice", nil)
	// The server takes the room from the token: nobody appears in room B.
	rooms, err := roomService().ListRooms(t.Context(), &livekit.ListRoomsRequest{Names: []string{roomA, roomB}})
	if err != nil {
		t.Fatalf("ListRooms: %v", err)
	}
	if len(rooms.Rooms) != 1 || rooms.Rooms[0].Name != roomA {
		t.Errorf("rooms %v, want only %s: the token's room decides", rooms.Rooms, roomA)
	}
}

// 6. Production middleware (rate limit, CORS, request ids) does not get in the way of a join.
func TestBrowserStyleFlow(t *testing.T) {
	origin := "http://app.localhost:5173"
	svc := startService(t, "CORS_ORIGINS="+origin, "RATE_LIMIT_MAX_REQUESTS=5")
	room := uniqueRoom(t)
	pre, _ := http.NewRequest(http.MethodOptions, svc.URL+"/token", nil)
	pre.Header.Set("Origin", origin)
	pre.Header.Set("Access-Control-Request-Method", "POST")
	pre.Header.Set("Access-Control-Request-Headers", "content-type")
	resp, err := http.DefaultClient.Do(pre)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != origin {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	status, header, reply := svc.post(t, "/token", map[string]any{"room": room, "identity": "browser-user"}, "Origin: "+origin)
	if status != http.StatusOK || header.Get("Access-Control-Allow-Origin") != origin || header.Get("X-RateLimit-Remaining") != "4" {
		t.Fatalf("token: %d %v %v", status, header, reply)
	}
	if reply["wsUrl"] != lk.URL {
		t.Errorf("wsUrl = %v, want %s", reply["wsUrl"], lk.URL)
	}
	joinAt(t, reply["wsUrl"].(string), reply["token"].(string)) // where the service says, as a browser app would
	participant(t, room, "browser-user", nil)
}
