package token

import (
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"

	"github.com/token-service/token-service/identifier"
)

// Limits of the contract.
const (
	MaxMetadataBytes   = 64 << 10 // LiveKit's own metadata limit
	MaxAttributesBytes = 64 << 10 // LiveKit's own limit on a participant's attributes, keys plus values
	maxAgentIDLen      = 64       // agent_id
)

// Limits are the configuration's bounds on every request.
type Limits struct {
	MaxTTL time.Duration // MAX_TOKEN_TTL_SECONDS: the most ttl_seconds may ask for
}

// Validate applies every rule a join must follow whoever asks (each failure a 400 naming the
// field): shapes, the identifier rules, the TTL range, the room_config allowlist. signedIn is
// the end user whose JWT came with the request, nil for anyone else: its identity claim stands
// for an identity the request leaves out, and its name claim for the name, so both are held to
// the same rules as if the request had sent them. What the caller may have is the policy's
// business, decided after this.
func (r *JoinRequest) Validate(lim Limits, signedIn *User) error {
	if err := checkIdentifier("room", r.Room, true); err != nil {
		return err
	}
	identity, name := r.Identity, r.Name
	if signedIn != nil {
		identity, name = cmpOr(identity, signedIn.Identity), cmpOr(name, signedIn.Name)
	}
	if err := checkIdentifier("identity", identity, true); err != nil {
		return err
	}
	if err := checkDisplayName("name", name); err != nil {
		return err
	}
	if err := checkTTL(r.TTLSeconds, lim); err != nil {
		return err
	}
	if err := checkMetadata(r.Metadata); err != nil {
		return err
	}
	if err := checkAttributes(r.Attributes); err != nil {
		return err
	}
	if err := checkPublishSources(r.Grants.CanPublishSources); err != nil {
		return err
	}
	return validateRoomConfig(r.RoomConfig.Config)
}

// Validate applies every rule an agent token's request must follow (each failure a 400).
func (r *AgentRequest) Validate(lim Limits) error {
	if err := checkIdentifier("room", r.Room, true); err != nil {
		return err
	}
	if err := checkAgentID(r.AgentID); err != nil {
		return err
	}
	if err := checkDisplayName("name", r.Name); err != nil {
		return err
	}
	if err := checkTTL(r.TTLSeconds, lim); err != nil {
		return err
	}
	if err := checkMetadata(r.Metadata); err != nil {
		return err
	}
	if r.Kind != "" && r.Kind != "agent" && r.Kind != "bridge" {
		return invalidf("kind", "must be agent or bridge")
	}
	return checkAttributes(r.Attributes)
}

// Validate applies the rule of /token/verify's body.
func (r *VerifyRequest) Validate() error {
	if r.Token == "" {
		return invalidf("token", "is required")
	}
	return nil
}

// JoinFromTokenSource is LiveKit's TokenSourceRequest (POST /connection-details) as a join.
// Every field of it is optional: a missing room becomes room-<random>, and a missing identity
// user-<random> unless the caller signed in (its identity claim then stands for it).
func JoinFromTokenSource(req *livekit.TokenSourceRequest, signedIn bool) JoinRequest {
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
	if join.Identity == "" && !signedIn {
		join.Identity = "user-" + randomSuffix()
	}
	if cfg := req.GetRoomConfig(); proto.Size(cfg) > 0 { // the Android and Swift SDKs always send room_config: {}
		join.RoomConfig.Config = cfg
	}
	return join
}

func randomSuffix() string { return strings.ToLower(rand.Text()[:10]) }

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func invalidf(field, format string, args ...any) *Invalid {
	return &Invalid{Field: field, Reason: fmt.Sprintf(format, args...)}
}

func checkIdentifier(field, value string, required bool) error {
	if value == "" && required {
		return invalidf(field, "is required")
	}
	if err := identifier.Check(value); err != nil {
		return &Invalid{Field: field, Reason: err.Error()}
	}
	return nil
}

func checkDisplayName(field, value string) error {
	if err := identifier.CheckDisplayName(value); err != nil {
		return &Invalid{Field: field, Reason: err.Error()}
	}
	return nil
}

// checkTTL refuses a ttl_seconds out of range, stating the range: nothing is silently changed.
func checkTTL(requested *int64, lim Limits) error {
	maxSeconds := int64(lim.MaxTTL / time.Second)
	if requested != nil && (*requested < 1 || *requested > maxSeconds) {
		return invalidf("ttl_seconds", "must be a whole number of seconds from 1 to %d", maxSeconds)
	}
	return nil
}

func checkMetadata(metadata string) error {
	if len(metadata) > MaxMetadataBytes {
		return invalidf("metadata", "must be at most %d bytes", MaxMetadataBytes)
	}
	return nil // valid UTF-8: the JSON decoder refuses anything else
}

func checkAgentID(id string) error {
	if id == "" {
		return invalidf("agent_id", "is required")
	}
	if len(id) > maxAgentIDLen {
		return invalidf("agent_id", "must be at most %d characters", maxAgentIDLen)
	}
	for _, r := range id {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return invalidf("agent_id", "must contain only letters, digits, '-', '_' and '.'")
		}
	}
	return nil
}

func checkAttributes(attributes map[string]string) error {
	size := 0
	for k, v := range attributes {
		if k == "" {
			return invalidf("attributes", "must not have an empty key")
		}
		size += len(k) + len(v)
	}
	if size > MaxAttributesBytes {
		return invalidf("attributes", "must be at most %d bytes of keys and values", MaxAttributesBytes)
	}
	return nil
}

// PublishSources are the sources grants.canPublishSources may name, as LiveKit spells them.
var PublishSources = []string{"camera", "microphone", "screen_share", "screen_share_audio"}

// checkPublishSources refuses an unknown source, and an empty list: LiveKit drops an empty list
// from the token and then reads its absence as "every source", so [] would widen the grant.
func checkPublishSources(sources []string) error {
	if sources != nil && len(sources) == 0 {
		return invalidf("grants.canPublishSources", "must name at least one source (to publish nothing, set canPublish to false)")
	}
	for _, s := range sources {
		if !slices.Contains(PublishSources, s) {
			return invalidf("grants.canPublishSources", "may only name camera, microphone, screen_share and screen_share_audio")
		}
	}
	return nil
}
