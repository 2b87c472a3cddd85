package handlers_test

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// lookAlikes are the characters the outside review got accepted in an identity (issue 14), each
// able to make one identifier look like another in LiveKit's UI and logs.
var lookAlikes = map[string]string{
	"U+2010 hyphen":          "agent\u2010media-bridge",
	"fullwidth":              "ａｌｉｃｅ",
	"fullwidth agent-":       "ａｇｅｎｔ-media-bridge",
	"U+200B zero width":      "\u200bagent-media-bridge",
	"U+FEFF byte order mark": "alice\ufeff",
	"U+00AD soft hyphen":     "al\u00adice",
	"U+202E right-to-left":   "alice\u202eecila",
	"U+2028 line separator":  "alice\u2028bob",
	"leading space":          " alice",
	"trailing space":         "alice ",
	"two spaces":             "alice  bob",
	"private use":            "alice\ue000",
	"unassigned":             "alice\u0378",
	"no-break space":         "alice\u00a0bob",
}

// Identifiers follow the documented profile on every route that takes one, and the reserved
// agent- prefix is read on the NFKC, case-folded form.
func TestLookAlikeIdentifiersAreRefused(t *testing.T) {
	srv := newServer(t)
	for name, bad := range lookAlikes {
		q := strconv.Quote(bad)
		t.Run(name, func(t *testing.T) {
			srv.post(t, "/token", `{"room":"r","identity":`+q+`}`).wantError(t, 400, "invalid_request", "identity")
			srv.post(t, "/token", `{"room":`+q+`,"identity":"a"}`).wantError(t, 400, "invalid_request", "room")
			srv.post(t, "/token/agent", `{"room":`+q+`,"agent_id":"a"}`).wantError(t, 400, "invalid_request", "room")
			srv.post(t, "/connection-details", `{"participant_identity":`+q+`}`).wantError(t, 400, "invalid_request", "identity")
			srv.post(t, "/connection-details", `{"room_name":`+q+`}`).wantError(t, 400, "invalid_request", "room")
		})
	}
	// The agent- namespace is the policy's to keep (403); a fullwidth form fails the identifier
	// rule first (400).
	for _, reserved := range []string{"AGENT-media-bridge", "Agent-x", "agent-x"} {
		srv.post(t, "/token", `{"room":"r","identity":`+strconv.Quote(reserved)+`}`).wantError(t, 403, "forbidden", "identity")
	}
	srv.post(t, "/token", `{"room":"r","identity":"ａｇｅｎｔ-x"}`).wantError(t, 400, "invalid_request", "identity")
	// What existing clients send still works: ASCII, letters of any script, single inner spaces.
	for _, good := range []string{"alice", "user_42@example.com", "José", "李雷", "Team Standup", "a-b.c:d/e"} {
		if r := srv.post(t, "/token", fmt.Sprintf(`{"room":%q,"identity":%q}`, good, good)); r.status != http.StatusOK {
			t.Errorf("%q: %d %s", good, r.status, r.raw)
		}
	}
}

// Display names follow PRECIS Nickname, refused rather than rewritten: the token carries exactly
// what was asked, or nothing.
func TestDisplayNamesFollowTheNicknameRule(t *testing.T) {
	srv := newServer(t)
	for name, bad := range map[string]string{
		"U+200B": "Ada\u200b", "U+FEFF": "\ufeffAda", "U+00AD": "A\u00adda", "U+202E": "Ada\u202e", "U+2028": "Ada\u2028L",
		"leading space": " Ada", "trailing space": "Ada ", "two spaces": "Ada  Lovelace", "fullwidth": "Ａｄａ", "ligature": "ﬁona",
	} {
		q := strconv.Quote(bad)
		t.Run(name, func(t *testing.T) {
			srv.post(t, "/token", `{"room":"r","identity":"a","name":`+q+`}`).wantError(t, 400, "invalid_request", "name")
			srv.post(t, "/token/agent", `{"room":"r","agent_id":"a","name":`+q+`}`).wantError(t, 400, "invalid_request", "name")
			srv.post(t, "/connection-details", `{"participant_name":`+q+`}`).wantError(t, 400, "invalid_request", "name")
		})
	}
	for _, good := range []string{"Ada Lovelace", "Zoë 🎉", "李雷", "O'Brien-Smith"} {
		if r := srv.post(t, "/token", fmt.Sprintf(`{"room":"r","identity":"a","name":%q}`, good)); r.status != http.StatusOK {
			t.Errorf("%q: %d %s", good, r.status, r.raw)
		}
	}
}

// An identity provider's sub becomes the identity, so it is held to the same profile.
func TestIdPSubjectFollowsTheIdentifierRule(t *testing.T) {
	srv := newServer(t, "AUTH_JWT_SECRET="+hostileUserSecret, "AUTH_JWT_ISSUER=idp", "AUTH_JWT_AUDIENCE=app")
	exp, now := time.Now().Add(time.Hour).Unix(), time.Now().Unix()
	for name, sub := range map[string]string{"U+200B": "\u200bagent-media-bridge", "fullwidth": "ａｌｉｃｅ", "U+202E": "a\u202eb"} {
		tok := rawUserJWT(`{"alg":"HS256","typ":"JWT"}`, fmt.Sprintf(`{"iss":"idp","aud":"app","exp":%d,"iat":%d,"sub":%q}`, exp, now, sub))
		t.Run(name, func(t *testing.T) {
			srv.post(t, "/token", `{"room":"r"}`, "Authorization: Bearer "+tok).wantError(t, 400, "invalid_request", "identity")
			srv.post(t, "/connection-details", `{}`, "Authorization: Bearer "+tok).wantError(t, 400, "invalid_request", "identity")
		})
	}
	// A subject in the agent- namespace is a valid identifier that no participant may hold.
	tok := rawUserJWT(`{"alg":"HS256","typ":"JWT"}`, fmt.Sprintf(`{"iss":"idp","aud":"app","exp":%d,"iat":%d,"sub":"AGENT-x"}`, exp, now))
	srv.post(t, "/token", `{"room":"r"}`, "Authorization: Bearer "+tok).wantError(t, 403, "forbidden", "identity")
}
