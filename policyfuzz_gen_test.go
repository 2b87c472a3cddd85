package main

import (
	encjson "encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// The generator of FuzzPolicy: random policies in a model the property is checked against,
// written out as the YAML an operator would write; random claims and request bodies.

var permissionNames = []string{"roomCreate", "roomList", "roomRecord", "roomAdmin", "canPublish", "canSubscribe",
	"canPublishData", "canUpdateOwnMetadata", "ingressAdmin", "hidden", "recorder", "agent", "canSubscribeMetrics",
	"canManageAgentSession"}

var allSources = []string{"camera", "microphone", "screen_share", "screen_share_audio"}

type genProfile struct {
	Kind          string            `yaml:"kind,omitempty"`
	MaxTTLSeconds int               `yaml:"max_ttl_seconds,omitempty"`
	Grants        map[string]any    `yaml:"grants,omitempty"`
	CallerMay     genMay            `yaml:"caller_may,omitempty"`
	Fixed         genFixed          `yaml:"fixed,omitempty"`
	grants        map[string]bool   `yaml:"-"`
	sources       []string          `yaml:"-"`
	fixedAttrs    map[string]string `yaml:"-"`
	// mirrors of CallerMay, for the checks
	mayGrants, attributes, roomConfig, agents, kinds []string `yaml:"-"`
	maxTTL                                           int      `yaml:"-"`
	kind                                             string   `yaml:"-"`
	mayMetadata                                      bool     `yaml:"-"`
}

type genMay struct {
	Grants     []string `yaml:"grants,omitempty"`
	Kinds      []string `yaml:"kinds,omitempty"`
	Name       bool     `yaml:"name,omitempty"`
	Metadata   bool     `yaml:"metadata,omitempty"`
	Attributes []string `yaml:"attributes,omitempty"`
	RoomConfig []string `yaml:"room_config,omitempty"`
	Agents     []string `yaml:"agents,omitempty"`
}

type genFixed struct {
	Name       string            `yaml:"name,omitempty"`
	Metadata   map[string]string `yaml:"metadata,omitempty"`
	Attributes map[string]string `yaml:"attributes,omitempty"`
}

type genRule struct {
	Name    string   `yaml:"name"`
	Caller  []string `yaml:"caller,omitempty"`
	Token   string   `yaml:"token,omitempty"`
	When    string   `yaml:"when,omitempty"`
	Rooms   []string `yaml:"rooms,omitempty"`
	Profile string   `yaml:"profile"`
}

type genPolicy struct {
	Version  int                    `yaml:"version"`
	Profiles map[string]*genProfile `yaml:"profiles"`
	Rules    []genRule              `yaml:"rules"`
	profiles map[string]*genProfile `yaml:"-"`
}

func (p *genPolicy) yaml() string {
	out, err := yaml.Marshal(p)
	if err != nil {
		panic(err)
	}
	return string(out)
}

// complete fills in the mirrors the checks read from what the YAML says.
func (p *genPolicy) complete() {
	p.profiles = p.Profiles
	for _, prof := range p.Profiles {
		prof.grants = map[string]bool{}
		for k, v := range prof.Grants {
			if b, ok := v.(bool); ok {
				prof.grants[k] = b
			}
		}
		if list, ok := prof.Grants["canPublishSources"].([]any); ok {
			prof.sources = []string{}
			for _, s := range list {
				prof.sources = append(prof.sources, fmt.Sprint(s))
			}
		}
		if list, ok := prof.Grants["canPublishSources"].([]string); ok {
			prof.sources = list
		}
		prof.mayGrants, prof.attributes, prof.roomConfig, prof.agents, prof.kinds =
			prof.CallerMay.Grants, prof.CallerMay.Attributes, prof.CallerMay.RoomConfig, prof.CallerMay.Agents, prof.CallerMay.Kinds
		prof.maxTTL, prof.kind, prof.mayMetadata = prof.MaxTTLSeconds, prof.Kind, prof.CallerMay.Metadata || len(prof.Fixed.Metadata) > 0
		prof.fixedAttrs = prof.Fixed.Attributes
	}
}

// parseModel reads a policy given as text (the review's cases) into the model.
func parseModel(t *testing.T, text string) *genPolicy {
	var p genPolicy
	if err := yaml.Unmarshal([]byte(text), &p); err != nil || p.Profiles == nil {
		return nil
	}
	p.complete()
	return &p
}

func pick[T any](rng *rand.Rand, from []T) T { return from[rng.IntN(len(from))] }

func subset[T any](rng *rand.Rand, from []T) []T {
	var out []T
	for _, v := range from {
		if rng.IntN(3) == 0 {
			out = append(out, v)
		}
	}
	return out
}

func generatePolicy(rng *rand.Rand) *genPolicy {
	p := &genPolicy{Version: 1, Profiles: map[string]*genProfile{}}
	// One pattern per claim in a policy (a claim read by two patterns does not load).
	orgPattern := pick(rng, []string{"{claims.org}-*", "team-*-{claims.org}-*"})
	names := []string{"alpha", "beta", "gamma"}[:1+rng.IntN(3)]
	for _, name := range names {
		prof := &genProfile{Grants: map[string]any{}}
		for _, perm := range subset(rng, permissionNames) {
			prof.Grants[perm] = true
		}
		if rng.IntN(3) == 0 {
			if s := subset(rng, allSources); len(s) > 0 {
				prof.Grants["canPublishSources"] = s
			}
		}
		if rng.IntN(4) == 0 {
			prof.Kind = pick(rng, []string{"agent", "bridge"})
			if rng.IntN(2) == 0 {
				prof.CallerMay.Kinds = []string{pick(rng, []string{"agent", "bridge"})}
			}
		}
		prof.MaxTTLSeconds = pick(rng, []int{0, 0, 60, 600, 7200})
		switch rng.IntN(4) {
		case 0:
			prof.CallerMay.Grants = []string{"*"}
		case 1:
			prof.CallerMay.Grants = subset(rng, append(permissionNames, "canPublishSources"))
		}
		prof.CallerMay.Name, prof.CallerMay.Metadata = rng.IntN(2) == 0, rng.IntN(2) == 0
		prof.CallerMay.Attributes = subset(rng, []string{"app.*", "role", "*", "lang"})
		if rng.IntN(2) == 0 {
			prof.CallerMay.RoomConfig = subset(rng, []string{"agents", "max_participants", "metadata", "empty_timeout", "*"})
			if slices.Contains(prof.CallerMay.RoomConfig, "agents") || slices.Contains(prof.CallerMay.RoomConfig, "*") {
				prof.CallerMay.Agents = []string{pick(rng, []string{"notetaker", "*"})}
			}
		}
		if rng.IntN(3) == 0 {
			prof.Fixed.Attributes = map[string]string{"org": "{claims.org}"}
		}
		if rng.IntN(5) == 0 {
			prof.Fixed.Metadata = map[string]string{"role": "{claims.role}"}
		}
		p.Profiles[name] = prof
	}
	for i := range 1 + rng.IntN(4) {
		profile := pick(rng, names)
		r := genRule{Name: "rule" + strconv.Itoa(i), Profile: profile}
		if p.Profiles[profile].Kind != "" {
			r.Token = "agent"
			r.Caller = []string{pick(rng, []string{"user", "service"})}
		} else if rng.IntN(4) > 0 {
			r.Caller = subset(rng, []string{"anonymous", "user", "service"})
			if len(r.Caller) == 0 {
				r.Caller = []string{"user"}
			}
		}
		// With service keys set, anonymous callers may not be given agent participants.
		if prof := p.Profiles[profile]; (len(r.Caller) == 0 || slices.Contains(r.Caller, "anonymous")) &&
			(prof.Grants["agent"] == true || slices.Contains(prof.CallerMay.Grants, "agent") || slices.Contains(prof.CallerMay.Grants, "*")) {
			r.Caller = []string{"user", "service"}
		}
		if rng.IntN(3) == 0 {
			r.When = pick(rng, []string{`has(claims.role) && claims.role == "host"`, `"admins" in claims.groups`,
				`request.ttl_seconds < 600`, `claims.role == "host"`, `caller == "user"`})
		}
		if rng.IntN(3) == 0 {
			r.Rooms = subset(rng, []string{"lobby-*", orgPattern, "*-{claims.sub}", "*", "r1"})
			if len(r.Rooms) == 0 {
				r.Rooms = []string{orgPattern}
			}
		}
		p.Rules = append(p.Rules, r)
	}
	if rng.IntN(3) > 0 { // a last rule that admits much, so that many requests are granted
		for _, name := range names {
			if prof := p.Profiles[name]; prof.Kind == "" {
				callers := []string{"user", "service"}
				if rng.IntN(2) == 0 && prof.Grants["agent"] != true && !slices.Contains(prof.CallerMay.Grants, "agent") && !slices.Contains(prof.CallerMay.Grants, "*") {
					callers = nil // every caller
				}
				p.Rules = append(p.Rules, genRule{Name: "fallback", Caller: callers, Profile: name})
				break
			}
		}
	}
	if rng.IntN(2) == 0 {
		p.Profiles["bot"] = &genProfile{Kind: "agent", Grants: map[string]any{"canPublish": true}, CallerMay: genMay{Kinds: []string{"bridge"}}}
		p.Rules = append(p.Rules, genRule{Name: "bots", Caller: []string{"service", "user"}, Token: "agent", Profile: "bot"})
	}
	p.complete()
	return p
}

func generateClaims(rng *rand.Rand) string {
	c := map[string]any{"sub": pick(rng, []string{"ada", "bob", "acme", "eve"})}
	if rng.IntN(4) > 0 {
		c["org"] = pick(rng, []string{"acme", "acme-corp", "ac", "acme-eu", "globex"})
	}
	if rng.IntN(2) == 0 {
		c["role"] = pick(rng, []string{"host", "guest"})
	}
	switch rng.IntN(4) {
	case 0:
		c["groups"] = []string{"admins"}
	case 1:
		c["groups"] = "admins" // a string where a list is expected: a condition that cannot be evaluated
	}
	// AUTH_JWT_ROOMS_CLAIM is rooms: "*" lifts the restriction, no claim allows no room.
	switch rng.IntN(6) {
	case 0:
		c["rooms"] = []string{"r1", "acme-standup", "lobby-1"}
	case 1:
	default:
		c["rooms"] = "*"
	}
	out, _ := encjson.Marshal(c)
	return string(out)
}

// generateBody is a request for endpoint, mostly one the caller could be granted (its own
// identity, a room of its org), sometimes one asking for more.
func generateBody(rng *rand.Rand, endpoint, caller string, claims map[string]any) string {
	sub, _ := claims["sub"].(string)
	org, _ := claims["org"].(string)
	room := pick(rng, []string{"r1", "lobby-1", "acme-standup", "acme-corp-standup", "acme-corp", "x-" + sub, "x-acme-" + sub,
		"team-a-acme-b", "team-a-acme-corp-b", "globex-1", org + "-standup", org + "-standup", "team-a-" + org + "-b"})
	identity := pick(rng, []string{sub, sub, sub, "bob", "bob", "ada", "eve", "agent-x"})
	b := map[string]any{}
	sometimes := func() bool { return rng.IntN(4) == 0 }
	switch endpoint {
	case "/token/agent":
		b["room"], b["agent_id"] = room, pick(rng, []string{sub, sub, "media-bridge"})
		if sometimes() {
			b["kind"] = pick(rng, []string{"agent", "bridge"})
		}
		if sometimes() {
			b["worker"] = true
		}
	case "/connection-details":
		b["room_name"] = room
		if caller != "user" || sometimes() {
			b["participant_identity"] = identity
		}
	default:
		b["room"] = room
		if caller != "user" || sometimes() {
			b["identity"] = identity
		}
		if sometimes() {
			grants := map[string]any{}
			for _, perm := range subset(rng, permissionNames) {
				grants[perm] = rng.IntN(2) == 0
			}
			if rng.IntN(2) == 0 {
				grants["canPublishSources"] = subset(rng, allSources)
				if grants["canPublishSources"] == nil {
					grants["canPublishSources"] = []string{}
				}
			}
			b["grants"] = grants
		}
	}
	if endpoint != "/connection-details" && sometimes() {
		b["ttl_seconds"] = pick(rng, []int{30, 600, 3600, 90000})
	}
	if sometimes() {
		attrs := map[string]string{}
		for _, k := range subset(rng, []string{"app.lang", "role", "org", "lk.agent_name", "sip.x"}) {
			attrs[k] = "v"
		}
		key := "attributes"
		if endpoint == "/connection-details" {
			key = "participant_attributes"
		}
		b[key] = attrs
	}
	if sometimes() {
		key := "metadata"
		if endpoint == "/connection-details" {
			key = "participant_metadata"
		}
		b[key] = `{"x":1}`
	}
	if endpoint != "/token/agent" && sometimes() {
		rc := map[string]any{"agents": []map[string]any{{"agent_name": pick(rng, []string{"notetaker", "outbound"})}}}
		if rng.IntN(2) == 0 {
			rc["max_participants"] = 3
		}
		b["room_config"] = rc
	}
	out, _ := encjson.Marshal(b)
	return string(out)
}

func protojsonMarshal(m proto.Message) ([]byte, error) {
	return protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
}
