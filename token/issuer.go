package token

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
)

// Settings configure an Issuer.
type Settings struct {
	APIKey, APISecret string        // the LiveKit key pair tokens are signed with
	WSURL             string        // where clients connect, returned with every token
	DefaultTTL        time.Duration // when a request names none
	MaxTTL            time.Duration // the most a request may ask for
	Decider           Decider       // who may have what: the policy
	Bans              Bans          // who is kept out of which room; nil: nobody
	Recorder          Recorder      // hears what was issued and verified; nil hears nothing
	// OtherKeys are further key: secret pairs that /token/verify accepts (LIVEKIT_KEYS), so that
	// tokens signed before a key rotation still verify; signing always uses APIKey.
	OtherKeys map[string]string
}

// Recorder hears what the issuer does, for metrics.
type Recorder interface {
	Issued(tokenType string) // "participant", "agent", "connection_details"
	Verified(result string)  // "valid" or the refusal reason
}

type noRecorder struct{}

func (noRecorder) Issued(string)   {}
func (noRecorder) Verified(string) {}

// Issuer signs LiveKit access tokens with one API key and verifies tokens signed with it. It
// applies the contract's rules to every request and signs what its Decider grants. Its settings
// stay private, since they hold the secret.
type Issuer struct {
	s Settings
}

// NewIssuer returns an Issuer with the given settings.
func NewIssuer(s Settings) *Issuer {
	if s.Recorder == nil {
		s.Recorder = noRecorder{}
	}
	return &Issuer{s: s}
}

// Join issues a token for a participant to join one room with the requested permissions.
func (iss *Issuer) Join(c Caller, req JoinRequest) (Issued, error) {
	g, err := iss.PlanJoin(c, req)
	if err != nil {
		return Issued{}, err
	}
	return iss.sign(&g, "participant")
}

// PlanJoin is what Join would sign, decided and checked in full, without signing it (policy
// explain).
func (iss *Issuer) PlanJoin(c Caller, req JoinRequest) (Grant, error) {
	roomConfig, err := parseRoomConfig(req.RoomConfig)
	if err != nil {
		return Grant{}, err
	}
	return iss.planJoin(c, &req, roomConfig)
}

// planJoin applies the rules and the policy to a join.
func (iss *Issuer) planJoin(c Caller, req *JoinRequest, roomConfig *livekit.RoomConfiguration) (Grant, error) {
	if u := c.User; u != nil && !c.Service && req.Identity == "" {
		req.Identity = u.Identity // a user joins as itself unless it says otherwise (and the policy refuses otherwise)
	}
	if err := req.validate(); err != nil {
		return Grant{}, err
	}
	if _, err := ttl(req.TTLSeconds, iss.s.DefaultTTL, iss.s.MaxTTL); err != nil {
		return Grant{}, err
	}
	return iss.unlessBanned(iss.s.Decider.Participant(c, req, roomConfig))
}

// Bans says whether an identity is banned from a room (moderation's store).
type Bans interface {
	Banned(room, identity string) bool
}

// unlessBanned refuses a decided grant whose identity is banned from its room: a ban holds
// whatever the policy would grant.
func (iss *Issuer) unlessBanned(g Grant, err error) (Grant, error) {
	if err == nil && iss.s.Bans != nil && iss.s.Bans.Banned(g.Room, g.Identity) {
		return Grant{}, &Forbidden{Field: "identity", Reason: "identity is banned from this room"}
	}
	return g, err
}

// Agent issues a token for a server-side participant (kind agent or bridge) such as the Media
// Bridge, with what the policy's profile for agent tokens grants.
func (iss *Issuer) Agent(c Caller, req AgentRequest) (Issued, error) {
	g, err := iss.PlanAgent(c, req)
	if err != nil {
		return Issued{}, err
	}
	return iss.sign(&g, "agent")
}

// PlanAgent is what Agent would sign, without signing it.
func (iss *Issuer) PlanAgent(c Caller, req AgentRequest) (Grant, error) {
	if err := req.validate(); err != nil {
		return Grant{}, err
	}
	if _, err := ttl(req.TTLSeconds, iss.s.DefaultTTL, iss.s.MaxTTL); err != nil {
		return Grant{}, err
	}
	return iss.unlessBanned(iss.s.Decider.Agent(c, &req))
}

// Backend says whether the caller may use a backend-only endpoint, as the policy decides.
func (iss *Issuer) Backend(c Caller) error { return iss.s.Decider.Backend(c) }

func (iss *Issuer) sign(g *Grant, tokenType string) (Issued, error) {
	at := auth.NewAccessToken(iss.s.APIKey, iss.s.APISecret).
		SetIdentity(g.Identity).
		SetName(g.Name).
		SetMetadata(g.Metadata).
		SetValidFor(g.TTL).
		SetVideoGrant(g.VideoGrant())
	if g.Kind != livekit.ParticipantInfo_STANDARD {
		at.SetKind(g.Kind)
	}
	if len(g.Attributes) > 0 {
		at.SetAttributes(g.Attributes)
	}
	if g.RoomConfig != nil {
		at.SetRoomConfig(g.RoomConfig)
	}
	before := time.Now().Unix()
	jwt, err := at.ToJWT()
	if err != nil {
		return Issued{}, fmt.Errorf("sign token: %w", err)
	}
	exp, err := expiresAt(jwt, before, time.Now().Unix(), g.TTL)
	if err != nil {
		return Issued{}, fmt.Errorf("read back token expiry: %w", err)
	}
	iss.s.Recorder.Issued(tokenType)
	return Issued{Token: jwt, WSURL: iss.s.WSURL, ExpiresAt: exp, Identity: g.Identity, Room: g.Room,
		AgentDispatch: AgentDispatch{Agents: g.RoomConfig.GetAgents()}}, nil
}

// expiresAt is the exp of a token signed between the Unix seconds before and after. ToJWT takes
// the time itself and truncates exp to the second, so when no second ticked during signing exp is
// before+validFor exactly; only when one did is exp read back from the token (which costs two
// allocations, hence not always).
func expiresAt(jwt string, before, after int64, validFor time.Duration) (int64, error) {
	if before == after {
		return before + int64(validFor/time.Second), nil
	}
	return expiry(jwt)
}

// expiry reads exp back from a signed token.
func expiry(jwt string) (int64, error) {
	_, rest, _ := strings.Cut(jwt, ".")
	payload, _, _ := strings.Cut(rest, ".")
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return 0, err
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		return 0, err
	}
	return claims.Exp, nil
}
