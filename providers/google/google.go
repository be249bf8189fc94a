// Package google is the Google preset of the generic OpenID Connect
// provider.
//
// What Google does differently, and what the preset does about it:
//
//   - Refresh tokens come only with access_type=offline, and on a repeated
//     sign-in only with prompt=consent; both are sent by default and each
//     can be overridden through Settings.ExtraAuthorizeParams.
//   - offline_access is not a Google scope (discovery does not list it and
//     the authorization endpoint refuses it with invalid_scope); it is never
//     sent, even when an MCP client asks for it.
//   - Access tokens are opaque: they are never parsed, the identity comes
//     from the verified ID token, and required scopes are checked against
//     the token response's scope. An audience or access token algorithm
//     cannot be checked, so New refuses them.
//   - Token responses spell email and profile as
//     https://www.googleapis.com/auth/userinfo.email and ...userinfo.profile;
//     both forms are mapped to email and profile, in both directions.
//   - Config.HostedDomain restricts sign-in to one Google Workspace
//     domain: hd is sent as a hint, and the verified ID token's hd claim
//     must equal it (the hint alone can be edited by the user).
//
// Discovery is https://accounts.google.com/.well-known/openid-configuration
// unless Settings.ConfigURL overrides it. (Google's ID tokens sometimes name
// the issuer "accounts.google.com" without a scheme; go-oidc accepts that
// for this issuer only.)
package google

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"strings"

	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/providers/oidc"
)

// Name is the registry name of the Google preset.
const Name = "google"

// DiscoveryURL is Google's discovery document, used unless
// Settings.ConfigURL is set.
const DiscoveryURL = "https://accounts.google.com/.well-known/openid-configuration"

// The long forms Google uses for the email and profile scopes.
const (
	EmailScope   = "https://www.googleapis.com/auth/userinfo.email"
	ProfileScope = "https://www.googleapis.com/auth/userinfo.profile"
)

// defaultAuthorizeParams make Google issue a refresh token on every
// sign-in; the operator's ExtraAuthorizeParams win.
var defaultAuthorizeParams = map[string]string{"access_type": "offline", "prompt": "consent"}

// Provider is the generic provider configured for Google. Every capability
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

// Name returns "google".
func (p *Provider) Name() string { return Name }

// Config is the Google preset's own settings section. Its fields carry the
// tags the configuration reads (env, yaml, flag, help).
type Config struct {
	// HostedDomain, when set, restricts sign-in to one Google Workspace
	// domain (see the package documentation).
	HostedDomain string `env:"GOOGLE_HOSTED_DOMAIN" yaml:"google_hosted_domain" flag:"google-hosted-domain" help:"Google Workspace domain whose users alone may sign in (the verified hd claim), for provider google."`
}

// Validate reports a hosted domain that cannot be one, before any request.
func (c Config) Validate(oidc.Settings) error {
	if hd := c.HostedDomain; hd != "" && (strings.ContainsAny(hd, " /@:") || strings.Trim(hd, ".") != hd) {
		return &oidc.SettingError{Setting: "GOOGLE_HOSTED_DOMAIN", Problem: "must be a domain name such as example.com"}
	}
	return nil
}

// OpenToEveryone names who can sign in at Google when no hosted domain
// restricts it: anyone with a Google account; "" with HostedDomain set.
func (c Config) OpenToEveryone(oidc.Settings) string {
	if c.HostedDomain != "" {
		return ""
	}
	return "anyone with a Google account"
}

// Open builds the preset (see New).
func (c Config) Open(ctx context.Context, s oidc.Settings, client *http.Client) (ports.IdentityProvider, error) {
	p, err := New(ctx, c, s, client)
	if err != nil {
		return nil, err // a nil interface, not a typed nil inside it
	}
	return p, nil
}

// New validates c, fills in Google's discovery URL and parameters and
// builds the provider.
func New(ctx context.Context, c Config, s oidc.Settings, client *http.Client) (*Provider, error) {
	if err := c.Validate(s); err != nil {
		return nil, fmt.Errorf("google: %w", err)
	}
	if s.ConfigURL == "" {
		s.ConfigURL = DiscoveryURL
	}
	params := maps.Clone(defaultAuthorizeParams)
	maps.Copy(params, s.ExtraAuthorizeParams)
	opts := []oidc.Option{oidc.WithScopes(scopes{}), oidc.WithOpaqueAccessTokens()}
	if hd := c.HostedDomain; hd != "" {
		if _, set := params["hd"]; !set {
			params["hd"] = hd
		}
		opts = append(opts, oidc.WithIDTokenCheck(hostedDomain(hd)))
	}
	s.ExtraAuthorizeParams = params
	required := make([]string, 0, len(s.RequiredScopes))
	for _, sc := range s.RequiredScopes {
		required = append(required, scopes{}.Local(sc))
	}
	s.RequiredScopes = required
	p, err := oidc.New(ctx, s, client, opts...)
	if err != nil {
		return nil, fmt.Errorf("google: %w", err)
	}
	return &Provider{p}, nil
}

// hostedDomain refuses ID tokens whose verified hd claim is not domain:
// consumer accounts have no hd, and other Workspace domains another one.
func hostedDomain(domain string) func(map[string]any) error {
	return func(claims map[string]any) error {
		hd, _ := claims["hd"].(string)
		if !strings.EqualFold(hd, domain) {
			return fmt.Errorf("hd claim %q is not the required hosted domain", hd)
		}
		return nil
	}
}

// scopes maps between Google's scope spellings and the short ones.
type scopes struct{}

// Upstream drops offline_access (Google refuses it) and sends the short
// forms of email and profile.
func (scopes) Upstream(s []string) []string {
	out := s[:0]
	for _, sc := range s {
		if sc != "offline_access" {
			out = append(out, scopes{}.Local(sc))
		}
	}
	return out
}

// Local turns the userinfo URLs Google echoes into email and profile.
func (scopes) Local(s string) string {
	switch s {
	case EmailScope:
		return "email"
	case ProfileScope:
		return "profile"
	}
	return s
}
