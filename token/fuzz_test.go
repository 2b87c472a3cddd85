package token_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/token-service/token-service/token"
)

// FuzzVerify gives the verifier arbitrary strings: it never panics, every refusal has a known
// reason, and nothing but a token signed with our key and secret is valid.
func FuzzVerify(f *testing.F) {
	iss := newIssuer()
	valid := mustSign(f, token.Grant{Room: "r", Identity: "a"})
	for _, seed := range []string{valid.Token, "", ".", "..", "a.b.c", "eyJhbGciOiJub25lIn0.e30.",
		valid.Token[:len(valid.Token)-1], strings.Replace(valid.Token, ".", "..", 1)} {
		f.Add(seed)
	}
	reasons := []string{token.ReasonMalformed, token.ReasonExpired, token.ReasonNotYetValid, token.ReasonBadSignature, token.ReasonUnknownKey}
	f.Fuzz(func(t *testing.T, raw string) {
		got := iss.Verify(raw)
		if got.Valid {
			// Only our signature verifies, so only our claims can come back valid.
			if got.Refusal != nil || got.Claims == nil || got.Identity != "a" || got.Room != "r" {
				t.Fatalf("valid verdict for %q: %+v", raw, got)
			}
			return
		}
		if got.Refusal == nil || !slices.Contains(reasons, got.Reason) || got.Message == "" {
			t.Fatalf("refusal for %q: %+v", raw, got.Refusal)
		}
	})
}
