package authn_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/token-service/token-service/authn"
	"github.com/token-service/token-service/token"
)

const userSecret = "user-jwt-shared-secret-0123456789abcdef"

// signRaw signs a header and payload given as raw JSON text, so that a test can send what
// jwt.MapClaims cannot express: duplicate members, bad UTF-8, escapes of lone surrogates.
func signRaw(header, payload string) string {
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	mac := hmac.New(sha256.New, []byte(userSecret))
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

func sharedSecretAuth(t *testing.T) *authn.Authenticator {
	t.Helper()
	a, err := authn.New(t.Context(), authn.Settings{JWTSecret: userSecret, Issuer: "idp", Audience: "app",
		Algorithms: []string{"HS256"}, IdentityClaim: "sub", NameClaim: "name"})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// A user token must say one thing once: duplicate claims, text that is not valid Unicode, a
// critical header extension we do not understand and an iat in the future are all refused,
// where golang-jwt alone reads the last duplicate, turns bad UTF-8 into U+FFFD and ignores crit.
func TestUserTokenIsReadStrictly(t *testing.T) {
	a := sharedSecretAuth(t)
	exp := time.Now().Add(time.Hour).Unix()
	now := time.Now().Unix()
	head := `{"alg":"HS256","typ":"JWT"}`
	claims := func(extra string) string {
		return fmt.Sprintf(`{"iss":"idp","aud":"app","exp":%d,"iat":%d,%s}`, exp, now, extra)
	}
	if _, err := identify(t, a, "Bearer "+signRaw(head, claims(`"sub":"alice"`))); err != nil {
		t.Fatalf("a plain token is refused: %v", err)
	}
	for name, tok := range map[string]string{
		"duplicate sub":           signRaw(head, claims(`"sub":"alice","sub":"bob"`)),
		"duplicate exp":           signRaw(head, fmt.Sprintf(`{"iss":"idp","aud":"app","exp":%d,"exp":%d,"sub":"a"}`, exp, exp)),
		"duplicate header member": signRaw(`{"alg":"HS256","alg":"none"}`, claims(`"sub":"alice"`)),
		"invalid UTF-8 in sub":    signRaw(head, claims("\"sub\":\"al\xffice\"")),
		"lone surrogate in sub":   signRaw(head, claims(`"sub":"\ud800"`)),
		"unknown crit extension":  signRaw(`{"alg":"HS256","crit":["exp-ext"],"exp-ext":1}`, claims(`"sub":"alice"`)),
		"empty crit":              signRaw(`{"alg":"HS256","crit":[]}`, claims(`"sub":"alice"`)),
		"iat an hour ahead":       signRaw(head, fmt.Sprintf(`{"iss":"idp","aud":"app","exp":%d,"iat":%d,"sub":"a"}`, exp, now+3600)),
		"iat past the leeway":     signRaw(head, fmt.Sprintf(`{"iss":"idp","aud":"app","exp":%d,"iat":%d,"sub":"a"}`, exp, now+60)),
		"payload not JSON":        signRaw(head, `{"sub":"a",`),
		"payload with a trailer":  signRaw(head, claims(`"sub":"alice"`)+`{}`),
	} {
		if _, err := identify(t, a, "Bearer "+tok); err != token.ErrBadCredentials {
			t.Errorf("%s: err %v, want ErrBadCredentials", name, err)
		}
	}
	// Within the leeway an iat ahead of our clock is the provider's clock, not an attack.
	if _, err := identify(t, a, "Bearer "+signRaw(head, fmt.Sprintf(`{"iss":"idp","aud":"app","exp":%d,"iat":%d,"sub":"a"}`, exp, now+10))); err != nil {
		t.Errorf("iat 10 s ahead: %v", err)
	}
}

// jwksAuth points an Authenticator at a JWKS URL and collects what it reports about refreshes.
func jwksAuth(t *testing.T, url string) (*authn.Authenticator, chan error) {
	t.Helper()
	errs := make(chan error, 16)
	a, err := authn.New(t.Context(), authn.Settings{JWKSURL: url, Issuer: "idp", Audience: "app",
		Algorithms: []string{"RS256"}, IdentityClaim: "sub",
		OnJWKSError: func(err error) { errs <- err }})
	if err != nil {
		t.Fatal(err)
	}
	return a, errs
}

func firstError(t *testing.T, errs chan error) error {
	t.Helper()
	select {
	case err := <-errs:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no JWKS error reported")
		return nil
	}
}

// The JWKS client follows no redirect: one to another server (in the review, to 127.0.0.2,
// walking an https URL past the https rule) is a failed fetch, and the other server is never asked.
func TestJWKSFollowsNoRedirect(t *testing.T) {
	asked := make(chan struct{}, 4)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked <- struct{}{}
		fmt.Fprint(w, `{"keys":[]}`)
	}))
	defer other.Close()
	redirector := httptest.NewServer(http.RedirectHandler(other.URL+"/jwks", http.StatusFound))
	defer redirector.Close()
	_, errs := jwksAuth(t, redirector.URL+"/jwks")
	if err := firstError(t, errs); !strings.Contains(err.Error(), "302") {
		t.Errorf("error %q does not say the status", err)
	}
	select {
	case <-asked:
		t.Fatal("the redirect was followed")
	default:
	}
}

// A JWKS response over 1 MiB is refused, announced or not.
func TestJWKSResponseIsBounded(t *testing.T) {
	for name, announce := range map[string]bool{"with Content-Length": true, "chunked": false} {
		t.Run(name, func(t *testing.T) {
			body := `{"keys":[],"padding":"` + strings.Repeat("p", 2<<20) + `"}`
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if announce {
					w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				}
				w.Write([]byte(body))
			}))
			defer srv.Close()
			_, errs := jwksAuth(t, srv.URL)
			if err := firstError(t, errs); !strings.Contains(err.Error(), "1 MiB") {
				t.Errorf("error %q does not say the limit", err)
			}
		})
	}
}

// The JWKS URL may carry a secret in its query (?client_secret=...): a failed fetch reports
// scheme, host and path only.
func TestJWKSErrorHidesTheQuery(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL // a port nothing listens on once closed, so the fetch fails in Client.Do
	srv.Close()
	_, errs := jwksAuth(t, url+"/keys?client_secret=abc&x=y#frag")
	err := firstError(t, errs)
	if msg := err.Error(); strings.Contains(msg, "abc") || strings.Contains(msg, "client_secret") || strings.Contains(msg, "frag") {
		t.Errorf("error carries the query: %q", msg)
	} else if !strings.Contains(msg, strings.TrimPrefix(url, "http://")+"/keys") {
		t.Errorf("error %q does not name host and path", msg)
	}
}
