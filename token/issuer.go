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

// Keys are the LiveKit key pairs an Issuer signs and verifies with.
type Keys struct {
	APIKey, APISecret string // tokens are signed with this pair
	// Others are further key: secret pairs that /token/verify accepts (LIVEKIT_KEYS), so that
	// tokens signed before a key rotation still verify; signing always uses APIKey.
	Others map[string]string
	WSURL  string // where clients connect, returned with every token
}

// Issuer signs LiveKit access tokens with one API key and verifies tokens signed with its keys.
// It signs exactly the grant it is given: what a caller may have is decided before (policy).
// Its keys stay private, since they hold the secret.
type Issuer struct {
	k Keys
}

// NewIssuer returns an Issuer with the given keys.
func NewIssuer(k Keys) *Issuer { return &Issuer{k: k} }

// Sign writes g into a token.
func (iss *Issuer) Sign(g *Grant) (Issued, error) {
	at := auth.NewAccessToken(iss.k.APIKey, iss.k.APISecret).
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
	return Issued{Token: jwt, WSURL: iss.k.WSURL, ExpiresAt: exp, Identity: g.Identity, Room: g.Room}, nil
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
