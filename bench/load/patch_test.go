//go:build bench

package main

import (
	"os"
	"os/exec"
	"testing"
)

// docs/performance.md measures the service without its signing by applying bench/unsigned.patch;
// this keeps the patch applying as token/issuer.go changes.
func TestUnsignedPatchApplies(t *testing.T) {
	// Read through os so that go test's cache knows the result depends on both files.
	for _, f := range []string{"../../token/issuer.go", "../unsigned.patch"} {
		if _, err := os.ReadFile(f); err != nil {
			t.Fatal(err)
		}
	}
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatal("git is needed to check bench/unsigned.patch against the source")
	}
	out, err := exec.Command(git, "-C", "../..", "apply", "--check", "bench/unsigned.patch").CombinedOutput()
	if err != nil {
		t.Fatalf("bench/unsigned.patch no longer applies; regenerate it from token/issuer.go: %v\n%s", err, out)
	}
}
