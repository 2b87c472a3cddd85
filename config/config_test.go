package config_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/token-service/token-service/config"
)

const longSecret = "0123456789abcdef0123456789abcdef-long"

func TestDevelopmentDefaults(t *testing.T) {
	cfg, err := config.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Env != config.Development || cfg.Port != 3001 || cfg.LiveKit.APIKey != "devkey" || cfg.LiveKit.APISecret.Reveal() != "secret" ||
		cfg.LiveKit.WSURL != "ws://localhost:7880" || cfg.LogLevel != zerolog.DebugLevel || cfg.DefaultTTL != time.Hour ||
		cfg.MaxTTL != 24*time.Hour || cfg.RateLimit.Window != time.Minute || cfg.RateLimit.Max != 100 ||
		cfg.ShutdownDelay != 0 || cfg.ShutdownTimeout != 15*time.Second || cfg.ListenAddr() != ":3001" || !cfg.Open {
		t.Errorf("defaults = %+v", cfg)
	}
	if fmt.Sprint(cfg.CORSOrigins) != "[*]" || len(cfg.TrustedProxies) != 0 {
		t.Errorf("origins %v proxies %v", cfg.CORSOrigins, cfg.TrustedProxies)
	}
	if len(cfg.Warnings) != 2 {
		t.Errorf("warnings = %q, want one for the credentials and one for the URL", cfg.Warnings)
	}
}

func TestProductionNeedsEverything(t *testing.T) {
	_, err := config.Load([]string{"APP_ENV=production"})
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	for _, v := range []string{"LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "LIVEKIT_WS_URL"} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("error does not name %s: %v", v, err)
		}
	}
}

func TestNodeEnvIsReadWhenAppEnvIsUnset(t *testing.T) {
	prod := []string{"LIVEKIT_API_KEY=k", "LIVEKIT_API_SECRET=" + longSecret, "LIVEKIT_WS_URL=wss://lk.example.com"}
	cfg, err := config.Load(append(prod, "NODE_ENV=production"))
	if err != nil || !cfg.Production() || cfg.LogLevel != zerolog.InfoLevel {
		t.Fatalf("cfg = %+v, err = %v", cfg, err)
	}
	cfg, err = config.Load(append(prod, "NODE_ENV=production", "APP_ENV=test"))
	if err != nil || cfg.Env != config.Test {
		t.Fatalf("APP_ENV must win over NODE_ENV: %+v, %v", cfg, err)
	}
	if _, err := config.Load([]string{"NODE_ENV=staging"}); err == nil || !strings.Contains(err.Error(), "NODE_ENV") {
		t.Errorf("unknown NODE_ENV: %v", err)
	}
}

// Every problem is reported at once, one per line, naming the variable and never the value.
func TestEveryProblemAtOnceWithoutValues(t *testing.T) {
	shortSecret := "short-secret-value"
	_, err := config.Load([]string{
		"APP_ENV=production", "PORT=70000", "LIVEKIT_API_KEY=k", "LIVEKIT_API_SECRET=" + shortSecret,
		"LIVEKIT_WS_URL=ftp://lk", "DEFAULT_TOKEN_TTL_SECONDS=100000", "MAX_TOKEN_TTL_SECONDS=86400",
		"RATE_LIMIT_WINDOW_MS=0", "RATE_LIMIT_MAX_REQUESTS=-1", "CORS_ORIGINS=https://ok.example.com,not-an-origin",
		"LOG_LEVEL=loud", "TRUSTED_PROXIES=10.0.0.0/8,nope", "SHUTDOWN_DELAY_SECONDS=-1", "SHUTDOWN_TIMEOUT_SECONDS=0",
		"HOST=example.com",
	})
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	want := []string{"PORT", "LIVEKIT_API_SECRET", "LIVEKIT_WS_URL", "DEFAULT_TOKEN_TTL_SECONDS", "RATE_LIMIT_WINDOW_MS",
		"RATE_LIMIT_MAX_REQUESTS", "CORS_ORIGINS", "LOG_LEVEL", "TRUSTED_PROXIES", "SHUTDOWN_DELAY_SECONDS",
		"SHUTDOWN_TIMEOUT_SECONDS", "HOST"}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want)+1 {
		t.Errorf("want a heading and %d problem lines, got:\n%v", len(want), err)
	}
	for _, v := range want {
		if !strings.Contains(err.Error(), "  "+v+": ") {
			t.Errorf("no line for %s in:\n%v", v, err)
		}
	}
	if strings.Contains(err.Error(), shortSecret) {
		t.Errorf("the secret leaked into the error:\n%v", err)
	}
}

func TestUnparsableNumbersNameTheVariable(t *testing.T) {
	_, err := config.Load([]string{"PORT=abc", "MAX_TOKEN_TTL_SECONDS=1.5"})
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "PORT: must be a whole number") ||
		!strings.Contains(err.Error(), "MAX_TOKEN_TTL_SECONDS: must be a whole number") || strings.Contains(err.Error(), "abc") {
		t.Errorf("err = %v", err)
	}
}

func TestHalfTheDevPairIsRefused(t *testing.T) {
	_, err := config.Load([]string{"LIVEKIT_API_KEY=mykey"})
	if err == nil || !strings.Contains(err.Error(), "LIVEKIT_API_SECRET") {
		t.Errorf("a key without a secret must be refused even in development: %v", err)
	}
}

func TestListsAreParsed(t *testing.T) {
	cfg, err := config.Load([]string{"CORS_ORIGINS= https://a.example.com , http://localhost:5173 ", "TRUSTED_PROXIES=10.0.0.0/8, 192.168.1.1/32"})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(cfg.CORSOrigins) != "[https://a.example.com http://localhost:5173]" ||
		fmt.Sprint(cfg.TrustedProxies) != "[10.0.0.0/8 192.168.1.1/32]" {
		t.Errorf("origins %v proxies %v", cfg.CORSOrigins, cfg.TrustedProxies)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	cfg, err := config.Load([]string{"LIVEKIT_API_KEY=k", "LIVEKIT_API_SECRET=" + longSecret})
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(format, cfg); strings.Contains(out, longSecret) {
			t.Errorf("%s prints the secret: %s", format, out)
		}
	}
	if b, _ := cfg.LiveKit.APISecret.MarshalJSON(); strings.Contains(string(b), longSecret) {
		t.Errorf("JSON prints the secret: %s", b)
	}
}

func TestServiceKeysAndUserAuth(t *testing.T) {
	key1, key2 := strings.Repeat("a", 32), strings.Repeat("b", 40)
	cfg, err := config.Load([]string{"SERVICE_API_KEYS=" + key1 + " , " + key2})
	if err != nil || len(cfg.ServiceKeys) != 2 || cfg.ServiceKeys[0].Reveal() != key1 || cfg.ServiceKeys[1].Reveal() != key2 || cfg.UserAuth.Enabled() {
		t.Fatalf("cfg %v err %v", cfg.ServiceKeys, err)
	}
	if _, err := config.Load([]string{"SERVICE_API_KEYS=" + key1 + ",short"}); err == nil || strings.Contains(err.Error(), "short") {
		t.Errorf("a short service key must be refused without being printed: %v", err)
	}

	cfg, err = config.Load([]string{"AUTH_JWKS_URL=http://127.0.0.1:9/jwks", "AUTH_JWT_ISSUER=https://idp", "AUTH_JWT_AUDIENCE=app"})
	if err != nil || !cfg.UserAuth.Enabled() || fmt.Sprint(cfg.UserAuth.Algorithms) != "[RS256 ES256 EdDSA]" {
		t.Fatalf("jwks: %v %v", cfg.UserAuth.Algorithms, err)
	}
	cfg, err = config.Load([]string{"AUTH_JWT_SECRET=s", "AUTH_JWT_ISSUER=i", "AUTH_JWT_AUDIENCE=a"})
	if err != nil || fmt.Sprint(cfg.UserAuth.Algorithms) != "[HS256]" {
		t.Fatalf("secret: %v %v", cfg.UserAuth.Algorithms, err)
	}
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"AUTH_JWT_SECRET=s"}, "AUTH_JWT_ISSUER"},
		{[]string{"AUTH_JWT_SECRET=s"}, "AUTH_JWT_AUDIENCE"},
		{[]string{"AUTH_JWT_SECRET=s", "AUTH_JWKS_URL=https://idp/jwks"}, "AUTH_JWKS_URL"},
		{[]string{"AUTH_JWT_SECRET=s", "AUTH_JWT_ALGORITHMS=RS256"}, "AUTH_JWT_ALGORITHMS"},
		{[]string{"AUTH_JWKS_URL=https://idp/jwks", "AUTH_JWT_ALGORITHMS=HS256"}, "AUTH_JWT_ALGORITHMS"},
		{[]string{"AUTH_JWKS_URL=https://idp/jwks", "AUTH_JWT_ALGORITHMS=none"}, "AUTH_JWT_ALGORITHMS"},
		{[]string{"APP_ENV=test", "LIVEKIT_API_KEY=k", "LIVEKIT_API_SECRET=s", "LIVEKIT_WS_URL=ws://x", "AUTH_JWKS_URL=ftp://idp"}, "AUTH_JWKS_URL"},
		{[]string{"APP_ENV=production", "AUTH_JWKS_URL=http://idp/jwks"}, "AUTH_JWKS_URL"},
		{[]string{"APP_ENV=production", "AUTH_JWT_SECRET=short-user-secret"}, "AUTH_JWT_SECRET"},
	} {
		_, err := config.Load(tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want+":") || strings.Contains(err.Error(), "short-user-secret") {
			t.Errorf("%v: err = %v, want a line for %s", tc.env, err, tc.want)
		}
	}
}

func TestOperatorVariables(t *testing.T) {
	cfg, err := config.Load([]string{"METRICS_PORT=9090", "REDIS_URL=rediss://:pw-123@redis:6380/1",
		"LIVEKIT_KEYS=APIold: old-secret\nAPIolder: older-secret"})
	if err != nil || cfg.MetricsAddr() != ":9090" || cfg.Redis.Single == nil || cfg.Redis.Single.Password != "pw-123" ||
		cfg.Redis.Single.Addr != "redis:6380" || cfg.Redis.Single.DB != 1 || cfg.Redis.Single.TLSConfig == nil ||
		len(cfg.LiveKit.VerifyKeys) != 2 || cfg.LiveKit.VerifyKeys["APIold"].Reveal() != "old-secret" || cfg.LiveKit.VerifyKeys["APIolder"].Reveal() != "older-secret" {
		t.Fatalf("cfg %v %v err %v", cfg.MetricsAddr(), cfg.LiveKit.VerifyKeys, err)
	}
	for _, tc := range []struct {
		env      []string
		variable string
		mustHide string
	}{
		{[]string{"METRICS_PORT=3001"}, "METRICS_PORT", ""},
		{[]string{"METRICS_PORT=70000"}, "METRICS_PORT", ""},
		{[]string{"REDIS_URL=http://user:hunter2@redis"}, "REDIS_URL", "hunter2"},
		{[]string{"LIVEKIT_KEYS=APIold old-secret-value"}, "LIVEKIT_KEYS", "old-secret-value"},
		{[]string{"APP_ENV=production", "LIVEKIT_KEYS=APIold: short-old-secret"}, "LIVEKIT_KEYS", "short-old-secret"},
	} {
		_, err := config.Load(tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.variable+":") || (tc.mustHide != "" && strings.Contains(err.Error(), tc.mustHide)) {
			t.Errorf("%v: %v", tc.env, err)
		}
	}
}

func TestAPIURLFollowsWSURL(t *testing.T) {
	for _, tc := range []struct{ ws, api, want string }{
		{"wss://lk.example.com", "", "https://lk.example.com"},
		{"ws://localhost:7880", "", "http://localhost:7880"},
		{"https://lk.example.com", "", "https://lk.example.com"},
		{"wss://lk.example.com", "http://livekit.internal:7880", "http://livekit.internal:7880"},
	} {
		cfg, err := config.Load([]string{"LIVEKIT_WS_URL=" + tc.ws, "LIVEKIT_API_URL=" + tc.api})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.LiveKit.APIURL != tc.want {
			t.Errorf("LIVEKIT_WS_URL=%s LIVEKIT_API_URL=%q: API URL %q, want %q", tc.ws, tc.api, cfg.LiveKit.APIURL, tc.want)
		}
	}
	_, err := config.Load([]string{"LIVEKIT_API_URL=ftp://x", "LIVEKIT_API_TIMEOUT_MS=0"})
	if err == nil || !strings.Contains(err.Error(), "LIVEKIT_API_URL:") || !strings.Contains(err.Error(), "LIVEKIT_API_TIMEOUT_MS:") {
		t.Fatalf("want both LiveKit API variables refused, got %v", err)
	}
}
