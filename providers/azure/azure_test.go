package azure_test

import (
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
		t.Run("tenant "+tenant, func(t *testing.T) {
			t.Parallel()
			providertest.Run(t, providertest.Case{
				Name: azure.Name,
				New:  providers.Registry[azure.Name],
				Upstream: func(t testing.TB, o idp.FaultyOptions) *idp.Faulty {
					return idp.NewAzure(t, idp.AzureOptions{FaultyOptions: o, Tenant: tenant})
				},
				Settings: func(s *oidc.Settings, _ *idp.Faulty) {
					s.AzureTenantID = tenant
					s.RequiredScopes = []string{"mcp.read"}
				},
				Scopes:       []string{"openid", "profile", "email", "offline_access", "mcp.read"},
				GrantedScope: "mcp.read",
				Claims:       map[string]any{"tid": idp.DefaultTenantID},
			})
		})
	}
}

// settings points the preset at an Entra emulation, asking for mcp.read.
func settings(up *idp.Faulty) oidc.Settings {
	s := providertest.Settings(up)
	s.AzureTenantID = "common"
	s.RequiredScopes = []string{"mcp.read"}
	return s
}

func newProvider(t *testing.T, up *idp.Faulty, edit ...func(*oidc.Settings)) *azure.Provider {
	t.Helper()
	s := settings(up)
	for _, e := range edit {
		e(&s)
	}
	p, err := azure.New(t.Context(), s, providertest.NewCountingClient(t).Client)
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
			p := newProvider(t, up, func(s *oidc.Settings) { s.AzureIdentifierURI = tc.identifierURI })

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
	p := newProvider(t, up, func(s *oidc.Settings) { s.RequiredScopes = []string{prefixed} })

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
	p := newProvider(t, up)

	_, _, err := providertest.Login(t, p, up, idp.GraphResource+"/User.Read", "api://another-app/files.read", "mcp.read")

	require.NoError(t, err)
	scope := up.LastAuthorize().Get("scope")
	require.NotContains(t, scope, "graph.microsoft.com")
	require.NotContains(t, scope, "another-app")
}

func TestTheResourceParameterIsNeverForwarded(t *testing.T) {
	t.Parallel()
	up := idp.NewAzure(t, idp.AzureOptions{})
	p := newProvider(t, up, func(s *oidc.Settings) { s.ForwardResource = true })
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
		{"a Graph scope", []string{"mcp.read", idp.GraphResource + "/User.Read"}, "belongs to another resource"},
		{"another API's scope", []string{"mcp.read", "api://another-app/files.read"}, "belongs to another resource"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := oidc.Settings{AzureTenantID: "common", ClientID: "c", ClientSecret: "s",
				RedirectURL: providertest.RedirectURL, RequiredScopes: tc.required}
			got, err := providertest.FirstRequest(t, func(c *http.Client) error {
				_, err := azure.New(t.Context(), s, c)
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
	p := newProvider(t, up)
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

func TestTheAccessTokenIsCheckedLikeTheIDToken(t *testing.T) {
	t.Parallel()
	up := idp.NewAzure(t, idp.AzureOptions{})
	p := newProvider(t, up)
	api := func(claims map[string]any, audience ...string) idp.AccessTokenShape {
		if audience == nil {
			audience = []string{idp.DefaultClientID}
		}
		all := map[string]any{"tid": idp.DefaultTenantID, "ver": "2.0"}
		for k, v := range claims {
			all[k] = v
		}
		return idp.AccessTokenShape{JWT: true, Audience: audience, ScopeClaim: "scp", Scope: "mcp.read", Claims: all}
	}
	cases := map[string]idp.AccessTokenShape{
		"another tenant's iss":      api(map[string]any{"tid": otherTenant}),
		"another API's audience":    api(nil, "11111111-2222-3333-4444-555555555555"),
		"a Graph token":             {JWT: true, Audience: []string{idp.GraphAudience}, ScopeClaim: "scp", Scope: "User.Read", Unpublished: true},
		"a token without the scope": {JWT: true, Audience: []string{idp.DefaultClientID}, ScopeClaim: "scp", Scope: "mcp.write", Claims: map[string]any{"tid": idp.DefaultTenantID}},
	}
	// An API whose manifest does not ask for v2.0 tokens gets v1.0 ones,
	// with another issuer and the identifier URI as audience.
	v1 := api(map[string]any{"ver": "1.0"}, "api://"+idp.DefaultClientID)
	v1.Issuer = "https://sts.windows.net/" + idp.DefaultTenantID + "/"
	cases["a v1.0 token of sts.windows.net"] = v1
	for name, shape := range cases {
		t.Run(name, func(t *testing.T) {
			f := providertest.NewFlow()
			cb := providertest.Code(t, p, up, f, "mcp.read")
			up.Set(idp.Faults{AccessToken: shape})
			defer up.Set(idp.Faults{})

			_, _, err := p.Exchange(t.Context(), f.Exchange(cb))

			providertest.RequireCode(t, err, domain.CodeAccessDenied)
		})
	}
}

func TestAConfiguredAudienceReplacesTheClientID(t *testing.T) {
	t.Parallel()
	const apiApp = "11111111-2222-3333-4444-555555555555"
	up := idp.NewAzure(t, idp.AzureOptions{})
	p := newProvider(t, up, func(s *oidc.Settings) { s.Audience = apiApp })
	up.Set(idp.Faults{AccessToken: idp.AccessTokenShape{JWT: true, Audience: []string{apiApp}, ScopeClaim: "scp",
		Scope: "mcp.read", Claims: map[string]any{"tid": idp.DefaultTenantID}}})

	_, _, err := providertest.Login(t, p, up, "mcp.read")

	require.NoError(t, err)
}

func TestASingleTenantNeverAcceptsAnotherTenant(t *testing.T) {
	t.Parallel()
	up := idp.NewAzure(t, idp.AzureOptions{Tenant: idp.DefaultTenantID})
	p := newProvider(t, up, func(s *oidc.Settings) { s.AzureTenantID = idp.DefaultTenantID })
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
	s := settings(up)
	s.AzureTenantID = idp.DefaultTenantID

	_, err := azure.New(t.Context(), s, providertest.NewCountingClient(t).Client)

	require.ErrorContains(t, err, "did not match the issuer")
}

func TestTheResponseIssuerMustBeTheIssuerOfTheIDToken(t *testing.T) {
	t.Parallel()
	up := idp.NewAzure(t, idp.AzureOptions{})
	up.Set(idp.Faults{AuthorizeIssuer: true})
	p := newProvider(t, up)

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
			s := oidc.Settings{AzureTenantID: tc.tenant, AzureAuthority: tc.authority, ConfigURL: tc.configURL,
				ClientID: "c", ClientSecret: "s", RedirectURL: providertest.RedirectURL, RequiredScopes: []string{"mcp.read"}}
			require.Equal(t, tc.want, azure.DiscoveryURL(s))

			got, err := providertest.FirstRequest(t, func(c *http.Client) error {
				_, err := azure.New(t.Context(), s, c)
				return err
			})

			require.Equal(t, tc.want, got)
			require.ErrorContains(t, err, "azure: oidc: discovery at "+tc.want)
		})
	}
}

func TestNewRefusesSettingsThatCannotWork(t *testing.T) {
	t.Parallel()
	base := oidc.Settings{AzureTenantID: "common", ClientID: "c", ClientSecret: "s",
		RedirectURL: providertest.RedirectURL, RequiredScopes: []string{"mcp.read"}}
	cases := []struct {
		name string
		edit func(*oidc.Settings)
		want string
	}{
		{"no tenant", func(s *oidc.Settings) { s.AzureTenantID = "" }, "a tenant is required"},
		{"a tenant that rewrites the URL", func(s *oidc.Settings) { s.AzureTenantID = "common/../evil" }, "a tenant is required"},
		{"an http authority", func(s *oidc.Settings) { s.AzureAuthority = "http://login.example" }, "the authority must be an https URL"},
		{"resource in the extra token parameters", func(s *oidc.Settings) {
			s.ExtraTokenParams = map[string]string{"resource": "https://mcp.example.com"}
		}, "AADSTS9010010"},
		{"a relative identifier URI", func(s *oidc.Settings) { s.AzureIdentifierURI = "mcp" }, "the identifier URI must be an absolute URI"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := base
			tc.edit(&s)
			got, err := providertest.FirstRequest(t, func(c *http.Client) error {
				_, err := azure.New(t.Context(), s, c)
				return err
			})
			require.ErrorContains(t, err, tc.want)
			require.Empty(t, got, "refused before any request")
		})
	}
}

func TestRevocationIsANoOpBecauseEntraHasNoRevocationEndpoint(t *testing.T) {
	t.Parallel()
	up := idp.NewAzure(t, idp.AzureOptions{})
	p := newProvider(t, up)
	_, tokens, err := providertest.Login(t, p, up)
	require.NoError(t, err)

	require.NoError(t, p.Revoke(t.Context(), tokens))
	require.Zero(t, up.Calls().Revocation)
}
