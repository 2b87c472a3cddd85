// Package config reads token-service's settings from the environment, once, into typed values.
// The variable names and defaults are the contract of the Node service this one replaces, so an
// existing deployment's environment keeps working unchanged.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
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

// Config is every setting of the service, parsed and checked.
type Config struct {
	Port int
	Host string // an IP address, or empty for every interface
	// Env is Development, Production or Test (APP_ENV, else NODE_ENV); EnvUnset is true when
	// neither was set (development by default).
	Env      string
	EnvUnset bool
	// Open leaves the backend endpoints and every grant to every caller, as on a laptop:
	// development without SERVICE_API_KEYS, chosen explicitly or with livekit-server --dev's
	// credentials. Decided here and nowhere else.
	Open     bool
	LogLevel zerolog.Level

	LiveKit    LiveKit
	DefaultTTL time.Duration
	MaxTTL     time.Duration
	RateLimit  RateLimit
	Redis      Redis

	CORSOrigins    []string // ["*"] allows every origin
	TrustedProxies []netip.Prefix
	ClientIPHeader string // the one header a trusted proxy names the client in

	ShutdownDelay   time.Duration
	ShutdownTimeout time.Duration
	MetricsPort     int // 0: /metrics on Port

	ServiceKeys   []Secret // SERVICE_API_KEYS
	UserAuth      UserAuth
	PolicyFile    string
	AllowedAgents []string // ALLOWED_AGENT_NAMES

	// GoGCSet and GoMemLimitSet say whether the Go runtime's own variables were set (it reads
	// them itself); the service only sets its defaults when they were not.
	GoGCSet, GoMemLimitSet bool

	// Warnings are things an operator should see at start-up that do not stop it.
	Warnings []string
}

// LiveKit is how the service reaches LiveKit and signs for it.
type LiveKit struct {
	APIKey    string
	APISecret Secret
	WSURL     string // where clients connect
	// APIURL is where the service calls LiveKit's server API (bans, agent dispatch);
	// LIVEKIT_WS_URL with ws -> http and wss -> https unless set.
	APIURL     string
	APITimeout time.Duration
	// VerifyKeys are further key: secret pairs (LIVEKIT_KEYS) that /token/verify and LiveKit's
	// webhooks accept during a key rotation.
	VerifyKeys map[string]Secret
}

// RateLimit is how requests are limited per client.
type RateLimit struct {
	Window     time.Duration
	Max        int // per client per window; 0 turns limiting off
	ServiceMax int // per service key per window; 0 means no limit for them
	IPv6Prefix int // IPv6 clients are counted per prefix of this many bits
}

// Redis is where replicas share rate limits, bans and dispatch locks: REDIS_URL read as
// go-redis reads it for REDIS_MODE, with REDIS_CA_FILE's CAs. Exactly one of Single, Cluster
// and Failover is set, or none without REDIS_URL.
type Redis struct {
	Mode     string // single, cluster or sentinel
	Single   *redis.Options
	Cluster  *redis.ClusterOptions
	Failover *redis.FailoverOptions
	// Host is the URL's host and port, for messages: never its password.
	Host    string
	Prefix  string        // REDIS_KEY_PREFIX: every key and channel begins with it
	Timeout time.Duration // REDIS_TIMEOUT_MS: a rate-limit count's latency budget
}

// Redis modes (REDIS_MODE).
const (
	RedisSingle   = "single"
	RedisCluster  = "cluster"
	RedisSentinel = "sentinel"
)

// Enabled reports whether REDIS_URL is set.
func (r Redis) Enabled() bool { return r.Single != nil || r.Cluster != nil || r.Failover != nil }

// UserAuth is end-user authentication: POST /token then needs the user's JWT.
type UserAuth struct {
	JWKSURL       string // verify with the provider's published keys
	JWTSecret     Secret // or with a shared HS256 secret
	Issuer        string
	Audience      string
	Algorithms    []string // the only algorithms accepted, never taken from the token
	IdentityClaim string
	NameClaim     string
	RoomsClaim    string
}

// Enabled reports whether end users sign in.
func (u UserAuth) Enabled() bool { return u.JWKSURL != "" || u.JWTSecret != "" }

// Load parses environ (KEY=value pairs, as os.Environ returns them) into a Config. Every problem
// is reported at once, one per line, naming the variable and its rule but never its value: a
// variable that cannot be parsed is named once, and every other variable is still checked.
func Load(environ []string) (Config, error) {
	vars := env.ToMap(environ)
	e, problems, unparsed := parseEnvironment(vars)
	problems = append(problems, e.takeSecretFiles(vars, unparsed)...)
	cfg, more := e.config()
	for _, p := range more {
		variable, _, _ := strings.Cut(p, ":")
		if !unparsed[variable] {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return Config{}, fmt.Errorf("%w:\n  %s", ErrInvalid, strings.Join(problems, "\n  "))
	}
	return cfg, nil
}

// ListenAddr is the address the HTTP server binds.
func (c Config) ListenAddr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// MetricsAddr is the address of the separate metrics listener, or "" to serve /metrics on Port.
func (c Config) MetricsAddr() string {
	if c.MetricsPort == 0 {
		return ""
	}
	return net.JoinHostPort(c.Host, strconv.Itoa(c.MetricsPort))
}

// Production reports whether the service runs with production rules (JSON logs, strict secrets).
func (c Config) Production() bool { return c.Env == Production }

// DevCredentials reports whether the LiveKit key pair is livekit-server --dev's.
func (c Config) DevCredentials() bool {
	return c.LiveKit.APIKey == devAPIKey && c.LiveKit.APISecret.Reveal() == devAPISecret
}
