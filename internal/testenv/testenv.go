// Package testenv has what tests share: free ports and signed JWTs. Its subpackages start real
// servers (livekittest, redistest) and poll for conditions (wait). Import it only from _test.go
// files; nothing here reaches the binary.
package testenv

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/token-service/token-service/internal/freeport"
)

// FreePort returns a free TCP port on 127.0.0.1, or fails the test.
func FreePort(tb testing.TB) int {
	tb.Helper()
	port, err := freeport.Pick("tcp")
	if err != nil {
		tb.Fatal(err)
	}
	return port
}

// MintJWT signs claims with method and key, as an identity provider, LiveKit or an attacker
// would; it is the one way tests make JWTs that the service did not issue.
// A non-empty kid goes into the header, as a JWKS-backed provider names its key.
func MintJWT(tb testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	signed, err := tok.SignedString(key)
	if err != nil {
		tb.Fatalf("sign test JWT: %v", err)
	}
	return signed
}
