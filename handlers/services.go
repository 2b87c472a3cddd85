package handlers

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/token-service/token-service/authn"
	"github.com/token-service/token-service/config"
	"github.com/token-service/token-service/token"
)

// Services are what the router serves with.
type Services struct {
	Issuer    *token.Issuer
	Auth      *authn.Authenticator
	Readiness *Readiness
}

// NewServices builds the router's services from the configuration. Background work they start
// (refreshing an identity provider's keys) ends with ctx.
func NewServices(ctx context.Context, cfg config.Config, log zerolog.Logger) (Services, error) {
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
		Policy: token.Policy{Production: cfg.Production(), ServiceKeys: len(cfg.ServiceKeys()) > 0, UserAuth: cfg.UserAuth()},
	})
	return Services{Issuer: issuer, Auth: auth, Readiness: &Readiness{}}, nil
}
