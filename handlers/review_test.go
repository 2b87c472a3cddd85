package handlers_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/livekit/protocol/livekit"
	"github.com/rs/zerolog"

	"github.com/token-service/token-service/config"
	"github.com/token-service/token-service/internal/app"
	"github.com/token-service/token-service/internal/testenv"
	"github.com/token-service/token-service/internal/testenv/logtest"
	"github.com/token-service/token-service/logging"
)

// The outside review of issue 23, one test per finding, through the real router.

// writePolicy writes a policy file for one test and returns its path.
func writePolicy(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// userServer serves a policy file to end users signed in with policyJWTSecret.
func userServer(t *testing.T, policyText string, env ...string) (*testServer, func(claims jwt.MapClaims) string) {
	t.Helper()
	srv := newServer(t, append([]string{"POLICY_FILE=" + writePolicy(t, policyText), "AUTH_JWT_SECRET=" + policyJWTSecret,
		"AUTH_JWT_ISSUER=https://idp.example.com", "AUTH_JWT_AUDIENCE=video-app", "SERVICE_API_KEYS=" + serviceKey1}, env...)...)
	return srv, func(claims jwt.MapClaims) string {
		c := jwt.MapClaims{"iss": "https://idp.example.com", "aud": "video-app", "exp": time.Now().Add(time.Hour).Unix()}
		for k, v := range claims {
			c[k] = v
		}
		return "Authorization: Bearer " + testenv.MintJWT(t, jwt.SigningMethodHS256, []byte(policyJWTSecret), "", c)
	}
}

// startUp is app.New's answer for an environment: the wiring run does, without serving.
func startUp(t *testing.T, env ...string) (*logtest.Buffer, error) {
	t.Helper()
	cfg, err := config.Load(env)
	if err != nil {
		return nil, err
	}
	logs := &logtest.Buffer{}
	log := logging.New(logs, zerolog.DebugLevel, false)
	_, closeDeps, err := app.New(t.Context(), cfg, "test", log, log)
	if err == nil {
		t.Cleanup(func() { _ = closeDeps() })
	}
	return logs, err
}

// With the shipped multi-tenant example, no org reaches another's rooms: a claim placeholder's
// separator cannot be absorbed by the *.
func TestTenantsCannotCrossRooms(t *testing.T) {
	srv, user := policyServer(t, "multi-tenant.yaml")
	acme := user(jwt.MapClaims{"sub": "ada", "org": "acme"})
	for _, room := range []string{"acme-corp-standup", "acme-corp-board", "acme-labs-x", "acme-eu-daily"} {
		srv.post(t, "/token", `{"room":"`+room+`"}`, acme).wantError(t, 403, "forbidden", "room")
		srv.post(t, "/connection-details", `{"room_name":"`+room+`"}`, acme).wantError(t, 403, "forbidden", "room")
	}
	// The notetaker cannot be sent into another org's room with metadata the caller wrote.
	srv.post(t, "/connection-details", `{"room_name":"acme-corp-board","room_config":{"agents":[{"agent_name":"notetaker","metadata":"{\"x\":1}"}]}}`, acme).
		wantError(t, 403, "forbidden", "room")
	// Each org still has its own rooms.
	if r := srv.post(t, "/token", `{"room":"acme-corp-standup"}`, user(jwt.MapClaims{"sub": "bo", "org": "acme-corp"})); r.status != 200 {
		t.Errorf("acme-corp in its own room: %d %s", r.status, r.raw)
	}
	if r := srv.post(t, "/token", `{"room":"acme-standup"}`, acme); r.status != 200 {
		t.Errorf("acme in its own room: %d %s", r.status, r.raw)
	}
	srv.post(t, "/token", `{"room":"acme-standup"}`, user(jwt.MapClaims{"sub": "cy", "org": "ac"})).wantError(t, 403, "forbidden", "room")
	srv.post(t, "/token", `{"room":"acme-x"}`, user(jwt.MapClaims{"sub": "cy", "org": "ac"})).wantError(t, 403, "forbidden", "room")

	// The other shapes the review named.
	for _, tc := range []struct{ pattern, org, room string }{
		{"*-{claims.org}", "corp", "acme-corp"}, // acme-corp is org corp's only if * is one segment: x-acme-corp
		{"team-*-{claims.org}-*", "acme", "team-a-acme-corp-b"},
	} {
		srv, user := userServer(t, "version: 1\nprofiles: {member: {grants: {canSubscribe: true}}}\nrules:\n  - {name: members, caller: user, rooms: [\""+tc.pattern+"\"], profile: member}\n")
		srv.post(t, "/token", `{"room":"x-`+tc.room+`"}`, user(jwt.MapClaims{"sub": "a", "org": tc.org})).wantError(t, 403, "forbidden", "room")
	}
	// {claims.org}* cannot be made safe: refused at start-up.
	_, err := startUp(t, "APP_ENV=production", "LIVEKIT_API_KEY=k", "LIVEKIT_API_SECRET="+testSecret, "LIVEKIT_WS_URL=wss://x",
		"POLICY_FILE="+writePolicy(t, "version: 1\nprofiles: {m: {}}\nrules:\n  - {name: r, rooms: [\"{claims.org}*\"], profile: m}\n"))
	if err == nil || !strings.Contains(err.Error(), "{claims.org}") {
		t.Errorf("{claims.org}* was accepted: %v", err)
	}
}

// A claim read by two different patterns could give one room to two of its values ({claims.org}
// takes acme-corp for org acme-corp, {claims.org}-* for org acme): such a policy does not load,
// in one rule or across rules.
func TestOneClaimOnePattern(t *testing.T) {
	production := []string{"APP_ENV=production", "LIVEKIT_API_KEY=k", "LIVEKIT_API_SECRET=" + testSecret, "LIVEKIT_WS_URL=wss://x"}
	for _, rules := range []string{
		"  - {name: r, caller: user, rooms: [\"{claims.org}\", \"{claims.org}-*\"], profile: m}\n",
		"  - {name: a, caller: user, rooms: [\"{claims.org}-*\"], profile: m}\n  - {name: b, caller: user, rooms: [\"*_{claims.org}\"], profile: m}\n",
	} {
		_, err := startUp(t, append(production, "POLICY_FILE="+writePolicy(t, "version: 1\nprofiles: {m: {}}\nrules:\n"+rules))...)
		if err == nil || !strings.Contains(err.Error(), "is read by pattern") {
			t.Errorf("%s: %v", rules, err)
		}
	}
	// The same pattern in several rules is one pattern.
	if _, err := startUp(t, append(production, "POLICY_FILE="+writePolicy(t, "version: 1\nprofiles: {m: {}}\nrules:\n"+
		"  - {name: a, caller: user, when: 'has(claims.role)', rooms: [\"{claims.org}-*\"], profile: m}\n  - {name: b, caller: user, rooms: [\"{claims.org}-*\"], profile: m}\n"))...); err != nil {
		t.Errorf("one pattern in two rules: %v", err)
	}
}

// Anonymous callers get no participant LiveKit treats as an agent on /token either, while
// service keys are set.
func TestAnonymousAgentParticipantsAreRefused(t *testing.T) {
	for _, profile := range []string{"{kind: agent}", "{grants: {agent: true}}", "{caller_may: {grants: [agent]}}"} {
		file := writePolicy(t, "version: 1\nprofiles: {p: "+profile+"}\nrules:\n  - {name: r, caller: anonymous, profile: p}\n")
		_, err := startUp(t, "APP_ENV=production", "LIVEKIT_API_KEY=k", "LIVEKIT_API_SECRET="+testSecret, "LIVEKIT_WS_URL=wss://x",
			"SERVICE_API_KEYS="+serviceKey1, "POLICY_FILE="+file)
		if err == nil || !strings.Contains(err.Error(), "agent participants") {
			t.Errorf("%s: %v", profile, err)
		}
	}
}

// A profile may name room_config fields as protojson does (emptyTimeout) or by proto name;
// either way the field it names is the one allowed.
func TestRoomConfigFieldsByEitherName(t *testing.T) {
	srv := newServer(t, "APP_ENV=production", "SERVICE_API_KEYS="+serviceKey1, "POLICY_FILE="+writePolicy(t,
		"version: 1\nprofiles: {b: {caller_may: {room_config: [emptyTimeout, max_participants]}}}\nrules:\n  - {name: r, caller: service, profile: b}\n"))
	for _, body := range []string{`{"room":"r","identity":"a","room_config":{"empty_timeout":10}}`, `{"room":"r","identity":"a","room_config":{"maxParticipants":3}}`} {
		if r := srv.post(t, "/token", body, "Authorization: Bearer "+serviceKey1); r.status != 200 {
			t.Errorf("%s: %d %s", body, r.status, r.raw)
		}
	}
}

// A refusal repeats at most a short prefix of the caller's own text.
func TestRefusalsDoNotEchoHugeValues(t *testing.T) {
	srv := newServer(t, "APP_ENV=production", "LIVEKIT_API_SECRET="+testSecret)
	key := "lk." + strings.Repeat("A", 60000)
	r := srv.post(t, "/token", `{"room":"r","identity":"a","attributes":{"`+key+`":"v"}}`)
	r.wantError(t, 403, "forbidden", "attributes")
	if len(r.raw) > 1024 {
		t.Errorf("a 403 of %d bytes echoes the key", len(r.raw))
	}
}

// An empty canPublishSources never means "every source".
func TestEmptySourceListNeverWidens(t *testing.T) {
	srv, user := userServer(t, `version: 1
profiles:
  member:
    grants: {canPublish: true, canPublishSources: [camera, microphone]}
    caller_may: {grants: [canPublishSources]}
rules:
  - {name: members, caller: user, profile: member}
`)
	alice := user(jwt.MapClaims{"sub": "alice"})
	srv.post(t, "/token", `{"room":"r","grants":{"canPublishSources":[]}}`, alice).wantError(t, 400, "invalid_request", "grants.canPublishSources")
	srv.post(t, "/token", `{"room":"r","grants":{"canPublishSources":["screen_share"]}}`, alice).wantError(t, 403, "forbidden", "grants.canPublishSources")
	r := srv.post(t, "/token", `{"room":"r","grants":{"canPublishSources":["camera"]}}`, alice)
	if r.status != 200 {
		t.Fatalf("narrowing: %d %s", r.status, r.raw)
	}
	g := mustGrants(t, r.body["token"].(string), 3600)
	if !g.Video.GetCanPublishSource(livekit.TrackSource_CAMERA) || g.Video.GetCanPublishSource(livekit.TrackSource_MICROPHONE) || g.Video.GetCanPublishSource(livekit.TrackSource_SCREEN_SHARE) {
		t.Errorf("sources %v", g.Video.CanPublishSources)
	}
	// A profile with an empty list does not load.
	if _, err := startUp(t, "POLICY_FILE="+writePolicy(t, "version: 1\nprofiles: {m: {grants: {canPublish: true, canPublishSources: []}}}\nrules: [{name: r, profile: m}]\n")); err == nil ||
		!strings.Contains(err.Error(), "canPublishSources") {
		t.Errorf("a profile with an empty source list: %v", err)
	}
}

// A user asking for an agent token is held to its rooms claim and its identity; a rule that
// would give anonymous callers agent tokens while service keys are set does not load.
func TestAgentRulesHoldUsersToTheirToken(t *testing.T) {
	srv, user := userServer(t, `version: 1
profiles:
  agent: {kind: agent, grants: {canPublish: true, canSubscribe: true}}
rules:
  - {name: user-agents, caller: user, token: agent, profile: agent}
`, "AUTH_JWT_ROOMS_CLAIM=rooms")
	bob := user(jwt.MapClaims{"sub": "bob", "rooms": []string{"r1"}})
	srv.post(t, "/token/agent", `{"room":"secret-room","agent_id":"bob"}`, bob).wantError(t, 403, "forbidden", "room")
	srv.post(t, "/token/agent", `{"room":"r1","agent_id":"media-bridge"}`, bob).wantError(t, 403, "forbidden", "agent_id")
	if r := srv.post(t, "/token/agent", `{"room":"r1","agent_id":"bob"}`, bob); r.status != 200 || r.body["identity"] != "agent-bob" {
		t.Errorf("a user's own agent token: %d %s", r.status, r.raw)
	}

	for _, rule := range []string{"{name: agents, token: agent, profile: agent}", "{name: agents, caller: [anonymous, service], token: agent, profile: agent}"} {
		file := writePolicy(t, "version: 1\nprofiles: {agent: {kind: agent}}\nrules:\n  - "+rule+"\n")
		_, err := startUp(t, "APP_ENV=production", "LIVEKIT_API_KEY=k", "LIVEKIT_API_SECRET="+testSecret, "LIVEKIT_WS_URL=wss://x",
			"SERVICE_API_KEYS="+serviceKey1, "POLICY_FILE="+file)
		if err == nil || !strings.Contains(err.Error(), "anonymous callers") {
			t.Errorf("%s with service keys set: %v", rule, err)
		}
	}
}

// A condition that cannot be evaluated refuses the request, naming the rule: it never falls
// through to a wider rule.
func TestConditionsFailClosed(t *testing.T) {
	srv, user := userServer(t, `version: 1
profiles:
  viewer: {grants: {canSubscribe: true}}
  speaker: {grants: {canPublish: true, canSubscribe: true}}
rules:
  - name: banned-group
    caller: user
    when: '"viewers-only" in claims.groups'
    profile: viewer
  - name: everyone
    caller: user
    profile: speaker
`)
	r := srv.post(t, "/token", `{"room":"r"}`, user(jwt.MapClaims{"sub": "eve", "groups": "viewers-only"}))
	r.wantError(t, 403, "forbidden", "")
	if !strings.Contains(r.body["message"].(string), "banned-group") || strings.Contains(r.raw, "viewers-only") {
		t.Errorf("the refusal must name the rule and no claim value: %s", r.raw)
	}
	if r := srv.post(t, "/token", `{"room":"r"}`, user(jwt.MapClaims{"sub": "eve", "groups": []string{"viewers-only"}})); r.status != 200 ||
		mustGrants(t, r.body["token"].(string), 3600).Video.GetCanPublish() {
		t.Errorf("a list claim: %d %s", r.status, r.raw)
	}
	// Empty lists are not "anyone" or "any room".
	for _, rule := range []string{"{name: r, caller: [], profile: viewer}", "{name: r, rooms: [], profile: viewer}"} {
		_, err := startUp(t, "POLICY_FILE="+writePolicy(t, "version: 1\nprofiles: {viewer: {}}\nrules:\n  - "+rule+"\n"))
		if err == nil || !strings.Contains(err.Error(), "empty list") {
			t.Errorf("%s: %v", rule, err)
		}
	}
}

// APP_ENV=test with real credentials is as closed as production, and says so; an empty *_FILE
// stops start-up.
func TestTestEnvironmentIsClosed(t *testing.T) {
	srv := newServer(t, "APP_ENV=test")
	srv.post(t, "/token/agent", `{"room":"r","agent_id":"a"}`).wantError(t, 403, "forbidden", "")
	srv.post(t, "/token", `{"room":"r","identity":"a","grants":{"hidden":true}}`).wantError(t, 403, "forbidden", "grants.hidden")
	srv.post(t, "/moderation/bans", `{"room":"*","identity":"anyone","duration_seconds":2592000}`).wantError(t, 403, "forbidden", "")
	if !strings.Contains(srv.log.String(), "APP_ENV=test with LiveKit credentials that are not livekit-server --dev's") {
		t.Errorf("no start-up warning:\n%s", srv.log.String())
	}
	// livekit-server --dev's pair is the one way test is open (the end-to-end set-up).
	open := newServer(t, "APP_ENV=test", "LIVEKIT_API_KEY=devkey", "LIVEKIT_API_SECRET=secret")
	if r := open.post(t, "/token/agent", `{"room":"r","agent_id":"a"}`); r.status != 200 {
		t.Errorf("test with the dev pair: %d %s", r.status, r.raw)
	}
	empty := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load([]string{"APP_ENV=test", "LIVEKIT_API_KEY=devkey", "LIVEKIT_API_SECRET=secret", "LIVEKIT_WS_URL=ws://x",
		"SERVICE_API_KEYS_FILE=" + empty})
	if err == nil || !strings.Contains(err.Error(), "SERVICE_API_KEYS_FILE: the file it names is empty") {
		t.Errorf("an empty SERVICE_API_KEYS_FILE: %v", err)
	}
}

// A trusted proxy range wider than /8 (IPv4) or /24 (IPv6) is refused outside development.
func TestTrustedProxiesStayNarrow(t *testing.T) {
	production := []string{"APP_ENV=production", "LIVEKIT_API_KEY=k", "LIVEKIT_API_SECRET=" + testSecret, "LIVEKIT_WS_URL=wss://x"}
	for _, env := range [][]string{
		append(production, "TRUSTED_PROXIES=0.0.0.0/1,128.0.0.0/1"),
		append(production, "TRUSTED_PROXIES=::/1,8000::/1"),
		append(production, "TRUSTED_PROXIES=::ffff:0.0.0.0/96"),
		{"APP_ENV=test", "LIVEKIT_API_KEY=devkey", "LIVEKIT_API_SECRET=secret", "LIVEKIT_WS_URL=ws://x", "TRUSTED_PROXIES=0.0.0.0/0"},
		append(production, "TRUSTED_PROXIES=10.0.0.0/7"),
	} {
		_, err := config.Load(env)
		if err == nil || !strings.Contains(err.Error(), "TRUSTED_PROXIES: ") {
			t.Errorf("%v: %v", env[len(env)-1], err)
		}
	}
	// An unset environment with real credentials is closed as production is, and as narrow.
	if _, err := config.Load([]string{"LIVEKIT_API_KEY=k", "LIVEKIT_API_SECRET=" + testSecret, "TRUSTED_PROXIES=0.0.0.0/0"}); err == nil {
		t.Error("0.0.0.0/0 with no APP_ENV and real credentials was accepted")
	}
	// Many narrow ranges may not add up to every address.
	var all []string
	for i := range 256 {
		all = append(all, strconv.Itoa(i)+".0.0.0/8")
	}
	if _, err := config.Load(append(production, "TRUSTED_PROXIES="+strings.Join(all, ","))); err == nil || !strings.Contains(err.Error(), "TRUSTED_PROXIES: together cover") {
		t.Errorf("256 /8s: %v", err)
	}
	if _, err := config.Load(append(production, "TRUSTED_PROXIES=10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,10.1.0.0/16,2001:db8::/32")); err != nil {
		t.Errorf("the private ranges and a /32: %v", err)
	}
	// A key list that lists no key is neither "no keys" nor a key.
	if _, err := config.Load(append(production, "SERVICE_API_KEYS= , ")); err == nil || !strings.Contains(err.Error(), "SERVICE_API_KEYS: is set but lists no key") {
		t.Errorf("SERVICE_API_KEYS of commas: %v", err)
	}
}

// Credentials first: a caller that no rule could admit without a JWT gets 401 with the
// challenge, whatever its body holds.
func TestMissingCredentialsAre401(t *testing.T) {
	srv := newServer(t, "AUTH_JWT_SECRET="+policyJWTSecret, "AUTH_JWT_ISSUER=i", "AUTH_JWT_AUDIENCE=a")
	for _, body := range []string{`{"room":"r"}`, `{"room":`, `{"room":"r","identity":"a\u0000"}`, `{}`} {
		r := srv.post(t, "/token", body)
		r.wantError(t, 401, "unauthorized", "")
		if r.header.Get("WWW-Authenticate") != "Bearer" {
			t.Errorf("%s: WWW-Authenticate %q", body, r.header.Get("WWW-Authenticate"))
		}
		srv.post(t, "/connection-details", body).wantError(t, 401, "unauthorized", "")
	}
}

// Where the service is open, what LiveKit's agent starter apps ask for is granted.
func TestDevelopmentIsOpen(t *testing.T) {
	srv := newServer(t, "LIVEKIT_API_KEY=devkey", "LIVEKIT_API_SECRET=secret")
	for _, body := range []string{
		`{"room":"r","identity":"a","room_config":{"agents":[{"agent_name":"my-agent"}]}}`,
		`{"room":"r","identity":"a","grants":{"hidden":true,"roomAdmin":true}}`,
	} {
		if r := srv.post(t, "/token", body); r.status != 200 {
			t.Errorf("%s: %d %s", body, r.status, r.raw)
		}
	}
	if r := srv.post(t, "/connection-details", `{"room_config":{"agents":[{"agent_name":"my-agent"}]}}`); r.status != 200 {
		t.Errorf("connection details with an agent: %d %s", r.status, r.raw)
	}
}
