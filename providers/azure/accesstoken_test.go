package azure_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/providers/azure"
	"github.com/oidcproxy/oidcproxy/providers/oidc"
	"github.com/oidcproxy/oidcproxy/test/idp"
	"github.com/oidcproxy/oidcproxy/test/providertest"
)

// The API's application ID URI, as the default identifier URI names it.
const apiIdentifier = "api://" + idp.DefaultClientID

// v1Issuer and v2Issuer are the issuers of the two documented access token
// shapes for the user's tenant; up is a multi-tenant emulation's.
func v1Issuer(tenant string) string { return idp.EntraV1Issuer + "/" + tenant + "/" }

func v2Issuer(up *idp.Faulty, tenant string) string { return up.URL + "/" + tenant + "/v2.0" }

// shape is an access token for the API as Entra documents it: version "2.0"
// or "1.0", with the matching issuer and audience for the user's tenant.
func shape(up *idp.Faulty, version string) idp.AccessTokenShape {
	s := idp.AccessTokenShape{JWT: true, ScopeClaim: "scp", Scope: "mcp.read",
		Claims: map[string]any{"tid": idp.DefaultTenantID, "ver": version}}
	if version == "2.0" {
		s.Issuer, s.Audience = v2Issuer(up, idp.DefaultTenantID), []string{idp.DefaultClientID}
	} else {
		s.Issuer, s.Audience = v1Issuer(idp.DefaultTenantID), []string{apiIdentifier}
	}
	return s
}

// with returns s with claims merged in (a nil value removes one) and edit
// applied.
func with(s idp.AccessTokenShape, claims map[string]any, edit ...func(*idp.AccessTokenShape)) idp.AccessTokenShape {
	merged := map[string]any{}
	for k, v := range s.Claims {
		merged[k] = v
	}
	for k, v := range claims {
		merged[k] = v
	}
	s.Claims = merged
	for _, e := range edit {
		e(&s)
	}
	return s
}

func audience(aud ...string) func(*idp.AccessTokenShape) {
	return func(s *idp.AccessTokenShape) { s.Audience = aud }
}

func issuer(iss string) func(*idp.AccessTokenShape) {
	return func(s *idp.AccessTokenShape) { s.Issuer = iss }
}

// exchange runs one login whose token response carries an access token of
// the given shape.
func exchange(t *testing.T, p *azure.Provider, up *idp.Faulty, token idp.AccessTokenShape) error {
	t.Helper()
	f := providertest.NewFlow()
	cb := providertest.Code(t, p, up, f, "mcp.read")
	up.Set(idp.Faults{AccessToken: token})
	defer up.Set(idp.Faults{})
	_, _, err := p.Exchange(t.Context(), f.Exchange(cb))
	return err
}

func TestEntraIssuesEitherAccessTokenVersionAndBothAreAccepted(t *testing.T) {
	t.Parallel()
	// The API's manifest picks the version: null (0) and 1 give v1.0
	// tokens, 2 gives v2.0 tokens; multi-tenant and single-tenant apps
	// alike, at login and on refresh.
	for _, tenant := range []string{"organizations", idp.DefaultTenantID} {
		for _, version := range []int{0, 1, 2} {
			up := idp.NewAzure(t, idp.AzureOptions{Tenant: tenant, AccessTokenVersion: version})
			p := newProvider(t, up, azure.Config{TenantID: tenant})

			_, tokens, err := providertest.Login(t, p, up, "mcp.read")

			require.NoError(t, err, "tenant %s, accessTokenAcceptedVersion %d", tenant, version)
			require.Equal(t, "mcp.read", tokens.Scope)
			_, err = p.Refresh(t.Context(), tokens)
			require.NoError(t, err, "tenant %s, accessTokenAcceptedVersion %d: refresh", tenant, version)
		}
	}
}

func TestAV1TokenNamesTheConfiguredIdentifierURIAndAV2TokenTheConfiguredAudience(t *testing.T) {
	t.Parallel()
	const (
		identifier = "https://mcp.example.com/api"
		apiApp     = "11111111-2222-3333-4444-555555555555" // an API registered as another app
	)
	for _, version := range []int{1, 2} {
		up := idp.NewAzure(t, idp.AzureOptions{AccessTokenVersion: version, IdentifierURI: identifier})
		p := newProvider(t, up, azure.Config{TenantID: "common", IdentifierURI: identifier})
		_, _, err := providertest.Login(t, p, up, "mcp.read")
		require.NoError(t, err, "version %d for the identifier URI %s", version, identifier)
	}

	up := idp.NewAzure(t, idp.AzureOptions{AccessTokenVersion: 2})
	p := newProvider(t, up, common, func(s *oidc.Settings) { s.Audience = apiApp })
	require.NoError(t, exchange(t, p, up, with(shape(up, "2.0"), nil, audience(apiApp))), "AUDIENCE replaces the client ID")
	providertest.RequireCode(t, exchange(t, p, up, shape(up, "2.0")), domain.CodeAccessDenied)
	require.NoError(t, exchange(t, p, up, shape(up, "1.0")), "v1.0 tokens name the identifier URI, whatever AUDIENCE says")
}

func TestAccessTokensOfNeitherDocumentedShapeAreRefused(t *testing.T) {
	t.Parallel()
	up := idp.NewAzure(t, idp.AzureOptions{})
	p := newProvider(t, up, common)
	v1, v2 := shape(up, "1.0"), shape(up, "2.0")
	// Each case below changes one thing in a shape that is accepted.
	require.NoError(t, exchange(t, p, up, v1))
	require.NoError(t, exchange(t, p, up, v2))

	cases := map[string]idp.AccessTokenShape{
		// One shape's issuer or audience with the other's version.
		"a v2.0 issuer with ver 1.0":              with(v2, map[string]any{"ver": "1.0"}),
		"a v1.0 issuer with ver 2.0":              with(v1, map[string]any{"ver": "2.0"}),
		"a v2.0 token for the identifier URI":     with(v2, nil, audience(apiIdentifier)),
		"a v1.0 token for the client ID":          with(v1, nil, audience(idp.DefaultClientID)),
		"a v2.0 token from the v1.0 service":      with(v2, nil, issuer(v1Issuer(idp.DefaultTenantID))),
		"a v1.0 token from the v2.0 endpoint":     with(v1, nil, issuer(v2Issuer(up, idp.DefaultTenantID))),
		"no version":                              with(v2, map[string]any{"ver": nil}),
		"an unknown version":                      with(v2, map[string]any{"ver": "3.0"}),
		"a version that is not a string":          with(v2, map[string]any{"ver": 2}),
		"a v2.0 token of another tenant than tid": with(v2, nil, issuer(v2Issuer(up, otherTenant))),
		"a v1.0 token of another tenant than tid": with(v1, nil, issuer(v1Issuer(otherTenant))),
		"a v2.0 token without tid":                with(v2, map[string]any{"tid": nil}),
		"a v1.0 token without tid":                with(v1, map[string]any{"tid": nil}),
		"a v1.0 token of a tid that is no GUID":   with(v1, map[string]any{"tid": "evil.example"}, issuer(v1Issuer("evil.example"))),
		"a v2.0 token of the template issuer":     with(v2, nil, issuer(up.Issuer)),
		"a v1.0 token of another token service":   with(v1, nil, issuer("https://sts.evil.example/"+idp.DefaultTenantID+"/")),
		"a v1.0 issuer without its slash":         with(v1, nil, issuer(idp.EntraV1Issuer+"/"+idp.DefaultTenantID)),
		"a v2.0 token of another authority":       with(v2, nil, issuer("https://login.evil.example/"+idp.DefaultTenantID+"/v2.0")),
		"a v2.0 token for another API":            with(v2, nil, audience("11111111-2222-3333-4444-555555555555")),
		"a v1.0 token for another API":            with(v1, nil, audience("api://another-app")),
		"a v2.0 token from another key":           with(v2, nil, func(s *idp.AccessTokenShape) { s.Unpublished = true }),
		"a v1.0 token from another key":           with(v1, nil, func(s *idp.AccessTokenShape) { s.Unpublished = true }),
		"a v2.0 token without the scope":          with(v2, nil, func(s *idp.AccessTokenShape) { s.Scope = "mcp.write" }),
		"a v1.0 token without the scope":          with(v1, nil, func(s *idp.AccessTokenShape) { s.Scope = "mcp.write" }),
		"a Graph token": {JWT: true, Audience: []string{idp.GraphAudience}, ScopeClaim: "scp", Scope: "User.Read",
			Issuer: v1Issuer(idp.DefaultTenantID), Claims: map[string]any{"tid": idp.DefaultTenantID, "ver": "1.0"}, Unpublished: true},
		"an opaque token": {Prefix: "opaque-"},
	}
	for name, token := range cases {
		t.Run(name, func(t *testing.T) {
			providertest.RequireCode(t, exchange(t, p, up, token), domain.CodeAccessDenied)
		})
	}
}

func TestAMultiTenantAppAcceptsAnyTenantsTokenThatNamesItsOwnTenant(t *testing.T) {
	t.Parallel()
	up := idp.NewAzure(t, idp.AzureOptions{})
	p := newProvider(t, up, common)
	other := map[string]any{"tid": otherTenant}

	require.NoError(t, exchange(t, p, up, with(shape(up, "2.0"), other, issuer(v2Issuer(up, otherTenant)))))
	require.NoError(t, exchange(t, p, up, with(shape(up, "1.0"), other, issuer(v1Issuer(otherTenant)))))
}

func TestASingleTenantAppRefusesAnotherTenantsAccessTokens(t *testing.T) {
	t.Parallel()
	up := idp.NewAzure(t, idp.AzureOptions{Tenant: idp.DefaultTenantID})
	p := newProvider(t, up, azure.Config{TenantID: idp.DefaultTenantID})
	other := map[string]any{"tid": otherTenant}
	require.NoError(t, exchange(t, p, up, shape(up, "2.0")))
	require.NoError(t, exchange(t, p, up, shape(up, "1.0")))

	for name, token := range map[string]idp.AccessTokenShape{
		"v2.0": with(shape(up, "2.0"), other, issuer(v2Issuer(up, otherTenant))),
		"v1.0": with(shape(up, "1.0"), other, issuer(v1Issuer(otherTenant))),
	} {
		t.Run(name, func(t *testing.T) {
			providertest.RequireCode(t, exchange(t, p, up, token), domain.CodeAccessDenied)
		})
	}
}

func TestARefreshThatBringsAnAccessTokenOfNeitherShapeEndsTheGrant(t *testing.T) {
	t.Parallel()
	up := idp.NewAzure(t, idp.AzureOptions{AccessTokenVersion: 2})
	p := newProvider(t, up, common)
	_, tokens, err := providertest.Login(t, p, up, "mcp.read")
	require.NoError(t, err)
	up.Set(idp.Faults{AccessToken: with(shape(up, "2.0"), map[string]any{"ver": "1.0"})})

	_, err = p.Refresh(t.Context(), tokens)

	providertest.RequireCode(t, err, domain.CodeInvalidGrant)
}

func TestV1IssuersFollowTheCloudOfTheAuthority(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"https://login.microsoftonline.com":         "https://sts.windows.net",
		"https://login.microsoftonline.us":          "https://sts.windows.net",
		"https://login.chinacloudapi.cn":            "https://sts.chinacloudapi.cn",
		"https://login.partner.microsoftonline.cn":  "https://sts.chinacloudapi.cn",
		"https://LOGIN.PARTNER.MICROSOFTONLINE.CN/": "https://sts.chinacloudapi.cn",
		"http://127.0.0.1:8080":                     "https://sts.windows.net",
	}
	for authority, want := range cases {
		require.Equal(t, want, azure.V1IssuerOf(authority), authority)
	}
}
