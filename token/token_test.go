package token_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/livekit/protocol/auth"

	"github.com/token-service/token-service/internal/testenv"
	"github.com/token-service/token-service/policy"
	"github.com/token-service/token-service/token"
)

const (
	testKey    = "APItestkey"
	testSecret = "a-test-secret-that-is-long-enough-for-production"
)

func newIssuer() *token.Issuer {
	engine, err := policy.New(policy.Settings{Open: true, DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour})
	if err != nil {
		panic(err)
	}
	return token.NewIssuer(token.Settings{APIKey: testKey, APISecret: testSecret, WSURL: "wss://lk.example.com",
		DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour, Decider: engine})
}

// anyone is an anonymous caller; the default Policy (development) lets it ask for anything.
var anyone token.Caller

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

func TestJoinDefaults(t *testing.T) {
	issued, err := newIssuer().Join(anyone, token.JoinRequest{Room: "r1", Identity: "alice", Name: "Alice", Metadata: `{"a":1}`})
	if err != nil {
		t.Fatal(err)
	}
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
}

func TestJoinGrantsAsRequested(t *testing.T) {
	issued, err := newIssuer().Join(anyone, token.JoinRequest{Room: "r", Identity: "bob", TTLSeconds: ptr[int64](60), Grants: token.Grants{
		CanPublish: ptr(false), CanSubscribe: ptr(false), CanPublishData: ptr(false),
		CanUpdateOwnMetadata: ptr(true), Hidden: ptr(true), Agent: ptr(true),
	}})
	if err != nil {
		t.Fatal(err)
	}
	claims, grants := mustVerify(t, issued.Token)
	v := grants.Video
	if *v.CanPublish || *v.CanSubscribe || *v.CanPublishData || !*v.CanUpdateOwnMetadata || !v.Hidden || !v.Agent {
		t.Errorf("grants not as requested: %+v", v)
	}
	if got := claims.ExpiresAt.Unix() - claims.NotBefore.Unix(); got != 60 {
		t.Errorf("exp - nbf = %d, want 60", got)
	}
}

func TestAgentToken(t *testing.T) {
	issued, err := newIssuer().Agent(anyone, token.AgentRequest{Room: "r", AgentID: "media-bridge_1.a"})
	if err != nil {
		t.Fatal(err)
	}
	_, grants := mustVerify(t, issued.Token)
	v := grants.Video
	if grants.Identity != "agent-media-bridge_1.a" || issued.Identity != "agent-media-bridge_1.a" || grants.Kind != "agent" {
		t.Errorf("identity %q kind %q", grants.Identity, grants.Kind)
	}
	if !*v.CanPublish || !*v.CanSubscribe || !*v.CanPublishData || !*v.CanUpdateOwnMetadata || v.Hidden || v.Agent || v.Room != "r" || !v.RoomJoin {
		t.Errorf("agent grants wrong: %+v", v)
	}
}

func TestRequestRules(t *testing.T) {
	iss := newIssuer()
	long := strings.Repeat("x", token.MaxNameBytes+1)
	for _, tc := range []struct {
		name      string
		req       token.JoinRequest
		wantField string
	}{
		{"no room", token.JoinRequest{Identity: "a"}, "room"},
		{"no identity", token.JoinRequest{Room: "r"}, "identity"},
		{"agent identity", token.JoinRequest{Room: "r", Identity: "agent-bridge"}, "identity"},
		// Issue 14: the reserved prefix is read case- and width-folded, and identifiers are PRECIS.
		{"agent identity in capitals", token.JoinRequest{Room: "r", Identity: "Agent-not-reserved"}, "identity"},
		{"fullwidth agent identity", token.JoinRequest{Room: "r", Identity: "ａｇｅｎｔ-x"}, "identity"},
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := iss.Join(anyone, tc.req)
			var invalid *token.Invalid
			if !errors.As(err, &invalid) || invalid.Field != tc.wantField {
				t.Fatalf("err = %v, want invalid %s", err, tc.wantField)
			}
		})
	}
	for _, ok := range []token.JoinRequest{
		{Room: strings.Repeat("r", token.MaxNameBytes), Identity: "a"},
		{Room: "r", Identity: "ünïcødé", Name: "ünïcødé 👋", TTLSeconds: ptr[int64](86400)},
		{Room: "r", Identity: "agentsmith"},
	} {
		if _, err := iss.Join(anyone, ok); err != nil {
			t.Errorf("%+v refused: %v", ok, err)
		}
	}
	_, err := iss.Join(anyone, token.JoinRequest{Room: "r", Identity: "a", TTLSeconds: ptr[int64](86401)})
	if !strings.Contains(err.Error(), "86400") {
		t.Errorf("ttl error does not state the maximum: %v", err)
	}
}

func TestAgentIDRules(t *testing.T) {
	iss := newIssuer()
	for _, id := range []string{"", strings.Repeat("a", 65), "has space", "slash/", "ünï", "a\x00"} {
		_, err := iss.Agent(anyone, token.AgentRequest{Room: "r", AgentID: id})
		var invalid *token.Invalid
		if !errors.As(err, &invalid) || invalid.Field != "agent_id" {
			t.Errorf("agent_id %q: err = %v", id, err)
		}
	}
	if _, err := iss.Agent(anyone, token.AgentRequest{Room: "r", AgentID: strings.Repeat("a", 64)}); err != nil {
		t.Errorf("64-character agent_id refused: %v", err)
	}
}

func TestVerify(t *testing.T) {
	iss := newIssuer()
	now := time.Now()
	valid, err := iss.Join(anyone, token.JoinRequest{Room: "r", Identity: "alice", Name: "Alice", Metadata: "m"})
	if err != nil {
		t.Fatal(err)
	}
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
			got, err := iss.Verify(anyone, tc.token)
			if err != nil {
				t.Fatal(err)
			}
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
	got, _ := iss.Verify(anyone, valid.Token)
	if got.Identity != "alice" || got.Name != "Alice" || got.Room != "r" || got.Kind != "standard" || got.Metadata != "m" ||
		got.ExpiresAt != valid.ExpiresAt || got.ExpiresAt-got.NotBefore != 3600 || got.IssuedAt != got.NotBefore || !got.Grants.RoomJoin {
		t.Errorf("claims = %+v", got.Claims)
	}
}

// Whether or not a second ticks while signing, expiresAt is the token's own exp.
func TestExpiresAtAcrossASecond(t *testing.T) {
	issued, err := newIssuer().Join(anyone, token.JoinRequest{Room: "r", Identity: "a", TTLSeconds: ptr[int64](90)})
	if err != nil {
		t.Fatal(err)
	}
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
