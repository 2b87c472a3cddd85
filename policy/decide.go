package policy

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/cel-go/interpreter"
	"github.com/livekit/protocol/livekit"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/token-service/token-service/identifier"
	"github.com/token-service/token-service/token"
)

// request is what a rule's condition and the profile see of one request, whichever endpoint.
type request struct {
	tokenKind  int
	room       string
	identity   string // "" for a signed-in user who named none: its own
	name       string
	metadata   string
	attributes map[string]string
	ttlSeconds *int64
	grants     *token.Grants              // participant tokens
	roomConfig *livekit.RoomConfiguration // participant tokens
	agent      *token.AgentRequest        // agent tokens
}

// vars are a condition's variables, resolved when the condition reads them: the request's
// fields are put in a map only for a condition that reads request.
type vars struct {
	req     *request
	kind    int
	claims  map[string]any
	request map[string]any
}

func (v *vars) ResolveName(name string) (any, bool) {
	switch name {
	case "claims":
		return v.claims, true
	case "caller":
		return callerNames[v.kind], true
	case "request":
		if v.request == nil {
			v.request = v.req.fields()
		}
		return v.request, true
	}
	return nil, false
}

func (v *vars) Parent() interpreter.Activation { return nil }

func (r *request) fields() map[string]any {
	req := map[string]any{
		"token": []string{"participant", "agent"}[r.tokenKind], "room": r.room, "identity": r.identity,
		"name": r.name, "metadata": r.metadata, "attributes": r.attributes, "ttl_seconds": int64(0),
	}
	if r.ttlSeconds != nil {
		req["ttl_seconds"] = *r.ttlSeconds
	}
	if r.agent != nil {
		req["agent_id"], req["kind"], req["worker"] = r.agent.AgentID, r.agent.Kind, r.agent.Worker
	}
	if r.attributes == nil {
		req["attributes"] = map[string]string{}
	}
	return req
}

func kindOf(c token.Caller) int {
	switch {
	case c.Service:
		return service
	case c.User != nil:
		return user
	}
	return anonymous
}

var noClaims = map[string]any{}

func claimsOf(c token.Caller) map[string]any {
	if u := c.SignedIn(); u != nil && u.Claims != nil {
		return u.Claims
	}
	return noClaims
}

func forbid(field, reason string) error { return &token.Forbidden{Field: field, Reason: reason} }

// maxShown is the most of a caller's own text (an attribute key, an agent name) a refusal
// repeats, so that a reply cannot be made to echo a huge value.
const maxShown = 64

func shown(s string) string {
	if len(s) <= maxShown {
		return s
	}
	return strings.ToValidUTF8(s[:maxShown], "") + "…"
}

// decide finds the first rule that matches and grants what its profile allows: every 403 of a
// request that passed validation, and the 401 that credentials would cure.
func (p *Policy) decide(c token.Caller, req *request, s Settings) (token.Grant, error) {
	kind := kindOf(c)
	claims := claimsOf(c)
	if err := holdToCaller(c, req); err != nil {
		return token.Grant{}, err
	}
	var activation *vars
	roomRefused := false
	for _, r := range p.rules {
		if r.token != req.tokenKind || !r.callers[kind] {
			continue
		}
		// Rooms first: a rule whose rooms do not match would grant nothing whatever its
		// condition says.
		if r.rooms != nil && !anyRoomMatches(r.rooms, req.room, claims) {
			roomRefused = true
			continue
		}
		if r.when != nil {
			if activation == nil {
				activation = &vars{req: req, kind: kind, claims: claims}
			}
			holds, err := evaluate(r.when, activation)
			if err != nil {
				// Fail closed: a condition that cannot be evaluated (a claim of another type,
				// a missing key, the cost limit) refuses, rather than letting a later, wider
				// rule match. The reply names the rule, never a claim's value.
				return token.Grant{}, forbid("", "the condition of policy rule "+r.name+" cannot be evaluated for this request, so it is refused")
			}
			if !holds {
				continue
			}
		}
		return r.profile.grant(r.name, c, kind, claims, req, limits{s.DefaultTTL, s.MaxTTL})
	}
	switch {
	case roomRefused:
		return token.Grant{}, forbid("room", "the policy does not allow this caller into this room")
	case req.tokenKind == agentToken && !s.ServiceKeys && p.accepts[agentToken][service]:
		return token.Grant{}, forbid("", "agent tokens need a service API key, and SERVICE_API_KEYS is unset")
	}
	return token.Grant{}, forbid("", "no rule of the policy allows this request")
}

// holdToCaller applies what no rule can widen: a signed-in user is who its identity provider
// says, in the rooms it says (the rooms claim), for an agent token too; and no participant but
// an agent carries an identity in the agent- namespace.
func holdToCaller(c token.Caller, req *request) error {
	u := c.SignedIn()
	if u != nil && req.tokenKind == participantToken {
		if req.identity == "" {
			req.identity = u.Identity
		} else if req.identity != u.Identity {
			return forbid("identity", "identity must be the authenticated user's own")
		}
	}
	if u != nil && req.tokenKind == agentToken && req.agent.AgentID != u.Identity {
		// An agent token of a user's is named after the user, or the user could take the
		// identity of another agent (and LiveKit would disconnect that agent).
		return forbid("agent_id", "a signed-in user's agent token is its own: agent_id must be the authenticated user's identity")
	}
	if u != nil && u.RoomsRestricted && !slices.Contains(u.Rooms, req.room) {
		return forbid("room", "the authenticated user may not join this room")
	}
	// LiveKit disconnects the older of two participants with one identity, so a participant
	// holding an agent's identity could kick the agent out of the room.
	if req.tokenKind == participantToken && reservedForAgents(req.identity) {
		return forbid("identity", "identity must not begin with "+token.AgentPrefix+" in any case or width: that namespace is for agent tokens")
	}
	return nil
}

// reservedForAgents reports whether identity falls in the agent- namespace once compatibility
// forms and case are folded away (NFKC, then case folding), so that AGENT-x and fullwidth
// ａｇｅｎｔ-x, which look like agent-x in a UI, are reserved too.
func reservedForAgents(identity string) bool {
	if isASCII(identity) { // the common case, without the two allocations below
		return len(identity) >= len(token.AgentPrefix) && strings.EqualFold(identity[:len(token.AgentPrefix)], token.AgentPrefix)
	}
	return strings.HasPrefix(cases.Fold().String(norm.NFKC.String(identity)), token.AgentPrefix)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// reservedAttribute reports whether an attribute key is in one of LiveKit's reserved namespaces
// (lk., sip.), which LiveKit and its agents read as facts about a participant (lk.agent_name,
// sip.phoneNumber): only a backend may set them, under every policy.
func reservedAttribute(key string) bool {
	return strings.HasPrefix(key, "lk.") || strings.HasPrefix(key, "sip.")
}

func anyRoomMatches(patterns []roomPattern, room string, claims map[string]any) bool {
	for _, p := range patterns {
		if p.match(room, claims) {
			return true
		}
	}
	return false
}

// limits are the configuration's bounds on every token, whatever the profile says.
type limits struct {
	defaultTTL, maxTTL time.Duration
}

// grant is what the profile gives this request, or the first thing it asks for beyond it.
func (cp *compiledProfile) grant(ruleName string, c token.Caller, kind int, claims map[string]any, req *request, lim limits) (token.Grant, error) {
	g := token.Grant{Rule: ruleName, Profile: cp.name, Room: req.room, Identity: req.identity, Kind: cp.kind, Permissions: cp.grants, PublishSources: cp.sources}
	if req.grants != nil {
		if err := cp.choosePermissions(&g, req.grants); err != nil {
			return token.Grant{}, err
		}
	}
	if a := req.agent; a != nil {
		if err := cp.chooseAgent(&g, a); err != nil {
			return token.Grant{}, err
		}
	}
	var err error
	if g.TTL, err = cp.ttl(req.ttlSeconds, lim); err != nil {
		return token.Grant{}, err
	}
	if g.Name, err = cp.chooseName(c, claims, req.name); err != nil {
		return token.Grant{}, err
	}
	if g.Metadata, err = cp.chooseMetadata(claims, req.metadata); err != nil {
		return token.Grant{}, err
	}
	if g.Attributes, err = cp.chooseAttributes(kind, claims, req.attributes); err != nil {
		return token.Grant{}, err
	}
	if req.roomConfig != nil {
		if err := cp.checkRoomConfig(req.roomConfig); err != nil {
			return token.Grant{}, err
		}
		g.RoomConfig = req.roomConfig
	}
	return g, nil
}

// choosePermissions applies the permissions the caller asked to change, where it may.
func (cp *compiledProfile) choosePermissions(g *token.Grant, asked *token.Grants) error {
	for i, perm := range permissions {
		want := perm.requested(asked)
		if want == nil || *want == *perm.granted(&g.Permissions) {
			continue
		}
		if !cp.mayGrant[i] {
			return forbid("grants."+perm.name, "grants."+perm.name+" is not for this caller to change (policy profile "+cp.name+")")
		}
		*perm.granted(&g.Permissions) = *want
	}
	sources := asked.CanPublishSources
	if sources == nil || slices.Equal(sources, cp.sources) {
		return nil
	}
	// Only ever narrower: a list, never an empty one (token's Validate), within the profile's.
	narrows := len(sources) > 0 && (cp.sources == nil || !slices.ContainsFunc(sources, func(s string) bool { return !slices.Contains(cp.sources, s) }))
	if !cp.maySources || !narrows {
		return forbid("grants.canPublishSources", "grants.canPublishSources may only narrow what policy profile "+cp.name+" allows")
	}
	g.PublishSources = sources
	return nil
}

func (cp *compiledProfile) chooseAgent(g *token.Grant, a *token.AgentRequest) error {
	if a.Worker != g.Agent {
		if !cp.mayGrant[agentPermission] {
			return forbid("worker", "worker is not for this caller to change (policy profile "+cp.name+")")
		}
		g.Agent = a.Worker
	}
	if a.Kind != "" {
		asked := livekit.ParticipantInfo_AGENT
		if a.Kind == "bridge" {
			asked = livekit.ParticipantInfo_BRIDGE
		}
		if asked != cp.kind && !slices.Contains(cp.kinds, asked) {
			return forbid("kind", "kind "+a.Kind+" is not allowed by policy profile "+cp.name)
		}
		g.Kind = asked
	}
	return nil
}

func (cp *compiledProfile) ttl(requested *int64, lim limits) (time.Duration, error) {
	maxTTL := lim.maxTTL
	if cp.maxTTL > 0 && cp.maxTTL < maxTTL {
		maxTTL = cp.maxTTL
	}
	if requested == nil {
		return min(lim.defaultTTL, maxTTL), nil
	}
	ttl := time.Duration(*requested) * time.Second
	if ttl > maxTTL {
		return 0, forbid("ttl_seconds", "ttl_seconds may be at most "+itoa(int64(maxTTL/time.Second))+" for policy profile "+cp.name)
	}
	return ttl, nil
}

func (cp *compiledProfile) chooseName(c token.Caller, claims map[string]any, asked string) (string, error) {
	if cp.fixedName != nil {
		name, missing, ok := cp.fixedName.render(claims)
		if !ok {
			return "", forbid("name", "policy profile "+cp.name+" takes the name from claim "+missing+", which the caller's token does not carry")
		}
		if err := identifier.CheckDisplayName(name); err != nil {
			return "", forbid("name", "policy profile "+cp.name+" fills the name in from the caller's claims, and the result is not a display name the service issues")
		}
		if asked != "" && asked != name {
			return "", forbid("name", "name is fixed by policy profile "+cp.name)
		}
		return name, nil
	}
	if asked != "" {
		if !cp.mayName {
			return "", forbid("name", "name is not for this caller to choose (policy profile "+cp.name+")")
		}
		return asked, nil
	}
	if u := c.SignedIn(); u != nil {
		return u.Name, nil // the identity provider's display name (token's Validate checked it)
	}
	return "", nil
}

func (cp *compiledProfile) chooseMetadata(claims map[string]any, asked string) (string, error) {
	if cp.fixedMetadata == nil {
		if asked != "" && !cp.mayMetadata {
			return "", forbid("metadata", "metadata is not for this caller to choose (policy profile "+cp.name+")")
		}
		return asked, nil
	}
	// One JSON object, keys in order, built directly: it is on every request of the profile.
	raw := []byte{'{'}
	for i, f := range cp.fixedMetadata {
		v, missing, ok := f.value.render(claims)
		if !ok {
			return "", forbid("metadata", "policy profile "+cp.name+" takes metadata from claim "+missing+", which the caller's token does not carry")
		}
		if i > 0 {
			raw = append(raw, ',')
		}
		raw, _ = jsontext.AppendQuote(raw, f.key)
		raw = append(raw, ':')
		raw, _ = jsontext.AppendQuote(raw, v)
	}
	metadata := string(append(raw, '}'))
	if len(metadata) > token.MaxMetadataBytes {
		return "", forbid("metadata", "policy profile "+cp.name+" fills metadata in from the caller's claims, and the result is over LiveKit's limit")
	}
	if asked != "" && asked != metadata {
		return "", forbid("metadata", "metadata is fixed by policy profile "+cp.name)
	}
	return metadata, nil
}

func (cp *compiledProfile) chooseAttributes(kind int, claims map[string]any, asked map[string]string) (map[string]string, error) {
	for key := range asked {
		if cp.refuseAttribute(kind, key) != nil {
			// The first refused key in order, so that every replica and policy explain name
			// the same one.
			keys := slices.Sorted(maps.Keys(asked))
			for _, k := range keys {
				if err := cp.refuseAttribute(kind, k); err != nil {
					return nil, err
				}
			}
		}
	}
	if len(cp.fixedAttrs) == 0 {
		return asked, nil
	}
	out := make(map[string]string, len(asked)+len(cp.fixedAttrs))
	size := 0
	for k, v := range asked {
		out[k] = v
		size += len(k) + len(v)
	}
	for _, f := range cp.fixedAttrs {
		v, missing, ok := f.value.render(claims)
		if !ok {
			return nil, forbid("attributes", "policy profile "+cp.name+" takes attribute "+f.key+" from claim "+missing+", which the caller's token does not carry")
		}
		if a, sent := asked[f.key]; sent {
			if a != v {
				return nil, forbid("attributes", "attribute "+f.key+" is fixed by policy profile "+cp.name)
			}
			size -= len(f.key) + len(a)
		}
		out[f.key] = v
		size += len(f.key) + len(v)
	}
	if size > token.MaxAttributesBytes {
		return nil, forbid("attributes", "policy profile "+cp.name+" fills attributes in from the caller's claims, and the result is over LiveKit's limit")
	}
	return out, nil
}

// refuseAttribute says why the caller may not set attribute key, if it may not.
func (cp *compiledProfile) refuseAttribute(kind int, key string) error {
	switch {
	case kind != service && reservedAttribute(key):
		return forbid("attributes", "attribute "+shown(key)+" is in LiveKit's reserved namespaces (lk., sip.), which only a service may set")
	case cp.fixedAttr(key): // compared with the fixed value
		return nil
	case !slices.ContainsFunc(cp.attributes, func(k keyPattern) bool { return k.match(key) }):
		return forbid("attributes", "attribute "+shown(key)+" is not for this caller to set (policy profile "+cp.name+")")
	}
	return nil
}

func (cp *compiledProfile) fixedAttr(key string) bool {
	return slices.ContainsFunc(cp.fixedAttrs, func(f fixedValue) bool { return f.key == key })
}

func (cp *compiledProfile) checkRoomConfig(rc *livekit.RoomConfiguration) error {
	if !cp.allConfig {
		var refused []protoreflect.FieldDescriptor
		rc.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
			if !cp.roomConfig[string(fd.Name())] {
				refused = append(refused, fd)
			}
			return true
		})
		if len(refused) > 0 { // the first by field number, whatever order Range took
			fd := slices.MinFunc(refused, func(a, b protoreflect.FieldDescriptor) int { return int(a.Number() - b.Number()) })
			name := string(fd.Name())
			return forbid("room_config."+name, "room_config."+name+" is not for this caller to set (policy profile "+cp.name+")")
		}
	}
	if cp.allAgents {
		return nil
	}
	for _, a := range rc.GetAgents() {
		if !cp.agents[a.GetAgentName()] {
			return forbid("room_config.agents", "agent "+shown(a.GetAgentName())+" is not one this caller may dispatch (policy profile "+cp.name+")")
		}
	}
	return nil
}
