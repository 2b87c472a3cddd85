package config

import (
	"errors"
	"reflect"
	"strings"

	"github.com/caarlos0/env/v11"
)

// environment is the environment as caarlos0/env reads it: every variable of the contract, its
// name and default unchanged (*_SECONDS and *_MS stay whole numbers). Load turns it into the
// typed Config; nothing else reads it.
type environment struct {
	Port    int    `env:"PORT" envDefault:"3001"`
	Host    string `env:"HOST"`
	AppEnv  string `env:"APP_ENV"`
	NodeEnv string `env:"NODE_ENV"`

	APIKey       string `env:"LIVEKIT_API_KEY"`
	APISecret    Secret `env:"LIVEKIT_API_SECRET"`
	WSURL        string `env:"LIVEKIT_WS_URL"`
	LiveKitKeys  Secret `env:"LIVEKIT_KEYS"`
	APIURL       string `env:"LIVEKIT_API_URL"`
	APITimeoutMS int    `env:"LIVEKIT_API_TIMEOUT_MS" envDefault:"1000"`

	DefaultTTLSeconds int `env:"DEFAULT_TOKEN_TTL_SECONDS" envDefault:"3600"`
	MaxTTLSeconds     int `env:"MAX_TOKEN_TTL_SECONDS" envDefault:"86400"`

	RateLimitWindowMS           int    `env:"RATE_LIMIT_WINDOW_MS" envDefault:"60000"`
	RateLimitMaxRequests        int    `env:"RATE_LIMIT_MAX_REQUESTS" envDefault:"100"`
	RateLimitServiceMaxRequests int    `env:"RATE_LIMIT_SERVICE_MAX_REQUESTS" envDefault:"0"`
	RateLimitIPv6Prefix         int    `env:"RATE_LIMIT_IPV6_PREFIX" envDefault:"64"`
	ClientIPHeader              string `env:"CLIENT_IP_HEADER" envDefault:"X-Forwarded-For"`
	RedisTimeoutMS              int    `env:"REDIS_TIMEOUT_MS" envDefault:"5"`

	CORSOrigins    string `env:"CORS_ORIGINS" envDefault:"*"`
	LogLevel       string `env:"LOG_LEVEL"`
	TrustedProxies string `env:"TRUSTED_PROXIES"`

	ShutdownDelaySeconds   int `env:"SHUTDOWN_DELAY_SECONDS" envDefault:"0"`
	ShutdownTimeoutSeconds int `env:"SHUTDOWN_TIMEOUT_SECONDS" envDefault:"15"`

	MetricsPort    int    `env:"METRICS_PORT" envDefault:"0"`
	RedisURL       Secret `env:"REDIS_URL"`
	RedisMode      string `env:"REDIS_MODE" envDefault:"single"`
	RedisCAFile    string `env:"REDIS_CA_FILE"`
	RedisKeyPrefix string `env:"REDIS_KEY_PREFIX" envDefault:"token-service:"`

	ServiceAPIKeys Secret `env:"SERVICE_API_KEYS"`

	AuthJWKSURL       string `env:"AUTH_JWKS_URL"`
	AuthJWTSecret     Secret `env:"AUTH_JWT_SECRET"`
	AuthJWTIssuer     string `env:"AUTH_JWT_ISSUER"`
	AuthJWTAudience   string `env:"AUTH_JWT_AUDIENCE"`
	AuthJWTAlgorithms string `env:"AUTH_JWT_ALGORITHMS"`
	AuthIdentityClaim string `env:"AUTH_JWT_IDENTITY_CLAIM" envDefault:"sub"`
	AuthNameClaim     string `env:"AUTH_JWT_NAME_CLAIM" envDefault:"name"`
	AuthRoomsClaim    string `env:"AUTH_JWT_ROOMS_CLAIM"`

	GoGC       string `env:"GOGC"`
	GoMemLimit string `env:"GOMEMLIMIT"`

	// Secrets from files, as Docker and Kubernetes mount them: each names a file whose content
	// (one trailing newline trimmed) is the variable of the same name without _FILE.
	APISecretFile      Secret `env:"LIVEKIT_API_SECRET_FILE,file"`
	LiveKitKeysFile    Secret `env:"LIVEKIT_KEYS_FILE,file"`
	ServiceAPIKeysFile Secret `env:"SERVICE_API_KEYS_FILE,file"`
	AuthJWTSecretFile  Secret `env:"AUTH_JWT_SECRET_FILE,file"`
	RedisURLFile       Secret `env:"REDIS_URL_FILE,file"`

	PolicyFile        string `env:"POLICY_FILE"`
	AllowedAgentNames string `env:"ALLOWED_AGENT_NAMES"`
}

// Variables are the names of every environment variable the service reads, for the checks that
// .env.example, the compose file and the Helm chart set only those.
func Variables() []string {
	var names []string
	for field := range reflect.TypeFor[environment]().Fields() {
		if name, _, _ := strings.Cut(field.Tag.Get("env"), ","); name != "" {
			names = append(names, name)
		}
	}
	return names
}

// parseEnvironment reads environ with caarlos0/env. Each variable that cannot be read is one
// problem naming it, never quoting its value or a file's path, and is marked in unparsed so that
// validation says nothing more of it.
func parseEnvironment(vars map[string]string) (environment, []string, map[string]bool) {
	var e environment
	unparsed := map[string]bool{}
	err := env.ParseWithOptions(&e, env.Options{Environment: vars})
	if err == nil {
		return e, nil, unparsed
	}
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return e, []string{"environment: cannot be read"}, unparsed
	}
	var problems []string
	for _, fe := range agg.Errors {
		var pe env.ParseError
		var le env.LoadFileContentError
		switch {
		case errors.As(fe, &pe):
			field, _ := reflect.TypeFor[environment]().FieldByName(pe.Name)
			name := field.Tag.Get("env")
			unparsed[name] = true
			problems = append(problems, name+": must be a whole number")
		case errors.As(fe, &le):
			unparsed[le.Key], unparsed[strings.TrimSuffix(le.Key, "_FILE")] = true, true
			problems = append(problems, le.Key+": the file it names cannot be read")
		default:
			problems = append(problems, "environment: cannot be read")
		}
	}
	return e, problems, unparsed
}

// takeSecretFiles moves each *_FILE secret into its variable. Setting both is refused, and so
// is an empty file: a secret that is nothing must not read as "not configured" (an empty
// SERVICE_API_KEYS_FILE would open the backend endpoints).
func (e *environment) takeSecretFiles(vars map[string]string, unparsed map[string]bool) []string {
	var problems []string
	for _, pair := range []struct {
		name        string
		value, file *Secret
	}{
		{"LIVEKIT_API_SECRET", &e.APISecret, &e.APISecretFile},
		{"LIVEKIT_KEYS", &e.LiveKitKeys, &e.LiveKitKeysFile},
		{"SERVICE_API_KEYS", &e.ServiceAPIKeys, &e.ServiceAPIKeysFile},
		{"AUTH_JWT_SECRET", &e.AuthJWTSecret, &e.AuthJWTSecretFile},
		{"REDIS_URL", &e.RedisURL, &e.RedisURLFile},
	} {
		file := pair.name + "_FILE"
		if vars[file] == "" || unparsed[file] {
			continue
		}
		if vars[pair.name] != "" {
			problems = append(problems, file+": cannot be set together with "+pair.name)
			continue
		}
		content := strings.TrimSuffix(strings.TrimSuffix(pair.file.Reveal(), "\n"), "\r")
		if strings.TrimSpace(content) == "" {
			problems = append(problems, file+": the file it names is empty")
			unparsed[pair.name] = true
			continue
		}
		*pair.value, *pair.file = Secret(content), ""
	}
	return problems
}
