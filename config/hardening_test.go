package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/token-service/token-service/config"
)

var production = []string{"APP_ENV=production", "LIVEKIT_API_KEY=APIprod", "LIVEKIT_API_SECRET=" + longSecret,
	"LIVEKIT_WS_URL=wss://lk.example.com", "CORS_ORIGINS=https://app.example.com"}

func problems(t *testing.T, environ ...string) string {
	t.Helper()
	_, err := config.Load(environ)
	if err == nil {
		return ""
	}
	return err.Error()
}

// Secrets from files, as Docker and Kubernetes mount them.
func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	secret, keys, jwtSecret := longSecret+"-file", strings.Repeat("s", 40), strings.Repeat("j", 40)
	cfg, err := config.Load([]string{"APP_ENV=production", "LIVEKIT_API_KEY=APIprod", "LIVEKIT_WS_URL=wss://lk.example.com",
		"LIVEKIT_API_SECRET_FILE=" + write("secret", secret+"\n"),
		"LIVEKIT_KEYS_FILE=" + write("keys", "APIold: "+longSecret+"\n"),
		"SERVICE_API_KEYS_FILE=" + write("service", keys+"\n"),
		"AUTH_JWT_SECRET_FILE=" + write("jwt", jwtSecret), "AUTH_JWT_ISSUER=idp", "AUTH_JWT_AUDIENCE=app",
		"REDIS_URL_FILE=" + write("redis", "redis://:pw@127.0.0.1:6379/0\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LiveKit.APISecret.Reveal() != secret || cfg.ServiceKeys[0].Reveal() != keys || cfg.UserAuth.JWTSecret.Reveal() != jwtSecret ||
		cfg.LiveKit.VerifyKeys["APIold"].Reveal() != longSecret || cfg.Redis.Single.Password != "pw" || cfg.Redis.Single.Addr != "127.0.0.1:6379" {
		t.Errorf("file contents not taken, trailing newline kept, or both: %q", cfg.LiveKit.APISecret.Reveal())
	}

	out := problems(t, append(production, "LIVEKIT_API_SECRET_FILE="+write("again", secret))...)
	if !strings.Contains(out, "LIVEKIT_API_SECRET_FILE: cannot be set together with LIVEKIT_API_SECRET") {
		t.Errorf("both set: %s", out)
	}
	missing := filepath.Join(dir, "no-such-file")
	out = problems(t, "APP_ENV=production", "LIVEKIT_API_KEY=k", "LIVEKIT_WS_URL=wss://x", "LIVEKIT_API_SECRET_FILE="+missing, "PORT=abc")
	if !strings.Contains(out, "LIVEKIT_API_SECRET_FILE: the file it names cannot be read") || !strings.Contains(out, "PORT:") ||
		strings.Contains(out, missing) || strings.Contains(out, "LIVEKIT_API_SECRET:") {
		t.Errorf("unreadable file: %s", out)
	}
}

// Every problem at once, even next to one that does not parse.
func TestEveryProblemBesideAParseError(t *testing.T) {
	out := problems(t, "PORT=abc", "APP_ENV=staging")
	if !strings.Contains(out, "PORT: must be a whole number") || !strings.Contains(out, "APP_ENV:") || strings.Count(out, "PORT:") != 1 {
		t.Errorf("PORT=abc APP_ENV=staging: %s", out)
	}
	out = problems(t, append(production, "REDIS_URL=redis://127.0.0.1:6379/abc")...)
	if !strings.Contains(out, "REDIS_URL:") || strings.Contains(out, "abc") {
		t.Errorf("a Redis URL with a bad database: %s", out)
	}
}

func TestRiskyConfiguration(t *testing.T) {
	for _, tc := range []struct {
		name, variable string
		env            []string
	}{
		{"trust every IPv4 peer", "TRUSTED_PROXIES", []string{"TRUSTED_PROXIES=10.0.0.0/8,0.0.0.0/0"}},
		{"trust every IPv6 peer", "TRUSTED_PROXIES", []string{"TRUSTED_PROXIES=::/0"}},
		{"wildcard host", "CORS_ORIGINS", []string{"CORS_ORIGINS=https://*"}},
		{"two wildcard labels", "CORS_ORIGINS", []string{"CORS_ORIGINS=https://*.*.com"}},
		{"wildcard top-level domain", "CORS_ORIGINS", []string{"CORS_ORIGINS=https://*.com"}},
		{"wildcard inside a label", "CORS_ORIGINS", []string{"CORS_ORIGINS=https://app*.example.com"}},
		{"user-token secret is LiveKit's", "AUTH_JWT_SECRET", []string{"AUTH_JWT_SECRET=" + longSecret, "AUTH_JWT_ISSUER=i", "AUTH_JWT_AUDIENCE=a"}},
		{"user-token secret is a service key", "AUTH_JWT_SECRET", []string{"AUTH_JWT_SECRET=" + strings.Repeat("k", 32),
			"SERVICE_API_KEYS=" + strings.Repeat("k", 32), "AUTH_JWT_ISSUER=i", "AUTH_JWT_AUDIENCE=a"}},
		{"a TTL over 30 days", "MAX_TOKEN_TTL_SECONDS", []string{"MAX_TOKEN_TTL_SECONDS=2592001"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if out := problems(t, append(production, tc.env...)...); !strings.Contains(out, tc.variable+":") {
				t.Errorf("accepted: %v (%s)", tc.env, out)
			}
		})
	}
	if out := problems(t, append(production, "CORS_ORIGINS=https://*.example.com", "MAX_TOKEN_TTL_SECONDS=2592000", "TRUSTED_PROXIES=10.0.0.0/8")...); out != "" {
		t.Errorf("one wildcard label, 30 days and a real proxy range are fine: %s", out)
	}
	// Outside production, trusting everyone is allowed (a laptop behind a dev proxy).
	if out := problems(t, "TRUSTED_PROXIES=0.0.0.0/0"); out != "" {
		t.Errorf("development: %s", out)
	}
	cfg, err := config.Load(append(production[:4], "CORS_ORIGINS=*", "RATE_LIMIT_MAX_REQUESTS=0"))
	if err != nil {
		t.Fatal(err)
	}
	warnings := strings.Join(cfg.Warnings, "\n")
	if !strings.Contains(warnings, "CORS_ORIGINS is *") || !strings.Contains(warnings, "RATE_LIMIT_MAX_REQUESTS is 0") {
		t.Errorf("warnings: %s", warnings)
	}
}

// APP_ENV=test is production's length rules, or livekit-server --dev's pair exactly.
func TestTestEnvironmentSecrets(t *testing.T) {
	base := []string{"APP_ENV=test", "LIVEKIT_WS_URL=ws://127.0.0.1:7880"}
	if out := problems(t, append(base, "LIVEKIT_API_KEY=k", "LIVEKIT_API_SECRET=short")...); !strings.Contains(out, "LIVEKIT_API_SECRET:") {
		t.Errorf("a short secret in test: %s", out)
	}
	if out := problems(t, append(base, "LIVEKIT_API_KEY=devkey", "LIVEKIT_API_SECRET=secret")...); out != "" {
		t.Errorf("the dev pair in test: %s", out)
	}
	if out := problems(t, append(base, "LIVEKIT_API_KEY=devkey", "LIVEKIT_API_SECRET=secret", "AUTH_JWT_SECRET=short",
		"AUTH_JWT_ISSUER=i", "AUTH_JWT_AUDIENCE=a")...); !strings.Contains(out, "AUTH_JWT_SECRET:") {
		t.Errorf("a short user-token secret in test: %s", out)
	}
}
