package token_test

import (
	"errors"
	"testing"
	"time"

	"github.com/token-service/token-service/policy"
	"github.com/token-service/token-service/token"
)

// mode is the configuration the built-in policy follows.
type mode struct{ Production, ServiceKeys, UserAuth bool }

func issuerWith(m mode) *token.Issuer {
	engine, err := policy.New(policy.Settings{Open: !m.Production && !m.ServiceKeys, ServiceKeys: m.ServiceKeys, UserAuth: m.UserAuth,
		DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour})
	if err != nil {
		panic(err)
	}
	return token.NewIssuer(token.Settings{APIKey: testKey, APISecret: testSecret, WSURL: "wss://x",
		DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour, Decider: engine})
}

var (
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
			iss := issuerWith(tc.policy)
			_, err := iss.Agent(tc.caller, token.AgentRequest{Room: "r", AgentID: "a"})
			if got := outcome(err); got != tc.want {
				t.Errorf("agent: %s, want %s", got, tc.want)
			}
			_, err = iss.Verify(tc.caller, "x")
			if got := outcome(err); got != tc.want {
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
		{"production: hidden needs a key", mode{Production: true}, anyone, token.JoinRequest{Room: "r", Identity: "a", Grants: hidden}, "403:grants.hidden"},
		{"keys set: agent needs a key", mode{ServiceKeys: true}, anyone, token.JoinRequest{Room: "r", Identity: "a", Grants: agent}, "403:grants.agent"},
		{"keys set: service may", mode{ServiceKeys: true, Production: true}, service, token.JoinRequest{Room: "r", Identity: "a", Grants: hidden}, "ok"},
		{"explicit false is not privileged", mode{Production: true}, anyone, token.JoinRequest{Room: "r", Identity: "a", Grants: token.Grants{Hidden: ptr(false)}}, "ok"},
		{"user auth: anonymous refused", mode{UserAuth: true}, anyone, token.JoinRequest{Room: "r", Identity: "a"}, "401"},
		{"user auth: service may mint for anyone", mode{UserAuth: true}, service, token.JoinRequest{Room: "r", Identity: "carol"}, "ok"},
		{"user: own identity", mode{UserAuth: true}, alice, token.JoinRequest{Room: "r", Identity: "alice"}, "ok"},
		{"user: identity from the claim", mode{UserAuth: true}, alice, token.JoinRequest{Room: "r"}, "ok"},
		{"user: someone else's identity", mode{UserAuth: true}, alice, token.JoinRequest{Room: "r", Identity: "mallory"}, "403:identity"},
		{"user: never privileged", mode{UserAuth: true}, alice, token.JoinRequest{Room: "r", Grants: hidden}, "403:grants.hidden"},
		{"user: allowed room", mode{UserAuth: true}, restricted, token.JoinRequest{Room: "r1"}, "ok"},
		{"user: other room", mode{UserAuth: true}, restricted, token.JoinRequest{Room: "r2"}, "403:room"},
		{"user: claim identity still obeys the rules", mode{UserAuth: true},
			token.Caller{User: &token.User{Identity: "agent-x"}}, token.JoinRequest{Room: "r"}, "400:identity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			issued, err := issuerWith(tc.policy).Join(tc.caller, tc.req)
			if got := outcome(err); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
			if err == nil && tc.caller.User != nil {
				_, grants := mustVerify(t, issued.Token)
				if grants.Identity != tc.caller.User.Identity || grants.Name != tc.caller.User.Name {
					t.Errorf("token identity %q name %q, want the user's %q %q", grants.Identity, grants.Name, tc.caller.User.Identity, tc.caller.User.Name)
				}
			}
		})
	}
}
