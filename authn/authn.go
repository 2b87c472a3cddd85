// Package authn establishes who is calling from a request's Authorization header: a backend with a
// service API key, or an end user with a JWT from the application's identity provider. What each
// caller may then ask for is the policy's business.
package authn

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/token-service/token-service/token"
)

// leeway allows for clocks that differ a little between the identity provider and us.
const leeway = 30 * time.Second

// Settings configure an Authenticator; the zero value recognises nobody.
type Settings struct {
	ServiceKeys   []string
	JWKSURL       string // verify user tokens with the provider's published keys
	JWTSecret     string // or with a shared HS256 secret
	Issuer        string
	Audience      string
	Algorithms    []string // fixed by configuration, never read from the token
	IdentityClaim string
	NameClaim     string
	RoomsClaim    string // optional: a list of room names, or "*"
	// OnJWKSError hears about failed JWKS refreshes (the last good keys stay in use).
	OnJWKSError func(error)
}

// Authenticator identifies callers. It is safe for concurrent use.
type Authenticator struct {
	serviceKeys   [][sha256.Size]byte
	serviceKeyIDs []string
	parser        *jwt.Parser
	keys          jwt.Keyfunc // nil when end-user authentication is off
	opts          Settings
}

// New returns an Authenticator. With a JWKS URL it starts fetching and refreshing the provider's
// keys until ctx ends; start-up does not wait for, or fail on, the first fetch.
func New(ctx context.Context, opts Settings) (*Authenticator, error) {
	a := &Authenticator{opts: opts}
	for _, key := range opts.ServiceKeys {
		digest := sha256.Sum256([]byte(key))
		a.serviceKeys = append(a.serviceKeys, digest)
		// A digest prefix: the same on every replica, and useless for guessing the key.
		a.serviceKeyIDs = append(a.serviceKeyIDs, hex.EncodeToString(digest[:8]))
	}
	switch {
	case opts.JWTSecret != "":
		secret := []byte(opts.JWTSecret)
		a.keys = func(*jwt.Token) (any, error) { return secret, nil }
	case opts.JWKSURL != "":
		kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{opts.JWKSURL}, keyfunc.Override{
			Client:           jwksClient(),
			HTTPTimeout:      5 * time.Second,
			RefreshInterval:  time.Hour,
			RateLimitWaitMax: time.Second,
			// A token signed with a key we have not seen refetches the set, at most this often,
			// so that a provider's key rotation is picked up without a restart.
			RefreshUnknownKID: rate.NewLimiter(rate.Every(10*time.Second), 1),
			RefreshErrorHandlerFunc: func(string) func(context.Context, error) {
				return func(_ context.Context, err error) {
					if opts.OnJWKSError != nil {
						opts.OnJWKSError(scrubURL(err, opts.JWKSURL))
					}
				}
			},
		})
		if err != nil {
			return nil, fmt.Errorf("JWKS client: %w", scrubURL(err, opts.JWKSURL))
		}
		a.keys = kf.Keyfunc
	}
	if a.keys != nil {
		a.parser = jwt.NewParser(
			jwt.WithValidMethods(opts.Algorithms),
			jwt.WithIssuer(opts.Issuer),
			jwt.WithAudience(opts.Audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(), // an iat ahead of our clock (past the leeway) is refused too
			jwt.WithLeeway(leeway),
		)
	}
	return a, nil
}

// strictSegments refuses a token whose header or claims are not I-JSON (RFC 7493): a duplicate
// member, invalid UTF-8 or an escaped lone surrogate. golang-jwt decodes with encoding/json,
// which keeps the last of two "sub" members and turns bad text into U+FFFD, so that two
// different subjects could map to one identity, and the request bodies refuse the same.
func strictSegments(raw string) error {
	header, rest, _ := strings.Cut(raw, ".")
	payload, _, _ := strings.Cut(rest, ".")
	for _, segment := range []string{header, payload} {
		decoded, err := base64.RawURLEncoding.DecodeString(segment)
		if err != nil {
			return fmt.Errorf("token segment is not base64url: %w", err)
		}
		if !jsontext.Value(decoded).IsValid() {
			return errors.New("token segment is not one valid JSON object (duplicate member, invalid UTF-8?)")
		}
	}
	return nil
}

// Identify returns the caller behind r. A request with no Authorization header is anonymous; one
// whose credentials do not verify is refused with token.ErrBadCredentials, except when the service
// recognises nobody (nothing configured), where the header is ignored.
func (a *Authenticator) Identify(r *http.Request) (token.Caller, error) {
	header := r.Header.Get("Authorization")
	credential, isBearer := strings.CutPrefix(header, "Bearer ")
	if !isBearer {
		credential = "" // still compared, so every refusal costs the same
	}
	if id, ok := a.serviceKeyID(credential); ok {
		return token.Caller{Service: true, ServiceKeyID: id}, nil
	}
	switch {
	case header == "" || (len(a.serviceKeys) == 0 && a.keys == nil):
		return token.Caller{}, nil
	case isBearer && a.keys != nil:
		user, err := a.verifyUser(credential)
		if err != nil {
			return token.Caller{}, token.ErrBadCredentials
		}
		return token.Caller{User: user}, nil
	}
	return token.Caller{}, token.ErrBadCredentials
}

// serviceKeyID compares digests of the candidate and of every key, without stopping early, so
// that neither a wrong key nor a missing one (the empty string) can be told apart by timing.
// The ID of the key that matched names it (to rate-limit it) without revealing it.
func (a *Authenticator) serviceKeyID(candidate string) (string, bool) {
	digest := sha256.Sum256([]byte(candidate))
	match, index := 0, 0
	for i := range a.serviceKeys {
		equal := subtle.ConstantTimeCompare(digest[:], a.serviceKeys[i][:])
		match |= equal
		index = subtle.ConstantTimeSelect(equal, i, index)
	}
	if match != 1 || candidate == "" {
		return "", false
	}
	return a.serviceKeyIDs[index], true
}

func (a *Authenticator) verifyUser(raw string) (*token.User, error) {
	if err := strictSegments(raw); err != nil {
		return nil, err
	}
	claims := jwt.MapClaims{}
	parsed, err := a.parser.ParseWithClaims(raw, claims, a.keys)
	if err != nil {
		return nil, err
	}
	// RFC 7515 §4.1.11: a recipient must refuse a token whose crit lists an extension it does
	// not understand, and we understand none (an empty crit is malformed).
	if _, ok := parsed.Header["crit"]; ok {
		return nil, errors.New("crit header: no extension is supported")
	}
	return a.opts.User(claims)
}

// User is the end user a verified token's claims describe, as the configured claims name it.
// A token without a non-empty identity claim describes nobody.
func (s Settings) User(claims map[string]any) (*token.User, error) {
	identity, _ := claims[s.IdentityClaim].(string)
	if identity == "" {
		return nil, fmt.Errorf("claim %q is not a non-empty string", s.IdentityClaim)
	}
	user := &token.User{Identity: identity, Claims: claims}
	user.Name, _ = claims[s.NameClaim].(string)
	if s.RoomsClaim != "" {
		user.RoomsRestricted = true
		switch rooms := claims[s.RoomsClaim].(type) {
		case string: // "*" lifts the restriction; any other string is the one room allowed
			if rooms == "*" {
				user.RoomsRestricted = false
			} else {
				user.Rooms = []string{rooms}
			}
		case []any:
			for _, room := range rooms {
				if name, ok := room.(string); ok {
					user.Rooms = append(user.Rooms, name)
				}
			}
		} // absent or of another type: no room at all, the safe reading
	}
	return user, nil
}
