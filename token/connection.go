package token

import (
	"crypto/rand"
	"strings"

	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"
)

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

// ConnectionDetails answers LiveKit's TokenSource request, the way the client SDKs'
// TokenSource.endpoint() asks for a token. Every field is optional: a missing room becomes
// room-<random> and a missing identity user-<random> (or, for an end user, the identity claim).
// The same rules and policy as Join apply.
func (iss *Issuer) ConnectionDetails(c Caller, req *livekit.TokenSourceRequest) (ConnectionDetails, error) {
	g, err := iss.PlanConnectionDetails(c, req)
	if err != nil {
		return ConnectionDetails{}, err
	}
	issued, err := iss.sign(&g, "connection_details")
	if err != nil {
		return ConnectionDetails{}, err
	}
	return ConnectionDetails{ServerURL: issued.WSURL, ParticipantToken: issued.Token, RoomName: issued.Room, ParticipantName: g.Name,
		AgentDispatch: issued.AgentDispatch}, nil
}

// PlanConnectionDetails is what ConnectionDetails would sign, without signing it.
func (iss *Issuer) PlanConnectionDetails(c Caller, req *livekit.TokenSourceRequest) (Grant, error) {
	join := JoinRequest{
		Room:       req.GetRoomName(),
		Identity:   req.GetParticipantIdentity(),
		Name:       req.GetParticipantName(),
		Metadata:   req.GetParticipantMetadata(),
		Attributes: req.GetParticipantAttributes(),
	}
	if join.Room == "" {
		join.Room = "room-" + randomSuffix()
	}
	if join.Identity == "" && c.User == nil {
		join.Identity = "user-" + randomSuffix()
	}
	roomConfig := req.GetRoomConfig()
	if proto.Size(roomConfig) == 0 { // the Android and Swift SDKs always send room_config: {}
		roomConfig = nil
	}
	if err := checkRoomConfig(roomConfig); err != nil {
		return Grant{}, err
	}
	return iss.planJoin(c, &join, roomConfig)
}

func randomSuffix() string { return strings.ToLower(rand.Text()[:10]) }
