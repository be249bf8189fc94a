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

// DiscoveryURL returns the discovery document URL for s: ConfigURL when set,
// else the v2.0 document of AzureTenantID under AzureAuthority (or
// DefaultAuthority).
func DiscoveryURL(s oidc.Settings) string {
	if s.ConfigURL != "" {
		return s.ConfigURL
	}
	authority := strings.TrimRight(s.AzureAuthority, "/")
	if authority == "" {
		authority = DefaultAuthority
	}
	return authority + "/" + s.AzureTenantID + "/v2.0/.well-known/openid-configuration"
}

// IdentifierURI returns the prefix of the API's scopes for s:
// AzureIdentifierURI, or api://{client id}.
func IdentifierURI(s oidc.Settings) string {
	if s.AzureIdentifierURI != "" {
		return strings.TrimRight(s.AzureIdentifierURI, "/")
	}
	return "api://" + s.ClientID
}

// New checks the Entra settings, fills in what Entra needs and builds the
// provider. It fails when REQUIRED_SCOPES names no scope of the API, or a
// scope of another resource, because every login would fail later.
func New(ctx context.Context, s oidc.Settings, client *http.Client) (*Provider, error) {
	identifier := IdentifierURI(s)
	var errs []error
	if s.ConfigURL == "" {
		if !validTenant(s.AzureTenantID) {
			errs = append(errs, errors.New("a tenant is required (the AZURE_TENANT_ID setting): "+
				"a tenant ID, a domain, or one of common, organizations, consumers"))
		}
		if s.AzureAuthority != "" {
			if u, err := url.Parse(s.AzureAuthority); err != nil || u.Scheme != "https" || u.Host == "" ||
				u.RawQuery != "" || u.Fragment != "" || u.User != nil {
				errs = append(errs, errors.New("the authority must be an https URL such as https://login.microsoftonline.us"))
			}
		}
	}
	if u, err := url.Parse(identifier); err != nil || u.Scheme == "" || u.Host == "" {
		errs = append(errs, errors.New("the identifier URI must be an absolute URI such as api://{client id}"))
	}
	required, err := requiredScopes(s.RequiredScopes, identifier)
	errs = append(errs, err)
	if _, ok := s.ExtraTokenParams["resource"]; ok {
		errs = append(errs, errors.New("the extra token parameter resource is refused: Entra's v2.0 endpoints "+
			"take the resource from the scopes and reject it (AADSTS9010010)"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("azure: %w", err)
	}
	s.ConfigURL = DiscoveryURL(s)
	s.RequiredScopes = required
	// Entra rejects resource next to v2.0 scopes (AADSTS9010010); the
	// scopes' prefix already names the API.
	s.ForwardResource = false
	if s.Audience == "" {
		// v2.0 access tokens for an API carry its application (client) id
		// as aud, whatever its identifier URI is.
		s.Audience = s.ClientID
	}
	p, err := oidc.New(ctx, s, client, oidc.WithScopes(scopes{identifier: identifier}), oidc.WithIssuerPolicy(issuers{}))
	if err != nil {
		return nil, fmt.Errorf("azure: %w", err)
	}
	return &Provider{p}, nil
}

// requiredScopes returns REQUIRED_SCOPES in their short forms, and an error
// when they name another resource or no scope of the API.
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
			errs = append(errs, fmt.Errorf("required scope %q belongs to another resource than %s: "+
				"Entra issues a token for one resource per request (AADSTS28000)", sc, identifier))
		default:
			api = true
		}
		out = append(out, short)
	}
	if !api {
		errs = append(errs, fmt.Errorf("REQUIRED_SCOPES must name at least one scope your API exposes (such as mcp.access, "+
			"sent as %s/mcp.access): without one Entra issues a Microsoft Graph token, which only Graph can verify", identifier))
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
