package handlers_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/livekit/protocol/auth"
)

// mustGrants reads a token back with livekit/protocol's verifier and checks its lifetime.
func mustGrants(t *testing.T, raw string, wantTTL int64) *auth.ClaimGrants {
	t.Helper()
	parsed, err := auth.ParseAPIToken(raw)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	claims, grants, err := parsed.Verify(testSecret)
	if err != nil || parsed.APIKey() != testKey {
		t.Fatalf("verify: %v (iss %q)", err, parsed.APIKey())
	}
	if got := claims.ExpiresAt.Unix() - claims.NotBefore.Unix(); got != wantTTL {
		t.Fatalf("exp - nbf = %d, want %d", got, wantTTL)
	}
	return grants
}

func TestJoin(t *testing.T) {
	srv := newServer(t)
	r := srv.post(t, "/token", `{"room":"r1","identity":"alice","name":"Alice","metadata":"{\"x\":1}","ttl_seconds":120,
		"grants":{"canPublish":false,"canSubscribe":true,"canPublishData":false,"canUpdateOwnMetadata":true,"hidden":false,"agent":false}}`)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	if len(r.body) != 5 || r.body["wsUrl"] != testWSURL || r.body["identity"] != "alice" || r.body["room"] != "r1" {
		t.Fatalf("reply = %s", r.raw)
	}
	grants := mustGrants(t, r.body["token"].(string), 120)
	v := grants.Video
	if grants.Identity != "alice" || grants.Name != "Alice" || grants.Metadata != `{"x":1}` || v.Room != "r1" || !v.RoomJoin ||
		*v.CanPublish || !*v.CanSubscribe || *v.CanPublishData || !*v.CanUpdateOwnMetadata || v.Hidden || v.Agent {
		t.Errorf("grants = %+v video = %+v", grants, v)
	}
	parsed, _ := auth.ParseAPIToken(r.body["token"].(string))
	claims, _, _ := parsed.Verify(testSecret)
	if r.body["expiresAt"] != float64(claims.ExpiresAt.Unix()) {
		t.Errorf("expiresAt %v, token exp %d", r.body["expiresAt"], claims.ExpiresAt.Unix())
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", r.header.Get("Cache-Control"))
	}
}

func TestJoinDefaultTTL(t *testing.T) {
	srv := newServer(t, "DEFAULT_TOKEN_TTL_SECONDS=900")
	r := srv.post(t, "/token", `{"room":"r","identity":"a"}`)
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	mustGrants(t, r.body["token"].(string), 900)
}

func TestJoinBadInput(t *testing.T) {
	srv := newServer(t, "MAX_TOKEN_TTL_SECONDS=3600", "DEFAULT_TOKEN_TTL_SECONDS=60")
	long := strings.Repeat("x", 257)
	for _, tc := range []struct {
		name, body    string
		status        int
		code, field   string
		messageSubstr string
	}{
		{"no room", `{"identity":"a"}`, 400, "invalid_request", "room", "room is required"},
		{"no identity", `{"room":"r"}`, 400, "invalid_request", "identity", ""},
		{"empty object", `{}`, 400, "invalid_request", "room", ""},
		{"null body", `null`, 400, "invalid_request", "room", ""},
		{"not json", `{"room":`, 400, "invalid_json", "", ""},
		{"empty body", ``, 415, "unsupported_media_type", "", ""}, // no body, so no Content-Type either
		{"array", `[]`, 400, "invalid_request", "", "JSON object"},
		{"string", `"hello"`, 400, "invalid_request", "", "JSON object"},
		{"trailing data", `{"room":"r","identity":"a"} {}`, 400, "invalid_json", "", ""},
		{"room not a string", `{"room":5,"identity":"a"}`, 400, "invalid_request", "room", "room must be a string"},
		{"identity null is missing", `{"room":"r","identity":null}`, 400, "invalid_request", "identity", ""},
		{"grants not an object", `{"room":"r","identity":"a","grants":true}`, 400, "invalid_request", "grants", ""},
		{"grant not a bool", `{"room":"r","identity":"a","grants":{"canPublish":"yes"}}`, 400, "invalid_request", "grants.canPublish", "true or false"},
		{"unknown field", `{"room":"r","identity":"a","roomName":"x"}`, 400, "invalid_request", "roomName", "unknown field"},
		{"unknown grant (typo)", `{"room":"r","identity":"a","grants":{"canpublish":true}}`, 400, "invalid_request", "grants.canpublish", "unknown field"},
		{"duplicate key", `{"room":"r","identity":"a","identity":"b"}`, 400, "invalid_request", "identity", "more than once"},
		{"ttl fractional", `{"room":"r","identity":"a","ttl_seconds":1.5}`, 400, "invalid_request", "ttl_seconds", "whole number"},
		{"ttl string", `{"room":"r","identity":"a","ttl_seconds":"60"}`, 400, "invalid_request", "ttl_seconds", ""},
		{"ttl huge", `{"room":"r","identity":"a","ttl_seconds":1e300}`, 400, "invalid_request", "ttl_seconds", ""},
		{"ttl negative", `{"room":"r","identity":"a","ttl_seconds":-1}`, 400, "invalid_request", "ttl_seconds", ""},
		{"ttl zero", `{"room":"r","identity":"a","ttl_seconds":0}`, 400, "invalid_request", "ttl_seconds", ""},
		{"ttl above max states max", `{"room":"r","identity":"a","ttl_seconds":3601}`, 400, "invalid_request", "ttl_seconds", "3600"},
		{"room too long", `{"room":"` + long + `","identity":"a"}`, 400, "invalid_request", "room", "256 bytes"},
		{"identity too long", `{"room":"r","identity":"` + long + `"}`, 400, "invalid_request", "identity", ""},
		{"name too long", `{"room":"r","identity":"a","name":"` + long + `"}`, 400, "invalid_request", "name", ""},
		{"NUL in identity", `{"room":"r","identity":"a\u0000b"}`, 400, "invalid_request", "identity", "control"},
		{"control char in room", `{"room":"r\u001b[31m","identity":"a"}`, 400, "invalid_request", "room", "control"},
		{"invalid UTF-8", "{\"room\":\"r\xff\",\"identity\":\"a\"}", 400, "invalid_json", "", "UTF-8"},
		{"metadata too big", `{"room":"r","identity":"a","metadata":"` + strings.Repeat("m", 64<<10+1) + `"}`, 400, "invalid_request", "metadata", ""},
		{"agent identity reserved", `{"room":"r","identity":"agent-bridge"}`, 403, "forbidden", "identity", "agent-"},
		{"body over 256 KiB", `{"room":"r","identity":"a","metadata":"` + strings.Repeat("m", 256<<10) + `"}`, 413, "payload_too_large", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := srv.post(t, "/token", tc.body)
			r.wantError(t, tc.status, tc.code, tc.field)
			if !strings.Contains(r.body["message"].(string), tc.messageSubstr) {
				t.Errorf("message %q does not contain %q", r.body["message"], tc.messageSubstr)
			}
		})
	}
}

func TestBodyLimitBoundary(t *testing.T) {
	srv := newServer(t)
	frame := `{"room":"r","identity":"a","metadata":""}`
	// Just under the limit the body is read (and refused for its metadata size, a 400, not a 413).
	under := strings.Replace(frame, `""`, `"`+strings.Repeat("m", 256<<10-len(frame))+`"`, 1)
	srv.post(t, "/token", under).wantError(t, 400, "invalid_request", "metadata")
	over := strings.Replace(frame, `""`, `"`+strings.Repeat("m", 256<<10-len(frame)+1)+`"`, 1)
	srv.post(t, "/token", over).wantError(t, 413, "payload_too_large", "")
}

func TestContentType(t *testing.T) {
	srv := newServer(t)
	body := `{"room":"r","identity":"a"}`
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "application/vnd.api+json"} {
		if r := srv.post(t, "/token", body, "Content-Type: "+ct); r.status != 200 {
			t.Errorf("%s: %d %s", ct, r.status, r.raw)
		}
	}
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "application/jsonx", "garbage;;"} {
		srv.post(t, "/token", body, "Content-Type: "+ct).wantError(t, 415, "unsupported_media_type", "")
	}
}

func TestAgent(t *testing.T) {
	srv := newServer(t)
	r := srv.post(t, "/token/agent", `{"room":"r1","agent_id":"media-bridge","name":"Bridge","metadata":"m","ttl_seconds":30}`)
	if r.status != 200 || r.body["identity"] != "agent-media-bridge" || r.body["room"] != "r1" || r.body["wsUrl"] != testWSURL {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	grants := mustGrants(t, r.body["token"].(string), 30)
	v := grants.Video
	if grants.Kind != "agent" || grants.Name != "Bridge" || grants.Metadata != "m" || v.Agent || v.Hidden ||
		!*v.CanPublish || !*v.CanSubscribe || !*v.CanPublishData || !*v.CanUpdateOwnMetadata || v.Room != "r1" {
		t.Errorf("grants %+v video %+v", grants, v)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Error("no Cache-Control: no-store")
	}
	for _, tc := range []struct{ name, body, code, field string }{
		{"no agent_id", `{"room":"r"}`, "invalid_request", "agent_id"},
		{"bad agent_id", `{"room":"r","agent_id":"a b"}`, "invalid_request", "agent_id"},
		{"long agent_id", `{"room":"r","agent_id":"` + strings.Repeat("a", 65) + `"}`, "invalid_request", "agent_id"},
		{"agent_id not a string", `{"room":"r","agent_id":7}`, "invalid_request", "agent_id"},
		{"no room", `{"agent_id":"x"}`, "invalid_request", "room"},
		{"identity is not accepted", `{"room":"r","agent_id":"x","identity":"y"}`, "invalid_request", "identity"},
		{"grants are not accepted", `{"room":"r","agent_id":"x","grants":{}}`, "invalid_request", "grants"},
	} {
		t.Run(tc.name, func(t *testing.T) { srv.post(t, "/token/agent", tc.body).wantError(t, 400, tc.code, tc.field) })
	}
}

func TestVerifyEndpoint(t *testing.T) {
	srv := newServer(t)
	issued := srv.post(t, "/token", `{"room":"r1","identity":"alice","name":"Alice","metadata":"m","grants":{"hidden":true}}`)
	tok := issued.body["token"].(string)
	r := srv.post(t, "/token/verify", fmt.Sprintf(`{"token":%q}`, tok))
	if r.status != 200 || r.body["valid"] != true || r.body["identity"] != "alice" || r.body["name"] != "Alice" ||
		r.body["room"] != "r1" || r.body["kind"] != "standard" || r.body["metadata"] != "m" ||
		r.body["expiresAt"] != issued.body["expiresAt"] || r.body["reason"] != nil {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	for _, k := range []string{"issuedAt", "notBefore", "expiresAt", "grants"} {
		if r.body[k] == nil {
			t.Errorf("no %s in %s", k, r.raw)
		}
	}
	grants := r.body["grants"].(map[string]any)
	if grants["room"] != "r1" || grants["roomJoin"] != true || grants["hidden"] != true || grants["canPublish"] != true {
		t.Errorf("grants = %v", grants)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Error("no Cache-Control: no-store")
	}

	agent := srv.post(t, "/token/agent", `{"room":"r","agent_id":"b"}`)
	if r := srv.post(t, "/token/verify", fmt.Sprintf(`{"token":%q}`, agent.body["token"])); r.body["kind"] != "agent" {
		t.Errorf("agent kind: %s", r.raw)
	}

	bad := srv.post(t, "/token/verify", `{"token":"nope"}`)
	if bad.status != 200 || bad.body["valid"] != false || bad.body["reason"] != "malformed" || bad.body["message"] == "" || len(bad.body) != 3 {
		t.Errorf("%d %s", bad.status, bad.raw)
	}
	for _, tc := range []struct{ name, body, field string }{
		{"missing token", `{}`, "token"},
		{"empty token", `{"token":""}`, "token"},
		{"token not a string", `{"token":123}`, "token"},
		{"token an object", `{"token":{"a":1}}`, "token"},
		{"unknown field", `{"token":"x","extra":1}`, "extra"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.post(t, "/token/verify", tc.body).wantError(t, 400, "invalid_request", tc.field)
		})
	}
}
