package handlers_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/token-service/token-service/internal/testenv/wait"
)

// countingAPI is a LiveKit API address that accepts connections and never answers: it counts
// how many times the service calls it, and makes every call miss its budget.
func countingAPI(t *testing.T) (url string, calls *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	calls = &atomic.Int64{}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			calls.Add(1)
			conns = append(conns, c) // held open, unanswered, until the test ends
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String(), calls
}

func TestDispatchUnconfirmedWhenLiveKitIsSlow(t *testing.T) {
	api, calls := countingAPI(t)
	srv := newServer(t, "ALLOWED_AGENT_NAMES=notetaker", "LIVEKIT_API_URL="+api, "LIVEKIT_API_TIMEOUT_MS=50")

	// Without agents: no dispatch fields, and no call to LiveKit at all.
	for _, c := range []struct{ path, body string }{
		{"/token", `{"room":"r1","identity":"a"}`},
		{"/token", `{"room":"r1","identity":"a","room_config":{}}`},
		{"/connection-details", `{"room_name":"r1","participant_identity":"a"}`},
	} {
		r := srv.post(t, c.path, c.body)
		if r.status != http.StatusOK || strings.Contains(r.raw, "dispatches") || strings.Contains(r.raw, "room_config_applied") {
			t.Fatalf("%s %s: %d %s", c.path, c.body, r.status, r.raw)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("requests without agents called LiveKit's API %d times", n)
	}

	// With agents and a LiveKit that does not answer: the token anyway, each agent unconfirmed
	// once, within the budget.
	start := time.Now()
	r := srv.post(t, "/token", `{"room":"r1","identity":"a","room_config":{"agents":[{"agent_name":"notetaker"},{"agent_name":"notetaker"}]}}`)
	if r.status != http.StatusOK || r.body["token"] == nil {
		t.Fatalf("token with agents: %d %s", r.status, r.raw)
	}
	t.Logf("answered in %s with LiveKit's API silent", time.Since(start).Round(time.Millisecond))
	dispatches, _ := r.body["dispatches"].([]any)
	if len(dispatches) != 1 || dispatches[0].(map[string]any)["mode"] != "unconfirmed" || dispatches[0].(map[string]any)["agent_name"] != "notetaker" {
		t.Fatalf("dispatches: %s", r.raw)
	}
	if _, known := r.body["room_config_applied"]; known {
		t.Fatalf("room_config_applied reported although LiveKit never answered: %s", r.raw)
	}
	d := srv.post(t, "/connection-details", `{"room_name":"r1","participant_identity":"b","room_config":{"agents":[{"agent_name":"notetaker"}]}}`)
	if d.status != http.StatusOK || !strings.Contains(d.raw, `"dispatches":[{"agent_name":"notetaker","mode":"unconfirmed"}]`) {
		t.Fatalf("connection-details with agents: %d %s", d.status, d.raw)
	}
	if calls.Load() == 0 {
		t.Fatal("no call reached LiveKit's API")
	}
	if got := value(scrape(t, srv), "token_service_agent_dispatches_total", map[string]string{"mode": "unconfirmed"}); got != 2 {
		t.Fatalf("agent_dispatches_total{mode=unconfirmed} = %v, want 2", got)
	}
	wait.For(t, 2*time.Second, func() error {
		if !strings.Contains(srv.log.String(), "agent dispatch unconfirmed") {
			return fmt.Errorf("no log line for the unconfirmed dispatch")
		}
		return nil
	})
}

// Each agent may cost LiveKit calls and a job: a token names at most eight, each by name.
func TestTokenAgentsAreBounded(t *testing.T) {
	srv := newServer(t, "SERVICE_API_KEYS="+serviceKey1) // a backend may dispatch any agent
	key := "Authorization: Bearer " + serviceKey1
	var nine []string
	for i := range 9 {
		nine = append(nine, fmt.Sprintf(`{"agent_name":"a%d"}`, i))
	}
	for _, c := range []struct{ agents, field string }{
		{"[" + strings.Join(nine, ",") + "]", "room_config.agents"},
		{`[{}]`, "room_config.agents.agent_name"},
		{`[{"agent_name":""}]`, "room_config.agents.agent_name"},
		{`[{"agent_name":"a\u200b"}]`, "room_config.agents.agent_name"},
	} {
		for _, path := range []string{"/token", "/connection-details"} {
			body := `{"room":"r1","identity":"a","room_config":{"agents":` + c.agents + `}}`
			if path == "/connection-details" {
				body = `{"room_name":"r1","participant_identity":"a","room_config":{"agents":` + c.agents + `}}`
			}
			srv.post(t, path, body, key).wantError(t, http.StatusBadRequest, "invalid_request", c.field)
		}
	}
	if r := srv.post(t, "/token", `{"room":"r1","identity":"a","room_config":{"agents":[`+strings.Join(nine[:8], ",")+`]}}`, key); r.status != http.StatusOK {
		t.Fatalf("eight agents: %d %s", r.status, r.raw)
	}
}
