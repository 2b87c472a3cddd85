package handlers_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
)

// /token/verify reports every grant a token carries, so that a token with sip.admin (made
// elsewhere with the same key) does not look like a plain participant token.
func TestVerifyReportsEveryGrant(t *testing.T) {
	srv := newServer(t)
	at := auth.NewAccessToken(testKey, testSecret).SetIdentity("phone").SetValidFor(time.Hour).
		SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: "r"}).
		SetSIPGrant(&auth.SIPGrant{Admin: true}).
		SetAgentGrant(&auth.AgentGrant{Admin: true}).
		SetInferenceGrant(&auth.InferenceGrant{Perform: true}).
		SetObservabilityGrant(&auth.ObservabilityGrant{Write: true}).
		SetRoomPreset("big-room").
		SetKind(livekit.ParticipantInfo_SIP).
		SetKindDetail(livekit.ParticipantInfo_CLOUD_AGENT)
	signed, err := at.ToJWT()
	if err != nil {
		t.Fatal(err)
	}
	v := srv.post(t, "/token/verify", fmt.Sprintf(`{"token":%q}`, signed))
	if v.body["valid"] != true {
		t.Fatalf("%s", v.raw)
	}
	for _, want := range []struct{ grant, flag string }{
		{"sip", "admin"}, {"agent", "admin"}, {"inference", "perform"}, {"observability", "write"},
	} {
		if g, _ := v.body[want.grant].(map[string]any); g[want.flag] != true {
			t.Errorf("%s.%s not reported: %s", want.grant, want.flag, v.raw)
		}
	}
	if details, _ := v.body["kindDetails"].([]any); len(details) != 1 {
		t.Errorf("kindDetails: %s", v.raw)
	}
	if v.body["roomPreset"] != "big-room" || v.body["kind"] != "sip" {
		t.Errorf("roomPreset or kind: %s", v.raw)
	}
	// A plain participant token reports no other grant.
	plain := srv.post(t, "/token", `{"room":"r","identity":"a"}`)
	p := srv.post(t, "/token/verify", fmt.Sprintf(`{"token":%q}`, plain.body["token"]))
	for _, grant := range []string{"sip", "agent", "inference", "observability", "agentEndpoint", "agentThread", "roomPreset", "kindDetails"} {
		if _, ok := p.body[grant]; ok {
			t.Errorf("a plain token reports %s: %s", grant, p.raw)
		}
	}
}
