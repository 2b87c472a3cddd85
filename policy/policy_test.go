package policy_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/token-service/token-service/policy"
	"github.com/token-service/token-service/token"
)

func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob("../examples/policies/*.yaml")
	if err != nil || len(files) != 3 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		if _, err := policy.Load(f, policy.Options{}); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestTheBuiltInPolicyIsAPolicyFile(t *testing.T) {
	for _, s := range []policy.Settings{{}, {Open: true}, {UserAuth: true, ServiceKeys: true, AllowedAgents: []string{"a1", `we"ird`}}} {
		if _, err := policy.Parse("default", policy.DefaultText(s), policy.Options{ServiceKeys: s.ServiceKeys}); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
}

// TestEveryProblemAtOnce: each problem is reported with its file and line, and one does not
// hide the next.
func TestEveryProblemAtOnce(t *testing.T) {
	bad := `version: 1
profiles:
  host:
    kind: superuser
    caller_may:
      grants: [canFly]
      attributes: ["lk.*"]
      room_config: [no_such_field]
rules:
  - name: hosts
    caller: [user, robot]
    when: 'claims.role = "host"'
    profile: host
  - name: typo
    profile: hots
  - name: not-bool
    when: 'claims.size()'
    profile: host
  - caller: service
    token: both
    profile: host
`
	_, err := policy.Parse("bad.yaml", []byte(bad), policy.Options{})
	var problems policy.Problems
	if !errors.As(err, &problems) {
		t.Fatalf("want Problems, got %v", err)
	}
	text := err.Error()
	for _, want := range []string{
		`bad.yaml:4: profile "host": kind "superuser"`,
		`bad.yaml:6: profile "host": caller_may.grants: "canFly"`,
		`bad.yaml:7: profile "host": caller_may.attributes: "lk.*" is reserved`,
		`bad.yaml:8: profile "host": caller_may.room_config: "no_such_field"`,
		`bad.yaml:10: rule "hosts": caller "robot"`,
		`bad.yaml:10: rule "hosts": when:`,
		`bad.yaml:14: rule "typo": profile "hots" is not defined`,
		`bad.yaml:16: rule "not-bool": when: must be true or false`,
		`bad.yaml:19: rule 4: name is required`,
		`bad.yaml:19: rule 4: token must be participant or agent`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
}

func TestUnknownFieldsAndTypesNameTheirLine(t *testing.T) {
	_, err := policy.Parse("p.yaml", []byte("version: 1\nprofiles:\n  a:\n    grants: {canPublsh: true}\n    max_ttl_seconds: soon\nrules:\n  - {name: r, profile: a}\n"), policy.Options{})
	if err == nil || !strings.Contains(err.Error(), "p.yaml:4: field canPublsh not found") || !strings.Contains(err.Error(), "p.yaml:5:") {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "policy.") {
		t.Errorf("Go type names leak into the problem: %v", err)
	}
	_, err = policy.Parse("p.yaml", []byte("version: 1\nrules:\n  - {name: r, profile: a}\n  - {name: r, profile: a}\nprofiles: {a: {}}\nprofiles: {}\n"), policy.Options{})
	if err == nil {
		t.Fatal("a duplicate key was accepted")
	}
}

func TestReloadKeepsThePolicyInUseWhenTheNewFileIsInvalid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("version: 1\nprofiles: {viewer: {grants: {canSubscribe: true}}}\nrules: [{name: all, profile: viewer}]\n")
	engine, err := policy.New(policy.Settings{File: path, DefaultTTL: time.Hour, MaxTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	join := func() (token.Grant, error) {
		return engine.Join(token.Caller{}, &token.JoinRequest{Room: "r", Identity: "a"}, nil)
	}
	if g, err := join(); err != nil || g.CanPublish || g.Rule != "all" {
		t.Fatalf("first policy: %+v %v", g, err)
	}
	write("version: 1\nrules: [{name: all, profile: missing}]\n")
	if _, err := engine.Reload(); err == nil || !strings.Contains(err.Error(), `profile "missing" is not defined`) {
		t.Fatalf("invalid reload: %v", err)
	}
	if g, err := join(); err != nil || g.Rule != "all" || g.Profile != "viewer" {
		t.Fatalf("after a failed reload: %+v %v", g, err)
	}
	write("version: 1\nprofiles: {speaker: {grants: {canPublish: true}}}\nrules: [{name: speakers, profile: speaker}]\n")
	if _, err := engine.Reload(); err != nil {
		t.Fatal(err)
	}
	if g, err := join(); err != nil || !g.CanPublish || g.Rule != "speakers" {
		t.Fatalf("after a reload: %+v %v", g, err)
	}
}

// TestConditionCost: a condition that would run long is cut off by the cost limit, and refuses
// (fails closed) rather than matching or being passed over.
func TestConditionCost(t *testing.T) {
	engine := mustEngine(t, `version: 1
profiles: {p: {grants: {canSubscribe: true}}}
rules:
  - name: costly
    when: 'claims.all(k, claims.all(j, claims.all(i, k + j + i != "")))'
    profile: p
`)
	claims := map[string]any{}
	for i := range 60 {
		claims[strings.Repeat("x", i+1)] = i
	}
	_, err := engine.Join(token.Caller{User: &token.User{Identity: "a", Claims: claims}}, &token.JoinRequest{Room: "r", Identity: "a"}, nil)
	var forbidden *token.Forbidden
	if !errors.As(err, &forbidden) || !strings.Contains(forbidden.Reason, "costly") {
		t.Fatalf("a condition past the cost limit: %v", err)
	}
}

func mustEngine(t *testing.T, text string) *policy.Engine {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := policy.New(policy.Settings{File: path, DefaultTTL: time.Hour, MaxTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return e
}
