package handlers_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/token-service/token-service/internal/testenv"
)

func TestConnectionDetails(t *testing.T) {
	srv := newServer(t, "SERVICE_API_KEYS="+serviceKey1)
	r := srv.post(t, "/connection-details", `{"room_name":"standup","participant_identity":"ada","participant_name":"Ada",
		"participant_metadata":"m","participant_attributes":{"role":"host"},
		"room_config":{"agents":[{"agent_name":"helper","metadata":"{\"lang\":\"en\"}"}],"empty_timeout":30}}`, "Authorization: Bearer "+serviceKey1)
	if r.status != 200 || r.body["server_url"] != testWSURL || r.body["room_name"] != "standup" || r.body["participant_name"] != "Ada" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	// The reply is what LiveKit's SDKs parse: TokenSourceResponse, read with protojson.
	var parsed livekit.TokenSourceResponse
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal([]byte(r.raw), &parsed); err != nil ||
		parsed.ServerUrl != testWSURL || parsed.ParticipantToken == "" {
		t.Fatalf("not a TokenSourceResponse: %v %+v", err, &parsed)
	}
	g := mustGrants(t, parsed.ParticipantToken, 3600)
	cfg := g.GetRoomConfiguration()
	if g.Identity != "ada" || g.Name != "Ada" || g.Metadata != "m" || g.Attributes["role"] != "host" || g.Video.Room != "standup" ||
		cfg == nil || len(cfg.Agents) != 1 || cfg.Agents[0].AgentName != "helper" || cfg.EmptyTimeout != 30 {
		t.Errorf("grants %+v room config %v", g, cfg)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Error("no Cache-Control: no-store")
	}

	// camelCase, as protojson also accepts, and the empty room_config the Android and Swift SDKs send.
	r = srv.post(t, "/connection-details", `{"roomName":"r2","participantIdentity":"bob","roomConfig":{}}`)
	if r.status != 200 || r.body["room_name"] != "r2" {
		t.Fatalf("camelCase: %d %s", r.status, r.raw)
	}
	if g := mustGrants(t, r.body["participant_token"].(string), 3600); g.Identity != "bob" || g.RoomConfig != nil {
		t.Errorf("identity %q room config %v", g.Identity, g.RoomConfig)
	}

	// Everything is optional.
	r = srv.post(t, "/connection-details", `{}`)
	g = mustGrants(t, r.body["participant_token"].(string), 3600)
	if r.status != 200 || !strings.HasPrefix(g.Video.Room, "room-") || !strings.HasPrefix(g.Identity, "user-") || r.body["room_name"] != g.Video.Room {
		t.Errorf("defaults: %d %s; room %q identity %q", r.status, r.raw, g.Video.Room, g.Identity)
	}

	for _, tc := range []struct{ name, body, code, field string }{
		{"not JSON", `{"room_name":`, "invalid_json", ""},
		{"an array", `[]`, "invalid_request", ""},
		{"wrong type", `{"room_name":5}`, "invalid_request", ""},
		{"agent identity", `{"participant_identity":"agent-x"}`, "forbidden", "identity"},
		{"control characters", `{"room_name":"a\u0000"}`, "invalid_request", "room"},
		{"storage credentials", `{"room_config":{"egress":{"room":{"room_name":"r","file_outputs":[{"s3":{"access_key":"AK","secret":"SECRET"}}]}}}}`, "invalid_request", "room_config.egress.room.file_outputs.s3.access_key"},
		{"huge attributes", `{"participant_attributes":{"k":"` + strings.Repeat("v", 64<<10) + `"}}`, "invalid_request", "attributes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := srv.post(t, "/connection-details", tc.body)
			status := 400
			if tc.code == "forbidden" {
				status = 403
			}
			r.wantError(t, status, tc.code, tc.field)
			if strings.Contains(r.raw, "SECRET") {
				t.Error("the reply echoes the storage secret")
			}
		})
	}
	srv.post(t, "/connection-details", `{}`, "Content-Type: text/plain").wantError(t, 415, "unsupported_media_type", "")
}

func TestConnectionDetailsUnderPolicy(t *testing.T) {
	secret := "user-jwt-shared-secret-0123456789abcdef"
	srv := newServer(t, "APP_ENV=production", "AUTH_JWT_SECRET="+secret, "AUTH_JWT_ISSUER=idp", "AUTH_JWT_AUDIENCE=app",
		"SERVICE_API_KEYS="+serviceKey1, "CORS_ORIGINS=https://app.example.com", "RATE_LIMIT_MAX_REQUESTS=3")
	srv.post(t, "/connection-details", `{}`).wantError(t, 401, "unauthorized", "")
	user := testenv.MintJWT(t, jwt.SigningMethodHS256, []byte(secret), "", jwt.MapClaims{"iss": "idp", "aud": "app", "sub": "u-1", "name": "Una",
		"exp": time.Now().Add(time.Hour).Unix()})
	r := srv.post(t, "/connection-details", `{"room_name":"r"}`, "Authorization: Bearer "+user, "Origin: https://app.example.com")
	if r.status != 200 || r.body["participant_name"] != "Una" || r.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("%d %s %v", r.status, r.raw, r.header)
	}
	if g := mustGrants(t, r.body["participant_token"].(string), 3600); g.Identity != "u-1" {
		t.Errorf("identity %q, want the claim's", g.Identity)
	}
	srv.post(t, "/connection-details", `{"participant_identity":"someone-else"}`, "Authorization: Bearer "+user).wantError(t, 403, "forbidden", "identity")
	// Same budget as the token routes, and the user's own: the anonymous 401 above counted
	// against the address.
	if r := srv.post(t, "/token", `{"room":"r"}`, "Authorization: Bearer "+user); r.status != 200 {
		t.Fatalf("third request of the user: %d %s", r.status, r.raw)
	}
	srv.post(t, "/connection-details", `{}`, "Authorization: Bearer "+user).wantError(t, 429, "rate_limited", "")
}

func TestMoreOfTheToken(t *testing.T) {
	srv := newServer(t, "LIVEKIT_KEYS=APIold: old-secret-0123456789abcdef-0123456789, APIolder: older-secret-0123456789abcdef-01234",
		"SERVICE_API_KEYS="+serviceKey1)
	r := srv.post(t, "/token", `{"room":"r","identity":"a","attributes":{"team":"blue"},
		"grants":{"canPublishSources":["microphone","screen_share"],"canSubscribeMetrics":true},
		"room_config":{"agents":[{"agentName":"notetaker"}],"maxParticipants":5}}`, "Authorization: Bearer "+serviceKey1)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	g := mustGrants(t, r.body["token"].(string), 3600)
	if g.Attributes["team"] != "blue" || strings.Join(g.Video.CanPublishSources, ",") != "microphone,screen_share" ||
		!g.Video.GetCanSubscribeMetrics() || g.GetRoomConfiguration().GetMaxParticipants() != 5 ||
		g.GetRoomConfiguration().GetAgents()[0].GetAgentName() != "notetaker" {
		t.Errorf("grants %+v video %+v", g, g.Video)
	}
	v := srv.post(t, "/token/verify", fmt.Sprintf(`{"token":%q}`, r.body["token"]), "Authorization: Bearer "+serviceKey1)
	if attrs, _ := v.body["attributes"].(map[string]any); attrs["team"] != "blue" {
		t.Errorf("verify does not report attributes: %s", v.raw)
	}
	if rc, _ := v.body["room_config"].(map[string]any); rc["max_participants"] != float64(5) {
		t.Errorf("verify does not report the room config: %s", v.raw)
	}

	for _, tc := range []struct{ body, field string }{
		{`{"room":"r","identity":"a","grants":{"canPublishSources":["webcam"]}}`, "grants.canPublishSources"},
		{`{"room":"r","identity":"a","room_config":{"no_such_field":1}}`, "room_config"},
		{`{"room":"r","identity":"a","room_config":"agents"}`, "room_config"},
		{`{"room":"r","identity":"a","attributes":{"":"x"}}`, "attributes"},
		{`{"room":"r","identity":"a","attributes":{"k":1}}`, "attributes.k"},
	} {
		srv.post(t, "/token", tc.body).wantError(t, 400, "invalid_request", tc.field)
	}

	bridge := srv.post(t, "/token/agent", `{"room":"r","agent_id":"b","kind":"bridge","attributes":{"via":"sip"}}`, "Authorization: Bearer "+serviceKey1)
	if g := mustGrants(t, bridge.body["token"].(string), 3600); g.Kind != "bridge" || g.Video.Agent || g.Attributes["via"] != "sip" {
		t.Errorf("bridge: kind %q agent flag %v attributes %v", g.Kind, g.Video.Agent, g.Attributes)
	}
	if v := srv.post(t, "/token/verify", fmt.Sprintf(`{"token":%q}`, bridge.body["token"]), "Authorization: Bearer "+serviceKey1); v.body["kind"] != "bridge" {
		t.Errorf("verify kind: %s", v.raw)
	}
	worker := srv.post(t, "/token/agent", `{"room":"r","agent_id":"w","worker":true}`, "Authorization: Bearer "+serviceKey1)
	if g := mustGrants(t, worker.body["token"].(string), 3600); g.Kind != "agent" || !g.Video.Agent {
		t.Errorf("worker: kind %q agent flag %v", g.Kind, g.Video.Agent)
	}
	srv.post(t, "/token/agent", `{"room":"r","agent_id":"w","kind":"human"}`, "Authorization: Bearer "+serviceKey1).wantError(t, 400, "invalid_request", "kind")

	// Key rotation: tokens signed with a key in LIVEKIT_KEYS still verify; others do not.
	for key, secret := range map[string]string{"APIold": "old-secret-0123456789abcdef-0123456789", "APIolder": "older-secret-0123456789abcdef-01234"} {
		old := testenv.MintJWT(t, jwt.SigningMethodHS256, []byte(secret), "", jwt.MapClaims{"iss": key, "sub": "x", "exp": time.Now().Add(time.Hour).Unix(),
			"video": map[string]any{"room": "r", "roomJoin": true}})
		if v := srv.post(t, "/token/verify", fmt.Sprintf(`{"token":%q}`, old), "Authorization: Bearer "+serviceKey1); v.body["valid"] != true {
			t.Errorf("token signed with %s: %s", key, v.raw)
		}
	}
	wrong := testenv.MintJWT(t, jwt.SigningMethodHS256, []byte("not-the-old-secret"), "", jwt.MapClaims{"iss": "APIold", "exp": time.Now().Add(time.Hour).Unix()})
	if v := srv.post(t, "/token/verify", fmt.Sprintf(`{"token":%q}`, wrong), "Authorization: Bearer "+serviceKey1); v.body["reason"] != "bad_signature" {
		t.Errorf("wrong secret for a rotated key: %s", v.raw)
	}
}

// TestRoomConfigPolicy is the built-in policy's room_config rule: a service key for every field,
// apart from dispatching an agent of ALLOWED_AGENT_NAMES (the SPA-dispatches-an-agent flow).
func TestRoomConfigPolicy(t *testing.T) {
	for _, env := range []string{"APP_ENV=production", "APP_ENV=development"} {
		t.Run(env, func(t *testing.T) {
			srv := newServer(t, env, "ALLOWED_AGENT_NAMES=support-bot, notetaker", "SERVICE_API_KEYS="+serviceKey1)
			for body, field := range map[string]string{
				`{"room":"r","identity":"a","room_config":{"egress":{"room":{"room_name":"r"}}}}`:                         "room_config.egress",
				`{"room":"r","identity":"a","room_config":{"max_participants":1}}`:                                        "room_config.max_participants",
				`{"room":"r","identity":"a","room_config":{"metadata":"{\"host\":\"mallory\"}"}}`:                         "room_config.metadata",
				`{"room":"r","identity":"a","room_config":{"agents":[{"agent_name":"outbound-caller"}]}}`:                 "room_config.agents",
				`{"room":"r","identity":"a","room_config":{"agents":[{"agent_name":"notetaker"}],"departure_timeout":9}}`: "room_config.departure_timeout",
				`{"room":"r","identity":"a","attributes":{"lk.agent_name":"media-bridge"}}`:                               "attributes",
				`{"room":"r","identity":"a","attributes":{"sip.phoneNumber":"+15550100"}}`:                                "attributes",
			} {
				srv.post(t, "/token", body).wantError(t, 403, "forbidden", field)
				if r := srv.post(t, "/token", body, "Authorization: Bearer "+serviceKey1); r.status != http.StatusOK {
					t.Errorf("a service may: %s: %d %s", body, r.status, r.raw)
				}
			}
			r := srv.post(t, "/token", `{"room":"r","identity":"a","room_config":{"agents":[{"agent_name":"support-bot","metadata":"{}"},{"agent_name":"notetaker"}]}}`)
			if r.status != http.StatusOK {
				t.Fatalf("a listed agent needs no key: %d %s", r.status, r.raw)
			}
			if agents := mustGrants(t, r.body["token"].(string), 3600).GetRoomConfiguration().GetAgents(); len(agents) != 2 {
				t.Errorf("agents in the token: %v", agents)
			}
		})
	}
}
