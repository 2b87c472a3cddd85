package handlers_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/token-service/token-service/config"
	"github.com/token-service/token-service/handlers"
	"github.com/token-service/token-service/internal/app"
	"github.com/token-service/token-service/internal/testenv"
	"github.com/token-service/token-service/internal/testenv/logtest"
	"github.com/token-service/token-service/logging"
)

const policyJWTSecret = "policy-test-user-jwt-secret-0123456789"

// policyServer runs the router with one of the example policies and end-user JWTs.
func policyServer(t *testing.T, example string, env ...string) (*testServer, func(claims jwt.MapClaims) string) {
	t.Helper()
	srv := newServer(t, append([]string{"POLICY_FILE=../examples/policies/" + example, "AUTH_JWT_SECRET=" + policyJWTSecret,
		"AUTH_JWT_ISSUER=https://idp.example.com", "AUTH_JWT_AUDIENCE=video-app", "SERVICE_API_KEYS=" + serviceKey1}, env...)...)
	user := func(claims jwt.MapClaims) string {
		c := jwt.MapClaims{"iss": "https://idp.example.com", "aud": "video-app", "exp": time.Now().Add(time.Hour).Unix()}
		for k, v := range claims {
			c[k] = v
		}
		return "Authorization: Bearer " + testenv.MintJWT(t, jwt.SigningMethodHS256, []byte(policyJWTSecret), "", c)
	}
	return srv, user
}

func TestWebinarPolicy(t *testing.T) {
	srv, user := policyServer(t, "webinar.yaml")
	host := user(jwt.MapClaims{"sub": "hana", "role": "host"})
	attendee := user(jwt.MapClaims{"sub": "ari"})

	r := srv.post(t, "/token", `{"room":"webinar-1"}`, host)
	if r.status != 200 {
		t.Fatalf("host: %d %s", r.status, r.raw)
	}
	if g := mustGrants(t, r.body["token"].(string), 3600); !g.Video.RoomCreate || !g.Video.RoomAdmin || !g.Video.GetCanPublish() {
		t.Errorf("host grants %+v", g.Video)
	}
	r = srv.post(t, "/token", `{"room":"webinar-1","name":"Ari"}`, attendee)
	if r.status != 200 {
		t.Fatalf("attendee: %d %s", r.status, r.raw)
	}
	if g := mustGrants(t, r.body["token"].(string), 3600); g.Video.GetCanPublish() || g.Video.GetCanPublishData() || !g.Video.GetCanSubscribe() || g.Video.RoomCreate || g.Name != "Ari" {
		t.Errorf("attendee grants %+v name %q", g.Video, g.Name)
	}
	for _, tc := range []struct{ name, body, auth, field string }{
		{"an attendee asks to publish", `{"room":"webinar-1","grants":{"canPublish":true}}`, attendee, "grants.canPublish"},
		{"an attendee asks to create rooms", `{"room":"webinar-1","grants":{"roomCreate":true}}`, attendee, "grants.roomCreate"},
		{"metadata is not the caller's", `{"room":"webinar-1","metadata":"{\"role\":\"host\"}"}`, attendee, "metadata"},
		{"attributes are not the caller's", `{"room":"webinar-1","attributes":{"role":"host"}}`, attendee, "attributes"},
		{"room_config is not the caller's", `{"room":"webinar-1","room_config":{"max_participants":1}}`, host, "room_config.max_participants"},
		{"longer than the profile's TTL", `{"room":"webinar-1","ttl_seconds":20000}`, host, "ttl_seconds"},
		{"a room outside the patterns", `{"room":"boardroom"}`, host, "room"},
		{"someone else's identity", `{"room":"webinar-1","identity":"hana"}`, attendee, "identity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.post(t, "/token", tc.body, tc.auth).wantError(t, 403, "forbidden", tc.field)
		})
	}
	// An attendee may still ask for what the profile gives anyway.
	if r := srv.post(t, "/token", `{"room":"webinar-1","grants":{"canPublish":false,"canSubscribe":true}}`, attendee); r.status != 200 {
		t.Errorf("asking for the profile's own values: %d %s", r.status, r.raw)
	}
	// No rule admits anonymous callers or services: credentials would help the first, not the second.
	srv.post(t, "/token", `{"room":"webinar-1","identity":"x"}`).wantError(t, 401, "unauthorized", "")
	srv.post(t, "/token", `{"room":"webinar-1","identity":"x"}`, "Authorization: Bearer "+serviceKey1).wantError(t, 403, "forbidden", "")
	// The policy has no agent-token rule: /token/agent is refused, even with a key.
	srv.post(t, "/token/agent", `{"room":"webinar-1","agent_id":"bridge"}`, "Authorization: Bearer "+serviceKey1).wantError(t, 403, "forbidden", "")
	// /connection-details goes through the same policy.
	r = srv.post(t, "/connection-details", `{"room_name":"webinar-2"}`, attendee)
	if r.status != 200 {
		t.Fatalf("connection-details: %d %s", r.status, r.raw)
	}
	if g := mustGrants(t, r.body["participant_token"].(string), 3600); g.Video.GetCanPublish() || g.Identity != "ari" {
		t.Errorf("connection-details grants %+v", g.Video)
	}
	srv.post(t, "/connection-details", `{"room_name":"lobby"}`, attendee).wantError(t, 403, "forbidden", "room")
}

func TestSupportPolicy(t *testing.T) {
	srv, user := policyServer(t, "support.yaml")
	customer := user(jwt.MapClaims{"sub": "c-17", "role": "customer"})
	agent := user(jwt.MapClaims{"sub": "sam", "role": "agent"})
	r := srv.post(t, "/token", `{"room":"support-c-17","name":"Cleo"}`, customer)
	if r.status != 200 {
		t.Fatalf("customer: %d %s", r.status, r.raw)
	}
	g := mustGrants(t, r.body["token"].(string), 3600)
	if g.Attributes["role"] != "customer" || g.Metadata != `{"role":"customer"}` || g.Video.GetCanUpdateOwnMetadata() {
		t.Errorf("customer: attributes %v metadata %q canUpdateOwnMetadata %v", g.Attributes, g.Metadata, g.Video.GetCanUpdateOwnMetadata())
	}
	if r := srv.post(t, "/token", `{"room":"support-c-17"}`, agent); r.status != 200 || mustGrants(t, r.body["token"].(string), 3600).Attributes["role"] != "agent" {
		t.Errorf("support agent: %d %s", r.status, r.raw)
	}
	for _, tc := range []struct{ name, body, auth, field string }{
		{"the role attribute is the claim's", `{"room":"support-c-17","attributes":{"role":"agent"}}`, customer, "attributes"},
		{"the metadata is the claim's", `{"room":"support-c-17","metadata":"{\"role\":\"agent\"}"}`, customer, "metadata"},
		{"another customer's call", `{"room":"support-c-18"}`, customer, "room"},
		{"no admin for customers", `{"room":"support-c-17","grants":{"roomAdmin":true}}`, customer, "grants.roomAdmin"},
		{"updating own metadata", `{"room":"support-c-17","grants":{"canUpdateOwnMetadata":true}}`, customer, "grants.canUpdateOwnMetadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.post(t, "/token", tc.body, tc.auth).wantError(t, 403, "forbidden", tc.field)
		})
	}
	// Sending the value the claim fixes anyway is not an override.
	if r := srv.post(t, "/token", `{"room":"support-c-17","attributes":{"role":"customer"}}`, customer); r.status != 200 {
		t.Errorf("the fixed value itself: %d %s", r.status, r.raw)
	}
	// A user whose claims match no rule.
	srv.post(t, "/token", `{"room":"support-c-17"}`, user(jwt.MapClaims{"sub": "c-17"})).wantError(t, 403, "forbidden", "")
}

func TestMultiTenantPolicy(t *testing.T) {
	srv, user := policyServer(t, "multi-tenant.yaml")
	acme := user(jwt.MapClaims{"sub": "ada", "org": "acme"})
	r := srv.post(t, "/token", `{"room":"acme-standup","attributes":{"app.lang":"en"},"room_config":{"agents":[{"agent_name":"notetaker"}]}}`, acme)
	if r.status != 200 {
		t.Fatalf("acme member: %d %s", r.status, r.raw)
	}
	if g := mustGrants(t, r.body["token"].(string), 3600); g.Attributes["org"] != "acme" || g.Attributes["app.lang"] != "en" || g.GetRoomConfiguration().GetAgents()[0].GetAgentName() != "notetaker" {
		t.Errorf("grants %+v", g)
	}
	for _, tc := range []struct{ name, body, field string }{
		{"another org's room", `{"room":"globex-standup"}`, "room"},
		{"a pattern is not a prefix of the claim", `{"room":"acmecorp-standup"}`, "room"},
		{"an unlisted agent", `{"room":"acme-standup","room_config":{"agents":[{"agent_name":"outbound-caller"}]}}`, "room_config.agents"},
		{"max_participants", `{"room":"acme-standup","room_config":{"max_participants":1}}`, "room_config.max_participants"},
		{"the org attribute", `{"room":"acme-standup","attributes":{"org":"globex"}}`, "attributes"},
		{"an attribute outside app.*", `{"room":"acme-standup","attributes":{"team":"x"}}`, "attributes"},
		{"a reserved attribute", `{"room":"acme-standup","attributes":{"lk.agent_name":"media-bridge"}}`, "attributes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.post(t, "/token", tc.body, acme).wantError(t, 403, "forbidden", tc.field)
		})
	}
	// A user with no org claim matches no pattern.
	srv.post(t, "/token", `{"room":"-standup"}`, user(jwt.MapClaims{"sub": "eve"})).wantError(t, 403, "forbidden", "room")
	// A service may do what the backend profile allows, for anyone.
	if r := srv.post(t, "/token", `{"room":"globex-standup","identity":"bot","attributes":{"lk.agent_name":"x"},"room_config":{"max_participants":3}}`,
		"Authorization: Bearer "+serviceKey1); r.status != http.StatusOK {
		t.Errorf("service: %d %s", r.status, r.raw)
	}
}

// TestPolicyFileProblemsStopStartUp: a policy with problems is a configuration error.
func TestPolicyFileProblemsStopStartUp(t *testing.T) {
	cfg, err := config.Load([]string{"APP_ENV=test", "LIVEKIT_API_KEY=" + testKey, "LIVEKIT_API_SECRET=" + testSecret,
		"LIVEKIT_WS_URL=" + testWSURL, "POLICY_FILE=testdata/no-such-policy.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = app.New(t.Context(), cfg, "test", zerolog.Nop(), zerolog.Nop())
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "no-such-policy.yaml") {
		t.Fatalf("want a configuration error naming the file, got %v", err)
	}
}

// TestUndecidedEnvironmentIsClosed: with neither APP_ENV nor NODE_ENV set but real LiveKit
// credentials, the privileged parts stay closed as in production, and start-up says so; an
// explicit APP_ENV=development opens them, with a warning.
func TestUndecidedEnvironmentIsClosed(t *testing.T) {
	real := []string{"LIVEKIT_API_KEY=" + testKey, "LIVEKIT_API_SECRET=" + testSecret, "LIVEKIT_WS_URL=" + testWSURL}
	for _, tc := range []struct {
		name   string
		env    []string
		status int
		warn   string
	}{
		{"unset with real credentials", real, 403, "APP_ENV and NODE_ENV are unset"},
		{"development with real credentials", append(real, "APP_ENV=development"), 200, "open to anyone"},
		{"unset with livekit-server --dev credentials", nil, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Load(tc.env)
			if err != nil {
				t.Fatal(err)
			}
			logs := &logtest.Buffer{}
			log := logging.New(logs, zerolog.InfoLevel, false)
			deps, closeDeps, err := app.New(t.Context(), cfg, "test", log, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = closeDeps() })
			srv := httptest.NewServer(handlers.NewRouter(deps))
			t.Cleanup(srv.Close)
			for path, body := range map[string]string{
				"/token/agent":  `{"room":"r","agent_id":"a","worker":true}`,
				"/token/verify": `{"token":"x.y.z"}`,
				"/token":        `{"room":"r","identity":"a","grants":{"hidden":true}}`,
			} {
				resp, err := srv.Client().Post(srv.URL+path, "application/json", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.status {
					t.Errorf("%s: %d, want %d", path, resp.StatusCode, tc.status)
				}
			}
			if tc.warn != "" && !strings.Contains(logs.String(), tc.warn) {
				t.Errorf("no warning %q in:\n%s", tc.warn, logs.String())
			}
			if tc.warn == "" && strings.Contains(logs.String(), `"level":"warn","message":"APP_ENV`) {
				t.Errorf("an unexpected warning:\n%s", logs.String())
			}
		})
	}
}
