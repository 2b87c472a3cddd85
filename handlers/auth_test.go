package handlers_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/token-service/token-service/internal/testenv"
)

var (
	serviceKey1 = strings.Repeat("k", 32)
	serviceKey2 = "second-service-key-for-rotation-0123456789"
)

func TestServiceKeys(t *testing.T) {
	srv := newServer(t, "SERVICE_API_KEYS="+serviceKey1+","+serviceKey2)
	agent := `{"room":"r","agent_id":"bridge"}`
	for _, key := range []string{serviceKey1, serviceKey2} { // both keys work, so either can be rotated out
		if r := srv.post(t, "/token/agent", agent, "Authorization: Bearer "+key); r.status != 200 {
			t.Errorf("valid key refused: %d %s", r.status, r.raw)
		}
	}
	for _, tc := range []struct{ name, auth, challenge string }{
		{"missing", "", "Bearer"},
		{"wrong", "Authorization: Bearer " + strings.Repeat("x", 32), `Bearer error="invalid_token"`},
		{"prefix of a key", "Authorization: Bearer " + serviceKey1[:31], `Bearer error="invalid_token"`},
		{"not bearer", "Authorization: Basic " + serviceKey1, `Bearer error="invalid_token"`},
		{"lowercase scheme", "Authorization: bearer " + serviceKey1, `Bearer error="invalid_token"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var headers []string
			if tc.auth != "" {
				headers = append(headers, tc.auth)
			}
			for path, body := range map[string]string{"/token/agent": agent, "/token/verify": `{"token":"x"}`} {
				r := srv.post(t, path, body, headers...)
				r.wantError(t, 401, "unauthorized", "")
				if r.header.Get("WWW-Authenticate") != tc.challenge {
					t.Errorf("%s: WWW-Authenticate = %q, want %q", path, r.header.Get("WWW-Authenticate"), tc.challenge)
				}
				if strings.Contains(r.raw, serviceKey1) {
					t.Errorf("%s: the reply echoes the key", path)
				}
			}
		})
	}
	// Privileged grants need a key when keys are set; ordinary joins do not.
	srv.post(t, "/token", `{"room":"r","identity":"a","grants":{"hidden":true}}`).wantError(t, 403, "forbidden", "grants.hidden")
	srv.post(t, "/token", `{"room":"r","identity":"a","grants":{"agent":true}}`).wantError(t, 403, "forbidden", "grants.agent")
	if r := srv.post(t, "/token", `{"room":"r","identity":"a","grants":{"hidden":true}}`, "Authorization: Bearer "+serviceKey2); r.status != 200 {
		t.Errorf("service caller refused a hidden grant: %d %s", r.status, r.raw)
	}
	if r := srv.post(t, "/token", `{"room":"r","identity":"a"}`); r.status != 200 {
		t.Errorf("an anonymous ordinary join: %d %s", r.status, r.raw)
	}
	// A wrong key is refused even where none is needed: bad credentials are never ignored.
	srv.post(t, "/token", `{"room":"r","identity":"a"}`, "Authorization: Bearer wrong").wantError(t, 401, "unauthorized", "")
}

func TestProductionWithoutServiceKeys(t *testing.T) {
	srv := newServer(t, "APP_ENV=production")
	for path, body := range map[string]string{"/token/agent": `{"room":"r","agent_id":"b"}`, "/token/verify": `{"token":"x"}`} {
		r := srv.post(t, path, body)
		r.wantError(t, 403, "forbidden", "")
		if !strings.Contains(r.body["message"].(string), "SERVICE_API_KEYS") {
			t.Errorf("%s: message does not name SERVICE_API_KEYS: %s", path, r.raw)
		}
	}
	srv.post(t, "/token", `{"room":"r","identity":"a","grants":{"hidden":true}}`).wantError(t, 403, "forbidden", "grants.hidden")
	if r := srv.post(t, "/token", `{"room":"r","identity":"a"}`); r.status != 200 {
		t.Errorf("ordinary join in production: %d %s", r.status, r.raw)
	}
}

func TestUserJWTWithSharedSecret(t *testing.T) {
	secret := "user-jwt-shared-secret-0123456789abcdef"
	srv := newServer(t, "AUTH_JWT_SECRET="+secret, "AUTH_JWT_ISSUER=https://idp.example.com", "AUTH_JWT_AUDIENCE=video-app",
		"AUTH_JWT_ROOMS_CLAIM=rooms", "SERVICE_API_KEYS="+serviceKey1)
	now := time.Now()
	claims := func(mutate func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "https://idp.example.com", "aud": "video-app", "sub": "user-42", "name": "Ada",
			"exp": now.Add(time.Hour).Unix(), "nbf": now.Unix(), "rooms": []string{"standup", "retro"}}
		if mutate != nil {
			mutate(c)
		}
		return c
	}
	sign := func(method jwt.SigningMethod, key any, c jwt.MapClaims) string {
		return testenv.MintJWT(t, method, key, "", c)
	}
	good := sign(jwt.SigningMethodHS256, []byte(secret), claims(nil))
	r := srv.post(t, "/token", `{"room":"standup"}`, "Authorization: Bearer "+good)
	if r.status != 200 || r.body["identity"] != "user-42" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if g := mustGrants(t, r.body["token"].(string), 3600); g.Name != "Ada" {
		t.Errorf("name from the claim: %q", g.Name)
	}
	if r := srv.post(t, "/token", `{"room":"retro","identity":"user-42","name":"Ada L."}`, "Authorization: Bearer "+good); r.status != 200 {
		t.Errorf("own identity, own name: %d %s", r.status, r.raw)
	}
	srv.post(t, "/token", `{"room":"standup","identity":"user-7"}`, "Authorization: Bearer "+good).wantError(t, 403, "forbidden", "identity")
	srv.post(t, "/token", `{"room":"board-meeting"}`, "Authorization: Bearer "+good).wantError(t, 403, "forbidden", "room")
	srv.post(t, "/token", `{"room":"standup","grants":{"hidden":true}}`, "Authorization: Bearer "+good).wantError(t, 403, "forbidden", "grants.hidden")
	srv.post(t, "/token", `{"room":"standup","identity":"x"}`).wantError(t, 401, "unauthorized", "")
	// A backend may mint for anyone with a service key.
	if r := srv.post(t, "/token", `{"room":"any","identity":"user-7"}`, "Authorization: Bearer "+serviceKey1); r.status != 200 {
		t.Errorf("service key in user mode: %d %s", r.status, r.raw)
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	for name, tok := range map[string]string{
		"wrong secret":           sign(jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdef-xyz"), claims(nil)),
		"wrong issuer":           sign(jwt.SigningMethodHS256, []byte(secret), claims(func(c jwt.MapClaims) { c["iss"] = "https://evil" })),
		"wrong audience":         sign(jwt.SigningMethodHS256, []byte(secret), claims(func(c jwt.MapClaims) { c["aud"] = "other-app" })),
		"expired":                sign(jwt.SigningMethodHS256, []byte(secret), claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })),
		"no exp":                 sign(jwt.SigningMethodHS256, []byte(secret), claims(func(c jwt.MapClaims) { delete(c, "exp") })),
		"future nbf":             sign(jwt.SigningMethodHS256, []byte(secret), claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() })),
		"no sub":                 sign(jwt.SigningMethodHS256, []byte(secret), claims(func(c jwt.MapClaims) { delete(c, "sub") })),
		"HS512 (not configured)": sign(jwt.SigningMethodHS512, []byte(secret), claims(nil)),
		"alg none":               sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil)),
		"RS256 by another":       sign(jwt.SigningMethodRS256, rsaKey, claims(nil)),
		"garbage":                "not.a.jwt",
	} {
		t.Run(name, func(t *testing.T) {
			r := srv.post(t, "/token", `{"room":"standup"}`, "Authorization: Bearer "+tok)
			r.wantError(t, 401, "unauthorized", "")
		})
	}
}

// jwksServer publishes a JWK Set whose keys a test can rotate.
type jwksServer struct {
	*httptest.Server
	mu   sync.Mutex
	keys []map[string]string
}

func (j *jwksServer) publish(keys ...map[string]string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.keys = keys
}

func newJWKSServer(t *testing.T) *jwksServer {
	j := &jwksServer{}
	j.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.mu.Lock()
		defer j.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": j.keys})
	}))
	t.Cleanup(j.Close)
	return j
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, key *rsa.PrivateKey) map[string]string {
	return map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes())}
}

func ecJWK(kid string, key *ecdsa.PrivateKey) map[string]string {
	pub, _ := key.PublicKey.Bytes() // uncompressed point: 0x04 || X || Y
	return map[string]string{"kty": "EC", "kid": kid, "alg": "ES256", "use": "sig", "crv": "P-256",
		"x": b64(pub[1:33]), "y": b64(pub[33:])}
}

func TestUserJWTWithRotatingJWKS(t *testing.T) {
	jwks := newJWKSServer(t)
	rsaOld, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecNew, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks.publish(rsaJWK("old", rsaOld))
	srv := newServer(t, "AUTH_JWKS_URL="+jwks.URL, "AUTH_JWT_ISSUER=https://idp", "AUTH_JWT_AUDIENCE=app")

	sign := func(method jwt.SigningMethod, kid string, key any) string {
		return testenv.MintJWT(t, method, key, kid, jwt.MapClaims{"iss": "https://idp", "aud": "app", "sub": "u1", "exp": time.Now().Add(time.Hour).Unix()})
	}
	join := func(tok string) reply { return srv.post(t, "/token", `{"room":"r"}`, "Authorization: Bearer "+tok) }

	if r := join(sign(jwt.SigningMethodRS256, "old", rsaOld)); r.status != 200 {
		t.Fatalf("RS256 token from the published key: %d %s", r.status, r.raw)
	}
	// The provider rotates to a new EC key: a token with the unknown kid refetches the set.
	jwks.publish(rsaJWK("old", rsaOld), ecJWK("new", ecNew))
	if r := join(sign(jwt.SigningMethodES256, "new", ecNew)); r.status != 200 {
		t.Fatalf("ES256 token from the rotated-in key: %d %s", r.status, r.raw)
	}
	// alg is fixed by the JWK and configuration, never by the token: an HS256 token "signed" with
	// the public key's bytes, or a key claiming another alg, is refused.
	hs := sign(jwt.SigningMethodHS256, "old", rsaOld.PublicKey.N.Bytes())
	join(hs).wantError(t, 401, "unauthorized", "")
	join(sign(jwt.SigningMethodRS256, "new", rsaOld)).wantError(t, 401, "unauthorized", "")
	join(sign(jwt.SigningMethodRS256, "nobody", rsaOld)).wantError(t, 401, "unauthorized", "")
}
