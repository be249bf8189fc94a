package azure_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/providers"
	"github.com/oidcproxy/oidcproxy/providers/azure"
	"github.com/oidcproxy/oidcproxy/providers/oidc"
	"github.com/oidcproxy/oidcproxy/test/idp"
	"github.com/oidcproxy/oidcproxy/test/providertest"
)

// otherTenant is a tenant the user does not belong to.
const otherTenant = "0a1b2c3d-0000-4000-8000-00000000beef"

func TestAzurePassesTheProviderSuite(t *testing.T) {
	t.Parallel()
	for _, tenant := range []string{"common", "organizations", idp.DefaultTenantID, "contoso.example"} {
		// accessTokenAcceptedVersion null (v1.0 tokens) and 2 (v2.0 tokens).
		for _, version := range []int{0, 2} {
			t.Run(fmt.Sprintf("tenant %s, access token version %d", tenant, version), func(t *testing.T) {
				t.Parallel()
				providertest.Run(t, providertest.Case{
					Name: azure.Name,
					Upstream: func(t testing.TB, o idp.FaultyOptions) *idp.Faulty {
						return idp.NewAzure(t, idp.AzureOptions{FaultyOptions: o, Tenant: tenant, AccessTokenVersion: version})
					},
					Section:      func(c providers.Config, _ *idp.Faulty) { c.(*azure.Config).TenantID = tenant },
					Settings:     func(s *oidc.Settings, _ *idp.Faulty) { s.RequiredScopes = []string{"mcp.read"} },
					Scopes:       []string{"openid", "profile", "email", "offline_access", "mcp.read"},
					GrantedScope: "mcp.read",
					Claims:       map[string]any{"tid": idp.DefaultTenantID},
				})
			})
		}
	}
}

// common is the section of a multi-tenant app registration.
var common = azure.Config{TenantID: "common"}

// settings points the preset at an Entra emulation, asking for mcp.read.
func settings(up *idp.Faulty) oidc.Settings {
	s := providertest.Settings(up)
	s.RequiredScopes = []string{"mcp.read"}
	return s
}

func newProvider(t *testing.T, up *idp.Faulty, section azure.Config, edit ...func(*oidc.Settings)) *azure.Provider {
	t.Helper()
	s := settings(up)
	for _, e := range edit {
		e(&s)
	}
	p, err := azure.New(t.Context(), section, s, providertest.NewCountingClient(t).Client)
	require.NoError(t, err)
	return p
}

func TestCustomScopesArePrefixedAndThePrefixComesOffOnTheWayBack(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, identifierURI, prefix string
	}{
		{"the default identifier URI", "", "api://" + idp.DefaultClientID + "/"},
		{"a configured identifier URI", "https://mcp.example.com/api", "https://mcp.example.com/api/"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := idp.NewAzure(t, idp.AzureOptions{IdentifierURI: tc.identifierURI})
			p := newProvider(t, up, azure.Config{TenantID: "common", IdentifierURI: tc.identifierURI})

			_, tokens, err := providertest.Login(t, p, up, "profile", "email", "mcp.write")

			require.NoError(t, err, "unprefixed, Entra would issue a Graph token that cannot be verified")
			require.Equal(t, "openid offline_access "+tc.prefix+"mcp.read profile email "+tc.prefix+"mcp.write",
				up.LastAuthorize().Get("scope"), "OpenID scopes are never prefixed")
			require.Equal(t, "mcp.read mcp.write", tokens.Scope, "Entra echoes "+tc.prefix+"mcp.read; the client knows mcp.read")
		})
	}
}

func TestScopesAlreadyCarryingThePrefixAreSentOnce(t *testing.T) {
	t.Parallel()
	up := idp.NewAzure(t, idp.AzureOptions{})
	prefixed := "api://" + idp.DefaultClientID + "/mcp.read"
	p := newProvider(t, up, common, func(s *oidc.Settings) { s.RequiredScopes = []string{prefixed} })

	_, tokens, err := providertest.Login(t, p, up, "mcp.read", prefixed)

	require.NoError(t, err)
	require.Equal(t, "openid offline_access "+prefixed, up.LastAuthorize().Get("scope"))
	require.Equal(t, "mcp.read", tokens.Scope)
}

func TestAnotherResourcesScopesAreNeverSentWithTheAPIs(t *testing.T) {
	t.Parallel()
	// One request, one resource (AADSTS28000): a client asking for a
	// Graph scope next to the API's gets the API's alone.
	up := idp.NewAzure(t, idp.AzureOptions{})
	p := newProvider(t, up, common)

	_, _, err := providertest.Login(t, p, up, idp.GraphResource+"/User.Read", "api://another-app/files.read", "mcp.read")

	require.NoError(t, err)
	scope := up.LastAuthorize().Get("scope")
	require.NotContains(t, scope, "graph.microsoft.com")
	require.NotContains(t, scope, "another-app")
}

func TestTheResourceParameterIsNeverForwarded(t *testing.T) {
	t.Parallel()
	up := idp.NewAzure(t, idp.AzureOptions{})
	p := newProvider(t, up, common, func(s *oidc.Settings) { s.ForwardResource = true })
	f := providertest.NewFlow()
	req := f.Request()
	req.Resource = "https://mcp.example.com/mcp"

	u, err := url.Parse(p.AuthCodeURL(req))

	require.NoError(t, err)
	require.False(t, u.Query().Has("resource"), "Entra refuses resource next to v2.0 scopes (AADSTS9010010)")
	cb, err := up.Login(t.Context(), providertest.Browser(t), u.String())
	require.NoError(t, err)
	require.NotEmpty(t, cb.Query().Get("code"), cb.RawQuery)
}

func TestRequiredScopesMustNameOneScopeOfTheAPIAndNoOtherResource(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		required []string
		want     string
	}{
		{"none", nil, "REQUIRED_SCOPES must name at least one scope your API exposes"},
		{"OpenID scopes only", []string{"openid", "email"}, "REQUIRED_SCOPES must name at least one scope your API exposes"},
		{"a Graph scope", []string{"mcp.read", idp.GraphResource + "/User.Read"}, "REQUIRED_SCOPES names \"" + idp.GraphResource + "/User.Read\", which belongs to another resource"},
		{"another API's scope", []string{"mcp.read", "api://another-app/files.read"}, "which belongs to another resource"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := oidc.Settings{ClientID: "c", ClientSecret: "s", RedirectURL: providertest.RedirectURL, RequiredScopes: tc.required}
			got, err := providertest.FirstRequest(t, func(c *http.Client) error {
				_, err := azure.New(t.Context(), common, s, c)
				return err
			})
			require.ErrorContains(t, err, "azure: ")
			require.ErrorContains(t, err, tc.want)
			require.Empty(t, got, "refused before any request")
		})
	}
}

func TestAMultiTenantIssuerIsFilledWithTheTokensOwnTenant(t *testing.T) {
	t.Parallel()
	up := idp.NewAzure(t, idp.AzureOptions{})
	require.Contains(t, up.Issuer, "{tenantid}")
	p := newProvider(t, up, common)
	issuerOf := func(tenant string) string { return strings.Replace(up.Issuer, "{tenantid}", tenant, 1) }
	cases := []struct {
		name   string
		claims map[string]any
		ok     bool
	}{
		{"the user's tenant", nil, true},
		{"another tenant, consistently", map[string]any{"iss": issuerOf(otherTenant), "tid": otherTenant}, true},
		{"iss of another tenant than tid", map[string]any{"iss": issuerOf(otherTenant)}, false},
		{"no tid", map[string]any{"tid": nil}, false},
		{"tid that is not a GUID", map[string]any{"iss": issuerOf("evil.example"), "tid": "evil.example"}, false},
		{"the template itself", map[string]any{"iss": up.Issuer}, false},
		{"another authority", map[string]any{"iss": "https://login.evil.example/" + idp.DefaultTenantID + "/v2.0"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := providertest.NewFlow()
			cb := providertest.Code(t, p, up, f, "mcp.read")
			up.Set(idp.Faults{IDTokenClaims: tc.claims})
			defer up.Set(idp.Faults{})

			identity, _, err := p.Exchange(t.Context(), f.Exchange(cb))

			if !tc.ok {
				providertest.RequireCode(t, err, domain.CodeAccessDenied)
				return
			}
			require.NoError(t, err)
			require.Equal(t, identity.Claims["tid"], strings.TrimSuffix(strings.TrimPrefix(identity.Issuer, up.URL+"/"), "/v2.0"))
		})
	}
}

func TestASingleTenantNeverAcceptsAnotherTenant(t *testing.T) {
	t.Parallel()
	up := idp.NewAzure(t, idp.AzureOptions{Tenant: idp.DefaultTenantID})
	p := newProvider(t, up, azure.Config{TenantID: idp.DefaultTenantID})
	f := providertest.NewFlow()
	cb := providertest.Code(t, p, up, f)
	up.Set(idp.Faults{IDTokenClaims: map[string]any{
		"iss": up.URL + "/" + otherTenant + "/v2.0", "tid": otherTenant,
	}})

	_, _, err := p.Exchange(t.Context(), f.Exchange(cb))

	providertest.RequireCode(t, err, domain.CodeAccessDenied)
}

func TestATenantConfiguredByGUIDRefusesAMultiTenantDiscoveryDocument(t *testing.T) {
	t.Parallel()
	up := idp.NewAzure(t, idp.AzureOptions{Tenant: idp.DefaultTenantID})
	up.Set(idp.Faults{DiscoveryIssuer: up.URL + "/{tenantid}/v2.0"})
	_, err := azure.New(t.Context(), azure.Config{TenantID: idp.DefaultTenantID}, settings(up), providertest.NewCountingClient(t).Client)

	require.ErrorContains(t, err, "did not match the issuer")
}

func TestTheResponseIssuerMustBeTheIssuerOfTheIDToken(t *testing.T) {
	t.Parallel()
	up := idp.NewAzure(t, idp.AzureOptions{})
	up.Set(idp.Faults{AuthorizeIssuer: true})
	p := newProvider(t, up, common)

	f := providertest.NewFlow()
	cb := providertest.Code(t, p, up, f)
	require.Equal(t, up.TokenIssuer, cb.Query().Get("iss"))
	_, _, err := p.Exchange(t.Context(), f.Exchange(cb))
	require.NoError(t, err, "the tenant's issuer, not the template, comes back in iss")

	f = providertest.NewFlow()
	req := f.Exchange(providertest.Code(t, p, up, f))
	req.Issuer = up.URL + "/" + otherTenant + "/v2.0"
	_, _, err = p.Exchange(t.Context(), req)
	providertest.RequireCode(t, err, domain.CodeAccessDenied)

	f = providertest.NewFlow()
	req = f.Exchange(providertest.Code(t, p, up, f))
	req.Issuer = up.Issuer
	_, _, err = p.Exchange(t.Context(), req)
	providertest.RequireCode(t, err, domain.CodeAccessDenied)
}

func TestDiscoveryIsBuiltFromTheAuthorityAndTheTenant(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, tenant, authority, configURL, want string
	}{
		{"public cloud", "common", "", "", "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration"},
		{"a tenant GUID", idp.DefaultTenantID, "", "",
			"https://login.microsoftonline.com/" + idp.DefaultTenantID + "/v2.0/.well-known/openid-configuration"},
		{"a sovereign cloud", "organizations", "https://login.microsoftonline.us/", "",
			"https://login.microsoftonline.us/organizations/v2.0/.well-known/openid-configuration"},
		{"a config URL override", "consumers", "", "http://127.0.0.1:9/consumers/v2.0/.well-known/openid-configuration",
			"http://127.0.0.1:9/consumers/v2.0/.well-known/openid-configuration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			section := azure.Config{TenantID: tc.tenant, Authority: tc.authority}
			s := oidc.Settings{ConfigURL: tc.configURL, ClientID: "c", ClientSecret: "s",
				RedirectURL: providertest.RedirectURL, RequiredScopes: []string{"mcp.read"}}
			require.Equal(t, tc.want, section.DiscoveryURL(s))

			got, err := providertest.FirstRequest(t, func(c *http.Client) error {
				_, err := azure.New(t.Context(), section, s, c)
				return err
			})

			require.Equal(t, tc.want, got)
			require.ErrorContains(t, err, "azure: oidc: discovery at "+tc.want)
		})
	}
}

func TestNewRefusesSettingsThatCannotWork(t *testing.T) {
	t.Parallel()
	base := oidc.Settings{ClientID: "c", ClientSecret: "s", RedirectURL: providertest.RedirectURL, RequiredScopes: []string{"mcp.read"}}
	cases := []struct {
		name             string
		edit             func(*azure.Config, *oidc.Settings)
		setting, problem string
	}{
		{"no tenant", func(c *azure.Config, _ *oidc.Settings) { c.TenantID = "" },
			"AZURE_TENANT_ID", "is required for provider azure unless CONFIG_URL is set"},
		{"a tenant that rewrites the URL", func(c *azure.Config, _ *oidc.Settings) { c.TenantID = "common/../evil" },
			"AZURE_TENANT_ID", "must be a tenant ID, a domain name, or one of common, organizations, consumers"},
		{"an http authority", func(c *azure.Config, _ *oidc.Settings) { c.Authority = "http://login.example" },
			"AZURE_AUTHORITY", "must be an https URL"},
		{"an authority without a scheme", func(c *azure.Config, _ *oidc.Settings) { c.Authority = "login.microsoftonline.us" },
			"AZURE_AUTHORITY", "must be an https URL"},
		{"a relative identifier URI", func(c *azure.Config, _ *oidc.Settings) { c.IdentifierURI = "mcp" },
			"AZURE_IDENTIFIER_URI", "must be an absolute URI"},
		{"no scope of the API", func(_ *azure.Config, s *oidc.Settings) { s.RequiredScopes = nil },
			"REQUIRED_SCOPES", "must name at least one scope your API exposes"},
		{"resource in the extra token parameters", func(_ *azure.Config, s *oidc.Settings) {
			s.ExtraTokenParams = map[string]string{"resource": "https://mcp.example.com"}
		}, "EXTRA_TOKEN_PARAMS", "AADSTS9010010"},
		{"the Application ID URI as the audience", func(_ *azure.Config, s *oidc.Settings) { s.Audience = "api://c" },
			"AUDIENCE", "must be the application (client) ID of the API"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			section, s := common, base
			tc.edit(&section, &s)

			var se *oidc.SettingError
			require.ErrorAs(t, section.Validate(s), &se)
			require.Equal(t, tc.setting, se.Setting)
			require.Contains(t, se.Problem, tc.problem)

			got, err := providertest.FirstRequest(t, func(c *http.Client) error {
				_, err := azure.New(t.Context(), section, s, c)
				return err
			})
			require.ErrorContains(t, err, "azure: "+tc.setting+" ")
			require.Empty(t, got, "refused before any request")
		})
	}
}

func TestATenantIsNotNeededWhenTheConfigURLNamesTheDiscoveryDocument(t *testing.T) {
	t.Parallel()
	up := idp.NewAzure(t, idp.AzureOptions{Tenant: idp.DefaultTenantID})

	_, tokens, err := providertest.Login(t, newProvider(t, up, azure.Config{}), up, "mcp.read")

	require.NoError(t, err)
	require.Equal(t, "mcp.read", tokens.Scope)
}

func TestEveryProblemIsReportedAtOnce(t *testing.T) {
	t.Parallel()
	err := azure.Config{TenantID: "a/b", Authority: "http://x"}.Validate(oidc.Settings{Audience: "api://x"})

	for _, setting := range []string{"AZURE_TENANT_ID", "AZURE_AUTHORITY", "REQUIRED_SCOPES", "AUDIENCE"} {
		require.ErrorContains(t, err, setting+" ")
	}
}

func TestRevocationIsANoOpBecauseEntraHasNoRevocationEndpoint(t *testing.T) {
	t.Parallel()
	up := idp.NewAzure(t, idp.AzureOptions{})
	p := newProvider(t, up, common)
	_, tokens, err := providertest.Login(t, p, up)
	require.NoError(t, err)

	require.NoError(t, p.Revoke(t.Context(), tokens))
	require.Zero(t, up.Calls().Revocation)
}
