package azure

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/providers/oidc"
)

// Name is the registry name of the Entra ID preset.
const Name = "azure"

// DefaultAuthority is Entra's public cloud. Sovereign clouds have their
// own: https://login.microsoftonline.us, https://login.chinacloudapi.cn.
const DefaultAuthority = "https://login.microsoftonline.com"

// openIDScopes are OpenID Connect's own scopes, which Entra takes without
// a resource prefix.
var openIDScopes = []string{"openid", "profile", "email", "offline_access"}

// Provider is the generic provider configured for Entra ID. Refresh and
// readiness are kept; revocation is a no-op because Entra's discovery
// names no revocation endpoint.
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

// Name returns "azure".
func (p *Provider) Name() string { return Name }

// Config is the Entra ID preset's own settings section. Its fields carry the
// tags the configuration reads (env, yaml, flag, help).
type Config struct {
	// TenantID is the tenant segment of the authority: a tenant ID, a
	// domain, or one of common, organizations and consumers. Required
	// unless the shared CONFIG_URL names the discovery document.
	TenantID string `env:"AZURE_TENANT_ID" yaml:"azure_tenant_id" flag:"azure-tenant-id" help:"Microsoft Entra tenant ID or name (or common, organizations, consumers), for provider azure."`
	// Authority is the authority host URL; DefaultAuthority when empty.
	Authority string `env:"AZURE_AUTHORITY" yaml:"azure_authority" flag:"azure-authority" help:"Microsoft Entra authority host URL for sovereign clouds, for provider azure, defaulting to the public cloud."`
	// IdentifierURI is the API's Application ID URI: the prefix of its
	// scopes, and the audience of its v1.0 access tokens; api://{client
	// id} when empty.
	IdentifierURI string `env:"AZURE_IDENTIFIER_URI" yaml:"azure_identifier_uri" flag:"azure-identifier-uri" help:"Application ID URI that prefixes custom scopes for provider azure, defaulting to api://CLIENT_ID."`
}

// DiscoveryURL returns the discovery document URL: s.ConfigURL when set,
// else the v2.0 document of TenantID under Authority (or
// DefaultAuthority).
func (c Config) DiscoveryURL(s oidc.Settings) string {
	if s.ConfigURL != "" {
		return s.ConfigURL
	}
	authority := strings.TrimRight(c.Authority, "/")
	if authority == "" {
		authority = DefaultAuthority
	}
	return authority + "/" + c.TenantID + "/v2.0/.well-known/openid-configuration"
}

// Identifier returns the API's Application ID URI, the prefix of its
// scopes: c.IdentifierURI, or api://{client id}.
func (c Config) Identifier(s oidc.Settings) string {
	if c.IdentifierURI != "" {
		return strings.TrimRight(c.IdentifierURI, "/")
	}
	return "api://" + s.ClientID
}

// Validate reports every setting that cannot work with Entra, before any
// request: a tenant that is missing or could rewrite the authority URL, an
// authority that is not https, an identifier URI that is not absolute,
// REQUIRED_SCOPES without a scope of the API or with another resource's
// (every login would fail later), an audience given as a URI, and resource
// among the extra token parameters.
func (c Config) Validate(s oidc.Settings) error {
	var errs []error
	tenantProblem := "a tenant ID, a domain name, or one of common, organizations, consumers"
	switch {
	case c.TenantID != "":
		if !validTenant(c.TenantID) {
			errs = append(errs, &oidc.SettingError{Setting: "AZURE_TENANT_ID", Problem: "must be " + tenantProblem})
		}
	case s.ConfigURL == "":
		errs = append(errs, &oidc.SettingError{Setting: "AZURE_TENANT_ID",
			Problem: "is required for provider azure unless CONFIG_URL is set: " + tenantProblem})
	}
	if c.Authority != "" {
		if u, err := url.Parse(c.Authority); err != nil || u.Scheme != "https" || u.Host == "" ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			errs = append(errs, &oidc.SettingError{Setting: "AZURE_AUTHORITY",
				Problem: "must be an https URL such as https://login.microsoftonline.us"})
		}
	}
	identifier := c.Identifier(s)
	if u, err := url.Parse(identifier); c.IdentifierURI != "" && (err != nil || u.Scheme == "" || u.Host == "") {
		errs = append(errs, &oidc.SettingError{Setting: "AZURE_IDENTIFIER_URI",
			Problem: "must be an absolute URI such as api://{client id}, the Application ID URI of the API"})
	}
	if _, err := requiredScopes(s.RequiredScopes, identifier); err != nil {
		errs = append(errs, err)
	}
	if strings.Contains(s.Audience, "://") {
		errs = append(errs, &oidc.SettingError{Setting: "AUDIENCE", Problem: "must be the application (client) ID of the API " +
			"for provider azure, not a URI: v2.0 access tokens name the API by that ID (its Application ID URI goes in AZURE_IDENTIFIER_URI)"})
	}
	if _, ok := s.ExtraTokenParams["resource"]; ok {
		errs = append(errs, &oidc.SettingError{Setting: "EXTRA_TOKEN_PARAMS", Problem: "must not name resource for provider azure: " +
			"Entra's v2.0 endpoints take the resource from the scopes and reject it (AADSTS9010010)"})
	}
	return errors.Join(errs...)
}

// OpenToEveryone names who can sign in when the tenant is one of Entra's
// shared authorities, which accept the accounts of every tenant (common,
// organizations) or every personal Microsoft account (consumers); "" for
// one organisation's tenant. CONFIG_URL, when set, names the tenant in the
// first segment of its path.
func (c Config) OpenToEveryone(s oidc.Settings) string {
	tenant := c.TenantID
	if s.ConfigURL != "" {
		if u, err := url.Parse(s.ConfigURL); err == nil {
			tenant, _, _ = strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
		}
	}
	switch strings.ToLower(tenant) {
	case "common":
		return "anyone with a Microsoft work, school or personal account (the common authority)"
	case "organizations":
		return "anyone with a work or school account of any Microsoft Entra tenant (the organizations authority)"
	case "consumers":
		return "anyone with a personal Microsoft account (the consumers authority)"
	}
	return ""
}

// Open builds the preset (see New).
func (c Config) Open(ctx context.Context, s oidc.Settings, client *http.Client) (ports.IdentityProvider, error) {
	p, err := New(ctx, c, s, client)
	if err != nil {
		return nil, err // a nil interface, not a typed nil inside it
	}
	return p, nil
}

// New validates c and s, fills in what Entra needs and builds the provider.
func New(ctx context.Context, c Config, s oidc.Settings, client *http.Client) (*Provider, error) {
	if err := c.Validate(s); err != nil {
		return nil, fmt.Errorf("azure: %w", err)
	}
	identifier := c.Identifier(s)
	required, _ := requiredScopes(s.RequiredScopes, identifier) // Validate refused every error
	s.ConfigURL = c.DiscoveryURL(s)
	s.RequiredScopes = required
	// Entra rejects resource next to v2.0 scopes (AADSTS9010010); the
	// scopes' prefix already names the API.
	s.ForwardResource = false
	// v2.0 access tokens for an API carry its application (client) id as
	// aud, whatever its identifier URI; v1.0 tokens carry the identifier
	// URI the scopes named.
	audience := s.Audience
	if audience == "" {
		audience = s.ClientID
	}
	shapes := accessTokens{audience: audience, identifier: identifier}
	p, err := oidc.New(ctx, s, client,
		oidc.WithScopes(scopes{identifier: identifier}),
		oidc.WithIssuerPolicy(issuers{}),
		oidc.WithAccessTokenPolicy(shapes.accept))
	if err != nil {
		return nil, fmt.Errorf("azure: %w", err)
	}
	return &Provider{p}, nil
}

// requiredScopes returns REQUIRED_SCOPES in their short forms, and
// *oidc.SettingError values when they name another resource or no scope of
// the API.
func requiredScopes(required []string, identifier string) ([]string, error) {
	var (
		out  []string
		errs []error
		api  bool
	)
	for _, sc := range required {
		short := strings.TrimPrefix(sc, identifier+"/")
		switch {
		case slices.Contains(openIDScopes, short):
		case strings.Contains(short, "://") || strings.Contains(short, "/"):
			errs = append(errs, &oidc.SettingError{Setting: "REQUIRED_SCOPES", Problem: fmt.Sprintf("names %q, which belongs to "+
				"another resource than %s: Entra issues a token for one resource per request (AADSTS28000)", sc, identifier)})
		default:
			api = true
		}
		out = append(out, short)
	}
	if !api {
		errs = append(errs, &oidc.SettingError{Setting: "REQUIRED_SCOPES", Problem: fmt.Sprintf("must name at least one scope "+
			"your API exposes for provider azure (such as mcp.access, sent as %s/mcp.access): without one Entra issues a "+
			"Microsoft Graph token, which only Graph can verify", identifier)})
	}
	return out, errors.Join(errs...)
}

// validTenant accepts what Entra puts in the authority path: a GUID, a
// domain or a well-known name. Anything else could rewrite the URL.
func validTenant(t string) bool {
	if t == "" || strings.HasPrefix(t, ".") || strings.Contains(t, "..") {
		return false
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// scopes prefixes the API's scopes on the way to Entra and strips the
// prefix from what it echoes.
type scopes struct{ identifier string }

// Upstream keeps the OpenID scopes, prefixes bare scopes with the
// identifier URI and drops scopes of any other resource, so that one
// request never names two resources (AADSTS28000).
func (m scopes) Upstream(s []string) []string {
	out := make([]string, 0, len(s))
	for _, sc := range s {
		switch {
		case slices.Contains(openIDScopes, sc), strings.HasPrefix(sc, m.identifier+"/"):
			out = append(out, sc)
		case strings.Contains(sc, "/"):
			// Another resource's scope (a Graph URL, another api://):
			// asking for it too would fail the whole request.
		default:
			out = append(out, m.identifier+"/"+sc)
		}
	}
	return out
}

// Local strips the identifier URI from the API's scopes.
func (m scopes) Local(s string) string { return strings.TrimPrefix(s, m.identifier+"/") }
