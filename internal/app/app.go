// Package app builds, from a validated configuration, every service the router needs: metrics,
// the rate limiter, the authenticator, the grant policy, the bans, dispatch and the issuance
// service that runs them in one pass. run calls it, and so do the handler tests,
// so that both serve exactly the same wiring.
package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	lkauth "github.com/livekit/protocol/auth"

	"github.com/rs/zerolog"

	"github.com/token-service/token-service/authn"
	"github.com/token-service/token-service/config"
	"github.com/token-service/token-service/dispatch"
	"github.com/token-service/token-service/handlers"
	"github.com/token-service/token-service/issuance"
	"github.com/token-service/token-service/livekitapi"
	"github.com/token-service/token-service/logging"
	"github.com/token-service/token-service/metrics"
	"github.com/token-service/token-service/moderation"
	"github.com/token-service/token-service/policy"
	"github.com/token-service/token-service/ratelimit"
	"github.com/token-service/token-service/redisdb"
	"github.com/token-service/token-service/token"
)

// New returns the router's dependencies and a function that stops their background work (bans'
// sync and removals) and releases what they hold open (Redis connections). Refreshing an
// identity provider's keys ends with ctx.
// accessLog is where each request's line goes (buffered in run); log has everything else.
func New(ctx context.Context, cfg config.Config, version string, log, accessLog zerolog.Logger) (handlers.Deps, func() error, error) {
	for _, warning := range cfg.Warnings {
		log.Warn().Msg(warning)
	}
	m := metrics.New(version)
	shared, err := openRedis(ctx, cfg.Redis, log)
	if err != nil {
		return handlers.Deps{}, nil, err
	}
	closeShared := func() error {
		if shared == nil {
			return nil
		}
		return shared.Close()
	}
	limiter := ratelimit.New(ratelimit.Settings{
		Limit: cfg.RateLimit.Max, ServiceLimit: cfg.RateLimit.ServiceMax,
		Window: cfg.RateLimit.Window, IPv6Prefix: cfg.RateLimit.IPv6Prefix,
		Redis: shared, RedisTimeout: cfg.Redis.Timeout,
		OnDecision: m.RateLimitDecision, OnRedisMiss: m.RateLimitBackendError,
		OnFallback: func(active bool) {
			m.RateLimitFallback(active)
			if active {
				log.Warn().Msg("redis missed its latency budget repeatedly: counting rate limits in memory on this replica")
			} else {
				log.Info().Msg("redis answers again: rate limits are shared again")
			}
		},
	})
	serviceKeys := make([]string, len(cfg.ServiceKeys))
	for i, k := range cfg.ServiceKeys {
		serviceKeys[i] = k.Reveal()
	}
	ua := cfg.UserAuth
	auth, err := authn.New(ctx, authn.Settings{
		ServiceKeys: serviceKeys,
		JWKSURL:     ua.JWKSURL, JWTSecret: ua.JWTSecret.Reveal(),
		Issuer: ua.Issuer, Audience: ua.Audience, Algorithms: ua.Algorithms,
		IdentityClaim: ua.IdentityClaim, NameClaim: ua.NameClaim, RoomsClaim: ua.RoomsClaim,
		OnJWKSError: func(err error) { log.Warn().Err(err).Msg("JWKS refresh failed; keeping the last keys") },
	})
	if err != nil {
		_, _ = limiter.Close(), closeShared()
		return handlers.Deps{}, nil, err
	}
	decider, err := policy.New(PolicySettings(cfg))
	if err != nil {
		_, _ = limiter.Close(), closeShared()
		return handlers.Deps{}, nil, fmt.Errorf("%w: POLICY_FILE: %w", config.ErrInvalid, err)
	}
	log.Info().Str("policy", decider.Current().Source).Msg("grant policy loaded")
	if cfg.PolicyFile != "" {
		for _, warning := range decider.Current().Warnings {
			log.Warn().Msg("policy: " + warning)
		}
	}
	var lostLines logging.PerSecond
	bans := moderation.NewStore(shared, m.BansActive, func(n int) {
		m.BansRestored(n)
		if lostLines.Allow() {
			log.Error().Int("bans", n).Msg("Redis had lost bans that were never lifted (evicted, flushed, or lost in a failover): written back from this replica's copy")
		}
	})
	if !bans.Shared() {
		log.Info().Msg("bans are kept in this process's memory: each replica has its own, and a restart forgets them (set REDIS_URL to share them)")
	} else if err := bans.Resync(ctx); err != nil {
		log.Warn().Err(err).Msg("bans could not be read from Redis: this replica knows none until Redis answers")
	} else {
		log.Info().Int("bans", len(bans.List("", ""))).Msg("bans are kept in Redis, shared by every replica; each replica answers from its own copy")
	}
	lk := cfg.LiveKit
	api := livekitapi.New(lk.APIURL, lk.APIKey, lk.APISecret.Reveal(), lk.APITimeout)
	enforcer := moderation.NewEnforcer(api, log, m.BanRemoval)
	var dispatchLocks *dispatch.RedisLocks
	if shared != nil {
		var unsharedLines logging.PerSecond
		// A lock attempt may take longer than a rate-limit count (REDIS_TIMEOUT_MS): missing it
		// means a lock of this replica's own.
		dispatchLocks = dispatch.NewRedisLocks(shared, max(cfg.Redis.Timeout, 250*time.Millisecond), func(err error) {
			m.DispatchLockUnshared()
			if unsharedLines.Allow() {
				log.Warn().Err(err).Msg("redis did not answer for a room's dispatch lock: serialised on this replica only")
			}
		})
	}
	dispatcher := dispatch.New(api, dispatchLocks, log, m.AgentDispatch)
	// Bans are kept current and enforced until the service has drained, not merely until the
	// shutdown signal: requests served during the drain may make bans too.
	background, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var running sync.WaitGroup
	running.Go(func() { bans.Run(background) })
	running.Go(func() { enforcer.Run(background) })
	stop := func() error {
		stopBackground()
		running.Wait()
		return errors.Join(limiter.Close(), closeShared())
	}
	keys := map[string]string{lk.APIKey: lk.APISecret.Reveal()}
	otherKeys := map[string]string{}
	for key, secret := range lk.VerifyKeys {
		keys[key], otherKeys[key] = secret.Reveal(), secret.Reveal()
	}
	service := issuance.New(issuance.Deps{
		Policy:     decider,
		Issuer:     token.NewIssuer(token.Keys{APIKey: lk.APIKey, APISecret: lk.APISecret.Reveal(), Others: otherKeys, WSURL: lk.WSURL}),
		Limits:     token.Limits{MaxTTL: cfg.MaxTTL},
		Bans:       bans,
		Dispatcher: dispatcher,
		Recorder:   m,
	})
	return handlers.Deps{
		Service:     service,
		Moderator:   &moderation.Moderator{Store: bans, Enforcer: enforcer, Log: log, DefaultDuration: cfg.MaxTTL},
		WebhookKeys: lkauth.NewFileBasedKeyProviderFromMap(keys),
		Policy:      decider, Auth: auth, Limiter: limiter, Readiness: &handlers.Readiness{}, Metrics: m, Log: log, AccessLog: accessLog,
		CORSOrigins: cfg.CORSOrigins, TrustedProxies: cfg.TrustedProxies, ClientIPHeader: cfg.ClientIPHeader,
		ServeMetrics: cfg.MetricsAddr() == "",
	}, stop, nil
}

// openRedis opens the one Redis client of the replica, nil without REDIS_URL. A certificate the
// configured CAs do not vouch for stops start-up; Redis not answering does not.
func openRedis(ctx context.Context, r config.Redis, log zerolog.Logger) (*redisdb.Client, error) {
	if !r.Enabled() {
		return nil, nil
	}
	c := redisdb.Open(redisdb.Settings{Mode: r.Mode, Single: r.Single, Cluster: r.Cluster, Failover: r.Failover, Host: r.Host, Prefix: r.Prefix})
	warnings, err := c.Check(ctx)
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("%w: REDIS_URL: %w", config.ErrInvalid, err)
	}
	for _, w := range warnings {
		log.Warn().Msg(w)
	}
	log.Info().Str("mode", r.Mode).Str("host", r.Host).Str("prefix", r.Prefix).Msg("shared state in Redis: rate limits, bans and dispatch locks")
	return c, nil
}

// PolicySettings are what the grant policy needs of the configuration, for run and for the
// policy subcommands alike.
func PolicySettings(cfg config.Config) policy.Settings {
	return policy.Settings{
		File:          cfg.PolicyFile,
		Open:          cfg.Open,
		ServiceKeys:   len(cfg.ServiceKeys) > 0,
		UserAuth:      cfg.UserAuth.Enabled(),
		AllowedAgents: cfg.AllowedAgents,
		DefaultTTL:    cfg.DefaultTTL,
		MaxTTL:        cfg.MaxTTL,
	}
}
