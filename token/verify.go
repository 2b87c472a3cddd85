package token

import (
	"errors"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/golang-jwt/jwt/v5"
	"github.com/livekit/protocol/auth"
)

// Reasons a token is not valid, as /token/verify reports them.
const (
	ReasonMalformed    = "malformed"
	ReasonExpired      = "expired"
	ReasonNotYetValid  = "not_yet_valid"
	ReasonBadSignature = "bad_signature"
	ReasonUnknownKey   = "unknown_key"
)

// Verification is the reply of /token/verify: either Valid with the token's claims, or a Reason
// and a Message saying why LiveKit would refuse it.
type Verification struct {
	Valid bool `json:"valid"`
	// Banned is true when the token's identity is banned from its room: LiveKit would still
	// accept the token, and the service removes the participant when it joins.
	Banned   bool `json:"banned,omitzero"`
	*Claims  `json:",inline"`
	*Refusal `json:",inline"`
}

// Refusal says why a token is not valid.
type Refusal struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// Claims is what a valid token grants.
type Claims struct {
	Identity   string            `json:"identity"`
	Name       string            `json:"name"`
	Room       string            `json:"room"`
	Kind       string            `json:"kind"`
	Metadata   string            `json:"metadata"`
	Attributes map[string]string `json:"attributes"`
	RoomConfig jsontext.Value    `json:"room_config,omitzero"`
	IssuedAt   int64             `json:"issuedAt"`
	NotBefore  int64             `json:"notBefore"`
	ExpiresAt  int64             `json:"expiresAt"`
	Grants     *auth.VideoGrant  `json:"grants"`
	// The other grants a token may carry, reported when present (in LiveKit's claim names), so
	// that a token with sip.admin does not look like a plain participant token. This service
	// issues none of them; a token signed elsewhere with one of its keys may.
	KindDetails   []string                 `json:"kindDetails,omitzero"`
	SIP           *auth.SIPGrant           `json:"sip,omitzero"`
	Agent         *auth.AgentGrant         `json:"agent,omitzero"`
	Inference     *auth.InferenceGrant     `json:"inference,omitzero"`
	Observability *auth.ObservabilityGrant `json:"observability,omitzero"`
	AgentEndpoint *auth.AgentEndpointGrant `json:"agentEndpoint,omitzero"`
	AgentThread   *auth.AgentThreadGrant   `json:"agentThread,omitzero"`
	RoomPreset    string                   `json:"roomPreset,omitzero"`
	Sha256        string                   `json:"sha256,omitzero"`
}

// Verify checks a token the way LiveKit does (HS256 only, a known key, exp required, a minute of
// leeway, all inside livekit/protocol) and says what it grants or why it is refused.
func (iss *Issuer) Verify(raw string) Verification {
	parsed, err := auth.ParseAPIToken(raw)
	if err != nil {
		return refuse(ReasonMalformed, "token is not a well-formed JWT")
	}
	// livekit/protocol's Verify accepts whatever iss the token names (even none) as long as the
	// secret matches, so the key is checked here.
	secret, known := iss.secretFor(parsed.APIKey())
	if !known {
		return refuse(ReasonUnknownKey, "token was not issued with an API key this service knows")
	}
	registered, grants, err := parsed.Verify(secret)
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return refuse(ReasonBadSignature, "token signature does not match (signed with another secret or algorithm than HS256)")
	case errors.Is(err, jwt.ErrTokenExpired):
		return refuse(ReasonExpired, "token has expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return refuse(ReasonNotYetValid, "token is not valid yet (nbf is in the future)")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return refuse(ReasonMalformed, "token has no expiry (exp)")
	default:
		return refuse(ReasonMalformed, "token claims cannot be read")
	}
	return Verification{Valid: true, Claims: claimsOf(registered, grants)}
}

func (iss *Issuer) secretFor(apiKey string) (string, bool) {
	if apiKey == "" {
		return "", false
	}
	if apiKey == iss.k.APIKey {
		return iss.k.APISecret, true
	}
	secret, ok := iss.k.Others[apiKey]
	return secret, ok
}

func refuse(reason, message string) Verification {
	return Verification{Refusal: &Refusal{Reason: reason, Message: message}}
}

func claimsOf(registered *jwt.RegisteredClaims, grants *auth.ClaimGrants) *Claims {
	video := grants.Video
	if video == nil {
		video = &auth.VideoGrant{}
	}
	return &Claims{
		Identity:   grants.Identity,
		Name:       grants.Name,
		Room:       video.Room,
		Kind:       strings.ToLower(grants.GetParticipantKind().String()), // "standard", "agent", ...
		Metadata:   grants.Metadata,
		Attributes: grants.Attributes,
		RoomConfig: roomConfigJSON(grants.GetRoomConfiguration()),
		IssuedAt:   unix(registered.IssuedAt),
		NotBefore:  unix(registered.NotBefore),
		ExpiresAt:  unix(registered.ExpiresAt),
		Grants:     video,

		KindDetails:   grants.KindDetails,
		SIP:           grants.SIP,
		Agent:         grants.Agent,
		Inference:     grants.Inference,
		Observability: grants.Observability,
		AgentEndpoint: grants.AgentEndpoint,
		AgentThread:   grants.AgentThread,
		RoomPreset:    grants.RoomPreset,
		Sha256:        grants.Sha256,
	}
}

func unix(d *jwt.NumericDate) int64 {
	if d == nil {
		return 0
	}
	return d.Unix()
}
