package token

import (
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
)

// Grant is everything one token will carry, as the policy decided it: the one input of Sign.
type Grant struct {
	Rule    string // the policy rule that matched
	Profile string // the profile it chose

	Room       string
	Identity   string
	Name       string
	Metadata   string
	Attributes map[string]string
	Kind       livekit.ParticipantInfo_Kind
	TTL        time.Duration
	Permissions
	// Only these sources may be published when not nil; nil leaves canPublish to decide. Never
	// empty: an empty list would be dropped from the token and read as "every source".
	PublishSources []string
	RoomConfig     *livekit.RoomConfiguration
}

// Permissions are the VideoGrant permissions a token carries, by LiveKit's claim names.
type Permissions struct {
	RoomCreate            bool `json:"roomCreate"`
	RoomList              bool `json:"roomList"`
	RoomRecord            bool `json:"roomRecord"`
	RoomAdmin             bool `json:"roomAdmin"`
	CanPublish            bool `json:"canPublish"`
	CanSubscribe          bool `json:"canSubscribe"`
	CanPublishData        bool `json:"canPublishData"`
	CanUpdateOwnMetadata  bool `json:"canUpdateOwnMetadata"`
	IngressAdmin          bool `json:"ingressAdmin"`
	Hidden                bool `json:"hidden"`
	Recorder              bool `json:"recorder"`
	Agent                 bool `json:"agent"`
	CanSubscribeMetrics   bool `json:"canSubscribeMetrics"`
	CanManageAgentSession bool `json:"canManageAgentSession"`
}

// VideoGrant is the grant as livekit/protocol writes it into the token. canPublish,
// canSubscribe, canPublishData and canUpdateOwnMetadata are always explicit, because LiveKit
// reads an absent one as its own default; the optional two are written only when granted.
func (g *Grant) VideoGrant() *auth.VideoGrant {
	f := &flags{Permissions: g.Permissions}
	if g.PublishSources != nil && len(g.PublishSources) == 0 {
		f.CanPublish = false // never "every source" by accident: see PublishSources
	}
	video := &auth.VideoGrant{
		RoomJoin: true, Room: g.Room,
		RoomCreate: g.RoomCreate, RoomList: g.RoomList, RoomRecord: g.RoomRecord, RoomAdmin: g.RoomAdmin,
		IngressAdmin: g.IngressAdmin, Hidden: g.Hidden, Recorder: g.Recorder, Agent: g.Agent,
		CanPublish: &f.CanPublish, CanSubscribe: &f.CanSubscribe, CanPublishData: &f.CanPublishData,
		CanUpdateOwnMetadata: &f.CanUpdateOwnMetadata,
		CanPublishSources:    g.PublishSources,
	}
	if g.CanSubscribeMetrics {
		video.CanSubscribeMetrics = &f.CanSubscribeMetrics
	}
	if g.CanManageAgentSession {
		video.CanManageAgentSession = &f.CanManageAgentSession
	}
	return video
}

// flags back the permission pointers of one token's VideoGrant: one allocation for all of them
// (VideoGrant's setters allocate one bool each), and never shared with another token, so that
// no write through one grant's pointer can change what a later token grants.
type flags struct{ Permissions }

// Caller is who asks for a token, as authn established it from the request's credentials.
// The zero Caller is anonymous.
type Caller struct {
	Service      bool   // presented a valid service API key: a trusted backend
	ServiceKeyID string // which key: a digest prefix, never the key itself
	User         *User  // presented a valid end-user JWT from the app's identity provider
}

// SignedIn is the end user behind the request, nil unless the caller is one (a service key
// wins over a user's JWT).
func (c Caller) SignedIn() *User {
	if c.Service {
		return nil
	}
	return c.User
}

// User is an end user vouched for by the identity provider.
type User struct {
	Identity string
	Name     string
	// Rooms the user may join, when the identity provider restricts them.
	Rooms           []string
	RoomsRestricted bool
	// Claims are the whole verified JWT payload, for the policy's conditions and templates.
	Claims map[string]any
}
