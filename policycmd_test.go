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
