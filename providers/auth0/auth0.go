// Package auth0 is the Auth0 preset of the generic OpenID Connect provider.
//
// Auth0 needs three things a plain OpenID Connect client does not give it:
//
//   - an audience (the identifier of an API defined in the Auth0 dashboard)
//     on the authorization request, or it issues an opaque access token
//     good only for its /userinfo endpoint; the preset requires the shared
//     Settings.Audience, sends it on the authorization and token requests
//     and verifies the JWT access token against Auth0's JWKS with it;
//   - offline_access, or it issues no refresh token; the preset always asks
//     for it (Auth0 ignores it for APIs without "Allow Offline Access");
//   - an issuer with a trailing slash ("https://tenant.us.auth0.com/"),
//     which the generic provider accepts when discovery names it so.
//
// Discovery is https://{Config.Domain}/.well-known/openid-configuration, for
// tenant and custom domains alike, unless Settings.ConfigURL overrides it.
package auth0

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"

	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/providers/oidc"
)

// Name is the registry name of the Auth0 preset.
const Name = "auth0"

// audienceParam is Auth0's (non-standard) authorization and token request
// parameter naming the API the access token is for.
const audienceParam = "audience"

// Provider is the generic provider configured for Auth0. Every capability
// of oidc.Provider (refresh, revocation, readiness) is kept.
type Provider struct {
	*oidc.Provider
}

// Compile-time checks that the preset keeps every capability.
var (
	_ ports.IdentityProvider = (*Provider)(nil)
	_ ports.Refresher        = (*Provider)(nil)
	_ ports.Revoker          = (*Provider)(nil)
	_ ports.ReadinessChecker = (*Provider)(nil)
)

// Name returns "auth0".
func (p *Provider) Name() string { return Name }

// Config is the Auth0 preset's own settings section. Its fields carry the
// tags the configuration reads (env, yaml, flag, help).
type Config struct {
	// Domain is the tenant or custom domain; discovery is read from it
	// unless the shared CONFIG_URL overrides it.
	Domain string `env:"AUTH0_DOMAIN" yaml:"auth0_domain" flag:"auth0-domain" help:"Auth0 tenant domain such as example.us.auth0.com, for provider auth0."`
}

// DiscoveryURL returns the discovery document URL: s.ConfigURL when set,
// else the one under Domain.
func (c Config) DiscoveryURL(s oidc.Settings) string {
	if s.ConfigURL != "" {
		return s.ConfigURL
	}
	return (&url.URL{Scheme: "https", Host: c.Domain, Path: "/.well-known/openid-configuration"}).String()
}

// Validate reports every setting that cannot work with Auth0, before any
// request. An audience is required: without one Auth0 issues opaque access
// tokens, and every login would fail later, less clearly.
func (c Config) Validate(s oidc.Settings) error {
	var errs []error
	if s.Audience == "" {
		errs = append(errs, &oidc.SettingError{Setting: "AUDIENCE", Problem: "is required for provider auth0: set it to the identifier " +
			"of your API in the Auth0 dashboard (Applications > APIs); without it Auth0 issues opaque access tokens that cannot be verified"})
	}
	switch {
	case c.Domain != "":
		if u, err := url.Parse("https://" + c.Domain); err != nil || u.Host != c.Domain || u.Hostname() == "" ||
			u.Path != "" || u.User != nil {
			errs = append(errs, &oidc.SettingError{Setting: "AUTH0_DOMAIN",
				Problem: "must be a bare host name such as example.us.auth0.com, without scheme or path"})
		}
	case s.ConfigURL == "":
		errs = append(errs, &oidc.SettingError{Setting: "AUTH0_DOMAIN",
			Problem: "is required for provider auth0 unless CONFIG_URL is set: a domain such as example.us.auth0.com"})
	}
	for _, extra := range []struct {
		setting string
		params  map[string]string
	}{{"EXTRA_AUTHORIZE_PARAMS", s.ExtraAuthorizeParams}, {"EXTRA_TOKEN_PARAMS", s.ExtraTokenParams}} {
		if v, ok := extra.params[audienceParam]; ok && s.Audience != "" && v != s.Audience {
			errs = append(errs, &oidc.SettingError{Setting: extra.setting,
				Problem: "sets audience to another value than AUDIENCE; set the audience once, in AUDIENCE"})
		}
	}
	return errors.Join(errs...)
}

// Open builds the preset (see New).
func (c Config) Open(ctx context.Context, s oidc.Settings, client *http.Client) (ports.IdentityProvider, error) {
	p, err := New(ctx, c, s, client)
	if err != nil {
		return nil, err // a nil interface, not a typed nil inside it
	}
	return p, nil
}

// New validates c and s, fills in what Auth0 needs and builds the provider.
func New(ctx context.Context, c Config, s oidc.Settings, client *http.Client) (*Provider, error) {
	if err := c.Validate(s); err != nil {
		return nil, fmt.Errorf("auth0: %w", err)
	}
	s.ConfigURL = c.DiscoveryURL(s)
	s.ExtraAuthorizeParams = with(s.ExtraAuthorizeParams, audienceParam, s.Audience)
	s.ExtraTokenParams = with(s.ExtraTokenParams, audienceParam, s.Audience)
	p, err := oidc.New(ctx, s, client, oidc.WithScopes(scopes{}))
	if err != nil {
		return nil, fmt.Errorf("auth0: %w", err)
	}
	return &Provider{p}, nil
}

// with returns a copy of params with k set to v (the caller's map is the
// operator's configuration and stays untouched).
func with(params map[string]string, k, v string) map[string]string {
	out := maps.Clone(params)
	if out == nil {
		out = make(map[string]string, 1)
	}
	out[k] = v
	return out
}

// scopes always asks for offline_access. The generic provider asks for it
// only when discovery lists it; Auth0 documents offline_access as the one
// way to get a refresh token, so the preset does not depend on the list.
type scopes struct{}

// Upstream adds offline_access after openid.
func (scopes) Upstream(s []string) []string {
	if slices.Contains(s, "offline_access") {
		return s
	}
	return slices.Insert(s, min(1, len(s)), "offline_access")
}

// Local keeps Auth0's scopes as they are: it echoes them as requested.
func (scopes) Local(s string) string { return s }
