package handlers_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/token-service/token-service/internal/testenv"
)

// hostileCase is one bad request and the reply it must get.
type hostileCase struct {
	name         string
	method, path string
	body         string
	headers      []string
	status       int
	code         string // the error code; "invalid" means a 200 {"valid":false} from /token/verify
}

func nested(open, close string, depth int) string {
	return strings.Repeat(open, depth) + strings.Repeat(close, depth)
}

// forgeToken signs claims for the verify cases with whatever method and key a caller might try.
func forgeToken(t *testing.T, method jwt.SigningMethod, key any, mutate func(jwt.MapClaims)) string {
	t.Helper()
	now := time.Now()
	c := jwt.MapClaims{"iss": testKey, "sub": "x", "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "video": map[string]any{"room": "r", "roomJoin": true}}
	if mutate != nil {
		mutate(c)
	}
	return testenv.MintJWT(t, method, key, "", c)
}

// rs256WithSecret is the classic key-confusion forgery: header RS256, signed with HMAC using the
// HMAC secret as if it were the public key.
func rs256WithSecret() string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	body := enc.EncodeToString(fmt.Appendf(nil, `{"iss":%q,"sub":"x","exp":%d,"video":{"room":"r","roomJoin":true}}`, testKey, time.Now().Add(time.Hour).Unix()))
	mac := hmac.New(sha256.New, []byte(testSecret))
	mac.Write([]byte(head + "." + body))
	return head + "." + body + "." + enc.EncodeToString(mac.Sum(nil))
}

func hostileCases(t *testing.T, valid string) []hostileCase {
	join, agent, verify := "/token", "/token/agent", "/token/verify"
	post := func(name, path, body string, status int, code string) hostileCase {
		return hostileCase{name: name, method: http.MethodPost, path: path, body: body, status: status, code: code}
	}
	vt := func(name, token string) hostileCase {
		return post("verify: "+name, verify, fmt.Sprintf(`{"token":%q}`, token), 200, "invalid")
	}
	parts := strings.Split(valid, ".")
	long := strings.Repeat("a", 300)
	cases := []hostileCase{
		post("malformed JSON", join, `{"room":"r",}`, 400, "invalid_json"),
		post("truncated JSON", join, `{"room":"r","identity":"a"`, 400, "invalid_json"),
		post("only a brace", join, `{`, 400, "invalid_json"),
		post("whitespace body", join, "   \n", 400, "invalid_json"),
		post("byte order mark", join, "\ufeff{\"room\":\"r\",\"identity\":\"a\"}", 400, "invalid_json"),
		post("trailing garbage", join, `{"room":"r","identity":"a"}xyz`, 400, "invalid_json"),
		post("two objects", join, `{"room":"r","identity":"a"}{"room":"r","identity":"a"}`, 400, "invalid_json"),
		post("array body", join, `[{"room":"r","identity":"a"}]`, 400, "invalid_request"),
		post("string body", join, `"room"`, 400, "invalid_request"),
		post("number body", join, `42`, 400, "invalid_request"),
		post("boolean body", join, `true`, 400, "invalid_request"),
		post("duplicate key", join, `{"room":"r","identity":"a","identity":"admin"}`, 400, "invalid_request"),
		post("duplicate grant", join, `{"room":"r","identity":"a","grants":{"hidden":false,"hidden":true}}`, 400, "invalid_request"),
		post("room a number", join, `{"room":1,"identity":"a"}`, 400, "invalid_request"),
		post("identity an array", join, `{"room":"r","identity":["a"]}`, 400, "invalid_request"),
		post("name an object", join, `{"room":"r","identity":"a","name":{}}`, 400, "invalid_request"),
		post("metadata a bool", join, `{"room":"r","identity":"a","metadata":true}`, 400, "invalid_request"),
		post("ttl a string", join, `{"room":"r","identity":"a","ttl_seconds":"60"}`, 400, "invalid_request"),
		post("ttl a bool", join, `{"room":"r","identity":"a","ttl_seconds":true}`, 400, "invalid_request"),
		post("ttl huge", join, `{"room":"r","identity":"a","ttl_seconds":1e400}`, 400, "invalid_request"),
		post("ttl past int64", join, `{"room":"r","identity":"a","ttl_seconds":9223372036854775808}`, 400, "invalid_request"),
		post("ttl negative", join, `{"room":"r","identity":"a","ttl_seconds":-60}`, 400, "invalid_request"),
		post("ttl fractional", join, `{"room":"r","identity":"a","ttl_seconds":59.5}`, 400, "invalid_request"),
		post("ttl over max", join, `{"room":"r","identity":"a","ttl_seconds":86401}`, 400, "invalid_request"),
		post("grants a string", join, `{"room":"r","identity":"a","grants":"all"}`, 400, "invalid_request"),
		post("grant a number", join, `{"room":"r","identity":"a","grants":{"canPublish":1}}`, 400, "invalid_request"),
		post("NUL in identity", join, `{"room":"r","identity":"a\u0000"}`, 400, "invalid_request"),
		post("bell in name", join, `{"room":"r","identity":"a","name":"\u0007"}`, 400, "invalid_request"),
		post("newline in room", join, `{"room":"r\nX-Injected: 1","identity":"a"}`, 400, "invalid_request"),
		post("invalid UTF-8", join, "{\"room\":\"\xc3\x28\",\"identity\":\"a\"}", 400, "invalid_json"),
		post("lone surrogate", join, `{"room":"\ud800","identity":"a"}`, 400, "invalid_json"),
		post("over-long room", join, `{"room":"`+long+`","identity":"a"}`, 400, "invalid_request"),
		post("over-long identity", join, `{"room":"r","identity":"`+long+`"}`, 400, "invalid_request"),
		post("over-long metadata", join, `{"room":"r","identity":"a","metadata":"`+strings.Repeat("m", 70000)+`"}`, 400, "invalid_request"),
		post("depth bomb in a field", join, `{"room":`+nested("[", "]", 10000)+`,"identity":"a"}`, 400, "invalid_json"),
		post("depth bomb in grants", join, `{"room":"r","identity":"a","grants":{"x":`+nested(`{"a":`, "}", 5000)+`}}`, 400, "invalid_request"),
		post("depth bomb as body", join, nested("[", "]", 100000), 400, "invalid_request"),
		post("body just under the limit", join, `{"room":"r","identity":"a","metadata":"`+strings.Repeat("m", 256<<10-50)+`"}`, 400, "invalid_request"),
		post("body over the limit", join, `{"room":"r","identity":"a","metadata":"`+strings.Repeat("m", 256<<10)+`"}`, 413, "payload_too_large"),
		post("unknown field", join, `{"room":"r","identity":"a","admin":true}`, 400, "invalid_request"),
		post("unknown grant", join, `{"room":"r","identity":"a","grants":{"superuser":true}}`, 400, "invalid_request"),
		post("huge unknown field name", join, `{"`+strings.Repeat("k", 100000)+`":1}`, 400, "invalid_request"),
		post("room_config: s3 proxy password", join, `{"room":"r","identity":"a","room_config":{"egress":{"room":{"file_outputs":[{"s3":{"proxy":{"password":"pw"}}}]}}}}`, 400, "invalid_request"),
		post("room_config: gcp proxy password", join, `{"room":"r","identity":"a","room_config":{"egress":{"tracks":{"gcp":{"proxy":{"password":"pw"}}}}}}`, 400, "invalid_request"),
		post("room_config: s3 session token", join, `{"room":"r","identity":"a","room_config":{"egress":{"tracks":{"s3":{"session_token":"st"}}}}}`, 400, "invalid_request"),
		post("room_config: s3 assume role external id", join, `{"room":"r","identity":"a","room_config":{"egress":{"participant":{"segment_outputs":[{"s3":{"assume_role_external_id":"x"}}]}}}}`, 400, "invalid_request"),
		post("room_config: webhook signing key", join, `{"room":"r","identity":"a","room_config":{"egress":{"room":{"webhooks":[{"signing_key":"k"}]}}}}`, 400, "invalid_request"),
		post("room_config: credentials on connection details", "/connection-details", `{"room_config":{"egress":{"room":{"file_outputs":[{"aliOSS":{"secret":"s"}}]}}}}`, 400, "invalid_request"),
		post("agent identity", join, `{"room":"r","identity":"agent-media-bridge"}`, 403, "forbidden"),
		post("agent identity in capitals", join, `{"room":"r","identity":"AGENT-media-bridge"}`, 403, "forbidden"),
		post("fullwidth agent identity", join, `{"room":"r","identity":"ａｇｅｎｔ-media-bridge"}`, 400, "invalid_request"),
		post("U+2010 in identity", join, `{"room":"r","identity":"agent\u2010media-bridge"}`, 400, "invalid_request"),
		post("U+200B before agent-", join, `{"room":"r","identity":"\u200bagent-media-bridge"}`, 400, "invalid_request"),
		post("U+FEFF in identity", join, `{"room":"r","identity":"alice\ufeff"}`, 400, "invalid_request"),
		post("U+00AD in identity", join, `{"room":"r","identity":"al\u00adice"}`, 400, "invalid_request"),
		post("U+202E in identity", join, `{"room":"r","identity":"alice\u202eecila"}`, 400, "invalid_request"),
		post("U+2028 in identity", join, `{"room":"r","identity":"alice\u2028bob"}`, 400, "invalid_request"),
		post("leading space in identity", join, `{"room":"r","identity":" alice"}`, 400, "invalid_request"),
		post("U+200B in room", join, `{"room":"r\u200b","identity":"a"}`, 400, "invalid_request"),
		post("U+202E in name", join, `{"room":"r","identity":"a","name":"Ada\u202e"}`, 400, "invalid_request"),
		post("look-alike on connection details", "/connection-details", `{"participant_identity":"\u200bagent-media-bridge"}`, 400, "invalid_request"),
		post("look-alike room on connection details", "/connection-details", `{"room_name":"ｒｏｏｍ"}`, 400, "invalid_request"),
		post("look-alike name on connection details", "/connection-details", `{"participant_name":" Ada"}`, 400, "invalid_request"),
		{name: "no content type", method: http.MethodPost, path: join, body: `{"room":"r","identity":"a"}`, headers: []string{"Content-Type: "}, status: 415, code: "unsupported_media_type"},
		{name: "text/plain", method: http.MethodPost, path: join, body: `{"room":"r","identity":"a"}`, headers: []string{"Content-Type: text/plain"}, status: 415, code: "unsupported_media_type"},
		{name: "form encoded", method: http.MethodPost, path: join, body: `room=r&identity=a`, headers: []string{"Content-Type: application/x-www-form-urlencoded"}, status: 415, code: "unsupported_media_type"},
		{name: "headers too big", method: http.MethodPost, path: join, body: `{"room":"r","identity":"a"}`, headers: []string{"X-Padding: " + strings.Repeat("p", 20<<10)}, status: 431, code: "headers_too_large"},
		{name: "preflight from a disallowed origin", method: http.MethodOptions, path: join, headers: []string{"Origin: https://evil.example.com", "Access-Control-Request-Method: POST"}, status: 403, code: "forbidden"},
		{name: "preflight for a disallowed method", method: http.MethodOptions, path: join, headers: []string{"Origin: https://app.example.com", "Access-Control-Request-Method: DELETE"}, status: 403, code: "forbidden"},

		post("agent: id with a slash", agent, `{"room":"r","agent_id":"../admin"}`, 400, "invalid_request"),
		post("agent: id with unicode", agent, `{"room":"r","agent_id":"bridgé"}`, 400, "invalid_request"),
		post("agent: id a number", agent, `{"room":"r","agent_id":7}`, 400, "invalid_request"),
		post("agent: id too long", agent, `{"room":"r","agent_id":"`+strings.Repeat("a", 65)+`"}`, 400, "invalid_request"),
		post("agent: no room", agent, `{"agent_id":"a"}`, 400, "invalid_request"),
		post("agent: asks for grants", agent, `{"room":"r","agent_id":"a","grants":{"hidden":true}}`, 400, "invalid_request"),
		post("agent: malformed", agent, `{"room":`, 400, "invalid_json"),
		post("agent: 2 MiB, unknown field first", agent, `{"identity":"x","metadata":"`+strings.Repeat("m", 2<<20)+`"}`, 413, "payload_too_large"),
		post("agent: 300 KiB of syntax errors", agent, `{"room":`+strings.Repeat("}", 300<<10), 413, "payload_too_large"),
		post("connection details: 2 MiB", "/connection-details", `{"room_name":"`+strings.Repeat("r", 2<<20)+`"}`, 413, "payload_too_large"),

		post("verify: no token", verify, `{}`, 400, "invalid_request"),
		post("verify: token a number", verify, `{"token":1}`, 400, "invalid_request"),
		post("verify: token null", verify, `{"token":null}`, 400, "invalid_request"),
		post("verify: token an array", verify, `{"token":["a"]}`, 400, "invalid_request"),
		post("verify: a 1 MB token", verify, `{"token":"`+strings.Repeat("A", 1<<20)+`"}`, 413, "payload_too_large"),
		vt("alg none", forgeToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil)),
		vt("HS384", forgeToken(t, jwt.SigningMethodHS384, []byte(testSecret), nil)),
		vt("HS512", forgeToken(t, jwt.SigningMethodHS512, []byte(testSecret), nil)),
		vt("RS256 with the secret as public key", rs256WithSecret()),
		vt("no iss", forgeToken(t, jwt.SigningMethodHS256, []byte(testSecret), func(c jwt.MapClaims) { delete(c, "iss") })),
		vt("unknown iss", forgeToken(t, jwt.SigningMethodHS256, []byte(testSecret), func(c jwt.MapClaims) { c["iss"] = "APIother" })),
		vt("no exp", forgeToken(t, jwt.SigningMethodHS256, []byte(testSecret), func(c jwt.MapClaims) { delete(c, "exp") })),
		vt("future nbf", forgeToken(t, jwt.SigningMethodHS256, []byte(testSecret), func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() })),
		vt("exp a string", forgeToken(t, jwt.SigningMethodHS256, []byte(testSecret), func(c jwt.MapClaims) { c["exp"] = "tomorrow" })),
		vt("tampered payload", parts[0]+"."+base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+testKey+`","sub":"admin","exp":9999999999,"video":{"roomAdmin":true}}`))+"."+parts[2]),
		vt("tampered signature", parts[0]+"."+parts[1]+"."+strings.Repeat("A", len(parts[2]))),
		vt("empty segments", ".."),
		vt("no dots", "eyJhbGciOiJIUzI1NiJ9"),
		vt("just under the body limit", strings.Repeat("A", 200<<10)),

		{name: "GET a POST route", method: http.MethodGet, path: join, status: 405, code: "method_not_allowed"},
		{name: "PUT /health", method: http.MethodPut, path: "/health", status: 405, code: "method_not_allowed"},
		{name: "invented method", method: strings.Repeat("X", 200), path: "/nope", status: 405, code: "method_not_allowed"},
		{name: "a 60 KB method", method: strings.Repeat("M", 60_000), path: join, status: 431, code: "headers_too_large"},
		{name: "unknown path", method: http.MethodGet, path: "/admin", status: 404, code: "not_found"},
		{name: "dot-dot path", method: http.MethodGet, path: "/token/../health", status: 404, code: "not_found"},
	}
	return cases
}

// Every hostile request gets its 4xx (or valid:false) as JSON, never a 5xx, and the reply never
// carries the secret.
func TestHostileInput(t *testing.T) {
	srv := newServer(t, "CORS_ORIGINS=https://app.example.com")
	valid := srv.post(t, "/token", `{"room":"r","identity":"a"}`).body["token"].(string)
	cases := hostileCases(t, valid)
	if len(cases) < 60 {
		t.Fatalf("only %d hostile cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := srv.do(t, tc.method, tc.path, tc.body, tc.headers...)
			if strings.Contains(r.raw, testSecret) {
				t.Fatalf("the reply carries the secret")
			}
			if tc.code == "invalid" {
				if r.status != 200 || r.body["valid"] != false || r.body["reason"] == "" {
					t.Fatalf("got %d %.300s, want valid:false", r.status, r.raw)
				}
				return
			}
			r.wantErrorCode(t, tc.status, tc.code)
		})
	}
	if logs := srv.log.String(); strings.Contains(logs, `"level":"error"`) || strings.Contains(logs, "panic") {
		t.Errorf("hostile input reached an error path:\n%s", logs)
	}
}

const hostileUserSecret = "user-jwt-shared-secret-0123456789abcdef"

// rawUserJWT signs claims given as raw JSON text with the user secret, so that a case can send
// what jwt.MapClaims cannot: duplicate members, bad UTF-8, lone surrogates, a crit header.
func rawUserJWT(header, claims string) string {
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	mac := hmac.New(sha256.New, []byte(hostileUserSecret))
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

// hostileUserCases are end-user JWTs a lax reading would accept, each sent as the bearer of an
// otherwise valid /token request: a 401, or a 400 for a sub that is not a valid identity.
func hostileUserCases() []hostileCase {
	now, exp := time.Now().Unix(), time.Now().Add(time.Hour).Unix()
	head := `{"alg":"HS256","typ":"JWT"}`
	claims := func(sub string, iat int64) string {
		return fmt.Sprintf(`{"iss":"idp","aud":"app","exp":%d,"iat":%d,%s}`, exp, iat, sub)
	}
	user := func(name, tok string, status int, code string) hostileCase {
		return hostileCase{name: "user JWT: " + name, method: http.MethodPost, path: "/token", body: `{"room":"r"}`,
			headers: []string{"Authorization: Bearer " + tok}, status: status, code: code}
	}
	return []hostileCase{
		user("duplicate sub", rawUserJWT(head, claims(`"sub":"alice","sub":"bob"`, now)), 401, "unauthorized"),
		user("invalid UTF-8 in sub", rawUserJWT(head, claims("\"sub\":\"b\xffob\"", now)), 401, "unauthorized"),
		user("lone surrogate in sub", rawUserJWT(head, claims(`"sub":"\ud800"`, now)), 401, "unauthorized"),
		user("unknown crit", rawUserJWT(`{"alg":"HS256","typ":"JWT","crit":["b64"],"b64":false}`, claims(`"sub":"alice"`, now)), 401, "unauthorized"),
		user("U+200B in sub", rawUserJWT(head, claims(`"sub":"\u200bagent-media-bridge"`, now)), 400, "invalid_request"),
		user("fullwidth sub", rawUserJWT(head, claims(`"sub":"ａｌｉｃｅ"`, now)), 400, "invalid_request"),
		user("iat in the future", rawUserJWT(head, claims(`"sub":"alice"`, now+3600)), 401, "unauthorized"),
	}
}

// End-user JWTs are read strictly: each hostile one is a 401, while the same token without the
// fault is a 200.
func TestHostileUserTokens(t *testing.T) {
	srv := newServer(t, "AUTH_JWT_SECRET="+hostileUserSecret, "AUTH_JWT_ISSUER=idp", "AUTH_JWT_AUDIENCE=app")
	good := rawUserJWT(`{"alg":"HS256","typ":"JWT"}`, fmt.Sprintf(`{"iss":"idp","aud":"app","exp":%d,"iat":%d,"sub":"alice"}`, time.Now().Add(time.Hour).Unix(), time.Now().Unix()))
	if r := srv.post(t, "/token", `{"room":"r"}`, "Authorization: Bearer "+good); r.status != http.StatusOK || r.body["identity"] != "alice" {
		t.Fatalf("the good token: %d %s", r.status, r.raw)
	}
	for _, tc := range hostileUserCases() {
		t.Run(tc.name, func(t *testing.T) {
			srv.do(t, tc.method, tc.path, tc.body, tc.headers...).wantErrorCode(t, tc.status, tc.code)
		})
	}
}
