package main

import (
	"bytes"
	"context"
	encjson "encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/golang-jwt/jwt/v5"
	"github.com/livekit/protocol/auth"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/token-service/token-service/config"
	"github.com/token-service/token-service/handlers"
	"github.com/token-service/token-service/internal/app"
	"github.com/token-service/token-service/internal/testenv"
	"github.com/token-service/token-service/logging"
)

// FuzzPolicy is the grant policy's promise as a property: for generated policies, claims,
// callers and requests, (1) policy explain answers what the server answers (status, code,
// field, and for a token its identity, room, name, metadata, attributes, kind, TTL, grants and
// room configuration), and (2) every token the server issues is within the profile of the rule
// that matched: no permission, source, attribute, room_config field, agent, kind or TTL beyond
// it, and a signed-in user's token is its own identity in its own rooms. Run longer with
//
//	go test -run '^$' -fuzz '^FuzzPolicy$' -fuzztime 10m .
func FuzzPolicy(f *testing.F) {
	// The outside review's examples (issue 23), then generated policies.
	for _, c := range reviewCases {
		f.Add(uint64(0), c.policy, c.claims, c.caller, c.endpoint, c.body)
	}
	for seed := range uint64(24) {
		f.Add(seed+1, "", "", uint8(seed%3), uint8(seed%3), "")
	}
	f.Fuzz(func(t *testing.T, seed uint64, policyText, claimsJSON string, caller, endpoint uint8, body string) {
		checkPolicyCase(t, seed, policyText, claimsJSON, caller, endpoint, body)
	})
}

// TestPolicyPropertyOnGeneratedCases runs FuzzPolicy's check on generated cases alone, and makes
// sure they issue tokens often enough for the property to be tried, not only refusals.
func TestPolicyPropertyOnGeneratedCases(t *testing.T) {
	issued := 0
	const cases = 400
	for seed := range uint64(cases) {
		if checkPolicyCase(t, seed+1000, "", "", uint8(seed%3), uint8(seed/3%3), "") {
			issued++
		}
	}
	if issued < cases/10 {
		t.Fatalf("only %d of %d generated cases issued a token: the generator no longer exercises the property", issued, cases)
	}
	t.Logf("%d of %d generated cases issued a token", issued, cases)
}

// checkPolicyCase checks one input and reports whether the server issued a token for it. An
// empty policy, claims or body is generated from seed.
func checkPolicyCase(t *testing.T, seed uint64, policyText, claimsJSON string, caller, endpoint uint8, body string) bool {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var model *genPolicy
	if policyText == "" {
		model = generatePolicy(rng)
		policyText = model.yaml()
	}
	if claimsJSON == "" {
		claimsJSON = generateClaims(rng)
	}
	ep := []string{"/token", "/token/agent", "/connection-details"}[int(endpoint)%3]
	who := []string{"anonymous", "user", "service"}[int(caller)%3]
	var claims map[string]any
	if encjson.Unmarshal([]byte(claimsJSON), &claims) != nil || claims == nil || len(claimsJSON) > 4096 {
		return false
	}
	if body == "" {
		body = generateBody(rng, ep, who, claims)
	}
	if len(body) > 64<<10 {
		return false
	}
	claims["iss"], claims["aud"], claims["exp"] = fuzzIssuer, fuzzAudience, float64(time.Now().Add(time.Hour).Unix())
	srv, env, ok := fuzzServers.get(t, policyText)
	if !ok {
		return false // a policy that does not load is policy check's business (TestPolicyCheck...)
	}
	server := serve(t, srv, ep, who, claims, body)
	if !jsontext.Value(body).IsValid() {
		// explain reads its request as JSON, so it cannot be handed this one.
		if server.status < 400 || server.status > 415 {
			t.Fatalf("a body that is not JSON: %+v", server)
		}
		return false
	}
	if sub, _ := claims["sub"].(string); who == "user" && sub == "" {
		// A JWT without the identity claim names nobody: its credentials do not verify.
		if server.status != http.StatusUnauthorized {
			t.Fatalf("a user token without sub: %+v", server)
		}
		return false
	}
	explained := explainFor(t, env, ep, who, claims, body)
	if server.status != explained.status || server.code != explained.code || server.field != explained.field {
		t.Fatalf("server %+v, explain %+v\npolicy:\n%s\nclaims %s caller %s %s %s", server, explained, policyText, claimsJSON, who, ep, body)
	}
	if server.status != http.StatusOK {
		return false
	}
	if msg := sameToken(server, explained); msg != "" {
		t.Fatalf("%s\npolicy:\n%s\nclaims %s caller %s %s %s", msg, policyText, claimsJSON, who, ep, body)
	}
	if model == nil {
		model = parseModel(t, policyText)
	}
	if model == nil {
		return true
	}
	if msg := withinProfile(model, explained.profile, server, who, claims); msg != "" {
		t.Fatalf("wider than profile %s: %s\npolicy:\n%s\nclaims %s caller %s %s %s", explained.profile, msg, policyText, claimsJSON, who, ep, body)
	}
	return true
}

const (
	fuzzIssuer    = "https://idp.example.com"
	fuzzAudience  = "video-app"
	fuzzJWTSecret = "fuzz-user-jwt-secret-0123456789abcdef"
	fuzzKey       = "APIfuzz"
	fuzzSecret    = "fuzz-livekit-secret-0123456789abcdef"
	fuzzService   = "fuzz-service-key-0123456789abcdef-xyz"
)

// reviewCases are the findings of issue 23's review as inputs.
var reviewCases = []struct {
	policy, claims   string
	caller, endpoint uint8
	body             string
}{
	// Cross-tenant rooms through the shipped example, on /token and /connection-details.
	{multiTenant, `{"sub":"ada","org":"acme"}`, 1, 0, `{"room":"acme-corp-standup"}`},
	{multiTenant, `{"sub":"ada","org":"acme"}`, 1, 2, `{"room_name":"acme-corp-board","room_config":{"agents":[{"agent_name":"notetaker","metadata":"x"}]}}`},
	{multiTenant, `{"sub":"bo","org":"acme-corp"}`, 1, 0, `{"room":"acme-corp-standup"}`},
	{multiTenant, `{"sub":"cy","org":"ac"}`, 1, 0, `{"room":"acme-x"}`},
	// An empty source list.
	{"version: 1\nprofiles:\n  m: {grants: {canPublish: true, canPublishSources: [camera, microphone]}, caller_may: {grants: [canPublishSources]}}\nrules:\n  - {name: r, caller: user, profile: m}\n",
		`{"sub":"ada"}`, 1, 0, `{"room":"r","grants":{"canPublishSources":[]}}`},
	// A user's agent token outside its rooms claim, and under another identity.
	{"version: 1\nprofiles:\n  a: {kind: agent, grants: {canPublish: true}}\nrules:\n  - {name: r, caller: user, token: agent, profile: a}\n",
		`{"sub":"bob","rooms":["r1"]}`, 1, 1, `{"room":"secret-room","agent_id":"bob"}`},
	{"version: 1\nprofiles:\n  a: {kind: agent, grants: {canPublish: true}}\nrules:\n  - {name: r, caller: user, token: agent, profile: a}\n",
		`{"sub":"bob","rooms":["r1"]}`, 1, 1, `{"room":"r1","agent_id":"media-bridge"}`},
	// A condition that cannot be evaluated, before a wider rule.
	{"version: 1\nprofiles:\n  v: {grants: {canSubscribe: true}}\n  s: {grants: {canPublish: true}}\nrules:\n  - {name: viewers, caller: user, when: '\"v\" in claims.groups', profile: v}\n  - {name: all, caller: user, profile: s}\n",
		`{"sub":"eve","groups":"v"}`, 1, 0, `{"room":"r"}`},
	// A missing credential with a body that is not even valid.
	{multiTenant, `{}`, 0, 0, `{"room":`},
}

const multiTenant = `version: 1
profiles:
  member:
    grants: {canPublish: true, canSubscribe: true, canPublishData: true}
    caller_may:
      name: true
      metadata: true
      attributes: ["app.*"]
      grants: [canPublish, canPublishSources]
      room_config: [agents]
      agents: [notetaker]
    fixed:
      attributes: {org: "{claims.org}"}
  backend:
    grants: {canPublish: true, canSubscribe: true, canPublishData: true}
    caller_may: {grants: ["*"], name: true, metadata: true, attributes: ["*"], room_config: ["*"], agents: ["*"]}
rules:
  - {name: backends, caller: service, profile: backend}
  - {name: org-members, caller: user, rooms: ["{claims.org}-*"], profile: member}
`

// fuzzServers keeps one router per policy text (a few at most), since building one per input
// would be most of the run.
var fuzzServers = &routerCache{routers: map[string]cachedRouter{}}

type routerCache struct {
	mu      sync.Mutex
	routers map[string]cachedRouter
}

type cachedRouter struct {
	handler http.Handler
	env     []string
	ok      bool
	stop    func() error
}

func (c *routerCache) get(t *testing.T, policyText string) (http.Handler, []string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.routers[policyText]; ok {
		return r.handler, r.env, r.ok
	}
	if len(c.routers) >= 32 {
		for _, r := range c.routers {
			if r.stop != nil {
				_ = r.stop()
			}
		}
		clear(c.routers)
	}
	dir, err := os.MkdirTemp("", "policyfuzz")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, []byte(policyText), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"APP_ENV=production", "LIVEKIT_API_KEY=" + fuzzKey, "LIVEKIT_API_SECRET=" + fuzzSecret,
		"LIVEKIT_WS_URL=wss://lk.example.com", "LIVEKIT_API_URL=http://127.0.0.1:9", "LIVEKIT_API_TIMEOUT_MS=50",
		"SERVICE_API_KEYS=" + fuzzService, "AUTH_JWT_SECRET=" + fuzzJWTSecret, "AUTH_JWT_ISSUER=" + fuzzIssuer,
		"AUTH_JWT_AUDIENCE=" + fuzzAudience, "AUTH_JWT_ROOMS_CLAIM=rooms", "RATE_LIMIT_MAX_REQUESTS=0",
		"LOG_LEVEL=disabled", "CORS_ORIGINS=https://app.example.com", "POLICY_FILE=" + path}
	cfg, err := config.Load(env)
	if err != nil {
		t.Fatal(err)
	}
	log := logging.New(&bytes.Buffer{}, zerolog.Disabled, false)
	// Not the iteration's context: the router outlives the input that built it.
	deps, stop, err := app.New(context.Background(), cfg, "fuzz", log, log)
	if err == nil {
		_ = stop()
	}
	r := cachedRouter{env: env, ok: err == nil}
	if r.ok {
		r.handler = handlers.NewRouter(deps)
	}
	c.routers[policyText] = r
	return r.handler, env, r.ok
}

// answer is one request's outcome, from the server or from explain.
type answer struct {
	status                         int
	code, field                    string
	profile                        string
	identity, room, name, metadata string
	kind                           string
	ttl                            int64
	attributes                     map[string]string
	grants                         *auth.VideoGrant
	roomConfig                     map[string]any
	token                          *auth.ClaimGrants
}

func serve(t *testing.T, router http.Handler, endpoint, caller string, claims map[string]any, body string) answer {
	req := httptest.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	switch caller {
	case "service":
		req.Header.Set("Authorization", "Bearer "+fuzzService)
	case "user":
		req.Header.Set("Authorization", "Bearer "+testenv.MintJWT(t, jwt.SigningMethodHS256, []byte(fuzzJWTSecret), "", jwt.MapClaims(claims)))
	}
	rec := httptest.NewRecorder()
	router.ServeHTTP(rec, req)
	var reply map[string]any
	if err := encjson.Unmarshal(rec.Body.Bytes(), &reply); err != nil {
		t.Fatalf("%s %s: reply is not JSON: %s", endpoint, body, rec.Body)
	}
	a := answer{status: rec.Code}
	if rec.Code != http.StatusOK {
		a.code, _ = reply["error"].(string)
		a.field, _ = reply["field"].(string)
		return a
	}
	raw, _ := reply["token"].(string)
	if endpoint == "/connection-details" {
		raw, _ = reply["participant_token"].(string)
	}
	parsed, err := auth.ParseAPIToken(raw)
	if err != nil {
		t.Fatal(err)
	}
	registered, grants, err := parsed.Verify(fuzzSecret)
	if err != nil {
		t.Fatal(err)
	}
	a.token = grants
	a.identity, a.name, a.metadata, a.attributes, a.grants = grants.Identity, grants.Name, grants.Metadata, grants.Attributes, grants.Video
	a.room = grants.Video.Room
	a.kind = strings.ToLower(grants.GetParticipantKind().String())
	a.ttl = registered.ExpiresAt.Unix() - registered.NotBefore.Unix()
	if rc := grants.GetRoomConfiguration(); rc != nil {
		a.roomConfig = protoMap(t, rc.ProtoReflect())
	}
	return a
}

func explainFor(t *testing.T, env []string, endpoint, caller string, claims map[string]any, body string) answer {
	in, _ := encjson.Marshal(map[string]any{"endpoint": endpoint, "caller": caller, "claims": claims, "request": encjson.RawMessage(body)})
	policyFile := ""
	for _, kv := range env {
		if p, ok := strings.CutPrefix(kv, "POLICY_FILE="); ok {
			policyFile = p
		}
	}
	var out, errOut bytes.Buffer
	code := policyCommand([]string{"explain", policyFile}, env, bytes.NewReader(in), &out, &errOut)
	var reply map[string]any
	if err := encjson.Unmarshal(out.Bytes(), &reply); err != nil && code != 2 {
		t.Fatalf("explain printed no JSON (exit %d): %s %s", code, out.String(), errOut.String())
	}
	switch code {
	case 0:
	case 1:
		refused, _ := reply["refused"].(map[string]any)
		status, _ := refused["status"].(float64)
		a := answer{status: int(status)}
		a.code, _ = refused["error"].(string)
		a.field, _ = refused["field"].(string)
		return a
	default:
		t.Fatalf("explain exit %d: %s", code, errOut.String())
	}
	a := answer{status: http.StatusOK}
	a.profile, _ = reply["profile"].(string)
	a.identity, _ = reply["identity"].(string)
	a.room, _ = reply["room"].(string)
	a.name, _ = reply["name"].(string)
	a.metadata, _ = reply["metadata"].(string)
	a.kind, _ = reply["kind"].(string)
	ttl, _ := reply["ttl_seconds"].(float64)
	a.ttl = int64(ttl)
	if attrs, ok := reply["attributes"].(map[string]any); ok && len(attrs) > 0 {
		a.attributes = map[string]string{}
		for k, v := range attrs {
			a.attributes[k], _ = v.(string)
		}
	}
	grants, _ := encjson.Marshal(reply["grants"])
	a.grants = &auth.VideoGrant{}
	if err := encjson.Unmarshal(grants, a.grants); err != nil {
		t.Fatal(err)
	}
	a.roomConfig, _ = reply["room_config"].(map[string]any)
	return a
}

// protoMap is a message as protojson would write it with proto names, as explain prints it.
func protoMap(t *testing.T, m protoreflect.Message) map[string]any {
	raw, err := protojsonMarshal(m.Interface())
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := encjson.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameToken compares the server's token with explain's grant; "" when they agree. A room or
// identity /connection-details made up (room-<random>, user-<random>) differs by design.
func sameToken(server, explained answer) string {
	made := func(a, b, prefix string) bool {
		return a == b || strings.HasPrefix(a, prefix) && strings.HasPrefix(b, prefix) && len(a) == len(b)
	}
	videoA, videoB := *server.grants, *explained.grants
	videoB.Room = videoA.Room
	switch {
	case !made(server.identity, explained.identity, "user-"), !made(server.room, explained.room, "room-"):
		return fmt.Sprintf("identity/room: server %q %q, explain %q %q", server.identity, server.room, explained.identity, explained.room)
	case server.name != explained.name, server.metadata != explained.metadata, server.kind != explained.kind, server.ttl != explained.ttl:
		return fmt.Sprintf("server %+v, explain %+v", server, explained)
	case !reflect.DeepEqual(nonEmpty(server.attributes), nonEmpty(explained.attributes)):
		return fmt.Sprintf("attributes: server %v, explain %v", server.attributes, explained.attributes)
	case !reflect.DeepEqual(videoA, videoB):
		return fmt.Sprintf("grants: server %+v, explain %+v", videoA, videoB)
	case !reflect.DeepEqual(server.roomConfig, explained.roomConfig):
		return fmt.Sprintf("room_config: server %v, explain %v", server.roomConfig, explained.roomConfig)
	}
	return ""
}

func nonEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

// withinProfile says how the server's token goes beyond the profile that granted it, or "".
func withinProfile(p *genPolicy, profileName string, a answer, caller string, claims map[string]any) string {
	prof := p.profiles[profileName]
	if prof == nil {
		return "no such profile in the policy"
	}
	may := func(perm string) bool {
		return slices.Contains(prof.mayGrants, "*") || slices.Contains(prof.mayGrants, perm)
	}
	var video map[string]any
	raw, _ := encjson.Marshal(a.grants)
	_ = encjson.Unmarshal(raw, &video)
	for _, perm := range permissionNames {
		got, _ := video[perm].(bool)
		if got != prof.grants[perm] && !may(perm) {
			return fmt.Sprintf("%s is %v, the profile says %v and its caller may not change it", perm, got, prof.grants[perm])
		}
	}
	sources := a.grants.CanPublishSources
	if a.grants.GetCanPublish() {
		if prof.sources != nil && len(sources) == 0 {
			return "every source, where the profile allows only " + strings.Join(prof.sources, ",")
		}
		for _, s := range sources {
			if prof.sources != nil && !slices.Contains(prof.sources, s) {
				return "source " + s + " beyond the profile's"
			}
		}
		if len(sources) > 0 && !slices.Equal(sources, prof.sources) && !may("canPublishSources") {
			return "sources changed without caller_may canPublishSources"
		}
	}
	wantKind := prof.kind
	if wantKind == "" {
		wantKind = "standard"
	}
	if a.kind != wantKind && !slices.Contains(prof.kinds, a.kind) {
		return "kind " + a.kind
	}
	if a.ttl > 86400 || prof.maxTTL > 0 && a.ttl > int64(prof.maxTTL) {
		return fmt.Sprintf("ttl %d", a.ttl)
	}
	for k := range a.attributes {
		if _, fixed := prof.fixedAttrs[k]; fixed {
			continue
		}
		if !slices.ContainsFunc(prof.attributes, func(pat string) bool {
			prefix, wild := strings.CutSuffix(pat, "*")
			return !wild && k == pat || wild && strings.HasPrefix(k, prefix)
		}) {
			return "attribute " + k
		}
		if caller != "service" && (strings.HasPrefix(k, "lk.") || strings.HasPrefix(k, "sip.")) {
			return "reserved attribute " + k + " for a " + caller
		}
	}
	if a.metadata != "" && !prof.mayMetadata && len(prof.fixedAttrs) == 0 {
		return "metadata the caller may not choose"
	}
	if rc := a.token.GetRoomConfiguration(); rc != nil {
		var refused string
		rc.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
			if !slices.Contains(prof.roomConfig, "*") && !slices.Contains(prof.roomConfig, string(fd.Name())) {
				refused = "room_config." + string(fd.Name())
			}
			return refused == ""
		})
		if refused != "" {
			return refused
		}
		for _, agent := range rc.GetAgents() {
			if !slices.Contains(prof.agents, "*") && !slices.Contains(prof.agents, agent.GetAgentName()) {
				return "agent " + agent.GetAgentName()
			}
		}
	}
	if caller == "user" {
		sub, _ := claims["sub"].(string)
		if a.kind == "standard" && a.identity != sub || a.kind != "standard" && a.identity != "agent-"+sub {
			return "identity " + a.identity + " for user " + sub
		}
		if rooms, ok := claims["rooms"].([]any); ok && !slices.Contains(rooms, any(a.room)) {
			return "room " + a.room + " outside the rooms claim"
		}
	}
	return ""
}
