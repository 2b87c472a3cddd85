package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// config turns the environment into a Config, with one problem line per variable it refuses.
func (e *environment) config() (Config, []string) {
	var p problems
	c := Config{Port: e.Port, Host: e.Host, Env: e.AppEnv, MetricsPort: e.MetricsPort,
		ClientIPHeader: e.ClientIPHeader, PolicyFile: e.PolicyFile, AllowedAgents: splitList(e.AllowedAgentNames),
		GoGCSet: e.GoGC != "", GoMemLimitSet: e.GoMemLimit != ""}
	if c.Env == "" {
		c.Env = e.NodeEnv
	}
	if c.Env == "" {
		c.Env, c.EnvUnset = Development, true
	}
	envVar := "APP_ENV"
	if e.AppEnv == "" && e.NodeEnv != "" {
		envVar = "NODE_ENV"
	}
	p.check(c.Env == Development || c.Env == Production || c.Env == Test, envVar, "must be development, production or test")
	p.check(c.Port >= 1 && c.Port <= 65535, "PORT", "must be from 1 to 65535")
	p.check(c.Host == "" || net.ParseIP(c.Host) != nil, "HOST", "must be empty (every interface) or an IP address")

	c.LiveKit = e.liveKit(&c, &p)
	c.Open, c.Warnings = e.openness(&c)
	c.DefaultTTL, c.MaxTTL = seconds(e.DefaultTTLSeconds), seconds(e.MaxTTLSeconds)
	p.check(e.MaxTTLSeconds >= 1 && e.MaxTTLSeconds <= maxTokenTTLSeconds, "MAX_TOKEN_TTL_SECONDS", "must be from 1 to 2592000 (30 days)")
	p.check(e.DefaultTTLSeconds >= 1 && e.DefaultTTLSeconds <= max(e.MaxTTLSeconds, 1), "DEFAULT_TOKEN_TTL_SECONDS",
		"must be from 1 to MAX_TOKEN_TTL_SECONDS")

	c.RateLimit = RateLimit{Window: time.Duration(e.RateLimitWindowMS) * time.Millisecond, Max: e.RateLimitMaxRequests,
		ServiceMax: e.RateLimitServiceMaxRequests, IPv6Prefix: e.RateLimitIPv6Prefix}
	p.check(e.RateLimitWindowMS >= 1, "RATE_LIMIT_WINDOW_MS", "must be at least 1")
	p.check(e.RateLimitMaxRequests >= 0, "RATE_LIMIT_MAX_REQUESTS", "must be 0 (off) or more")
	p.check(e.RateLimitServiceMaxRequests >= 0, "RATE_LIMIT_SERVICE_MAX_REQUESTS", "must be 0 (no limit) or more")
	p.check(e.RateLimitIPv6Prefix >= 1 && e.RateLimitIPv6Prefix <= 128, "RATE_LIMIT_IPV6_PREFIX", "must be from 1 to 128")
	p.check(validHeaderName(c.ClientIPHeader), "CLIENT_IP_HEADER", "must be a header name such as X-Forwarded-For, X-Real-IP or CF-Connecting-IP")

	c.Redis = e.redis(&p)

	var err error
	if c.CORSOrigins, err = parseOrigins(e.CORSOrigins); err != nil {
		p.add("CORS_ORIGINS", err.Error())
	}
	// Narrow wherever the service is not a developer's: an unset environment with real
	// credentials is closed as production is, and held to the same rule.
	narrow := c.Env != Development || c.EnvUnset && !devPair(c.LiveKit)
	if c.TrustedProxies, err = parseProxies(e.TrustedProxies, narrow); err != nil {
		p.add("TRUSTED_PROXIES", err.Error())
	}
	c.LogLevel = e.logLevel(&c, &p)
	c.ShutdownDelay, c.ShutdownTimeout = seconds(e.ShutdownDelaySeconds), seconds(e.ShutdownTimeoutSeconds)
	p.check(e.ShutdownDelaySeconds >= 0, "SHUTDOWN_DELAY_SECONDS", "must be 0 or more")
	p.check(e.ShutdownTimeoutSeconds >= 1, "SHUTDOWN_TIMEOUT_SECONDS", "must be at least 1")
	p.check(c.MetricsPort == 0 || c.MetricsPort > 0 && c.MetricsPort <= 65535 && c.MetricsPort != c.Port, "METRICS_PORT",
		"must be 0 (serve /metrics on PORT) or another port from 1 to 65535")
	for _, key := range splitList(e.ServiceAPIKeys.Reveal()) {
		c.ServiceKeys = append(c.ServiceKeys, Secret(key))
	}
	// Set but listing nothing (" , ") is neither "no keys" nor any key: refused, not guessed at.
	p.check(e.ServiceAPIKeys == "" || len(c.ServiceKeys) > 0, "SERVICE_API_KEYS", "is set but lists no key")
	for _, key := range c.ServiceKeys {
		if len(key) < minProductionSecretLen {
			p.add("SERVICE_API_KEYS", "each key must be at least "+strconv.Itoa(minProductionSecretLen)+" characters")
			break
		}
	}
	c.UserAuth = e.userAuth(&c, &p)

	if c.Production() && e.CORSOrigins == "*" {
		c.Warnings = append(c.Warnings, "CORS_ORIGINS is *: any web page may ask for tokens from a visitor's browser; list your app's origins")
	}
	if c.Production() && c.RateLimit.Max == 0 {
		c.Warnings = append(c.Warnings, "RATE_LIMIT_MAX_REQUESTS is 0: the token routes are not rate limited")
	}
	if c.Production() && len(c.ServiceKeys) == 0 {
		c.Warnings = append(c.Warnings, "SERVICE_API_KEYS is unset: /token/agent, /token/verify, /moderation/bans and privileged grants are refused (403) in production")
	}
	if c.Production() && c.PolicyFile == "" && !c.UserAuth.Enabled() {
		c.Warnings = append(c.Warnings, "no POLICY_FILE and no end-user authentication: any caller may ask for a participant token for any room and identity")
	}
	return c, p
}

type problems []string

func (p *problems) add(variable, rule string) { *p = append(*p, variable+": "+rule) }

func (p *problems) check(ok bool, variable, rule string) {
	if !ok {
		p.add(variable, rule)
	}
}

func seconds(n int) time.Duration { return time.Duration(n) * time.Second }

func devPair(lk LiveKit) bool { return lk.APIKey == devAPIKey && lk.APISecret.Reveal() == devAPISecret }

// strictSecrets is where secrets must be long: everywhere but development. Test is production's
// rule, except that it may use livekit-server --dev's pair.
func strictSecrets(env string) bool { return env != Development }

func (e *environment) liveKit(c *Config, p *problems) LiveKit {
	lk := LiveKit{APIKey: e.APIKey, APISecret: e.APISecret, WSURL: e.WSURL, APIURL: e.APIURL,
		APITimeout: time.Duration(e.APITimeoutMS) * time.Millisecond}
	if c.Env == Development {
		// The dev key and secret only make sense as a pair: one without the other signs tokens
		// that no LiveKit server accepts, so a half-set pair is refused below.
		if lk.APIKey == "" && lk.APISecret == "" {
			lk.APIKey, lk.APISecret = devAPIKey, devAPISecret
			c.Warnings = append(c.Warnings, "LIVEKIT_API_KEY and LIVEKIT_API_SECRET are unset: using livekit-server --dev credentials (development only)")
		}
		if lk.WSURL == "" {
			lk.WSURL = devWSURL
			c.Warnings = append(c.Warnings, "LIVEKIT_WS_URL is unset: using "+devWSURL+" (development only)")
		}
	}
	dev := devPair(lk)
	p.check(lk.APIKey != "", "LIVEKIT_API_KEY", "is required outside development")
	p.check(lk.APISecret != "", "LIVEKIT_API_SECRET", "is required outside development (and with LIVEKIT_API_KEY in development)")
	if strictSecrets(c.Env) && lk.APISecret != "" && !(c.Env == Test && dev) {
		p.check(len(lk.APISecret) >= minProductionSecretLen, "LIVEKIT_API_SECRET",
			"must be at least "+strconv.Itoa(minProductionSecretLen)+" characters outside development (test may use the devkey/secret pair)")
	}
	p.check(lk.WSURL != "", "LIVEKIT_WS_URL", "is required outside development")
	if lk.WSURL != "" {
		p.check(validWSURL(lk.WSURL), "LIVEKIT_WS_URL", "must be a ws://, wss://, http:// or https:// URL with a host")
	}
	if lk.APIURL == "" && validWSURL(lk.WSURL) {
		// LiveKit serves its server API on the same host and port as its signalling.
		lk.APIURL = lk.WSURL
		if rest, ok := strings.CutPrefix(lk.WSURL, "wss://"); ok {
			lk.APIURL = "https://" + rest
		} else if rest, ok := strings.CutPrefix(lk.WSURL, "ws://"); ok {
			lk.APIURL = "http://" + rest
		}
	}
	if lk.APIURL != "" {
		p.check(validHTTPURL(lk.APIURL), "LIVEKIT_API_URL", "must be an http:// or https:// URL with a host")
	}
	p.check(e.APITimeoutMS >= 1 && e.APITimeoutMS <= 30000, "LIVEKIT_API_TIMEOUT_MS", "must be from 1 to 30000")
	var err error
	if lk.VerifyKeys, err = parseKeyPairs(e.LiveKitKeys.Reveal(), strictSecrets(c.Env)); err != nil {
		p.add("LIVEKIT_KEYS", err.Error())
	}
	return lk
}

// openness decides whether the service is open, and says what an operator should know of it.
// Development is open unless service keys are set; with neither APP_ENV nor NODE_ENV set, only
// with livekit-server --dev's credentials (real ones mean a deployment that forgot to say
// production). Test is never open but with the --dev pair: real credentials under test are as
// closed as production.
func (e *environment) openness(c *Config) (bool, []string) {
	warnings := c.Warnings
	keys := e.ServiceAPIKeys != ""
	dev := devPair(c.LiveKit)
	switch {
	case keys || c.Env == Production:
		return false, warnings
	case c.EnvUnset && !dev:
		return false, append(warnings, "APP_ENV and NODE_ENV are unset and the LiveKit credentials are not livekit-server --dev's: backend endpoints and privileged grants stay closed, as in production; set APP_ENV=production (or development, to open them)")
	case c.Env == Test && !dev:
		return false, append(warnings, "APP_ENV=test with LiveKit credentials that are not livekit-server --dev's: the service is closed as in production (backend endpoints and privileged grants need SERVICE_API_KEYS)")
	case c.Env == Development && !c.EnvUnset && !dev:
		return true, append(warnings, "APP_ENV=development with real LiveKit credentials: the service is open: /token/agent, /token/verify, /moderation/bans and every grant are open to anyone who can reach it")
	}
	return true, warnings
}

func (e *environment) logLevel(c *Config, p *problems) zerolog.Level {
	name := e.LogLevel
	if name == "" {
		name = "info"
		if c.Env == Development {
			name = "debug"
		}
	}
	switch name {
	case "trace", "debug", "info", "warn", "error", "fatal", "panic", "disabled":
		level, _ := zerolog.ParseLevel(name) // every name above parses
		return level
	}
	p.add("LOG_LEVEL", "must be trace, debug, info, warn, error, fatal, panic or disabled")
	return zerolog.InfoLevel
}

// Algorithms end-user JWTs may be signed with: HMAC with a shared secret, else public keys.
var (
	secretAlgorithms = []string{"HS256", "HS384", "HS512"}
	jwksAlgorithms   = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

func (e *environment) userAuth(c *Config, p *problems) UserAuth {
	u := UserAuth{JWKSURL: e.AuthJWKSURL, JWTSecret: e.AuthJWTSecret, Issuer: e.AuthJWTIssuer, Audience: e.AuthJWTAudience,
		Algorithms: splitList(e.AuthJWTAlgorithms), IdentityClaim: e.AuthIdentityClaim, NameClaim: e.AuthNameClaim, RoomsClaim: e.AuthRoomsClaim}
	if !u.Enabled() {
		return u
	}
	allowed := jwksAlgorithms
	if u.JWTSecret != "" {
		allowed = secretAlgorithms
	}
	if len(u.Algorithms) == 0 {
		u.Algorithms = []string{"RS256", "ES256", "EdDSA"}
		if u.JWTSecret != "" {
			u.Algorithms = []string{"HS256"}
		}
	}
	p.check(u.JWKSURL == "" || u.JWTSecret == "", "AUTH_JWKS_URL", "and AUTH_JWT_SECRET cannot both be set: choose one way to verify user tokens")
	if u.JWKSURL != "" {
		parsed, err := url.Parse(u.JWKSURL)
		p.check(err == nil && parsed.Host != "" && (parsed.Scheme == "https" || parsed.Scheme == "http" && c.Env != Production),
			"AUTH_JWKS_URL", "must be an https:// URL (http:// outside production)")
	}
	if u.JWTSecret != "" && strictSecrets(c.Env) {
		p.check(len(u.JWTSecret) >= minProductionSecretLen, "AUTH_JWT_SECRET",
			"must be at least "+strconv.Itoa(minProductionSecretLen)+" characters outside development")
	}
	if secret := u.JWTSecret; secret != "" {
		// One secret in two roles: whoever holds the user-token key could sign LiveKit tokens
		// or call the backend endpoints.
		p.check(secret != c.LiveKit.APISecret && !slices.Contains(c.ServiceKeys, secret), "AUTH_JWT_SECRET",
			"must differ from LIVEKIT_API_SECRET and from every SERVICE_API_KEYS key")
	}
	p.check(u.Issuer != "", "AUTH_JWT_ISSUER", "is required with end-user authentication")
	p.check(u.Audience != "", "AUTH_JWT_AUDIENCE", "is required with end-user authentication")
	for _, alg := range u.Algorithms {
		if !slices.Contains(allowed, alg) {
			p.add("AUTH_JWT_ALGORITHMS", "must be a list of "+strings.Join(allowed, ", ")+" for this key source")
			break
		}
	}
	p.check(u.IdentityClaim != "", "AUTH_JWT_IDENTITY_CLAIM", "must name a claim")
	return u
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

func validHTTPURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil
}

// validHeaderName accepts an HTTP header name (RFC 9110 token characters).
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

// redis reads REDIS_URL for REDIS_MODE with go-redis's own parser for the mode. go-redis's
// errors quote the URL, password included, so none is passed on.
func (e *environment) redis(p *problems) Redis {
	r := Redis{Mode: e.RedisMode, Prefix: e.RedisKeyPrefix, Timeout: time.Duration(e.RedisTimeoutMS) * time.Millisecond}
	p.check(e.RedisTimeoutMS >= 1 && e.RedisTimeoutMS <= 1000, "REDIS_TIMEOUT_MS", "must be from 1 to 1000")
	p.check(r.Mode == RedisSingle || r.Mode == RedisCluster || r.Mode == RedisSentinel, "REDIS_MODE", "must be single, cluster or sentinel")
	// A { in the prefix would be a hash tag: every key in one cluster slot, one node's load.
	p.check(r.Prefix != "" && len(r.Prefix) <= 64 && !strings.ContainsAny(r.Prefix, "{} \t\r\n"), "REDIS_KEY_PREFIX",
		"must be 1 to 64 characters without spaces, { or }")
	if e.RedisURL == "" {
		p.check(e.RedisCAFile == "", "REDIS_CA_FILE", "needs a rediss:// REDIS_URL")
		return r
	}
	u, err := url.Parse(e.RedisURL.Reveal())
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		p.add("REDIS_URL", "must be a redis:// or rediss:// URL such as redis://user:password@redis:6379/0")
		return r
	}
	r.Host = u.Host
	var tlsConfig *tls.Config
	switch {
	case e.RedisCAFile != "" && u.Scheme != "rediss":
		p.add("REDIS_CA_FILE", "needs a rediss:// REDIS_URL")
	case e.RedisCAFile != "":
		if tlsConfig, err = caConfig(e.RedisCAFile); err != nil {
			p.add("REDIS_CA_FILE", err.Error())
		}
	}
	raw := e.RedisURL.Reveal()
	switch r.Mode {
	case RedisCluster:
		if r.Cluster, err = redis.ParseClusterURL(raw); err == nil && r.Cluster.TLSConfig != nil && tlsConfig != nil {
			r.Cluster.TLSConfig = tlsConfig // no ServerName: each node is checked against its own address
		}
	case RedisSentinel:
		if r.Failover, err = redis.ParseFailoverURL(raw); err == nil {
			if r.Failover.MasterName == "" {
				p.add("REDIS_URL", "needs master_name in sentinel mode, as in redis://sentinel-user:password@sentinel-1:26379?addr=sentinel-2:26379&master_name=mymaster&username=app&password=...")
			}
			if r.Failover.TLSConfig != nil && tlsConfig != nil {
				r.Failover.TLSConfig = tlsConfig // sentinels and data nodes alike, each by its own address
			}
		}
	default:
		if r.Single, err = redis.ParseURL(raw); err == nil && r.Single.TLSConfig != nil && tlsConfig != nil {
			tlsConfig.ServerName = r.Single.TLSConfig.ServerName
			r.Single.TLSConfig = tlsConfig
		}
	}
	if err != nil {
		p.add("REDIS_URL", "is not a valid "+r.Mode+"-mode Redis URL (see the README's Redis section)")
	}
	return r
}

// caConfig is TLS that trusts the CAs of a PEM bundle, as a managed provider hands them out.
func caConfig(file string) (*tls.Config, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, errors.New("the file it names cannot be read")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("the file it names holds no PEM certificate")
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
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

// Outside development a trusted proxy range must be narrow: a proxy's CIDR trusted too widely
// lets every client it covers choose its own address, and so its own rate-limit key and the
// address the logs record. /8 (IPv4) and /24 (IPv6) are wider than any one operator's proxies;
// the ranges together may cover at most four times that (the private ranges 10/8, 172.16/12
// and 192.168/16 together are well inside), so that many narrow ranges cannot add up to all.
const (
	minTrustedIPv4Bits = 8
	minTrustedIPv6Bits = 24
	maxTrustedWidths   = 4
)

func parseProxies(raw string, narrow bool) ([]netip.Prefix, error) {
	var prefixes []netip.Prefix
	var wide []string
	for _, c := range splitList(raw) {
		prefix, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, errors.New("must be a comma-separated list of CIDRs such as 10.0.0.0/8")
		}
		if narrow && tooWide(prefix) {
			wide = append(wide, prefix.String())
		}
		prefixes = append(prefixes, prefix)
	}
	widths := strconv.Itoa(minTrustedIPv4Bits) + " (IPv4) or /" + strconv.Itoa(minTrustedIPv6Bits) + " (IPv6)"
	switch {
	case len(wide) > 0:
		return nil, errors.New(strings.Join(wide, ", ") + ": wider than /" + widths + " outside development, which would let the clients in it choose their own address")
	case narrow && coverage(prefixes, true) > maxTrustedWidths<<(32-minTrustedIPv4Bits):
		return nil, errors.New("together cover more than four /" + strconv.Itoa(minTrustedIPv4Bits) + " of IPv4 outside development")
	case narrow && coverage(prefixes, false) > maxTrustedWidths:
		return nil, errors.New("together cover more than four /" + strconv.Itoa(minTrustedIPv6Bits) + " of IPv6 outside development")
	}
	return prefixes, nil
}

// tooWide is a prefix wider than the minimum; an IPv4-mapped IPv6 prefix (::ffff:0:0/96) counts
// as the IPv4 range it covers.
func tooWide(prefix netip.Prefix) bool {
	bits, v4 := familyBits(prefix)
	if v4 {
		return bits < minTrustedIPv4Bits
	}
	return bits < minTrustedIPv6Bits
}

func familyBits(prefix netip.Prefix) (int, bool) {
	switch {
	case prefix.Addr().Is4In6():
		return max(prefix.Bits()-96, 0), true
	case prefix.Addr().Is4():
		return prefix.Bits(), true
	}
	return prefix.Bits(), false
}

// coverage is how much of one family the prefixes cover without counting a range twice: IPv4 in
// addresses, IPv6 in /24s (a prefix narrower than /24 counts as one, as a part of one).
func coverage(prefixes []netip.Prefix, v4 bool) uint64 {
	var family []netip.Prefix
	for _, p := range prefixes {
		if _, is4 := familyBits(p); is4 == v4 {
			family = append(family, p.Masked())
		}
	}
	slices.SortFunc(family, func(a, b netip.Prefix) int { return a.Bits() - b.Bits() }) // widest first
	var total uint64
	for i, p := range family {
		if slices.ContainsFunc(family[:i], func(q netip.Prefix) bool { return q.Overlaps(p) }) {
			continue // inside a wider one already counted
		}
		bits, _ := familyBits(p)
		if v4 {
			total += 1 << (32 - bits)
		} else {
			total += 1 << max(minTrustedIPv6Bits-bits, 0)
		}
	}
	return total
}

// parseKeyPairs reads livekit-server's "key: secret" list (comma or newline separated).
func parseKeyPairs(raw string, strict bool) (map[string]Secret, error) {
	keys := map[string]Secret{}
	for _, entry := range splitList(strings.ReplaceAll(raw, "\n", ",")) {
		key, secret, ok := strings.Cut(entry, ":")
		key, secret = strings.TrimSpace(key), strings.TrimSpace(secret)
		if !ok || key == "" || secret == "" {
			return nil, errors.New(`each entry must be "key: secret", separated by commas or newlines`)
		}
		if strict && len(secret) < minProductionSecretLen {
			return nil, errors.New("each secret must be at least " + strconv.Itoa(minProductionSecretLen) + " characters outside development")
		}
		keys[key] = Secret(secret)
	}
	return keys, nil
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
