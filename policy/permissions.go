package policy

import "github.com/token-service/token-service/token"

// permissions are the VideoGrant permissions a profile sets and a caller may ask to change, in
// one table: the name in the policy and the request, where the profile's value lives, and where
// the request's is.
var permissions = [...]struct {
	name      string
	granted   func(*token.Permissions) *bool
	requested func(*token.Grants) *bool
}{
	{"roomCreate", func(p *token.Permissions) *bool { return &p.RoomCreate }, func(g *token.Grants) *bool { return g.RoomCreate }},
	{"roomList", func(p *token.Permissions) *bool { return &p.RoomList }, func(g *token.Grants) *bool { return g.RoomList }},
	{"roomRecord", func(p *token.Permissions) *bool { return &p.RoomRecord }, func(g *token.Grants) *bool { return g.RoomRecord }},
	{"roomAdmin", func(p *token.Permissions) *bool { return &p.RoomAdmin }, func(g *token.Grants) *bool { return g.RoomAdmin }},
	{"canPublish", func(p *token.Permissions) *bool { return &p.CanPublish }, func(g *token.Grants) *bool { return g.CanPublish }},
	{"canSubscribe", func(p *token.Permissions) *bool { return &p.CanSubscribe }, func(g *token.Grants) *bool { return g.CanSubscribe }},
	{"canPublishData", func(p *token.Permissions) *bool { return &p.CanPublishData }, func(g *token.Grants) *bool { return g.CanPublishData }},
	{"canUpdateOwnMetadata", func(p *token.Permissions) *bool { return &p.CanUpdateOwnMetadata }, func(g *token.Grants) *bool { return g.CanUpdateOwnMetadata }},
	{"ingressAdmin", func(p *token.Permissions) *bool { return &p.IngressAdmin }, func(g *token.Grants) *bool { return g.IngressAdmin }},
	{"hidden", func(p *token.Permissions) *bool { return &p.Hidden }, func(g *token.Grants) *bool { return g.Hidden }},
	{"recorder", func(p *token.Permissions) *bool { return &p.Recorder }, func(g *token.Grants) *bool { return g.Recorder }},
	{"agent", func(p *token.Permissions) *bool { return &p.Agent }, func(g *token.Grants) *bool { return g.Agent }},
	{"canSubscribeMetrics", func(p *token.Permissions) *bool { return &p.CanSubscribeMetrics }, func(g *token.Grants) *bool { return g.CanSubscribeMetrics }},
	{"canManageAgentSession", func(p *token.Permissions) *bool { return &p.CanManageAgentSession }, func(g *token.Grants) *bool { return g.CanManageAgentSession }},
}

// agentPermission is the index of "agent", which /token/agent asks for as worker.
var agentPermission = permissionIndex("agent")

func permissionIndex(name string) int {
	for i, p := range permissions {
		if p.name == name {
			return i
		}
	}
	return -1
}

func (g grantSpec) permissions() token.Permissions {
	return token.Permissions{
		RoomCreate: g.RoomCreate, RoomList: g.RoomList, RoomRecord: g.RoomRecord, RoomAdmin: g.RoomAdmin,
		CanPublish: g.CanPublish, CanSubscribe: g.CanSubscribe, CanPublishData: g.CanPublishData,
		CanUpdateOwnMetadata: g.CanUpdateOwnMetadata, IngressAdmin: g.IngressAdmin, Hidden: g.Hidden,
		Recorder: g.Recorder, Agent: g.Agent, CanSubscribeMetrics: g.CanSubscribeMetrics,
		CanManageAgentSession: g.CanManageAgentSession,
	}
}
