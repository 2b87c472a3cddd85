package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runPolicy(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := policyCommand(args, nil, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestPolicyCheck(t *testing.T) {
	if code, out, errOut := runPolicy(t, "", "check", "examples/policies/webinar.yaml"); code != 0 || !strings.Contains(out, "valid") {
		t.Fatalf("check a valid file: %d %s %s", code, out, errOut)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 2\nrules:\n  - name: r\n    profile: nowhere\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runPolicy(t, "", "check", bad)
	if code != 2 || !strings.Contains(errOut, "bad.yaml:1: version must be 1") || !strings.Contains(errOut, `bad.yaml:3: rule "r": profile "nowhere" is not defined`) {
		t.Fatalf("check an invalid file: %d %s", code, errOut)
	}
	if code, _, _ := runPolicy(t, "", "check"); code != 2 {
		t.Errorf("check without a file: %d", code)
	}
}

func TestPolicyDefaultIsTheBuiltInPolicy(t *testing.T) {
	code, out, _ := runPolicy(t, "", "default")
	if code != 0 || !strings.Contains(out, "version: 1") || !strings.Contains(out, "name: participants") {
		t.Fatalf("%d %s", code, out)
	}
	path := filepath.Join(t.TempDir(), "default.yaml")
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runPolicy(t, "", "check", path); code != 0 {
		t.Errorf("the printed default does not check: %s", errOut)
	}
}

func TestPolicyExplain(t *testing.T) {
	code, out, errOut := runPolicy(t, `{"caller":"user","claims":{"sub":"hana","role":"host"},"request":{"room":"webinar-1"}}`,
		"explain", "examples/policies/webinar.yaml")
	if code != 0 || !strings.Contains(out, `"rule": "hosts"`) || !strings.Contains(out, `"profile": "host"`) ||
		!strings.Contains(out, `"roomCreate": true`) || !strings.Contains(out, `"identity": "hana"`) || strings.Contains(out, "eyJ") {
		t.Fatalf("explain a host: %d %s %s", code, out, errOut)
	}
	// The same from flags; a refusal exits 1 and says why.
	code, out, _ = runPolicy(t, "", "explain", "examples/policies/webinar.yaml", "-caller", "user", "-claims", `{"sub":"ari"}`,
		"-request", `{"room":"webinar-1","grants":{"canPublish":true}}`)
	if code != 1 || !strings.Contains(out, `"field": "grants.canPublish"`) || !strings.Contains(out, `"status": 403`) {
		t.Fatalf("explain a refusal: %d %s", code, out)
	}
	if code, _, _ := runPolicy(t, "{", "explain", "examples/policies/webinar.yaml"); code != 2 {
		t.Errorf("explain bad input: %d", code)
	}
}

// policy check reports every problem of a file at once: an unknown key does not hide a broken
// room pattern further down, nor a key left without a value.
func TestPolicyCheckReportsEveryProblem(t *testing.T) {
	file := filepath.Join(t.TempDir(), "p.yaml")
	text := `version: 1
profiles:
  member:
    grants: {canPublish: true}
    caller_may:
      name: true
  guest:
    grants: {canSubscribe: true}
rules:
  - name: members
    caller: user
    profile: member
    romos: ["lobby-*"]
  - name: guests
    caller: []
    profile: guest
  - name: open
    rooms:
    profile: guest
  - name: tenants
    caller: user
    rooms: ["{claims.org}*"]
    profile: member
`
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runPolicy(t, "", "check", file)
	for _, want := range []string{"p.yaml:13: field romos not found", "p.yaml:14: rule \"guests\": caller: an empty list",
		"p.yaml:18: rooms has no value", `p.yaml:20: rule "tenants": rooms "{claims.org}*"`} {
		if !strings.Contains(errOut, want) {
			t.Errorf("missing %q in:\n%s", want, errOut)
		}
	}
	if code != 2 {
		t.Errorf("exit %d", code)
	}
}

// A rule giving anonymous callers agent tokens is refused where service keys are set, and only
// warned about where they are not (the environment is the one check reads, as start-up does).
func TestPolicyCheckRefusesAnonymousAgentTokens(t *testing.T) {
	file := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(file, []byte("version: 1\nprofiles: {bot: {kind: agent}}\nrules:\n  - {name: bots, token: agent, profile: bot}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := policyCommand([]string{"check", file}, []string{"SERVICE_API_KEYS=" + strings.Repeat("k", 32)}, strings.NewReader(""), &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), `rule "bots": gives anonymous callers agent participants`) {
		t.Errorf("with service keys: %d %s", code, errOut.String())
	}
	code, stdout, stderr := runPolicy(t, "", "check", file)
	if code != 0 || !strings.Contains(stdout, "valid") || !strings.Contains(stderr, "warning:") {
		t.Errorf("without service keys: %d %s %s", code, stdout, stderr)
	}
}
