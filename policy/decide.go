package policy

import (
	"slices"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/cel-go/interpreter"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/token-service/token-service/token"
)

// limits are the configuration's bounds on every token, whatever the profile says.
type limits struct {
	defaultTTL, maxTTL time.Duration
}

// request is what a rule's condition and the profile see of one request, whichever endpoint.
type request struct {
	tokenKind  int
	room       string
	identity   string
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
	if c.User != nil && !c.Service && c.User.Claims != nil {
		return c.User.Claims
	}
	return noClaims
}

// decide finds the first rule that matches and grants what its profile allows.
func (p *Policy) decide(c token.Caller, req *request, lim limits, backend backendAccess) (token.Grant, error) {
	kind := kindOf(c)
	claims := claimsOf(c)
	if u := c.User; u != nil && kind == user && req.tokenKind == participantToken {
		// Who a user is, and which rooms its identity provider lets it into, are facts of its
		// token that no rule can widen.
		if req.identity != u.Identity {
			return token.Grant{}, &token.Forbidden{Field: "identity", Reason: "identity must be the authenticated user's own"}
		}
		if u.RoomsRestricted && !slices.Contains(u.Rooms, req.room) {
			return token.Grant{}, &token.Forbidden{Field: "room", Reason: "the authenticated user may not join this room"}
		}
	}
	var activation *vars
	roomRefused := false
	for _, r := range p.rules {
		if r.token != req.tokenKind || !r.callers[kind] {
			continue
		}
		if r.when != nil {
			if activation == nil {
				activation = &vars{req: req, kind: kind, claims: claims}
			}
			if !holds(r.when, activation) {
				continue
			}
		}
		if len(r.rooms) > 0 && !anyRoomMatches(r.rooms, req.room, claims) {
			roomRefused = true
			continue
		}
		return r.profile.grant(r.name, c, kind, claims, req, lim)
	}
	switch {
	case roomRefused:
		return token.Grant{}, &token.Forbidden{Field: "room", Reason: "the policy does not allow this caller into this room"}
	case p.credentialsWouldHelp(req.tokenKind, kind, backend):
		return token.Grant{}, token.ErrUnauthenticated
	case req.tokenKind == agentToken && !backend.serviceKeys && p.accepts[agentToken][service]:
		return token.Grant{}, &token.Forbidden{Reason: "agent tokens need a service API key, and SERVICE_API_KEYS is unset"}
	}
	return token.Grant{}, &token.Forbidden{Reason: "no rule of the policy allows this request"}
}

func anyRoomMatches(patterns []roomPattern, room string, claims map[string]any) bool {
	for _, p := range patterns {
		if p.match(room, claims) {
			return true
		}
	}
	return false
}

// credentialsWouldHelp is true when no rule for this token admits the caller's kind at all, but
// one admits a kind of caller the service can recognise: the answer is then 401, not 403.
func (p *Policy) credentialsWouldHelp(tokenKind, kind int, backend backendAccess) bool {
	if p.accepts[tokenKind][kind] {
		return false
	}
	return backend.serviceKeys && kind != service && p.accepts[tokenKind][service] ||
		backend.userAuth && kind == anonymous && p.accepts[tokenKind][user]
}

func forbid(field, reason string) error { return &token.Forbidden{Field: field, Reason: reason} }

// grant is what the profile gives this request, or the first thing it asks for beyond it.
func (cp *compiledProfile) grant(ruleName string, c token.Caller, kind int, claims map[string]any, req *request, lim limits) (token.Grant, error) {
	g := token.Grant{Rule: ruleName, Profile: cp.name, Room: req.room, Identity: req.identity, Kind: cp.kind, Permissions: cp.grants, PublishSources: cp.sources}
	if req.grants != nil {
		for i, perm := range permissions {
			asked := perm.requested(req.grants)
			if asked == nil || *asked == *perm.granted(&g.Permissions) {
				continue
			}
			if !cp.mayGrant[i] {
				return token.Grant{}, forbid("grants."+perm.name, "grants."+perm.name+" is not for this caller to change (policy profile "+cp.name+")")
			}
			*perm.granted(&g.Permissions) = *asked
		}
		if asked := req.grants.CanPublishSources; asked != nil && !slices.Equal(asked, cp.sources) {
			if !cp.maySources || cp.sources != nil && slices.ContainsFunc(asked, func(s string) bool { return !slices.Contains(cp.sources, s) }) {
				return token.Grant{}, forbid("grants.canPublishSources", "grants.canPublishSources may only narrow what policy profile "+cp.name+" allows")
			}
			g.PublishSources = asked
		}
	}
	if a := req.agent; a != nil {
		if a.Worker != g.Agent {
			if !cp.mayGrant[agentPermission] {
				return token.Grant{}, forbid("worker", "worker is not for this caller to change (policy profile "+cp.name+")")
			}
			g.Agent = a.Worker
		}
		if a.Kind != "" {
			asked := livekit.ParticipantInfo_AGENT
			if a.Kind == "bridge" {
				asked = livekit.ParticipantInfo_BRIDGE
			}
			if asked != cp.kind && !slices.Contains(cp.kinds, asked) {
				return token.Grant{}, forbid("kind", "kind "+a.Kind+" is not allowed by policy profile "+cp.name)
			}
			g.Kind = asked
		}
	}

	maxTTL := lim.maxTTL
	if cp.maxTTL > 0 && cp.maxTTL < maxTTL {
		maxTTL = cp.maxTTL
	}
	g.TTL = min(lim.defaultTTL, maxTTL)
	if req.ttlSeconds != nil {
		g.TTL = time.Duration(*req.ttlSeconds) * time.Second
		if g.TTL > maxTTL {
			return token.Grant{}, forbid("ttl_seconds", "ttl_seconds may be at most "+itoa(int64(maxTTL/time.Second))+" for policy profile "+cp.name)
		}
	}

	var err error
	if g.Name, err = cp.chooseName(c, claims, req.name); err != nil {
		return token.Grant{}, err
	}
	if g.Metadata, err = cp.chooseMetadata(claims, req.metadata); err != nil {
		return token.Grant{}, err
	}
	if g.Attributes, err = cp.chooseAttributes(kind, claims, req.attributes); err != nil {
		return token.Grant{}, err
	}
	if cp.fixedName != nil || cp.fixedMetadata != nil || cp.fixedAttrs != nil {
		if err := token.CheckFilled(g.Name, g.Metadata, g.Attributes); err != nil {
			return token.Grant{}, forbid("", "the policy fills in a value from the caller's claims that the request rules refuse: "+err.Error())
		}
	}
	if req.roomConfig != nil {
		if err := cp.checkRoomConfig(req.roomConfig); err != nil {
			return token.Grant{}, err
		}
		g.RoomConfig = req.roomConfig
	}
	return g, nil
}

func (cp *compiledProfile) chooseName(c token.Caller, claims map[string]any, asked string) (string, error) {
	if cp.fixedName != nil {
		name, missing, ok := cp.fixedName.render(claims)
		if !ok {
			return "", forbid("name", "policy profile "+cp.name+" takes the name from claim "+missing+", which the caller's token does not carry")
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
	if c.User != nil && !c.Service {
		return c.User.Name, nil // the identity provider's display name, when the caller names none
	}
	return "", nil
}

func (cp *compiledProfile) chooseMetadata(claims map[string]any, asked string) (string, error) {
	if cp.fixedMetadata != nil {
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
		if asked != "" && asked != metadata {
			return "", forbid("metadata", "metadata is fixed by policy profile "+cp.name)
		}
		return metadata, nil
	}
	if asked != "" && !cp.mayMetadata {
		return "", forbid("metadata", "metadata is not for this caller to choose (policy profile "+cp.name+")")
	}
	return asked, nil
}

func (cp *compiledProfile) chooseAttributes(kind int, claims map[string]any, asked map[string]string) (map[string]string, error) {
	for key := range asked {
		if kind != service && token.ReservedAttribute(key) {
			return nil, forbid("attributes", "attribute "+key+" is in LiveKit's reserved namespaces (lk., sip.), which only a service may set")
		}
		if cp.fixedAttr(key) {
			continue // compared with the fixed value below
		}
		if !slices.ContainsFunc(cp.attributes, func(k keyPattern) bool { return k.match(key) }) {
			return nil, forbid("attributes", "attribute "+key+" is not for this caller to set (policy profile "+cp.name+")")
		}
	}
	if len(cp.fixedAttrs) == 0 {
		return asked, nil
	}
	out := make(map[string]string, len(asked)+len(cp.fixedAttrs))
	for k, v := range asked {
		out[k] = v
	}
	for _, f := range cp.fixedAttrs {
		v, missing, ok := f.value.render(claims)
		if !ok {
			return nil, forbid("attributes", "policy profile "+cp.name+" takes attribute "+f.key+" from claim "+missing+", which the caller's token does not carry")
		}
		if a, sent := asked[f.key]; sent && a != v {
			return nil, forbid("attributes", "attribute "+f.key+" is fixed by policy profile "+cp.name)
		}
		out[f.key] = v
	}
	return out, nil
}

func (cp *compiledProfile) fixedAttr(key string) bool {
	return slices.ContainsFunc(cp.fixedAttrs, func(f fixedValue) bool { return f.key == key })
}

func (cp *compiledProfile) checkRoomConfig(rc *livekit.RoomConfiguration) error {
	var refused error
	rc.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		name := string(fd.Name())
		if !cp.allConfig && !cp.roomConfig[name] {
			refused = forbid("room_config."+name, "room_config."+name+" is not for this caller to set (policy profile "+cp.name+")")
			return false
		}
		return true
	})
	if refused != nil || cp.allAgents {
		return refused
	}
	for _, a := range rc.GetAgents() {
		if !cp.agents[a.GetAgentName()] {
			return forbid("room_config.agents", "agent "+a.GetAgentName()+" is not one this caller may dispatch (policy profile "+cp.name+")")
		}
	}
	return nil
}
