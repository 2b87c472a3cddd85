//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// readmeExamples returns the sh blocks of one README section.
func readmeExamples(t *testing.T, section string) []string {
	t.Helper()
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	start := strings.Index(text, "\n## "+section+"\n")
	if start < 0 {
		t.Fatalf("README has no section %q", section)
	}
	text = text[start+1:]
	if end := strings.Index(text[3:], "\n## "); end >= 0 {
		text = text[:end+3]
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(text, -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

// The README's endpoint examples run as written against the service with no configuration, as
// `go run .` starts it, on port 3001 (free here: this namespace is the tests' own).
func TestReadmeExamplesRunAsWritten(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed to run the README's examples")
	}
	blocks := readmeExamples(t, "Endpoints")
	if len(blocks) < 5 {
		t.Fatalf("found only %d examples in the README's Endpoints section", len(blocks))
	}
	run := func(t *testing.T, block string) {
		out, err := exec.Command("bash", "-euo", "pipefail", "-c", block).CombinedOutput()
		if err != nil || len(out) == 0 || strings.Contains(string(out), `"error":`) {
			t.Errorf("README example failed: %v\n%s\n---\n%s", err, block, out)
		}
	}
	// What `go run .` starts: development defaults on every interface of this namespace.
	asGoRun := []string{"APP_ENV=development", "PORT=3001", "HOST=", "LIVEKIT_API_KEY=", "LIVEKIT_API_SECRET=",
		"LIVEKIT_WS_URL=", "SERVICE_API_KEYS="}
	for _, block := range blocks {
		t.Run(strings.SplitN(strings.TrimSpace(block), "\n", 2)[0], func(t *testing.T) {
			env := asGoRun
			// An example that says which variable it needs ("# with NAME=value set") gets it.
			if needs := regexp.MustCompile(`# with (\w+)=(\S+) set`).FindStringSubmatch(block); needs != nil {
				env = append(append([]string{}, asGoRun...), needs[1]+"="+strings.TrimSuffix(needs[2], ":"))
			}
			startService(t, env...)
			run(t, block)
		})
	}
}
