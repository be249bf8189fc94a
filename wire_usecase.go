package oidcproxy

import (
	"fmt"
	"log/slog"

	"github.com/google/wire"

	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/adapters/httpapi"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/domain/usecase"
	"github.com/oidcproxy/oidcproxy/ports"
)

// useCaseSet builds the use cases from the outbound ports and the settings
// mapped from the configuration: the authorization server's (the
// Application) and the operator's (Admin), each as the Observer wraps it.
var useCaseSet = wire.NewSet(
	ProvideSettings,
	ProvideApplication,
	ProvideAdmin,
	wire.Value(CryptoRandom{}),
	wire.Bind(new(ports.Random), new(CryptoRandom)),
)

// ProvideSettings maps the configuration onto the use cases' settings.
func ProvideSettings(cfg config.Config) (usecase.Settings, error) {
	patterns, err := cfg.RedirectPatterns()
	if err != nil {
		return usecase.Settings{}, err
	}
	resource, err := domain.CanonicalResource(cfg.Resource())
	if err != nil {
		return usecase.Settings{}, fmt.Errorf("resource %q: %w", cfg.Resource(), err)
	}
	return usecase.Settings{
		Issuer:            cfg.Issuer(),
		Resource:          resource,
		SupportedScopes:   cfg.SupportedScopes(),
		RequiredScopes:    cfg.RequiredScopes,
		AccessTokenTTL:    cfg.AccessTokenTTL,
		RefreshTokenTTL:   cfg.RefreshTokenTTL,
		RefreshReuseGrace: cfg.RefreshReuseGrace,
		Consent:           cfg.Consent,
		RedirectPatterns:  patterns,
		ForwardResource:   cfg.ForwardResource,

		ClientIDURLAllowIPLiteral: cfg.CIMDAllowPrivateNetwork,

		IntrospectionSecret: cfg.IntrospectionSecret,

		MaxClients:      cfg.MaxClients,
		UnusedClientTTL: cfg.UnusedClientTTL,

		TokenEndpoint:       httpapi.TokenEndpoint(cfg.BaseURL),
		TrustedIDJAGIssuers: cfg.TrustedIDJAGIssuers,
		IDJAGClients:        cfg.IDJAGClients,
	}, nil
}

// ProvideApplication builds the authorization server's use cases, with
// private_key_jwt on (verifier checks the assertions, clients' jwks_uri
// fetched by jwks) and the jwt-bearer grant when its issuers are
// configured.
func ProvideApplication(store ports.Store, provider ports.IdentityProvider, issuer ports.TokenIssuer,
	sealer ports.Sealer, clock ports.Clock, random ports.Random, settings usecase.Settings, logger *slog.Logger,
	obs Observer, metadata ports.MetadataFetcher, policies ports.PolicySource,
	verifier ports.AssertionVerifier, jwks ports.JWKSFetcher, issuerKeys ports.IssuerKeys,
) (ports.Application, error) {
	opts := []usecase.Option{usecase.WithClientAssertions(verifier, jwks)}
	if issuerKeys != nil {
		opts = append(opts, usecase.WithIDJAG(issuerKeys))
	}
	app, err := usecase.NewApplication(store, provider, issuer, sealer, clock, random, metadata, policies, logger, settings, opts...)
	if err != nil {
		return ports.Application{}, err
	}
	return obs.Application(app), nil
}

// ProvideAdmin builds the operator's use cases (clients and grants): the
// admin listener's, and those the clients and grants commands run when no
// server holds the store.
func ProvideAdmin(store ports.Store, keys ports.KeySetValidator, clock ports.Clock, random ports.Random,
	settings usecase.Settings, obs Observer,
) (ports.Admin, error) {
	admin, err := usecase.NewAdmin(store, keys, clock, random, settings.SupportedScopes)
	if err != nil {
		return ports.Admin{}, err
	}
	return obs.Admin(admin), nil
}
