// Package config reads token-service's settings from the environment. The variable names and
// defaults are the contract of the Node service this one replaces, so an existing deployment's
// environment keeps working unchanged.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/redis/go-redis/v9"
)

// Environments the service knows; anything else is a configuration error.
const (
	Development = "development"
	Production  = "production"
	Test        = "test"
)

// LiveKit's own `livekit-server --dev` credentials, used only in development so that the service
// and a dev-mode LiveKit work together with no set-up.
const (
	devAPIKey    = "devkey"
	devAPISecret = "secret"
	devWSURL     = "ws://localhost:7880"
)

// maxTokenTTLSeconds is 30 days: a token is a bearer credential nobody can revoke before it
// expires.
const maxTokenTTLSeconds = 30 * 24 * 3600

// minProductionSecretLen is where livekit-server itself starts warning about weak secrets.
const minProductionSecretLen = 32

// ErrInvalid marks a configuration that must stop start-up (exit status 2).
var ErrInvalid = errors.New("invalid configuration")

// Config is every setting of the service. Fields tagged env are read from the environment;
// the rest are derived by Load.
type Config struct {
	Port    int    `env:"PORT" envDefault:"3001"`
	Host    string `env:"HOST"`
	AppEnv  string `env:"APP_ENV"`
	NodeEnv string `env:"NODE_ENV"`

	APIKey    string `env:"LIVEKIT_API_KEY"`
	APISecret Secret `env:"LIVEKIT_API_SECRET"`
	WSURL     string `env:"LIVEKIT_WS_URL"`
	// Further "key: secret" pairs (livekit-server's format, newline or comma separated) that
	// /token/verify accepts during a key rotation.
	LiveKitKeys Secret `env:"LIVEKIT_KEYS"`
	// Where the service calls LiveKit's server API (bans, agent dispatch); by default
	// LIVEKIT_WS_URL with ws -> http and wss -> https.
	APIURL string `env:"LIVEKIT_API_URL"`
	// The most one call to LiveKit's server API may take.
	APITimeoutMS int `env:"LIVEKIT_API_TIMEOUT_MS" envDefault:"1000"`

	DefaultTTLSeconds int `env:"DEFAULT_TOKEN_TTL_SECONDS" envDefault:"3600"`
	MaxTTLSeconds     int `env:"MAX_TOKEN_TTL_SECONDS" envDefault:"86400"`

	RateLimitWindowMS    int `env:"RATE_LIMIT_WINDOW_MS" envDefault:"60000"`
	RateLimitMaxRequests int `env:"RATE_LIMIT_MAX_REQUESTS" envDefault:"100"`
	// Callers with a service key are limited per key, apart from everyone else (0: no limit).
	RateLimitServiceMaxRequests int `env:"RATE_LIMIT_SERVICE_MAX_REQUESTS" envDefault:"0"`
	// IPv6 clients share one limit per prefix of this many bits, since one host gets a whole /64.
	RateLimitIPv6Prefix int `env:"RATE_LIMIT_IPV6_PREFIX" envDefault:"64"`
	// The one header that carries the client address, read only from TRUSTED_PROXIES peers.
	ClientIPHeader string `env:"CLIENT_IP_HEADER" envDefault:"X-Forwarded-For"`
	// The most a request waits for Redis before it is counted in memory instead.
	RedisTimeoutMS int `env:"REDIS_TIMEOUT_MS" envDefault:"5"`

	CORSOrigins    string `env:"CORS_ORIGINS" envDefault:"*"`
	LogLevel       string `env:"LOG_LEVEL"`
	TrustedProxies string `env:"TRUSTED_PROXIES"`

	ShutdownDelaySeconds   int `env:"SHUTDOWN_DELAY_SECONDS" envDefault:"0"`
	ShutdownTimeoutSeconds int `env:"SHUTDOWN_TIMEOUT_SECONDS" envDefault:"15"`

	// Metrics on a listener of their own (0: on the main port at /metrics).
	MetricsPort int `env:"METRICS_PORT" envDefault:"0"`
	// Shared rate-limit counters (may carry a password, hence a Secret).
	RedisURL Secret `env:"REDIS_URL"`

	// Backend callers present one of these as a Bearer token; several allow rotation.
	ServiceAPIKeys Secret `env:"SERVICE_API_KEYS"`

	// End-user authentication: POST /token then needs the user's JWT from the app's identity
	// provider, verified with keys from AUTH_JWKS_URL or with AUTH_JWT_SECRET (HS256).
	AuthJWKSURL       string `env:"AUTH_JWKS_URL"`
	AuthJWTSecret     Secret `env:"AUTH_JWT_SECRET"`
	AuthJWTIssuer     string `env:"AUTH_JWT_ISSUER"`
	AuthJWTAudience   string `env:"AUTH_JWT_AUDIENCE"`
	AuthJWTAlgorithms string `env:"AUTH_JWT_ALGORITHMS"`
	AuthIdentityClaim string `env:"AUTH_JWT_IDENTITY_CLAIM" envDefault:"sub"`
	AuthNameClaim     string `env:"AUTH_JWT_NAME_CLAIM" envDefault:"name"`
	AuthRoomsClaim    string `env:"AUTH_JWT_ROOMS_CLAIM"`

	// Read by the Go runtime itself; run only sets its own defaults when they are unset.
	GoGC       string `env:"GOGC"`
	GoMemLimit string `env:"GOMEMLIMIT"`

	// Secrets from files, as Docker and Kubernetes mount them: each names a file whose content
	// (one trailing newline trimmed) is the variable of the same name without _FILE. Setting
	// both is an error.
	APISecretFile      Secret `env:"LIVEKIT_API_SECRET_FILE,file"`
	LiveKitKeysFile    Secret `env:"LIVEKIT_KEYS_FILE,file"`
	ServiceAPIKeysFile Secret `env:"SERVICE_API_KEYS_FILE,file"`
	AuthJWTSecretFile  Secret `env:"AUTH_JWT_SECRET_FILE,file"`
	RedisURLFile       Secret `env:"REDIS_URL_FILE,file"`

	// POLICY_FILE: the operator's grant policy (YAML); empty for the built-in default.
	PolicyFile string `env:"POLICY_FILE"`
	// Agents any participant may dispatch through room_config under the built-in policy.
	AllowedAgentNames string `env:"ALLOWED_AGENT_NAMES"`

	// EnvUnset is true when neither APP_ENV nor NODE_ENV was set (development by default).
	EnvUnset bool `env:"-"`
	// Warnings are things an operator should see at start-up that do not stop it.
	Warnings []string `env:"-"`
}

// Load parses environ (KEY=value pairs, as os.Environ returns them), fills in the defaults that
// depend on the environment, and validates the result. Every problem is reported at once, one
// per line, naming the variable and its rule but never its value: a variable that cannot be
// parsed is named once, and every other variable is still checked.
func Load(environ []string) (Config, error) {
	var cfg Config
	var problems []string
	unparsed := map[string]bool{}
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: env.ToMap(environ)}); err != nil {
		problems = parseProblems(err, unparsed)
	}
	problems = append(problems, cfg.takeSecretFiles(env.ToMap(environ))...)
	cfg.applyDefaults()
	for _, p := range cfg.validate() {
		variable, _, _ := strings.Cut(p, ":")
		if !unparsed[variable] {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return Config{}, invalid(problems)
	}
	return cfg, nil
}

func invalid(problems []string) error {
	return fmt.Errorf("%w:\n  %s", ErrInvalid, strings.Join(problems, "\n  "))
}

// parseProblems turns env's per-field errors into lines naming the variable, because env names
// the Go field and its messages would quote the offending value or the file's path; it marks
// each such variable in unparsed.
func parseProblems(err error, unparsed map[string]bool) []string {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return []string{"environment: cannot be read"}
	}
	var problems []string
	for _, e := range agg.Errors {
		var pe env.ParseError
		var fe env.LoadFileContentError
		switch {
		case errors.As(e, &pe):
			field, _ := reflect.TypeFor[Config]().FieldByName(pe.Name)
			name := field.Tag.Get("env")
			unparsed[name] = true
			problems = append(problems, name+": must be a whole number")
		case errors.As(e, &fe):
			unparsed[fe.Key], unparsed[strings.TrimSuffix(fe.Key, "_FILE")] = true, true
			problems = append(problems, fe.Key+": the file it names cannot be read")
		default:
			problems = append(problems, "environment: cannot be read")
		}
	}
	return problems
}

// takeSecretFiles moves each *_FILE secret into its variable, refusing both at once.
func (c *Config) takeSecretFiles(environ map[string]string) []string {
	var problems []string
	for _, pair := range []struct {
		name        string
		value, file *Secret
	}{
		{"LIVEKIT_API_SECRET", &c.APISecret, &c.APISecretFile},
		{"LIVEKIT_KEYS", &c.LiveKitKeys, &c.LiveKitKeysFile},
		{"SERVICE_API_KEYS", &c.ServiceAPIKeys, &c.ServiceAPIKeysFile},
		{"AUTH_JWT_SECRET", &c.AuthJWTSecret, &c.AuthJWTSecretFile},
		{"REDIS_URL", &c.RedisURL, &c.RedisURLFile},
	} {
		if environ[pair.name+"_FILE"] == "" {
			continue
		}
		if environ[pair.name] != "" {
			problems = append(problems, pair.name+"_FILE: cannot be set together with "+pair.name)
			continue
		}
		content := strings.TrimSuffix(strings.TrimSuffix(pair.file.Reveal(), "\n"), "\r")
		*pair.value, *pair.file = Secret(content), ""
	}
	return problems
}

func (c *Config) applyDefaults() {
	if c.AppEnv == "" {
		c.AppEnv = c.NodeEnv
	}
	if c.AppEnv == "" {
		c.AppEnv, c.EnvUnset = Development, true
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
		if c.AppEnv == Development {
			c.LogLevel = "debug"
		}
	}
	if c.AuthJWTAlgorithms == "" {
		switch {
		case c.AuthJWKSURL != "":
			c.AuthJWTAlgorithms = "RS256,ES256,EdDSA"
		case c.AuthJWTSecret != "":
			c.AuthJWTAlgorithms = "HS256"
		}
	}
	if c.AppEnv == Production && c.CORSOrigins == "*" {
		c.Warnings = append(c.Warnings, "CORS_ORIGINS is *: any web page may ask for tokens from a visitor's browser; list your app's origins")
	}
	if c.AppEnv == Production && c.RateLimitMaxRequests == 0 {
		c.Warnings = append(c.Warnings, "RATE_LIMIT_MAX_REQUESTS is 0: the token routes are not rate limited")
	}
	c.defaultAPIURL()
	if c.AppEnv != Development {
		return
	}
	// The dev key and secret only make sense as a pair: one without the other signs tokens that
	// no LiveKit server accepts, so a half-set pair is left for validate to refuse.
	if c.APIKey == "" && c.APISecret == "" {
		c.APIKey, c.APISecret = devAPIKey, devAPISecret
		c.Warnings = append(c.Warnings, "LIVEKIT_API_KEY and LIVEKIT_API_SECRET are unset: using livekit-server --dev credentials (development only)")
	}
	if c.WSURL == "" {
		c.WSURL = devWSURL
		c.Warnings = append(c.Warnings, "LIVEKIT_WS_URL is unset: using "+devWSURL+" (development only)")
	}
	c.defaultAPIURL()
}

// defaultAPIURL derives LIVEKIT_API_URL from LIVEKIT_WS_URL when it is unset: LiveKit serves its
// server API on the same host and port as its signalling.
func (c *Config) defaultAPIURL() {
	if c.APIURL != "" || !validWSURL(c.WSURL) {
		return
	}
	switch {
	case strings.HasPrefix(c.WSURL, "wss://"):
		c.APIURL = "https://" + strings.TrimPrefix(c.WSURL, "wss://")
	case strings.HasPrefix(c.WSURL, "ws://"):
		c.APIURL = "http://" + strings.TrimPrefix(c.WSURL, "ws://")
	default:
		c.APIURL = c.WSURL
	}
}

func (c *Config) validate() []string {
	var p []string
	check := func(ok bool, variable, rule string) {
		if !ok {
			p = append(p, variable+": "+rule)
		}
	}
	check(c.Port >= 1 && c.Port <= 65535, "PORT", "must be from 1 to 65535")
	check(c.Host == "" || net.ParseIP(c.Host) != nil, "HOST", "must be empty (every interface) or an IP address")
	check(c.AppEnv == Development || c.AppEnv == Production || c.AppEnv == Test,
		envVarName(c), "must be development, production or test")

	check(c.APIKey != "", "LIVEKIT_API_KEY", "is required outside development")
	check(c.APISecret != "", "LIVEKIT_API_SECRET", "is required outside development (and with LIVEKIT_API_KEY in development)")
	if c.strictSecrets() && c.APISecret != "" && !c.devCredentials() {
		check(len(c.APISecret.Reveal()) >= minProductionSecretLen, "LIVEKIT_API_SECRET",
			"must be at least "+strconv.Itoa(minProductionSecretLen)+" characters outside development (test may use the devkey/secret pair)")
	}
	check(c.WSURL != "", "LIVEKIT_WS_URL", "is required outside development")
	if c.WSURL != "" {
		check(validWSURL(c.WSURL), "LIVEKIT_WS_URL", "must be a ws://, wss://, http:// or https:// URL with a host")
	}

	if c.APIURL != "" {
		check(validHTTPURL(c.APIURL), "LIVEKIT_API_URL", "must be an http:// or https:// URL with a host")
	}
	check(c.APITimeoutMS >= 1 && c.APITimeoutMS <= 30000, "LIVEKIT_API_TIMEOUT_MS", "must be from 1 to 30000")

	check(c.MaxTTLSeconds >= 1 && c.MaxTTLSeconds <= maxTokenTTLSeconds, "MAX_TOKEN_TTL_SECONDS", "must be from 1 to 2592000 (30 days)")
	check(c.DefaultTTLSeconds >= 1 && c.DefaultTTLSeconds <= max(c.MaxTTLSeconds, 1), "DEFAULT_TOKEN_TTL_SECONDS",
		"must be from 1 to MAX_TOKEN_TTL_SECONDS")
	check(c.RateLimitWindowMS >= 1, "RATE_LIMIT_WINDOW_MS", "must be at least 1")
	check(c.RateLimitMaxRequests >= 0, "RATE_LIMIT_MAX_REQUESTS", "must be 0 (off) or more")
	check(c.RateLimitServiceMaxRequests >= 0, "RATE_LIMIT_SERVICE_MAX_REQUESTS", "must be 0 (no limit) or more")
	check(c.RateLimitIPv6Prefix >= 1 && c.RateLimitIPv6Prefix <= 128, "RATE_LIMIT_IPV6_PREFIX", "must be from 1 to 128")
	check(validHeaderName(c.ClientIPHeader), "CLIENT_IP_HEADER", "must be a header name such as X-Forwarded-For, X-Real-IP or CF-Connecting-IP")
	check(c.RedisTimeoutMS >= 1 && c.RedisTimeoutMS <= 1000, "REDIS_TIMEOUT_MS", "must be from 1 to 1000")

	if _, err := parseOrigins(c.CORSOrigins); err != nil {
		p = append(p, "CORS_ORIGINS: "+err.Error())
	}
	check(validLogLevel(c.LogLevel), "LOG_LEVEL", "must be trace, debug, info, warn, error, fatal, panic or disabled")
	if cidrs, err := parseCIDRs(c.TrustedProxies); err != nil {
		p = append(p, "TRUSTED_PROXIES: "+err.Error())
	} else if c.AppEnv == Production {
		for _, cidr := range cidrs {
			// Trusting every peer lets every client choose its own rate-limit key.
			check(netip.MustParsePrefix(cidr).Bits() != 0, "TRUSTED_PROXIES", "must not trust every address (0.0.0.0/0, ::/0) in production")
		}
	}
	check(c.ShutdownDelaySeconds >= 0, "SHUTDOWN_DELAY_SECONDS", "must be 0 or more")
	check(c.ShutdownTimeoutSeconds >= 1, "SHUTDOWN_TIMEOUT_SECONDS", "must be at least 1")
	if _, err := c.parseLiveKitKeys(); err != nil {
		p = append(p, "LIVEKIT_KEYS: "+err.Error())
	}
	check(c.MetricsPort == 0 || c.MetricsPort > 0 && c.MetricsPort <= 65535 && c.MetricsPort != c.Port, "METRICS_PORT",
		"must be 0 (serve /metrics on PORT) or another port from 1 to 65535")
	if c.RedisURL != "" {
		_, err := c.RedisOptions()
		check(err == nil, "REDIS_URL", "must be a redis:// or rediss:// URL such as redis://:password@redis:6379/0")
	}
	for _, key := range c.ServiceKeys() {
		if len(key) < minProductionSecretLen {
			p = append(p, "SERVICE_API_KEYS: each key must be at least "+strconv.Itoa(minProductionSecretLen)+" characters")
			break
		}
	}
	return append(p, c.validateUserAuth()...)
}

// Algorithms end-user JWTs may be signed with: HMAC with a shared secret, else public keys.
var (
	secretAlgorithms = []string{"HS256", "HS384", "HS512"}
	jwksAlgorithms   = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

func (c *Config) validateUserAuth() []string {
	if !c.UserAuth() {
		return nil
	}
	var p []string
	check := func(ok bool, variable, rule string) {
		if !ok {
			p = append(p, variable+": "+rule)
		}
	}
	check(c.AuthJWKSURL == "" || c.AuthJWTSecret == "", "AUTH_JWKS_URL", "and AUTH_JWT_SECRET cannot both be set: choose one way to verify user tokens")
	if c.AuthJWKSURL != "" {
		u, err := url.Parse(c.AuthJWKSURL)
		check(err == nil && u.Host != "" && (u.Scheme == "https" || u.Scheme == "http" && c.AppEnv != Production),
			"AUTH_JWKS_URL", "must be an https:// URL (http:// outside production)")
	}
	if c.AuthJWTSecret != "" && c.strictSecrets() {
		check(len(c.AuthJWTSecret.Reveal()) >= minProductionSecretLen, "AUTH_JWT_SECRET",
			"must be at least "+strconv.Itoa(minProductionSecretLen)+" characters outside development")
	}
	if secret := c.AuthJWTSecret.Reveal(); secret != "" {
		// One secret in two roles: whoever holds the user-token key could sign LiveKit tokens
		// or call the backend endpoints.
		check(secret != c.APISecret.Reveal() && !slices.Contains(c.ServiceKeys(), secret), "AUTH_JWT_SECRET",
			"must differ from LIVEKIT_API_SECRET and from every SERVICE_API_KEYS key")
	}
	check(c.AuthJWTIssuer != "", "AUTH_JWT_ISSUER", "is required with end-user authentication")
	check(c.AuthJWTAudience != "", "AUTH_JWT_AUDIENCE", "is required with end-user authentication")
	allowed := jwksAlgorithms
	if c.AuthJWTSecret != "" {
		allowed = secretAlgorithms
	}
	for _, alg := range c.JWTAlgorithms() {
		if !slices.Contains(allowed, alg) {
			p = append(p, "AUTH_JWT_ALGORITHMS: must be a list of "+strings.Join(allowed, ", ")+" for this key source")
			break
		}
	}
	check(c.AuthIdentityClaim != "", "AUTH_JWT_IDENTITY_CLAIM", "must name a claim")
	return p
}

// envVarName names whichever variable the environment name came from.
func envVarName(c *Config) string {
	if c.AppEnv == c.NodeEnv && c.AppEnv != "" {
		return "NODE_ENV"
	}
	return "APP_ENV"
}

func validWSURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false
	}
	switch u.Scheme {
	case "ws", "wss", "http", "https":
		return true
	}
	return false
}

// validHeaderName accepts an HTTP header name (RFC 9110 token characters).
func validHTTPURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil
}

func validHeaderName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, r := range name {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

func validLogLevel(level string) bool {
	switch level {
	case "trace", "debug", "info", "warn", "error", "fatal", "panic", "disabled":
		return true
	}
	return false
}

// parseOrigins accepts "*" or a list of http(s) origins; go-chi/cors also allows one "*" wildcard
// inside an origin (https://*.example.com), which is kept.
func parseOrigins(raw string) ([]string, error) {
	if strings.TrimSpace(raw) == "*" {
		return []string{"*"}, nil
	}
	var origins []string
	for _, o := range splitList(raw) {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, errors.New(`must be "*" or a comma-separated list of origins such as https://app.example.com (scheme and host, no path)`)
		}
		if strings.Contains(u.Host, "*") && !oneLabelWildcard(u.Hostname()) {
			return nil, errors.New(`may use "*" only as the whole first label of a host with at least two more labels, as in https://*.example.com`)
		}
		origins = append(origins, o)
	}
	if len(origins) == 0 {
		return nil, errors.New(`must be "*" or a comma-separated list of origins`)
	}
	return origins, nil
}

// oneLabelWildcard accepts *.example.com: a wildcard for exactly one label, under a domain of its
// own (not *.com, *.*.com or a*.example.com).
func oneLabelWildcard(host string) bool {
	rest, ok := strings.CutPrefix(host, "*.")
	return ok && !strings.Contains(rest, "*") && strings.Count(rest, ".") >= 1 && !strings.HasPrefix(rest, ".") && !strings.HasSuffix(rest, ".")
}

func parseCIDRs(raw string) ([]string, error) {
	var cidrs []string
	for _, c := range splitList(raw) {
		if _, err := netip.ParsePrefix(c); err != nil {
			return nil, errors.New("must be a comma-separated list of CIDRs such as 10.0.0.0/8")
		}
		cidrs = append(cidrs, c)
	}
	return cidrs, nil
}

func splitList(raw string) []string {
	var out []string
	for item := range strings.SplitSeq(raw, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// strictSecrets is where secrets must be long: everywhere but development. Test is treated like
// production, except that it may use livekit-server --dev's pair (devCredentials).
func (c *Config) strictSecrets() bool { return c.AppEnv != Development }

func (c *Config) devCredentials() bool {
	return c.AppEnv == Test && c.APIKey == devAPIKey && c.APISecret.Reveal() == devAPISecret
}

// DevCredentials reports whether the LiveKit key pair is livekit-server --dev's.
func (c Config) DevCredentials() bool {
	return c.APIKey == devAPIKey && c.APISecret.Reveal() == devAPISecret
}

// AllowedAgents are the agent names of ALLOWED_AGENT_NAMES.
func (c Config) AllowedAgents() []string { return splitList(c.AllowedAgentNames) }

// Production reports whether the service runs with production rules (JSON logs, strict secrets).
func (c Config) Production() bool { return c.AppEnv == Production }

// ListenAddr is the address the HTTP server binds.
func (c Config) ListenAddr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// DefaultTTL is the lifetime of a token whose request names none.
func (c Config) DefaultTTL() time.Duration { return time.Duration(c.DefaultTTLSeconds) * time.Second }

// MaxTTL is the longest lifetime a request may ask for.
func (c Config) MaxTTL() time.Duration { return time.Duration(c.MaxTTLSeconds) * time.Second }

// RateLimitWindow is the window over which RateLimitMaxRequests are counted.
func (c Config) RateLimitWindow() time.Duration {
	return time.Duration(c.RateLimitWindowMS) * time.Millisecond
}

// RedisOptions is REDIS_URL parsed as go-redis reads it (the check at start-up and the client
// use the same parser); nil when REDIS_URL is unset.
func (c Config) RedisOptions() (*redis.Options, error) {
	if c.RedisURL == "" {
		return nil, nil
	}
	u, err := url.Parse(c.RedisURL.Reveal())
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return nil, errors.New("not a redis:// or rediss:// URL")
	}
	opts, err := redis.ParseURL(c.RedisURL.Reveal())
	if err != nil {
		return nil, errors.New("not a valid Redis URL") // go-redis's message quotes the value
	}
	return opts, nil
}

// RedisTimeout is the latency budget of one Redis call.
func (c Config) RedisTimeout() time.Duration {
	return time.Duration(c.RedisTimeoutMS) * time.Millisecond
}

// AllowedOrigins is CORS_ORIGINS as a list; ["*"] allows every origin.
func (c Config) AllowedOrigins() []string {
	origins, _ := parseOrigins(c.CORSOrigins) // validated by Load
	return origins
}

// TrustedProxyCIDRs is TRUSTED_PROXIES as a list; empty means the TCP peer is the client.
func (c Config) TrustedProxyCIDRs() []string {
	cidrs, _ := parseCIDRs(c.TrustedProxies) // validated by Load
	return cidrs
}

// MetricsAddr is the address of the separate metrics listener, or "" to serve /metrics on PORT.
func (c Config) MetricsAddr() string {
	if c.MetricsPort == 0 {
		return ""
	}
	return net.JoinHostPort(c.Host, strconv.Itoa(c.MetricsPort))
}

// VerifyOnlyKeys is LIVEKIT_KEYS as a map from API key to secret.
func (c Config) VerifyOnlyKeys() map[string]string {
	keys, _ := c.parseLiveKitKeys() // validated by Load
	return keys
}

func (c *Config) parseLiveKitKeys() (map[string]string, error) {
	keys := map[string]string{}
	for _, entry := range splitList(strings.ReplaceAll(c.LiveKitKeys.Reveal(), "\n", ",")) {
		key, secret, ok := strings.Cut(entry, ":")
		key, secret = strings.TrimSpace(key), strings.TrimSpace(secret)
		if !ok || key == "" || secret == "" {
			return nil, errors.New(`each entry must be "key: secret", separated by commas or newlines`)
		}
		if c.strictSecrets() && len(secret) < minProductionSecretLen {
			return nil, errors.New("each secret must be at least " + strconv.Itoa(minProductionSecretLen) + " characters outside development")
		}
		keys[key] = secret
	}
	return keys, nil
}

// ServiceKeys is SERVICE_API_KEYS as a list; empty means no backend caller is recognised.
func (c Config) ServiceKeys() []string { return splitList(c.ServiceAPIKeys.Reveal()) }

// UserAuth reports whether POST /token needs an end user's JWT.
func (c Config) UserAuth() bool { return c.AuthJWKSURL != "" || c.AuthJWTSecret != "" }

// JWTAlgorithms is the fixed list of algorithms an end user's JWT may use.
func (c Config) JWTAlgorithms() []string { return splitList(c.AuthJWTAlgorithms) }

// APITimeout is the budget of one call to LiveKit's server API.
func (c Config) APITimeout() time.Duration { return time.Duration(c.APITimeoutMS) * time.Millisecond }

// ShutdownDelay is how long /ready reports 503 before the server stops accepting connections.
func (c Config) ShutdownDelay() time.Duration {
	return time.Duration(c.ShutdownDelaySeconds) * time.Second
}

// ShutdownTimeout is the grace period for in-flight requests once the server stops accepting.
func (c Config) ShutdownTimeout() time.Duration {
	return time.Duration(c.ShutdownTimeoutSeconds) * time.Second
}
