package handlers_test

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"

	"github.com/token-service/token-service/internal/testenv/wait"
)

var banKey = "Authorization: Bearer " + serviceKey1

// moderationServer has a service key, so that bans can be made (LiveKit's API refuses
// connections in every handler test, so removals fail fast).
func moderationServer(t *testing.T, env ...string) *testServer {
	t.Helper()
	return newServer(t, append([]string{"SERVICE_API_KEYS=" + serviceKey1, "LIVEKIT_API_TIMEOUT_MS=100"}, env...)...)
}

func TestBanRequestsAreChecked(t *testing.T) {
	srv := moderationServer(t)
	for _, c := range []struct{ name, body, code, field string }{
		{"no room", `{"identity":"alice"}`, "invalid_request", "room"},
		{"no identity", `{"room":"r1"}`, "invalid_request", "identity"},
		{"control character in identity", `{"room":"r1","identity":"al\u0000ice"}`, "invalid_request", "identity"},
		{"a room with a star inside", `{"room":"r*","identity":"alice"}`, "", ""},
		{"zero duration", `{"room":"r1","identity":"alice","duration_seconds":0}`, "invalid_request", "duration_seconds"},
		{"over 30 days", `{"room":"r1","identity":"alice","duration_seconds":2592001}`, "invalid_request", "duration_seconds"},
		{"duration as a string", `{"room":"r1","identity":"alice","duration_seconds":"60"}`, "invalid_request", "duration_seconds"},
		{"long reason", `{"room":"r1","identity":"alice","reason":"` + strings.Repeat("x", 513) + `"}`, "invalid_request", "reason"},
		{"unknown field", `{"room":"r1","identity":"alice","until":1}`, "invalid_request", "until"},
		{"not JSON", `{"room":`, "invalid_json", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := srv.post(t, "/moderation/bans", c.body, banKey)
			if c.code == "" { // "r*" is a room like any other: only "*" alone means every room
				if r.status != http.StatusCreated {
					t.Fatalf("got %d %s", r.status, r.raw)
				}
				return
			}
			r.wantError(t, http.StatusBadRequest, c.code, c.field)
		})
	}
}

func TestBansAreForBackends(t *testing.T) {
	srv := moderationServer(t)
	body := `{"room":"r1","identity":"alice"}`
	srv.post(t, "/moderation/bans", body).wantError(t, http.StatusUnauthorized, "unauthorized", "")
	srv.do(t, http.MethodGet, "/moderation/bans", "").wantError(t, http.StatusUnauthorized, "unauthorized", "")
	srv.do(t, http.MethodDelete, "/moderation/bans?room=r1&identity=alice", "").wantError(t, http.StatusUnauthorized, "unauthorized", "")
	srv.post(t, "/moderation/bans", body, "Authorization: Bearer not-a-key").wantError(t, http.StatusUnauthorized, "unauthorized", "")

	// In production without service keys nobody may ban: 403, as for the other backend routes.
	closed := newServer(t, "APP_ENV=production")
	closed.post(t, "/moderation/bans", body).wantError(t, http.StatusForbidden, "forbidden", "")
}

func TestBanKeepsIdentityOut(t *testing.T) {
	srv := moderationServer(t)
	r := srv.post(t, "/moderation/bans", `{"room":"r1","identity":"alice","duration_seconds":600,"reason":"spam"}`, banKey)
	if r.status != http.StatusCreated {
		t.Fatalf("ban: %d %s", r.status, r.raw)
	}
	now := time.Now().Unix()
	if r.body["room"] != "r1" || r.body["identity"] != "alice" || r.body["reason"] != "spam" ||
		r.body["created_by"] == "" || strings.Contains(r.raw, serviceKey1) {
		t.Fatalf("ban reply: %s", r.raw)
	}
	if exp := int64(r.body["expires_at"].(float64)); exp < now+599 || exp > now+601 {
		t.Fatalf("expires_at %d, want about now+600", exp)
	}
	if !strings.Contains(srv.log.String(), `"audit":"ban"`) || strings.Contains(srv.log.String(), serviceKey1) {
		t.Fatalf("no audit line for the ban, or the key in the log:\n%s", srv.log.String())
	}

	// No new token for alice in r1, through either endpoint; other rooms and people are fine.
	srv.post(t, "/token", `{"room":"r1","identity":"alice"}`).wantError(t, http.StatusForbidden, "forbidden", "identity")
	srv.post(t, "/connection-details", `{"room_name":"r1","participant_identity":"alice"}`).wantError(t, http.StatusForbidden, "forbidden", "identity")
	for _, body := range []string{`{"room":"r2","identity":"alice"}`, `{"room":"r1","identity":"bob"}`} {
		if r := srv.post(t, "/token", body); r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", body, r.status, r.raw)
		}
	}

	// A token alice got before the ban is still one LiveKit accepts: verify says so, and that
	// she is banned.
	held := srv.post(t, "/token", `{"room":"r1","identity":"alice2"}`).body["token"].(string)
	srv.post(t, "/moderation/bans", `{"room":"r1","identity":"alice2"}`, banKey)
	v := srv.post(t, "/token/verify", `{"token":"`+held+`"}`, banKey)
	if v.body["valid"] != true || v.body["banned"] != true {
		t.Fatalf("verify of a banned identity's token: %s", v.raw)
	}
	other := srv.post(t, "/token", `{"room":"r1","identity":"carol"}`).body["token"].(string)
	if v := srv.post(t, "/token/verify", `{"token":"`+other+`"}`, banKey); v.body["valid"] != true || v.body["banned"] != nil {
		t.Fatalf("verify of a token nobody banned: %s", v.raw)
	}

	// Listed, filtered, lifted once.
	list := srv.do(t, http.MethodGet, "/moderation/bans?room=r1", "", banKey)
	if bans := list.body["bans"].([]any); len(bans) != 2 || bans[0].(map[string]any)["identity"] != "alice" {
		t.Fatalf("list: %s", list.raw)
	}
	if list := srv.do(t, http.MethodGet, "/moderation/bans?identity=nobody", "", banKey); len(list.body["bans"].([]any)) != 0 {
		t.Fatalf("filtered list: %s", list.raw)
	}
	if r := srv.do(t, http.MethodDelete, "/moderation/bans?room=r1&identity=alice", "", banKey); r.status != http.StatusNoContent {
		t.Fatalf("lift: %d %s", r.status, r.raw)
	}
	srv.do(t, http.MethodDelete, "/moderation/bans?room=r1&identity=alice", "", banKey).wantError(t, http.StatusNotFound, "not_found", "")
	if r := srv.post(t, "/token", `{"room":"r1","identity":"alice"}`); r.status != http.StatusOK {
		t.Fatalf("after the lift: %d %s", r.status, r.raw)
	}
	if !strings.Contains(srv.log.String(), `"audit":"ban_lifted"`) {
		t.Fatal("no audit line for the lift")
	}
	if got := value(scrape(t, srv), "token_service_bans_active", nil); got != 1 {
		t.Fatalf("bans_active = %v, want 1", got)
	}
}

func TestEveryRoomBan(t *testing.T) {
	srv := moderationServer(t)
	srv.post(t, "/moderation/bans", `{"room":"*","identity":"mallory"}`, banKey)
	for _, room := range []string{"r1", "lobby", "anything"} {
		srv.post(t, "/token", `{"room":"`+room+`","identity":"mallory"}`).wantError(t, http.StatusForbidden, "forbidden", "identity")
	}
	// Lifting mallory's ban of one room does not lift the every-room ban.
	srv.do(t, http.MethodDelete, "/moderation/bans?room=r1&identity=mallory", "", banKey).wantError(t, http.StatusNotFound, "not_found", "")
	if r := srv.do(t, http.MethodDelete, "/moderation/bans?"+url.Values{"room": {"*"}, "identity": {"mallory"}}.Encode(), "", banKey); r.status != http.StatusNoContent {
		t.Fatalf("lift: %d %s", r.status, r.raw)
	}
	if r := srv.post(t, "/token", `{"room":"r1","identity":"mallory"}`); r.status != http.StatusOK {
		t.Fatalf("after the lift: %d %s", r.status, r.raw)
	}
}

func TestBanQueriesAreChecked(t *testing.T) {
	srv := moderationServer(t)
	for _, c := range []struct{ method, query, field string }{
		{http.MethodGet, "?rooms=r1", "rooms"},
		{http.MethodGet, "?room=r1&room=r2", "room"},
		{http.MethodGet, "?identity=%00", "identity"},
		{http.MethodGet, "?%ff=1", "\ufffd"},
		{http.MethodDelete, "?room=r1", "identity"},
		{http.MethodDelete, "?identity=alice", "room"},
		{http.MethodDelete, "?room=r1&identity=alice&x=1", "x"},
	} {
		r := srv.do(t, c.method, "/moderation/bans"+c.query, "", banKey)
		if r.status != http.StatusBadRequest || r.body["error"] != "invalid_request" {
			t.Fatalf("%s %s: %d %s", c.method, c.query, r.status, r.raw)
		}
		if c.field != "\ufffd" {
			r.wantError(t, http.StatusBadRequest, "invalid_request", c.field)
		}
	}
}

// signedWebhook is a webhook as LiveKit sends one: the body, and a token of key whose sha256
// claim is the body's digest.
func signedWebhook(t *testing.T, key, secret, body string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(body))
	at := auth.NewAccessToken(key, secret).SetValidFor(5 * time.Minute).SetSha256(base64.StdEncoding.EncodeToString(sum[:]))
	jwt, err := at.ToJWT()
	if err != nil {
		t.Fatal(err)
	}
	return jwt
}

func joinedEvent(room, identity string) string {
	return `{"event":"participant_joined","id":"EV_1","createdAt":"1","room":{"sid":"RM_1","name":"` + room +
		`"},"participant":{"sid":"PA_1","identity":"` + identity + `"}}`
}

func TestWebhookMustVerify(t *testing.T) {
	srv := moderationServer(t)
	srv.post(t, "/moderation/bans", `{"room":"r1","identity":"alice"}`, banKey)
	body := joinedEvent("r1", "alice")
	post := func(body, authorization string) reply {
		h := []string{"Content-Type: application/webhook+json"}
		if authorization != "" {
			h = append(h, "Authorization: "+authorization)
		}
		return srv.post(t, "/webhooks/livekit", body, h...)
	}
	for _, c := range []struct{ name, body, authorization string }{
		{"unsigned", body, ""},
		{"wrong secret", body, signedWebhook(t, testKey, "another-secret-0123456789abcdef0123", body)},
		{"unknown key", body, signedWebhook(t, "APIunknown", testSecret, body)},
		{"body altered after signing", strings.Replace(body, "alice", "alic3", 1), signedWebhook(t, testKey, testSecret, body)},
		{"not a token", body, "Bearer " + serviceKey1},
	} {
		post(c.body, c.authorization).wantError(t, http.StatusUnauthorized, "unauthorized", "")
	}
	if got := value(scrape(t, srv), "token_service_webhook_verification_failures_total", nil); got != 5 {
		t.Fatalf("webhook_verification_failures_total = %v, want 5", got)
	}
	if strings.Contains(srv.log.String(), "ban_removal") {
		t.Fatalf("a webhook that did not verify started a removal:\n%s", srv.log.String())
	}

	// Signed: a banned participant's join is queued for removal, another's is not.
	if r := post(body, signedWebhook(t, testKey, testSecret, body)); r.status != http.StatusOK || r.body["removal"] != true {
		t.Fatalf("signed join of a banned identity: %d %s", r.status, r.raw)
	}
	other := joinedEvent("r1", "bob")
	if r := post(other, signedWebhook(t, testKey, testSecret, other)); r.status != http.StatusOK || r.body["removal"] != false {
		t.Fatalf("signed join of bob: %d %s", r.status, r.raw)
	}
	// LiveKit here is a closed port: the removal is tried, fails, and is counted and logged.
	wait.For(t, 10*time.Second, func() error {
		if got := value(scrape(t, srv), "token_service_ban_removals_total", map[string]string{"cause": "webhook", "result": "failed"}); got != 1 {
			return fmt.Errorf("ban_removals_total{cause=webhook,result=failed} = %v", got)
		}
		return nil
	})
	signed := signedWebhook(t, testKey, testSecret, `{"event":`)
	post(`{"event":`, signed).wantError(t, http.StatusBadRequest, "invalid_request", "")
	huge := strings.Repeat(" ", 300<<10)
	post(huge, signedWebhook(t, testKey, testSecret, huge)).wantError(t, http.StatusRequestEntityTooLarge, "payload_too_large", "")
}
