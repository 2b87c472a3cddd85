package token_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"

	"github.com/token-service/token-service/identifier"
	"github.com/token-service/token-service/internal/testenv"
	"github.com/token-service/token-service/token"
)

const (
	testKey    = "APItestkey"
	testSecret = "a-test-secret-that-is-long-enough-for-production"
)

func newIssuer() *token.Issuer {
	return token.NewIssuer(token.Keys{APIKey: testKey, APISecret: testSecret, WSURL: "wss://lk.example.com"})
}

var limits = token.Limits{MaxTTL: 24 * time.Hour}

// mustSign signs g, with an hour's TTL unless it names one.
func mustSign(t testing.TB, g token.Grant) token.Issued {
	t.Helper()
	if g.TTL == 0 {
		g.TTL = time.Hour
	}
	issued, err := newIssuer().Sign(&g)
	if err != nil {
		t.Fatal(err)
	}
	return issued
}

// mustVerify reads a token back with livekit/protocol's verifier, the same code LiveKit runs.
func mustVerify(t *testing.T, raw string) (*jwt.RegisteredClaims, *auth.ClaimGrants) {
	t.Helper()
	parsed, err := auth.ParseAPIToken(raw)
	if err != nil {
		t.Fatalf("parse token: %v", err)
	}
	if parsed.APIKey() != testKey {
		t.Fatalf("iss = %q, want %q", parsed.APIKey(), testKey)
	}
	claims, grants, err := parsed.Verify(testSecret)
	if err != nil {
		t.Fatalf("verify token: %v", err)
	}
	return claims, grants
}

func ptr[T any](v T) *T { return &v }

func TestSign(t *testing.T) {
	issued := mustSign(t, token.Grant{Room: "r1", Identity: "alice", Name: "Alice", Metadata: `{"a":1}`,
		Permissions: token.Permissions{CanPublish: true, CanSubscribe: true, CanPublishData: true}})
	claims, grants := mustVerify(t, issued.Token)
	v := grants.Video
	if !v.RoomJoin || v.Room != "r1" || grants.Identity != "alice" || grants.Name != "Alice" || grants.Metadata != `{"a":1}` {
		t.Errorf("grants = %+v, video = %+v", grants, v)
	}
	// Every permission is explicit in the token, not left to LiveKit's defaults.
	if v.CanPublish == nil || !*v.CanPublish || v.CanSubscribe == nil || !*v.CanSubscribe ||
		v.CanPublishData == nil || !*v.CanPublishData || v.CanUpdateOwnMetadata == nil || *v.CanUpdateOwnMetadata {
		t.Errorf("default permissions wrong: %+v", v)
	}
	if v.Hidden || v.Agent {
		t.Errorf("hidden/agent must default to false: %+v", v)
	}
	if got := claims.ExpiresAt.Unix() - claims.NotBefore.Unix(); got != 3600 {
		t.Errorf("exp - nbf = %d, want 3600", got)
	}
	if issued.ExpiresAt != claims.ExpiresAt.Unix() {
		t.Errorf("expiresAt = %d, token exp = %d", issued.ExpiresAt, claims.ExpiresAt.Unix())
	}
	if claims.Subject != "alice" || issued.Identity != "alice" || issued.Room != "r1" || issued.WSURL != "wss://lk.example.com" {
		t.Errorf("issued = %+v, sub = %q", issued, claims.Subject)
	}

	issued = mustSign(t, token.Grant{Room: "r", Identity: "agent-media-bridge_1.a", Kind: livekit.ParticipantInfo_AGENT, TTL: time.Minute,
		Permissions: token.Permissions{CanUpdateOwnMetadata: true, Hidden: true, Agent: true}})
	claims, grants = mustVerify(t, issued.Token)
	v = grants.Video
	if grants.Identity != "agent-media-bridge_1.a" || grants.Kind != "agent" || *v.CanPublish || *v.CanSubscribe || *v.CanPublishData ||
		!*v.CanUpdateOwnMetadata || !v.Hidden || !v.Agent {
		t.Errorf("agent grants not as granted: %+v kind %q", v, grants.Kind)
	}
	if got := claims.ExpiresAt.Unix() - claims.NotBefore.Unix(); got != 60 {
		t.Errorf("exp - nbf = %d, want 60", got)
	}
}

// An empty source list is never written as "every source": the token cannot publish at all.
func TestEmptyPublishSourcesNeverWiden(t *testing.T) {
	_, grants := mustVerify(t, mustSign(t, token.Grant{Room: "r", Identity: "a", PublishSources: []string{},
		Permissions: token.Permissions{CanPublish: true}}).Token)
	if grants.Video.GetCanPublishSource(livekit.TrackSource_SCREEN_SHARE) || grants.Video.GetCanPublishSource(livekit.TrackSource_CAMERA) {
		t.Errorf("an empty list published: %+v", grants.Video)
	}
	_, grants = mustVerify(t, mustSign(t, token.Grant{Room: "r", Identity: "a", PublishSources: []string{"camera"},
		Permissions: token.Permissions{CanPublish: true}}).Token)
	if !grants.Video.GetCanPublishSource(livekit.TrackSource_CAMERA) || grants.Video.GetCanPublishSource(livekit.TrackSource_SCREEN_SHARE) {
		t.Errorf("[camera] publishes %+v", grants.Video)
	}
}

func TestRequestRules(t *testing.T) {
	long := strings.Repeat("x", identifier.MaxBytes+1)
	for _, tc := range []struct {
		name      string
		req       token.JoinRequest
		wantField string
	}{
		{"no room", token.JoinRequest{Identity: "a"}, "room"},
		{"no identity", token.JoinRequest{Room: "r"}, "identity"},
		// Issue 14: identifiers are PRECIS (the agent- namespace is the policy's: a 403).
		{"fullwidth identity", token.JoinRequest{Room: "r", Identity: "ａｇｅｎｔ-x"}, "identity"},
		{"emoji in identity", token.JoinRequest{Room: "r", Identity: "ünïcødé 👋"}, "identity"},
		{"zero width space in room", token.JoinRequest{Room: "r\u200b", Identity: "a"}, "room"},
		{"trailing space in name", token.JoinRequest{Room: "r", Identity: "a", Name: "Ada "}, "name"},
		{"long room", token.JoinRequest{Room: long, Identity: "a"}, "room"},
		{"long name", token.JoinRequest{Room: "r", Identity: "a", Name: long}, "name"},
		{"control char", token.JoinRequest{Room: "r\x00", Identity: "a"}, "room"},
		{"newline in identity", token.JoinRequest{Room: "r", Identity: "a\nb"}, "identity"},
		{"invalid utf-8", token.JoinRequest{Room: "r", Identity: "\xff"}, "identity"},
		{"metadata too big", token.JoinRequest{Room: "r", Identity: "a", Metadata: strings.Repeat("m", token.MaxMetadataBytes+1)}, "metadata"},
		{"ttl zero", token.JoinRequest{Room: "r", Identity: "a", TTLSeconds: ptr[int64](0)}, "ttl_seconds"},
		{"ttl negative", token.JoinRequest{Room: "r", Identity: "a", TTLSeconds: ptr[int64](-5)}, "ttl_seconds"},
		{"ttl over max", token.JoinRequest{Room: "r", Identity: "a", TTLSeconds: ptr[int64](86401)}, "ttl_seconds"},
		{"an empty source list", token.JoinRequest{Room: "r", Identity: "a", Grants: token.Grants{CanPublishSources: []string{}}}, "grants.canPublishSources"},
		{"an unknown source", token.JoinRequest{Room: "r", Identity: "a", Grants: token.Grants{CanPublishSources: []string{"screen"}}}, "grants.canPublishSources"},
		{"an empty attribute key", token.JoinRequest{Room: "r", Identity: "a", Attributes: map[string]string{"": "x"}}, "attributes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.req.Validate(limits, nil)
			var invalid *token.Invalid
			if !errors.As(err, &invalid) || invalid.Field != tc.wantField {
				t.Fatalf("err = %v, want invalid %s", err, tc.wantField)
			}
		})
	}
	for _, ok := range []token.JoinRequest{
		{Room: strings.Repeat("r", identifier.MaxBytes), Identity: "a"},
		{Room: "r", Identity: "ünïcødé", Name: "ünïcødé 👋", TTLSeconds: ptr[int64](86400)},
		{Room: "r", Identity: "agentsmith"},
		{Room: "r", Identity: "a", Grants: token.Grants{CanPublishSources: []string{"camera", "microphone"}}},
	} {
		if err := ok.Validate(limits, nil); err != nil {
			t.Errorf("%+v refused: %v", ok, err)
		}
	}
	err := (&token.JoinRequest{Room: "r", Identity: "a", TTLSeconds: ptr[int64](86401)}).Validate(limits, nil)
	if !strings.Contains(err.Error(), "86400") {
		t.Errorf("ttl error does not state the maximum: %v", err)
	}
	// A signed-in user's identity claim stands in for the identity, and is held to its rules.
	if err := (&token.JoinRequest{Room: "r"}).Validate(limits, &token.User{Identity: "alice"}); err != nil {
		t.Errorf("a user's own identity: %v", err)
	}
	var invalid *token.Invalid
	if err := (&token.JoinRequest{Room: "r"}).Validate(limits, &token.User{Identity: "a\u200bb"}); !errors.As(err, &invalid) || invalid.Field != "identity" {
		t.Errorf("an identity claim with a zero-width space: %v", err)
	}
}

func TestAgentIDRules(t *testing.T) {
	for _, id := range []string{"", strings.Repeat("a", 65), "has space", "slash/", "ünï", "a\x00"} {
		err := (&token.AgentRequest{Room: "r", AgentID: id}).Validate(limits)
		var invalid *token.Invalid
		if !errors.As(err, &invalid) || invalid.Field != "agent_id" {
			t.Errorf("agent_id %q: err = %v", id, err)
		}
	}
	if err := (&token.AgentRequest{Room: "r", AgentID: strings.Repeat("a", 64)}).Validate(limits); err != nil {
		t.Errorf("64-character agent_id refused: %v", err)
	}
}

func TestVerify(t *testing.T) {
	iss := newIssuer()
	now := time.Now()
	valid := mustSign(t, token.Grant{Room: "r", Identity: "alice", Name: "Alice", Metadata: "m"})
	claims := func(mutate func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": testKey, "sub": "x", "nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "video": map[string]any{"room": "r", "roomJoin": true}}
		if mutate != nil {
			mutate(c)
		}
		return c
	}
	hs := func(secret string, mutate func(jwt.MapClaims)) string {
		return testenv.MintJWT(t, jwt.SigningMethodHS256, []byte(secret), "", claims(mutate))
	}
	parts := strings.Split(valid.Token, ".")
	for _, tc := range []struct {
		name, token, wantReason string
	}{
		{"valid", valid.Token, ""},
		{"expired beyond leeway", hs(testSecret, func(c jwt.MapClaims) { c["exp"] = now.Add(-2 * time.Minute).Unix() }), token.ReasonExpired},
		{"not yet valid", hs(testSecret, func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() }), token.ReasonNotYetValid},
		{"other secret", hs("another-secret", nil), token.ReasonBadSignature},
		{"unknown key", hs(testSecret, func(c jwt.MapClaims) { c["iss"] = "someone-else" }), token.ReasonUnknownKey},
		{"no iss", hs(testSecret, func(c jwt.MapClaims) { delete(c, "iss") }), token.ReasonUnknownKey},
		{"no exp", hs(testSecret, func(c jwt.MapClaims) { delete(c, "exp") }), token.ReasonMalformed},
		{"HS512", testenv.MintJWT(t, jwt.SigningMethodHS512, []byte(testSecret), "", claims(nil)), token.ReasonBadSignature},
		{"alg none", testenv.MintJWT(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims(nil)), token.ReasonBadSignature},
		{"tampered payload", parts[0] + "." + strings.TrimRight(parts[1], "=") + "x." + parts[2], token.ReasonMalformed},
		{"tampered signature", parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])), token.ReasonBadSignature},
		{"truncated", valid.Token[:len(valid.Token)/2], token.ReasonMalformed},
		{"garbage", "not a token", token.ReasonMalformed},
		{"empty segments", "..", token.ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := iss.Verify(tc.token)
			if tc.wantReason == "" {
				if !got.Valid || got.Claims == nil || got.Refusal != nil {
					t.Fatalf("got %+v, want valid", got)
				}
				return
			}
			if got.Valid || got.Refusal == nil || got.Reason != tc.wantReason || got.Message == "" {
				t.Fatalf("got %+v (refusal %+v), want reason %s", got, got.Refusal, tc.wantReason)
			}
		})
	}
	got := iss.Verify(valid.Token)
	if got.Identity != "alice" || got.Name != "Alice" || got.Room != "r" || got.Kind != "standard" || got.Metadata != "m" ||
		got.ExpiresAt != valid.ExpiresAt || got.ExpiresAt-got.NotBefore != 3600 || got.IssuedAt != got.NotBefore || !got.Grants.RoomJoin {
		t.Errorf("claims = %+v", got.Claims)
	}
}

// Whether or not a second ticks while signing, expiresAt is the token's own exp.
func TestExpiresAtAcrossASecond(t *testing.T) {
	issued := mustSign(t, token.Grant{Room: "r", Identity: "a", TTL: 90 * time.Second})
	claims, _ := mustVerify(t, issued.Token)
	exp := claims.ExpiresAt.Unix()
	iat := claims.IssuedAt.Unix()
	for _, tc := range []struct{ before, after int64 }{{iat, iat}, {iat, iat + 1}, {iat - 1, iat}} {
		got, err := token.ExpiresAtForTest(issued.Token, tc.before, tc.after, 90*time.Second)
		if err != nil || got != exp {
			t.Errorf("before %d after %d: %d %v, want %d", tc.before-iat, tc.after-iat, got, err, exp)
		}
	}
}
