// Package token is token-service's domain: the request and response types of the contract, the
// rules a request must follow (Validate: every 400), the grant a decision produces, and turning
// a grant into a LiveKit access token (built and verified by livekit/protocol, never by hand).
// It knows nothing of HTTP, the environment, logs or who may ask for what (package policy).
package token

// Grants are the participant permissions a caller may ask for on POST /token, by LiveKit's claim
// names. A nil field was not sent and takes the policy profile's value; whether the caller may
// change it is the profile's decision too.
type Grants struct {
	CanPublish           *bool `json:"canPublish"`
	CanSubscribe         *bool `json:"canSubscribe"`
	CanPublishData       *bool `json:"canPublishData"`
	CanUpdateOwnMetadata *bool `json:"canUpdateOwnMetadata"`
	Hidden               *bool `json:"hidden"`
	Agent                *bool `json:"agent"`
	// Only these sources may be published when set (camera, microphone, screen_share,
	// screen_share_audio); LiveKit then ignores canPublish for the rest. nil: not sent.
	CanPublishSources     []string `json:"canPublishSources"`
	CanSubscribeMetrics   *bool    `json:"canSubscribeMetrics"`
	RoomCreate            *bool    `json:"roomCreate"`
	RoomList              *bool    `json:"roomList"`
	RoomRecord            *bool    `json:"roomRecord"`
	RoomAdmin             *bool    `json:"roomAdmin"`
	IngressAdmin          *bool    `json:"ingressAdmin"`
	Recorder              *bool    `json:"recorder"`
	CanManageAgentSession *bool    `json:"canManageAgentSession"`
}

// JoinRequest is the body of POST /token: a participant joining one room. /connection-details
// asks for the same thing in LiveKit's TokenSourceRequest (JoinFromTokenSource).
type JoinRequest struct {
	Room       string            `json:"room"`
	Identity   string            `json:"identity"`
	TTLSeconds *int64            `json:"ttl_seconds"`
	Name       string            `json:"name"`
	Metadata   string            `json:"metadata"`
	Attributes map[string]string `json:"attributes"`
	Grants     Grants            `json:"grants"`
	// LiveKit's RoomConfiguration, for the room this join creates: agent dispatch,
	// empty_timeout, max_participants, ... Decoded from protojson with the body.
	RoomConfig RoomConfig `json:"room_config"`
}

// AgentRequest is the body of POST /token/agent: a server-side participant such as the Media
// Bridge, whose identity is AgentPrefix + AgentID.
type AgentRequest struct {
	Room       string            `json:"room"`
	AgentID    string            `json:"agent_id"`
	TTLSeconds *int64            `json:"ttl_seconds"`
	Name       string            `json:"name"`
	Metadata   string            `json:"metadata"`
	Attributes map[string]string `json:"attributes"`
	// "agent" (default) or "bridge": a bridge counts as a real participant in LiveKit.
	Kind string `json:"kind"`
	// Worker adds the video.agent flag, for agent workers that register with LiveKit.
	Worker bool `json:"worker"`
}

// AgentPrefix begins the identity of every agent token; the agent_id follows it.
const AgentPrefix = "agent-"

// Identity is the identity an agent token carries.
func (r *AgentRequest) Identity() string { return AgentPrefix + r.AgentID }

// VerifyRequest is the body of POST /token/verify.
type VerifyRequest struct {
	Token string `json:"token"`
}

// Issued is the reply to every token request.
type Issued struct {
	Token     string `json:"token"`
	WSURL     string `json:"wsUrl"`
	ExpiresAt int64  `json:"expiresAt"` // the token's exp, Unix seconds
	Identity  string `json:"identity"`
	Room      string `json:"room"`
	AgentDispatch
}

// ConnectionDetails is the reply of POST /connection-details: LiveKit's TokenSourceResponse
// (server_url, participant_token, in its proto field names, as the client SDKs parse it) plus the
// room and name the token is for.
type ConnectionDetails struct {
	ServerURL        string `json:"server_url"`
	ParticipantToken string `json:"participant_token"`
	RoomName         string `json:"room_name"`
	ParticipantName  string `json:"participant_name"`
	AgentDispatch
}

// AgentDispatch is what became of the agents a token's room configuration dispatches: the
// token's own dispatch applies only if its join creates the room, so the service makes sure
// of the rest (package dispatch). Replies without agents carry none of it.
type AgentDispatch struct {
	Dispatches        []Dispatch `json:"dispatches,omitzero"`
	RoomConfigApplied *bool      `json:"room_config_applied,omitzero"` // false: the room existed
}

// Dispatch is one agent's outcome.
type Dispatch struct {
	AgentName  string `json:"agent_name"`
	DispatchID string `json:"dispatch_id,omitzero"`
	// Mode is token (the join creates the room and dispatches it), explicit (the service
	// created the dispatch in the existing room), existing (the room has one already) or
	// unconfirmed (LiveKit's API did not answer in time).
	Mode string `json:"mode"`
}
