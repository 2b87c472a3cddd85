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

// Issuer signs LiveKit access tokens with one API key and verifies tokens signed with it,
// applying its Policy to every caller. Its settings stay private, since they hold the secret.
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
	roomConfig, err := parseRoomConfig(req.RoomConfig)
	if err != nil {
		return Issued{}, err
	}
	issued, _, err := iss.join(c, req, roomConfig, "participant")
	return issued, err
}

// join applies the policy and the rules to a join and signs it; it also returns the participant
// name the token carries, which the policy may have filled in.
func (iss *Issuer) join(c Caller, req JoinRequest, roomConfig *livekit.RoomConfiguration, tokenType string) (Issued, string, error) {
	req = withCallerDefaults(c, req)
	if err := iss.s.Policy.authorizeJoin(c, req, roomConfig); err != nil {
		return Issued{}, "", err
	}
	if err := req.validate(); err != nil {
		return Issued{}, "", err
	}
	validFor, err := ttl(req.TTLSeconds, iss.s.DefaultTTL, iss.s.MaxTTL)
	if err != nil {
		return Issued{}, "", err
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
	f := &flags{
		publish:   valueOr(g.CanPublish, true),
		subscribe: valueOr(g.CanSubscribe, true),
		data:      valueOr(g.CanPublishData, true),
		metadata:  valueOr(g.CanUpdateOwnMetadata, false),
	}
	video.CanPublish, video.CanSubscribe, video.CanPublishData, video.CanUpdateOwnMetadata = &f.publish, &f.subscribe, &f.data, &f.metadata
	if g.CanSubscribeMetrics != nil {
		f.metrics = *g.CanSubscribeMetrics
		video.CanSubscribeMetrics = &f.metrics
	}
	video.CanPublishSources = g.CanPublishSources

	at := auth.NewAccessToken(iss.s.APIKey, iss.s.APISecret).
		SetIdentity(req.Identity).
		SetName(req.Name).
		SetMetadata(req.Metadata).
		SetValidFor(validFor).
		SetVideoGrant(video)
	if len(req.Attributes) > 0 {
		at.SetAttributes(req.Attributes)
	}
	if roomConfig != nil {
		at.SetRoomConfig(roomConfig)
	}
	issued, err := iss.sign(at, validFor, tokenType, req.Identity, req.Room)
	return issued, req.Name, err
}

// Agent issues a token for a server-side participant (kind agent) such as the Media Bridge: it
// may publish, subscribe, send data and update its own metadata, and is visible to others. It
// does not carry the video.agent flag, which is for workers registering with LiveKit.
func (iss *Issuer) Agent(c Caller, req AgentRequest) (Issued, error) {
	if err := iss.s.Policy.admitService(c); err != nil {
		return Issued{}, err
	}
	if err := req.validate(); err != nil {
		return Issued{}, err
	}
	validFor, err := ttl(req.TTLSeconds, iss.s.DefaultTTL, iss.s.MaxTTL)
	if err != nil {
		return Issued{}, err
	}
	identity := AgentPrefix + req.AgentID
	f := &flags{publish: true, subscribe: true, data: true, metadata: true}
	video := &auth.VideoGrant{RoomJoin: true, Room: req.Room, Agent: req.Worker,
		CanPublish: &f.publish, CanSubscribe: &f.subscribe, CanPublishData: &f.data, CanUpdateOwnMetadata: &f.metadata}
	kind := livekit.ParticipantInfo_AGENT
	if req.Kind == "bridge" {
		kind = livekit.ParticipantInfo_BRIDGE
	}

	at := auth.NewAccessToken(iss.s.APIKey, iss.s.APISecret).
		SetIdentity(identity).
		SetName(req.Name).
		SetMetadata(req.Metadata).
		SetKind(kind).
		SetValidFor(validFor).
		SetVideoGrant(video)
	if len(req.Attributes) > 0 {
		at.SetAttributes(req.Attributes)
	}
	return iss.sign(at, validFor, "agent", identity, req.Room)
}

func (iss *Issuer) sign(at *auth.AccessToken, validFor time.Duration, tokenType, identity, room string) (Issued, error) {
	before := time.Now().Unix()
	jwt, err := at.ToJWT()
	if err != nil {
		return Issued{}, fmt.Errorf("sign token: %w", err)
	}
	exp, err := expiresAt(jwt, before, time.Now().Unix(), validFor)
	if err != nil {
		return Issued{}, fmt.Errorf("read back token expiry: %w", err)
	}
	iss.s.Recorder.Issued(tokenType)
	return Issued{Token: jwt, WSURL: iss.s.WSURL, ExpiresAt: exp, Identity: identity, Room: room}, nil
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

// flags back the permission pointers of one token's VideoGrant: one allocation for all of them
// (VideoGrant's setters allocate one bool each), and never shared with another token, so that
// no write through one grant's pointer can change what a later token grants.
type flags struct {
	publish, subscribe, data, metadata, metrics bool
}

func valueOr(b *bool, fallback bool) bool {
	if b == nil {
		return fallback
	}
	return *b
}
