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

// Issuer signs LiveKit access tokens with one API key and verifies tokens signed with it.
type Issuer struct {
	apiKey     string
	apiSecret  string
	wsURL      string
	defaultTTL time.Duration
	maxTTL     time.Duration
}

// NewIssuer returns an Issuer that signs with apiKey/apiSecret and tells clients to connect to
// wsURL. defaultTTL applies when a request names no TTL; maxTTL caps what a request may ask for.
func NewIssuer(apiKey, apiSecret, wsURL string, defaultTTL, maxTTL time.Duration) *Issuer {
	return &Issuer{apiKey: apiKey, apiSecret: apiSecret, wsURL: wsURL, defaultTTL: defaultTTL, maxTTL: maxTTL}
}

// Join issues a token for an end user to join one room with the requested permissions.
func (iss *Issuer) Join(req JoinRequest) (Issued, error) {
	if err := req.validate(); err != nil {
		return Issued{}, err
	}
	validFor, err := ttl(req.TTLSeconds, iss.defaultTTL, iss.maxTTL)
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

	at := auth.NewAccessToken(iss.apiKey, iss.apiSecret).
		SetIdentity(req.Identity).
		SetName(req.Name).
		SetMetadata(req.Metadata).
		SetValidFor(validFor).
		SetVideoGrant(video)
	return iss.sign(at, req.Identity, req.Room)
}

// Agent issues a token for a server-side participant (kind agent) such as the Media Bridge: it
// may publish, subscribe, send data and update its own metadata, and is visible to others. It
// does not carry the video.agent flag, which is for workers registering with LiveKit.
func (iss *Issuer) Agent(req AgentRequest) (Issued, error) {
	if err := req.validate(); err != nil {
		return Issued{}, err
	}
	validFor, err := ttl(req.TTLSeconds, iss.defaultTTL, iss.maxTTL)
	if err != nil {
		return Issued{}, err
	}
	identity := AgentPrefix + req.AgentID
	video := &auth.VideoGrant{RoomJoin: true, Room: req.Room}
	video.SetCanPublish(true)
	video.SetCanSubscribe(true)
	video.SetCanPublishData(true)
	video.SetCanUpdateOwnMetadata(true)

	at := auth.NewAccessToken(iss.apiKey, iss.apiSecret).
		SetIdentity(identity).
		SetName(req.Name).
		SetMetadata(req.Metadata).
		SetKind(livekit.ParticipantInfo_AGENT).
		SetValidFor(validFor).
		SetVideoGrant(video)
	return iss.sign(at, identity, req.Room)
}

func (iss *Issuer) sign(at *auth.AccessToken, identity, room string) (Issued, error) {
	jwt, err := at.ToJWT()
	if err != nil {
		return Issued{}, fmt.Errorf("sign token: %w", err)
	}
	exp, err := expiry(jwt)
	if err != nil {
		return Issued{}, fmt.Errorf("read back token expiry: %w", err)
	}
	return Issued{Token: jwt, WSURL: iss.wsURL, ExpiresAt: exp, Identity: identity, Room: room}, nil
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
