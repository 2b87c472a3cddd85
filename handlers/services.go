package handlers

import (
	"context"
	"sync"

	"github.com/rs/zerolog"

	"github.com/token-service/token-service/authn"
	"github.com/token-service/token-service/config"
	"github.com/token-service/token-service/metrics"
	"github.com/token-service/token-service/ratelimit"
	"github.com/token-service/token-service/token"
)

// Services are what the router serves with.
type Services struct {
	Issuer    *token.Issuer
	Auth      *authn.Authenticator
	Readiness *Readiness
	Metrics   *metrics.Metrics
	RateLimit *ratelimit.Backend
}

// NewServices builds the router's services from the configuration. Background work they start
// (refreshing an identity provider's keys) ends with ctx; Close releases the rest.
func NewServices(ctx context.Context, cfg config.Config, version string, log zerolog.Logger) (Services, error) {
	m := metrics.New(version)
	var outage sync.Mutex // one warning per outage, however many requests hit it
	limits, err := ratelimit.New(cfg.RedisURL.Reveal(), cfg.RateLimitWindow(), ratelimit.Events{
		OnError: func(error) { m.RateLimitBackendError() },
		OnFallback: func(activated bool) {
			outage.Lock()
			defer outage.Unlock()
			if activated {
				m.RateLimitFallback()
				log.Warn().Msg("redis unreachable: counting rate limits in memory on this replica until it is back")
			} else {
				log.Info().Msg("redis is back: rate limits are shared again")
			}
		},
	})
	if err != nil {
		return Services{}, err
	}
	auth, err := authn.New(ctx, authn.Options{
		ServiceKeys: cfg.ServiceKeys(),
		JWKSURL:     cfg.AuthJWKSURL, JWTSecret: cfg.AuthJWTSecret.Reveal(),
		Issuer: cfg.AuthJWTIssuer, Audience: cfg.AuthJWTAudience, Algorithms: cfg.JWTAlgorithms(),
		IdentityClaim: cfg.AuthIdentityClaim, NameClaim: cfg.AuthNameClaim, RoomsClaim: cfg.AuthRoomsClaim,
		OnJWKSError: func(err error) { log.Warn().Err(err).Msg("JWKS refresh failed; keeping the last keys") },
	})
	if err != nil {
		return Services{}, err
	}
	issuer := token.NewIssuer(token.Settings{
		APIKey: cfg.APIKey, APISecret: cfg.APISecret.Reveal(), WSURL: cfg.WSURL,
		DefaultTTL: cfg.DefaultTTL(), MaxTTL: cfg.MaxTTL(),
		Policy:    token.Policy{Production: cfg.Production(), ServiceKeys: len(cfg.ServiceKeys()) > 0, UserAuth: cfg.UserAuth()},
		Recorder:  m,
		OtherKeys: cfg.VerifyOnlyKeys(),
	})
	return Services{Issuer: issuer, Auth: auth, Readiness: &Readiness{}, Metrics: m, RateLimit: limits}, nil
}

// Close releases what the services hold open (Redis connections).
func (s Services) Close() error { return s.RateLimit.Close() }
