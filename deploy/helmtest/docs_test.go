//go:build deploy

package helmtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// HelmDocs is the helm-docs that generates the chart's README from values.yaml.
const (
	helmDocsModule  = "github.com/norwoodj/helm-docs"
	helmDocsVersion = "v1.14.2"
)

// helmDocsArgs are the flags the README was generated with (README.md.gotmpl says how).
var helmDocsArgs = []string{"--chart-search-root", "../helm", "--skip-version-footer", "--log-level", "error"}

// helmDocs is the pinned helm-docs in $(go env GOPATH)/bin, installed with `go install` when it
// is missing or another version (about 30 s cold).
func helmDocs(t *testing.T) string {
	t.Helper()
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		t.Fatalf("go env GOPATH: %v", err)
	}
	bin := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "helm-docs")
	// helm-docs has no --version; the binary records the module version it was built from.
	if info, err := exec.Command("go", "version", "-m", bin).Output(); err == nil &&
		bytes.Contains(info, []byte("mod\t"+helmDocsModule+"\t"+helmDocsVersion)) {
		return bin
	}
	t.Logf("installing helm-docs %s", helmDocsVersion)
	install := exec.Command("go", "install", helmDocsModule+"/cmd/helm-docs@"+helmDocsVersion)
	install.Stdout, install.Stderr = os.Stderr, os.Stderr
	if err := install.Run(); err != nil {
		t.Fatalf("go install %s/cmd/helm-docs@%s: %v", helmDocsModule, helmDocsVersion, err)
	}
	return bin
}

// TestValuesREADME fails while the chart's README does not document values.yaml as it stands,
// and while any value lacks a description.
func TestValuesREADME(t *testing.T) {
	bin := helmDocs(t)
	args := append([]string{"--dry-run"}, helmDocsArgs...)
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	want, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm-docs %v: %v\n%s", args, err, stderr.String())
	}
	// helm-docs' own --documentation-strict-mode also demands comments on parent keys, so check
	// the rows: each value in the table has a description.
	rows := 0
	for _, line := range strings.Split(string(want), "\n") {
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| Key ") {
			continue
		}
		rows++
		cells := strings.Split(strings.TrimSuffix(line, "|"), " | ")
		if strings.TrimSpace(cells[len(cells)-1]) == "" {
			t.Errorf("values.yaml: no `# --` description for %s", strings.TrimPrefix(cells[0], "| "))
		}
	}
	if rows < 10 {
		t.Fatalf("helm-docs wrote a values table of %d rows:\n%s%s", rows, want, stderr.String())
	}
	if got := readFile(t, filepath.Join(chartDir, "README.md")); got != string(want) {
		t.Fatalf("deploy/helm/token-service/README.md is out of date with values.yaml; regenerate it from the repository root:\n"+
			"  go run %s/cmd/helm-docs@%s --chart-search-root deploy/helm --skip-version-footer", helmDocsModule, helmDocsVersion)
	}
}
