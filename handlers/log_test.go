package handlers_test

import (
	"fmt"
	"strings"
	"testing"
)

// No token, secret or Authorization value reaches the log at any level: a run at debug level
// issues, verifies and rejects tokens, then the whole log is searched for each of them.
func TestLogNeverCarriesTokensOrSecrets(t *testing.T) {
	srv := newServer(t, "LOG_LEVEL=trace")
	authorization := "Bearer service-key-that-must-not-be-logged-0123456789"
	var secrets = []string{testSecret, "service-key-that-must-not-be-logged"}

	join := srv.post(t, "/token", `{"room":"r","identity":"alice"}`, "Authorization: "+authorization)
	agent := srv.post(t, "/token/agent", `{"room":"r","agent_id":"bridge"}`, "Authorization: "+authorization)
	tokens := []string{join.body["token"].(string), agent.body["token"].(string)}
	for _, tok := range tokens {
		srv.post(t, "/token/verify", fmt.Sprintf(`{"token":%q}`, tok))
		srv.post(t, "/token/verify", fmt.Sprintf(`{"token":%q}`, tok[:len(tok)-3]+"abc")) // bad signature
		srv.post(t, "/token/verify", fmt.Sprintf(`{"token":%q,"extra":1}`, tok))          // 400
		srv.do(t, "GET", "/token?access_token="+tok, "")                                  // 405, token in the URL
		secrets = append(secrets, tok, strings.Split(tok, ".")[1], strings.Split(tok, ".")[2])
	}

	logs := srv.log.String()
	if strings.Count(logs, `"message":"request"`) < 10 {
		t.Fatalf("expected an access log line per request, got:\n%s", logs)
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("log contains %q...:\n%s", s[:12], logs)
		}
	}
}
