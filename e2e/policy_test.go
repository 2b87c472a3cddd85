//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"

	"github.com/token-service/token-service/internal/testenv"
	"github.com/token-service/token-service/internal/testenv/livekittest"
	"github.com/token-service/token-service/internal/testenv/wait"
)

const e2eJWTSecret = "e2e-user-jwt-secret-0123456789abcdef"

// policyService runs the binary with an example policy and end-user JWTs; user mints one.
func policyService(t *testing.T, example string, env ...string) (*service, func(jwt.MapClaims) string) {
	t.Helper()
	svc := startService(t, append([]string{"POLICY_FILE=../examples/policies/" + example, "AUTH_JWT_SECRET=" + e2eJWTSecret,
		"AUTH_JWT_ISSUER=https://idp.example.com", "AUTH_JWT_AUDIENCE=video-app"}, env...)...)
	return svc, func(claims jwt.MapClaims) string {
		c := jwt.MapClaims{"iss": "https://idp.example.com", "aud": "video-app", "exp": time.Now().Add(time.Hour).Unix()}
		for k, v := range claims {
			c[k] = v
		}
		return "Authorization: Bearer " + testenv.MintJWT(t, jwt.SigningMethodHS256, []byte(e2eJWTSecret), "", c)
	}
}

// TestWebinarPolicyOnLiveKit: on a LiveKit server that creates no room by itself, an attendee
// cannot join a room that does not exist yet, a host's roomCreate token creates it, and then
// the attendee joins but cannot publish while the host can.
func TestWebinarPolicyOnLiveKit(t *testing.T) {
	strict, err := livekittest.StartWithConfig(lkKey, lkSecret, "room: {auto_create: false}\n")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(strict.Stop)
	svc, user := policyService(t, "webinar.yaml", "LIVEKIT_WS_URL="+strict.URL)
	room := "webinar-" + strings.ToLower(uniqueRoom(t))
	host := svc.issue(t, "/token", map[string]any{"room": room}, user(jwt.MapClaims{"sub": "hana", "role": "host"}))
	attendee := svc.issue(t, "/token", map[string]any{"room": room}, user(jwt.MapClaims{"sub": "ari"}))

	if r, err := lksdk.ConnectToRoomWithToken(strict.URL, attendee, lksdk.NewRoomCallback(), lksdk.WithAutoSubscribe(false)); err == nil {
		r.Disconnect()
		t.Fatal("an attendee joined a room that did not exist, on a server with room.auto_create false")
	} else {
		t.Logf("attendee before the room exists: %v", err)
	}
	hostRoom := joinAt(t, strict.URL, host)
	if _, err := hostRoom.LocalParticipant.PublishTrack(opusTrack(t), &lksdk.TrackPublicationOptions{Name: "mic", Source: livekit.TrackSource_MICROPHONE}); err != nil {
		t.Fatalf("the host cannot publish: %v", err)
	}
	attendeeRoom := joinAt(t, strict.URL, attendee)
	if perm := attendeeRoom.LocalParticipant.Permissions(); perm == nil || perm.CanPublish || !perm.CanSubscribe {
		t.Fatalf("permissions LiveKit gave the attendee: %v", perm)
	}
	rooms := lksdk.NewRoomServiceClient(strict.HTTPURL, lkKey, lkSecret)
	wait.For(t, 5*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		res, err := rooms.ListParticipants(ctx, &livekit.ListParticipantsRequest{Room: room})
		if err != nil {
			return err
		}
		tracks := map[string]int{}
		for _, p := range res.Participants {
			tracks[p.Identity] = len(p.Tracks)
		}
		if tracks["hana"] != 1 || tracks["ari"] != 0 || len(res.Participants) != 2 {
			return fmt.Errorf("tracks per participant: %v", tracks)
		}
		return nil
	})
}

// TestBuiltInPolicyRoomConfigOnLiveKit: an anonymous caller cannot size the room, while its
// dispatch of a listed agent reaches AgentDispatchService and an unlisted one is refused.
func TestBuiltInPolicyRoomConfigOnLiveKit(t *testing.T) {
	svc := startService(t, "ALLOWED_AGENT_NAMES=support-bot")
	room := uniqueRoom(t)
	for field, body := range map[string]map[string]any{
		"room_config.max_participants": {"room": room, "identity": "mallory", "room_config": map[string]any{"max_participants": 1}},
		"room_config.agents":           {"room": room, "identity": "mallory", "room_config": map[string]any{"agents": []any{map[string]any{"agent_name": "outbound-caller"}}}},
		"attributes":                   {"room": room, "identity": "mallory", "attributes": map[string]string{"lk.agent_name": "media-bridge"}},
	} {
		if status, _, reply := svc.post(t, "/token", body); status != http.StatusForbidden || reply["field"] != field {
			t.Errorf("%s: %d %v", field, status, reply)
		}
	}
	join(t, svc.issue(t, "/token", map[string]any{"room": room, "identity": "ada",
		"room_config": map[string]any{"agents": []any{map[string]any{"agent_name": "support-bot", "metadata": `{"topic":"billing"}`}}}}))
	dispatches := lksdk.NewAgentDispatchServiceClient(lk.HTTPURL, lkKey, lkSecret)
	wait.For(t, 5*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		res, err := dispatches.ListDispatch(ctx, &livekit.ListAgentDispatchRequest{Room: room})
		if err != nil {
			return err
		}
		if len(res.AgentDispatches) != 1 || res.AgentDispatches[0].AgentName != "support-bot" {
			return fmt.Errorf("dispatches: %v", res.AgentDispatches)
		}
		return nil
	})
	// A second participant sees no more than the room LiveKit made: nobody limited it to one.
	join(t, svc.issue(t, "/token", map[string]any{"room": room, "identity": "bob"}))
}

// TestFixedAttributeOnLiveKit: an attribute the support policy fixes from the role claim is what
// a peer sees, and its owner cannot change it.
func TestFixedAttributeOnLiveKit(t *testing.T) {
	svc, user := policyService(t, "support.yaml")
	room := "support-c-" + strings.ToLower(strings.ReplaceAll(uniqueRoom(t), "_", "-"))
	customerID := strings.TrimPrefix(room, "support-")
	customerLeft := make(chan map[string]string, 1)
	callback := lksdk.NewRoomCallback()
	callback.OnParticipantDisconnected = func(p *lksdk.RemoteParticipant) {
		if p.Identity() == customerID {
			customerLeft <- p.Attributes()
		}
	}
	agent := joinWith(t, lk.URL, svc.issue(t, "/token", map[string]any{"room": room}, user(jwt.MapClaims{"sub": "sam", "role": "agent"})), callback)
	customer := join(t, svc.issue(t, "/token", map[string]any{"room": room}, user(jwt.MapClaims{"sub": customerID, "role": "customer"})))
	wait.For(t, 5*time.Second, func() error {
		p := agent.GetParticipantByIdentity(customerID)
		if p == nil || p.Attributes()["role"] != "customer" {
			return errors.New("the support agent does not see role=customer yet")
		}
		return nil
	})
	// As in TestServerEnforcesMetadataPermission: LiveKit sends one participant's updates in
	// order, so an accepted change would reach the peer before the leave does.
	customer.LocalParticipant.SetAttributes(map[string]string{"role": "agent"})
	customer.Disconnect()
	select {
	case attrs := <-customerLeft:
		if attrs["role"] != "customer" {
			t.Errorf("the customer changed its fixed role to %q", attrs["role"])
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the support agent did not hear the customer leave within 5 s")
	}
}

// TestMultiTenantPolicyOnLiveKit: a user of org acme joins acme-standup and nothing of globex.
func TestMultiTenantPolicyOnLiveKit(t *testing.T) {
	svc, user := policyService(t, "multi-tenant.yaml")
	acme := user(jwt.MapClaims{"sub": "ada", "org": "acme"})
	// One segment after the org: with {claims.org}-*, acme-standup-x would be org
	// acme-standup's room x.
	room := "acme-" + strings.ReplaceAll(strings.ToLower(uniqueRoom(t)), "-", "_")
	join(t, svc.issue(t, "/token", map[string]any{"room": room}, acme))
	if p := participant(t, room, "ada", nil); p.Attributes["org"] != "acme" {
		t.Errorf("attributes LiveKit holds: %v", p.Attributes)
	}
	if status, _, reply := svc.post(t, "/token", map[string]any{"room": "globex-standup"}, acme); status != http.StatusForbidden || reply["field"] != "room" {
		t.Errorf("globex-standup for acme: %d %v", status, reply)
	}
}
