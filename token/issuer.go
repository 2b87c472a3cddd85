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
	DefaultTTL        time.Duration // when a request names no TTL
	MaxTTL            time.Duration // the most a request may ask for
	Policy            Policy
	Recorder          Recorder // hears what was issued and verified; nil hears nothing
}

// Recorder hears what the issuer does, for metrics.
type Recorder interface {
	Issued(tokenType string) // "participant", "agent"
	Verified(result string)  // "valid" or the refusal reason
}

type noRecorder struct{}

func (noRecorder) Issued(string)   {}
func (noRecorder) Verified(string) {}

// Issuer signs LiveKit access tokens with one API key and verifies tokens signed with it,
// applying its Policy to every caller.
type Issuer struct {
	Settings
}

// NewIssuer returns an Issuer with the given settings.
func NewIssuer(s Settings) *Issuer {
	if s.Recorder == nil {
		s.Recorder = noRecorder{}
	}
	return &Issuer{Settings: s}
}

// Join issues a token for a participant to join one room with the requested permissions.
func (iss *Issuer) Join(c Caller, req JoinRequest) (Issued, error) {
	if err := iss.Policy.authorizeJoin(c, &req); err != nil {
		return Issued{}, err
	}
	if err := req.validate(); err != nil {
		return Issued{}, err
	}
	validFor, err := ttl(req.TTLSeconds, iss.DefaultTTL, iss.MaxTTL)
	if err != nil {
		return Issued{}, err
	}
	g := req.Grants
	video := &auth.VideoGrant{
		RoomJoin: true,
		Room:     req.Room,
		Hidden:   valueOr(g.Hidden, false),
		Agent:    valueOr(g.Agent, false),
	}
	// Set explicitly, because LiveKit reads an absent canPublish/canSubscribe as true and an
	// absent canUpdateOwnMetadata as false; the token should not depend on those defaults.
	video.SetCanPublish(valueOr(g.CanPublish, true))
	video.SetCanSubscribe(valueOr(g.CanSubscribe, true))
	video.SetCanPublishData(valueOr(g.CanPublishData, true))
	video.SetCanUpdateOwnMetadata(valueOr(g.CanUpdateOwnMetadata, false))

	at := auth.NewAccessToken(iss.APIKey, iss.APISecret).
		SetIdentity(req.Identity).
		SetName(req.Name).
		SetMetadata(req.Metadata).
		SetValidFor(validFor).
		SetVideoGrant(video)
	return iss.sign(at, "participant", req.Identity, req.Room)
}

// Agent issues a token for a server-side participant (kind agent) such as the Media Bridge: it
// may publish, subscribe, send data and update its own metadata, and is visible to others. It
// does not carry the video.agent flag, which is for workers registering with LiveKit.
func (iss *Issuer) Agent(c Caller, req AgentRequest) (Issued, error) {
	if err := iss.Policy.AdmitService(c); err != nil {
		return Issued{}, err
	}
	if err := req.validate(); err != nil {
		return Issued{}, err
	}
	validFor, err := ttl(req.TTLSeconds, iss.DefaultTTL, iss.MaxTTL)
	if err != nil {
		return Issued{}, err
	}
	identity := AgentPrefix + req.AgentID
	video := &auth.VideoGrant{RoomJoin: true, Room: req.Room}
	video.SetCanPublish(true)
	video.SetCanSubscribe(true)
	video.SetCanPublishData(true)
	video.SetCanUpdateOwnMetadata(true)

	at := auth.NewAccessToken(iss.APIKey, iss.APISecret).
		SetIdentity(identity).
		SetName(req.Name).
		SetMetadata(req.Metadata).
		SetKind(livekit.ParticipantInfo_AGENT).
		SetValidFor(validFor).
		SetVideoGrant(video)
	return iss.sign(at, "agent", identity, req.Room)
}

func (iss *Issuer) sign(at *auth.AccessToken, tokenType, identity, room string) (Issued, error) {
	jwt, err := at.ToJWT()
	if err != nil {
		return Issued{}, fmt.Errorf("sign token: %w", err)
	}
	exp, err := expiry(jwt)
	if err != nil {
		return Issued{}, fmt.Errorf("read back token expiry: %w", err)
	}
	iss.Recorder.Issued(tokenType)
	return Issued{Token: jwt, WSURL: iss.WSURL, ExpiresAt: exp, Identity: identity, Room: room}, nil
}

// expiry reads exp back from a token just signed, because the protocol takes the time itself
// inside ToJWT; computing it here could differ by the second that ticked in between.
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

func valueOr(b *bool, fallback bool) bool {
	if b == nil {
		return fallback
	}
	return *b
}
