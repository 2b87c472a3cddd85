//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"google.golang.org/protobuf/encoding/protojson"
)

// The TokenSource endpoint's reply joins a real LiveKit server as given, and the room
// configuration in its token dispatches the named agent when that join creates the room.
func TestConnectionDetailsJoinAndDispatchAgent(t *testing.T) {
	svc := startService(t)
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
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		res, err := dispatches.ListDispatch(ctx, &livekit.ListAgentDispatchRequest{Room: room})
		cancel()
		if err == nil && len(res.AgentDispatches) == 1 {
			if d := res.AgentDispatches[0]; d.AgentName != "notetaker" || d.Metadata != `{"lang":"en"}` {
				t.Errorf("dispatch %+v", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no agent dispatch listed for the room within 5 s: %v %v", res, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Attributes in a token are what other participants see.
func TestAttributesAreVisibleToOthers(t *testing.T) {
	svc := startService(t)
	room := uniqueRoom(t)
	join(t, svc.issue(t, "/token", map[string]any{"room": room, "identity": "speaker", "attributes": map[string]string{"role": "host", "lang": "de"}}))
	bridge := join(t, svc.issue(t, "/token/agent", map[string]any{"room": room, "agent_id": "bridge", "kind": "bridge"}))
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, p := range bridge.GetRemoteParticipants() {
			if p.Identity() == "speaker" && p.Attributes()["role"] == "host" && p.Attributes()["lang"] == "de" {
				if k := participant(t, room, "agent-bridge", nil).Kind; k != livekit.ParticipantInfo_BRIDGE {
					t.Errorf("bridge joined as %v", k)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the other participant does not see the attributes within 5 s: %v", bridge.GetRemoteParticipants())
		}
		time.Sleep(25 * time.Millisecond)
	}
}
