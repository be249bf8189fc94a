package oidcproxy

import (
	"context"
	"errors"
	"net/http"

	"github.com/google/wire"

	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/providers"
	"github.com/oidcproxy/oidcproxy/providers/oidc"
)

// The upstream identity provider comes from the registry in providers,
// which maps a name to its preset; providers never import the
// configuration adapter, so the mapping of the configuration onto a
// provider's settings, and of a provider's setting errors onto the
// configuration's, is here.

// identitySet opens the configured upstream identity provider.
var identitySet = wire.NewSet(ProvideIdentityProvider)

// ProviderSettings maps the configuration onto the settings every provider
// shares; a provider's own settings are its section,
// cfg.ProviderSection().
func ProviderSettings(cfg config.Config) oidc.Settings {
	return oidc.Settings{
		ConfigURL:               cfg.ConfigURL,
		ClientID:                cfg.ClientID,
		ClientSecret:            cfg.ClientSecret,
		RedirectURL:             cfg.RedirectURL(),
		Strict:                  cfg.Strict,
		Audience:                cfg.Audience,
		Timeout:                 cfg.Timeout(),
		Algorithm:               cfg.Algorithm,
		RequiredScopes:          cfg.RequiredScopes,
		TokenEndpointAuthMethod: string(cfg.TokenEndpointAuthMethod),
		ExtraAuthorizeParams:    cfg.ExtraAuthorizeParams,
		ExtraTokenParams:        cfg.ExtraTokenParams,
		ForwardResource:         cfg.ForwardResource,
		UserinfoClaims:          cfg.UserinfoClaims,
	}
}

// ProviderSections hands the configuration loader every registered
// provider's own settings section, so that it fills them from flags,
// environment and file like every other setting without importing the
// providers.
func ProviderSections() config.Sections {
	out := make(config.Sections, len(providers.Registry))
	for name, newConfig := range providers.Registry {
		out[name] = func() any { return newConfig() }
	}
	return out
}

// ValidateProvider checks the selected provider's own section together
// with the settings every provider shares, reporting each problem under
// its setting (config.ValidateOptions.Provider).
func ValidateProvider(cfg config.Config) error {
	section, err := providerSection(cfg)
	if err != nil {
		return err
	}
	var errs []error
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *oidc.SettingError:
			errs = append(errs, &config.SettingError{Setting: config.EnvPrefix + e.Setting, Problem: e.Problem})
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		default:
			errs = append(errs, err) // the configuration reports it under PROVIDER
		}
	}
	walk(section.Validate(ProviderSettings(cfg)))
	return errors.Join(errs...)
}

// providerSection returns the selected provider's section as Load filled
// it, or a new, empty one when the configuration was built without
// sections.
func providerSection(cfg config.Config) (providers.Config, error) {
	if section, ok := cfg.ProviderSection().(providers.Config); ok {
		return section, nil
	}
	return providers.NewConfig(cfg.Provider)
}

// ProvideIdentityProvider builds the configured upstream provider; it
// fetches discovery now, so a broken upstream fails the start. It keeps
// the claims the access policy in force reads groups from.
func ProvideIdentityProvider(ctx context.Context, cfg config.Config, client *http.Client, policies ports.PolicySource) (ports.IdentityProvider, error) {
	section, err := providerSection(cfg)
	if err != nil {
		return nil, err
	}
	s := ProviderSettings(cfg)
	s.Policy = policies
	return providers.Open(ctx, cfg.Provider, section, s, client)
}
