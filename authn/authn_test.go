package authn_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/token-service/token-service/authn"
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
	a, err := authn.New(t.Context(), authn.Options{ServiceKeys: keys})
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
		if service, err := identify(t, a, bad); service || err != authn.ErrBadCredentials {
			t.Errorf("%q: service %v err %v, want ErrBadCredentials", bad, service, err)
		}
	}
}

func TestNothingConfiguredIgnoresTheHeader(t *testing.T) {
	a, err := authn.New(t.Context(), authn.Options{})
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
	a, err := authn.New(b.Context(), authn.Options{ServiceKeys: keys})
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
