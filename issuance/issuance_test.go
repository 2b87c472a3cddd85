package issuance_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"

	"github.com/token-service/token-service/issuance"
	"github.com/token-service/token-service/policy"
	"github.com/token-service/token-service/token"
)

const (
	testKey    = "APItestkey"
	testSecret = "a-test-secret-that-is-long-enough-for-production"
)

// mode is the configuration the built-in policy follows.
type mode struct{ Production, ServiceKeys, UserAuth bool }

// serviceWith is the pass with the built-in policy for m.
func serviceWith(m mode) *issuance.Service {
	engine, err := policy.New(policy.Settings{Open: !m.Production && !m.ServiceKeys, ServiceKeys: m.ServiceKeys, UserAuth: m.UserAuth,
		DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour})
	if err != nil {
		panic(err)
	}
	return issuance.New(issuance.Deps{Policy: engine, Limits: token.Limits{MaxTTL: 24 * time.Hour},
		Issuer: token.NewIssuer(token.Keys{APIKey: testKey, APISecret: testSecret, WSURL: "wss://x"})})
}

// join is a join as the router runs it: admission, then the pass.
func join(svc *issuance.Service, c token.Caller, req token.JoinRequest) (token.Issued, error) {
	if err := svc.Admit(c, policy.Participant); err != nil {
		return token.Issued{}, err
	}
	return svc.Join(context.Background(), c, req)
}

func ptr[T any](v T) *T { return &v }

func mustVerify(t *testing.T, raw string) *auth.ClaimGrants {
	t.Helper()
	parsed, err := auth.ParseAPIToken(raw)
	if err != nil {
		t.Fatal(err)
	}
	_, grants, err := parsed.Verify(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return grants
}

var (
	anyone  token.Caller
	service = token.Caller{Service: true}
	alice   = token.Caller{User: &token.User{Identity: "alice", Name: "Alice"}}
)

// outcome names what an error means to a caller: "ok", "401", "403:<field>" or "400:<field>".
func outcome(err error) string {
	var forbidden *token.Forbidden
	var invalid *token.Invalid
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, token.ErrUnauthenticated):
		return "401"
	case errors.As(err, &forbidden):
		return "403:" + forbidden.Field
	case errors.As(err, &invalid):
		return "400:" + invalid.Field
	}
	return err.Error()
}

func TestServiceOnlyEndpoints(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy mode
		caller token.Caller
		want   string
	}{
		{"development, no keys: open", mode{}, anyone, "ok"},
		{"keys set, anonymous", mode{ServiceKeys: true}, anyone, "401"},
		{"keys set, a user is not a backend", mode{ServiceKeys: true, UserAuth: true}, alice, "401"},
		{"keys set, service", mode{ServiceKeys: true}, service, "ok"},
		{"production, no keys: closed", mode{Production: true}, anyone, "403:"},
		{"production, keys, service", mode{Production: true, ServiceKeys: true}, service, "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := serviceWith(tc.policy)
			err := svc.Admit(tc.caller, policy.Agent)
			if err == nil {
				_, err = svc.Agent(context.Background(), tc.caller, token.AgentRequest{Room: "r", AgentID: "a"})
			}
			if got := outcome(err); got != tc.want {
				t.Errorf("agent: %s, want %s", got, tc.want)
			}
			if got := outcome(svc.Admit(tc.caller, policy.Backend)); got != tc.want {
				t.Errorf("verify: %s, want %s", got, tc.want)
			}
		})
	}
}

func TestJoinPolicy(t *testing.T) {
	hidden := token.Grants{Hidden: ptr(true)}
	agent := token.Grants{Agent: ptr(true)}
	restricted := token.Caller{User: &token.User{Identity: "bob", Rooms: []string{"r1"}, RoomsRestricted: true}}
	for _, tc := range []struct {
		name   string
		policy mode
		caller token.Caller
		req    token.JoinRequest
		want   string
	}{
		{"development: privileged grants open", mode{}, anyone, token.JoinRequest{Room: "r", Identity: "a", Grants: hidden}, "ok"},
		{"development: every grant open", mode{}, anyone, token.JoinRequest{Room: "r", Identity: "a", Grants: token.Grants{RoomAdmin: ptr(true)}}, "ok"},
		{"production: hidden needs a key", mode{Production: true}, anyone, token.JoinRequest{Room: "r", Identity: "a", Grants: hidden}, "403:grants.hidden"},
		{"keys set: agent needs a key", mode{ServiceKeys: true}, anyone, token.JoinRequest{Room: "r", Identity: "a", Grants: agent}, "403:grants.agent"},
		{"keys set: service may", mode{ServiceKeys: true, Production: true}, service, token.JoinRequest{Room: "r", Identity: "a", Grants: hidden}, "ok"},
		{"explicit false is not privileged", mode{Production: true}, anyone, token.JoinRequest{Room: "r", Identity: "a", Grants: token.Grants{Hidden: ptr(false)}}, "ok"},
		{"user auth: anonymous refused", mode{UserAuth: true}, anyone, token.JoinRequest{Room: "r", Identity: "a"}, "401"},
		{"user auth: service may mint for anyone", mode{UserAuth: true}, service, token.JoinRequest{Room: "r", Identity: "carol"}, "ok"},
		{"user: own identity", mode{UserAuth: true}, alice, token.JoinRequest{Room: "r", Identity: "alice"}, "ok"},
		{"user: identity from the claim", mode{UserAuth: true}, alice, token.JoinRequest{Room: "r"}, "ok"},
		{"user: someone else's identity", mode{UserAuth: true}, alice, token.JoinRequest{Room: "r", Identity: "mallory"}, "403:identity"},
		{"user: never privileged where the service is closed", mode{UserAuth: true, Production: true}, alice, token.JoinRequest{Room: "r", Grants: hidden}, "403:grants.hidden"},
		{"user: allowed room", mode{UserAuth: true}, restricted, token.JoinRequest{Room: "r1"}, "ok"},
		{"user: other room", mode{UserAuth: true}, restricted, token.JoinRequest{Room: "r2"}, "403:room"},
		{"user: claim identity still obeys the rules", mode{UserAuth: true},
			token.Caller{User: &token.User{Identity: "a\u200bx"}}, token.JoinRequest{Room: "r"}, "400:identity"},
		{"user: claim identity in the agent namespace", mode{UserAuth: true},
			token.Caller{User: &token.User{Identity: "agent-x"}}, token.JoinRequest{Room: "r"}, "403:identity"},
		{"nobody joins as an agent", mode{Production: true, ServiceKeys: true}, service, token.JoinRequest{Room: "r", Identity: "Agent-x"}, "403:identity"},
		{"nor in fullwidth", mode{}, anyone, token.JoinRequest{Room: "r", Identity: "ａｇｅｎｔ-x"}, "400:identity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			issued, err := join(serviceWith(tc.policy), tc.caller, tc.req)
			if got := outcome(err); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
			if err == nil && tc.caller.User != nil {
				grants := mustVerify(t, issued.Token)
				if grants.Identity != tc.caller.User.Identity || grants.Name != tc.caller.User.Name {
					t.Errorf("token identity %q name %q, want the user's %q %q", grants.Identity, grants.Name, tc.caller.User.Identity, tc.caller.User.Name)
				}
			}
		})
	}
}
