package config_test

import (
	"bufio"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/token-service/token-service/config"
)

// .env.example lists exactly the variables Config reads, and loads as it stands.
func TestEnvExampleMatchesConfig(t *testing.T) {
	f, err := os.Open("../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var environ, listed []string
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf(".env.example: %q is not NAME=value", line)
		}
		environ = append(environ, line)
		listed = append(listed, name)
	}
	known := config.Variables()
	slices.Sort(listed)
	slices.Sort(known)
	if !slices.Equal(listed, known) {
		t.Errorf(".env.example lists %v\nConfig reads      %v", listed, known)
	}
	if _, err := config.Load(environ); err != nil {
		t.Errorf(".env.example does not load: %v", err)
	}
}
