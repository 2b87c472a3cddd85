package handlers_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// The secret every credential case carries; no reply may echo it.
const storageSecret = "VALUE-THAT-MUST-NOT-TRAVEL"

// roomConfigCredentialCases are room configurations whose token would hand a credential to the
// client, each with the field the 400 must name. The S3, GCP and webhook credentials are the
// ones the outside review got into a token with a service key (issue 14).
var roomConfigCredentialCases = []struct{ name, config, field string }{
	{"s3 secret next to allowed fields",
		`{"empty_timeout":30,"egress":{"room":{"room_name":"r","file_outputs":[{"filepath":"x.mp4","s3":{"secret":"` + storageSecret + `"}}]}}}`,
		"room_config.egress.room.file_outputs.s3.secret"},
	{"an empty s3", `{"egress":{"tracks":{"s3":{}}}}`, "room_config.egress.tracks.s3"},
	{"s3 proxy password",
		`{"egress":{"room":{"room_name":"r","file_outputs":[{"filepath":"x.mp4","s3":{"proxy":{"password":"` + storageSecret + `"}}}]}}}`,
		"room_config.egress.room.file_outputs.s3.proxy.password"},
	{"gcp proxy password",
		`{"egress":{"participant":{"file_outputs":[{"gcp":{"proxy":{"password":"` + storageSecret + `"}}}]}}}`,
		"room_config.egress.participant.file_outputs.gcp.proxy.password"},
	{"s3 session token",
		`{"egress":{"tracks":{"filepath":"t","s3":{"session_token":"` + storageSecret + `"}}}}`,
		"room_config.egress.tracks.s3.session_token"},
	{"s3 assume role external id",
		`{"egress":{"room":{"segment_outputs":[{"s3":{"assume_role_external_id":"` + storageSecret + `"}}]}}}`,
		"room_config.egress.room.segment_outputs.s3.assume_role_external_id"},
	{"webhook signing key",
		`{"egress":{"room":{"room_name":"r","webhooks":[{"signing_key":"` + storageSecret + `"}]}}}`,
		"room_config.egress.room.webhooks.signing_key"},
	{"stream key in an RTMP URL",
		`{"egress":{"room":{"stream_outputs":[{"urls":["rtmp://live/app/` + storageSecret + `"]}]}}}`,
		"room_config.egress.room.stream_outputs.urls"},
	{"azure account key",
		`{"egress":{"room":{"image_outputs":[{"azure":{"account_key":"` + storageSecret + `"}}]}}}`,
		"room_config.egress.room.image_outputs.azure.account_key"},
	{"agent thread",
		`{"agents":[{"agent_name":"a","thread_id":"` + storageSecret + `"}]}`,
		"room_config.agents.thread_id"},
}

// A room configuration travels in the token, readable by the client, so only fields on an
// allowlist may be set: anything else is a 400 naming the field, never echoing its value, on
// /token (with a service key, which may ask for egress) and on /connection-details.
func TestRoomConfigAllowlist(t *testing.T) {
	srv := newServer(t, "SERVICE_API_KEYS="+serviceKey1)
	key := "Authorization: Bearer " + serviceKey1
	for _, tc := range roomConfigCredentialCases {
		t.Run(tc.name, func(t *testing.T) {
			for path, body := range map[string]string{
				"/token":              `{"room":"r","identity":"a","room_config":` + tc.config + `}`,
				"/connection-details": `{"room_config":` + tc.config + `}`,
			} {
				r := srv.post(t, path, body, key)
				r.wantError(t, http.StatusBadRequest, "invalid_request", tc.field)
				if strings.Contains(r.raw, storageSecret) {
					t.Errorf("%s: the reply echoes the value: %s", path, r.raw)
				}
			}
		})
	}
	if logs := srv.log.String(); strings.Contains(logs, storageSecret) {
		t.Errorf("the log carries the value")
	}

	// What may travel still does, and /token/verify reads it back.
	allowed := `{"name":"r","empty_timeout":30,"departure_timeout":5,"max_participants":8,"metadata":"m",
		"min_playout_delay":100,"max_playout_delay":500,"sync_streams":true,"tags":{"team":"a"},
		"agents":[{"agent_name":"helper","metadata":"{}","attributes":{"k":"v"}}],
		"egress":{"room":{"room_name":"r","layout":"grid","audio_only":true,"preset":"H264_720P_30",
			"file_outputs":[{"file_type":"MP4","filepath":"rec/{room_name}.mp4"}],
			"segment_outputs":[{"filename_prefix":"seg","segment_duration":6}],
			"image_outputs":[{"capture_interval":10,"width":640}]},
			"participant":{"advanced":{"width":1280,"height":720},"file_outputs":[{"filepath":"p.mp4"}]},
			"tracks":{"filepath":"t/{track_id}"}}}`
	r := srv.post(t, "/token", `{"room":"r","identity":"a","room_config":`+allowed+`}`, key)
	if r.status != http.StatusOK {
		t.Fatalf("allowed configuration: %d %s", r.status, r.raw)
	}
	v := srv.post(t, "/token/verify", fmt.Sprintf(`{"token":%q}`, r.body["token"]), key)
	if rc, _ := v.body["room_config"].(map[string]any); rc["egress"] == nil || rc["sync_streams"] != true {
		t.Errorf("verify: %s", v.raw)
	}
}
