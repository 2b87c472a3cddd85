package authn_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/token-service/token-service/authn"
	"github.com/token-service/token-service/internal/testenv"
	"github.com/token-service/token-service/token"
)

var keys = []string{strings.Repeat("a", 32), strings.Repeat("b", 48), strings.Repeat("c", 64)}

func identify(t testing.TB, a *authn.Authenticator, authorization string) (bool, error) {
	r := httptest.NewRequest("POST", "/token", nil)
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	c, err := a.Identify(r)
	return c.Service, err
}

func TestIdentifyServiceKeys(t *testing.T) {
	a, err := authn.New(t.Context(), authn.Settings{ServiceKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if service, err := identify(t, a, "Bearer "+k); !service || err != nil {
			t.Errorf("key %q...: service %v err %v", k[:4], service, err)
		}
	}
	if service, err := identify(t, a, ""); service || err != nil {
		t.Errorf("no header: service %v err %v, want anonymous", service, err)
	}
	for _, bad := range []string{"Bearer ", "Bearer " + keys[0] + "x", "Bearer " + keys[0][1:], "Token " + keys[0], keys[0]} {
		if service, err := identify(t, a, bad); service || err != token.ErrBadCredentials {
			t.Errorf("%q: service %v err %v, want ErrBadCredentials", bad, service, err)
		}
	}
}

func TestNothingConfiguredIgnoresTheHeader(t *testing.T) {
	a, err := authn.New(t.Context(), authn.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if service, err := identify(t, a, "Bearer whatever"); service || err != nil {
		t.Errorf("service %v err %v, want anonymous", service, err)
	}
}

// BenchmarkRefuse shows that a wrong key and a missing key cost the same to refuse: both hash the
// candidate and compare it with every configured key. Compare the two ns/op in one run.
func BenchmarkRefuse(b *testing.B) {
	a, err := authn.New(b.Context(), authn.Settings{ServiceKeys: keys})
	if err != nil {
		b.Fatal(err)
	}
	for name, header := range map[string]string{
		"missing":        "",
		"wrong":          "Bearer " + strings.Repeat("z", 32),
		"wrong-one-char": "Bearer " + keys[0][:31] + "z",
	} {
		r := httptest.NewRequest("POST", "/token", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				_, _ = a.Identify(r)
			}
		})
	}
}

// EdDSA, one of the default algorithms for a JWKS, verifies with an Ed25519 key the provider
// publishes; a token naming another algorithm for that key does not.
func TestEdDSAUserTokenFromJWKS(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"ed1","alg":"EdDSA","use":"sig","x":%q}]}`,
			base64.RawURLEncoding.EncodeToString(pub))
	}))
	defer jwks.Close()
	a, err := authn.New(t.Context(), authn.Settings{JWKSURL: jwks.URL, Issuer: "idp", Audience: "app",
		Algorithms: []string{"RS256", "ES256", "EdDSA"}, IdentityClaim: "sub", NameClaim: "name"})
	if err != nil {
		t.Fatal(err)
	}
	signed := testenv.MintJWT(t, jwt.SigningMethodEdDSA, priv, "ed1", jwt.MapClaims{"iss": "idp", "aud": "app", "sub": "ed-user", "exp": time.Now().Add(time.Hour).Unix()})
	r := httptest.NewRequest("POST", "/token", nil)
	r.Header.Set("Authorization", "Bearer "+signed)
	caller, err := a.Identify(r)
	if err != nil || caller.User == nil || caller.User.Identity != "ed-user" {
		t.Fatalf("caller %+v err %v", caller, err)
	}
	raw := testenv.MintJWT(t, jwt.SigningMethodHS256, []byte(pub), "ed1", jwt.MapClaims{"iss": "idp", "aud": "app", "sub": "x", "exp": time.Now().Add(time.Hour).Unix()})
	r.Header.Set("Authorization", "Bearer "+raw)
	if _, err := a.Identify(r); err != token.ErrBadCredentials {
		t.Errorf("HS256 keyed with the Ed25519 public key: %v", err)
	}
}
