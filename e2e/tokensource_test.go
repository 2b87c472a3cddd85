//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/token-service/token-service/internal/testenv/wait"
)

// The TokenSource endpoint's reply joins a real LiveKit server as given, and the room
// configuration in its token dispatches the named agent when that join creates the room.
func TestConnectionDetailsJoinAndDispatchAgent(t *testing.T) {
	svc := startService(t, "ALLOWED_AGENT_NAMES=notetaker") // the built-in policy lets any participant dispatch a listed agent
	room := uniqueRoom(t)
	status, _, reply := svc.post(t, "/connection-details", map[string]any{
		"room_name": room, "participant_identity": "ts-user", "participant_name": "TS User",
		"room_config": map[string]any{"agents": []any{map[string]any{"agent_name": "notetaker", "metadata": `{"lang":"en"}`}}},
	})
	if status != 200 {
		t.Fatalf("POST /connection-details = %d %v", status, reply)
	}
	// Parsed as the SDKs parse it.
	raw, _ := json.Marshal(reply)
	var details livekit.TokenSourceResponse
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, &details); err != nil {
		t.Fatal(err)
	}
	joinAt(t, details.ServerUrl, details.ParticipantToken)
	if p := participant(t, room, "ts-user", nil); p.Name != "TS User" {
		t.Errorf("name %q", p.Name)
	}

	dispatches := lksdk.NewAgentDispatchServiceClient(lk.HTTPURL, lkKey, lkSecret)
	wait.For(t, 5*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		res, err := dispatches.ListDispatch(ctx, &livekit.ListAgentDispatchRequest{Room: room})
		if err != nil {
			return err
		}
		if len(res.AgentDispatches) != 1 {
			return fmt.Errorf("dispatches listed for the room: %v", res.AgentDispatches)
		}
		if d := res.AgentDispatches[0]; d.AgentName != "notetaker" || d.Metadata != `{"lang":"en"}` {
			t.Errorf("dispatch %+v", d)
		}
		return nil
	})
}

// Attributes in a token are what other participants see.
func TestAttributesAreVisibleToOthers(t *testing.T) {
	svc := startService(t)
	room := uniqueRoom(t)
	join(t, svc.issue(t, "/token", map[string]any{"room": room, "identity": "speaker", "attributes": map[string]string{"role": "host", "lang": "de"}}))
	bridge := join(t, svc.issue(t, "/token/agent", map[string]any{"room": room, "agent_id": "bridge", "kind": "bridge"}))
	wait.For(t, 5*time.Second, func() error {
		for _, p := range bridge.GetRemoteParticipants() {
			if p.Identity() == "speaker" && p.Attributes()["role"] == "host" && p.Attributes()["lang"] == "de" {
				return nil
			}
		}
		return fmt.Errorf("the other participant does not see the attributes: %v", bridge.GetRemoteParticipants())
	})
	if k := participant(t, room, "agent-bridge", nil).Kind; k != livekit.ParticipantInfo_BRIDGE {
		t.Errorf("bridge joined as %v", k)
	}
}
