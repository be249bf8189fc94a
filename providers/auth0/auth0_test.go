package auth0_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/providers/auth0"
	"github.com/oidcproxy/oidcproxy/providers/oidc"
	"github.com/oidcproxy/oidcproxy/test/idp"
	"github.com/oidcproxy/oidcproxy/test/providertest"
)

const audience = idp.DefaultAuth0Audience

func TestAuth0PassesTheProviderSuite(t *testing.T) {
	t.Parallel()
	providertest.Run(t, providertest.Case{
		Name: auth0.Name,
		Upstream: func(t testing.TB, o idp.FaultyOptions) *idp.Faulty {
			return idp.NewAuth0(t, idp.Auth0Options{FaultyOptions: o})
		},
		Settings:     func(s *oidc.Settings, _ *idp.Faulty) { s.Audience = audience },
		Scopes:       []string{"openid", "profile", "email"},
		GrantedScope: "openid offline_access profile email",
	})
}

// settings points the preset at an Auth0 emulation.
func settings(up *idp.Faulty) oidc.Settings {
	s := providertest.Settings(up)
	s.Audience = audience
	return s
}

func newProvider(t *testing.T, s oidc.Settings) *auth0.Provider {
	t.Helper()
	p, err := auth0.New(t.Context(), auth0.Config{}, s, providertest.NewCountingClient(t).Client)
	require.NoError(t, err)
	return p
}

func TestNewFailsFastWithoutAnAudience(t *testing.T) {
	t.Parallel()
	up := idp.NewAuth0(t, idp.Auth0Options{})
	s := settings(up)
	s.Audience = ""

	p, err := auth0.New(t.Context(), auth0.Config{}, s, http.DefaultClient)

	require.Nil(t, p)
	require.ErrorContains(t, err, "auth0: AUDIENCE is required for provider auth0")
	require.Zero(t, up.Calls().Discovery, "refused before any request")
}

func TestTheAudienceIsSentOnTheAuthorizationAndTokenRequests(t *testing.T) {
	t.Parallel()
	up := idp.NewAuth0(t, idp.Auth0Options{})
	p := newProvider(t, settings(up))

	_, tokens, err := providertest.Login(t, p, up, "email")

	require.NoError(t, err, "Auth0 issues a JWT for the API only when asked with audience")
	require.Equal(t, audience, up.LastAuthorize().Get("audience"))
	require.Equal(t, audience, up.LastToken().Form.Get("audience"))
	require.Equal(t, 2, strings.Count(tokens.AccessToken, "."), "a JWT access token")
}

func TestWithoutTheAudienceParameterAuth0IssuesAnOpaqueTokenThatFailsVerification(t *testing.T) {
	t.Parallel()
	// The generic provider with the same audience check, but without the
	// preset's audience parameter: this is the failure the preset avoids.
	up := idp.NewAuth0(t, idp.Auth0Options{})
	p, err := oidc.New(t.Context(), settings(up), providertest.NewCountingClient(t).Client)
	require.NoError(t, err)

	_, _, err = providertest.Login(t, p, up)

	providertest.RequireCode(t, err, domain.CodeAccessDenied)
	require.ErrorContains(t, err, "access token is not a JWT")
}

func TestTheAccessTokenIsVerifiedWithTheAudience(t *testing.T) {
	t.Parallel()
	up := idp.NewAuth0(t, idp.Auth0Options{})
	p := newProvider(t, settings(up))
	cases := map[string]idp.AccessTokenShape{
		"a JWT for another API":   {JWT: true, Audience: []string{"https://other.example/api"}},
		"a JWT from another key":  {JWT: true, Audience: []string{audience}, Unpublished: true},
		"a JWT of another issuer": {JWT: true, Audience: []string{audience}, Issuer: "https://evil.auth0.com/"},
		"an opaque token":         {Prefix: "v2.local."},
	}
	for name, shape := range cases {
		t.Run(name, func(t *testing.T) {
			f := providertest.NewFlow()
			cb := providertest.Code(t, p, up, f)
			up.Set(idp.Faults{AccessToken: shape})
			defer up.Set(idp.Faults{})

			_, _, err := p.Exchange(t.Context(), f.Exchange(cb))

			providertest.RequireCode(t, err, domain.CodeAccessDenied)
		})
	}
}

func TestOfflineAccessIsRequestedEvenWhenDiscoveryDoesNotListIt(t *testing.T) {
	t.Parallel()
	up := idp.NewAuth0(t, idp.Auth0Options{})
	up.Set(idp.Faults{DiscoveryExtra: map[string]any{"scopes_supported": []string{"openid", "profile", "email"}}})
	p := newProvider(t, settings(up))

	_, tokens, err := providertest.Login(t, p, up, "email")

	require.NoError(t, err)
	require.Equal(t, "openid offline_access email", up.LastAuthorize().Get("scope"))
	require.NotEmpty(t, tokens.RefreshToken, "Auth0 issues refresh tokens for offline_access only")
}

func TestTheIssuerKeepsAuth0sTrailingSlash(t *testing.T) {
	t.Parallel()
	up := idp.NewAuth0(t, idp.Auth0Options{})
	require.True(t, strings.HasSuffix(up.Issuer, "/"))
	p := newProvider(t, settings(up))

	identity, _, err := providertest.Login(t, p, up)

	require.NoError(t, err)
	require.Equal(t, up.Issuer, p.Issuer())
	require.Equal(t, up.Issuer, identity.Issuer)
}

func TestDiscoveryComesFromTheDomainUnlessAConfigURLIsSet(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, domain, configURL, want string
	}{
		{"tenant domain", "example.us.auth0.com", "", "https://example.us.auth0.com/.well-known/openid-configuration"},
		{"custom domain", "login.example.com", "", "https://login.example.com/.well-known/openid-configuration"},
		{"config URL override", "example.us.auth0.com", "http://127.0.0.1:9/.well-known/openid-configuration",
			"http://127.0.0.1:9/.well-known/openid-configuration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			section := auth0.Config{Domain: tc.domain}
			s := oidc.Settings{ConfigURL: tc.configURL, Audience: audience,
				ClientID: "c", ClientSecret: "s", RedirectURL: providertest.RedirectURL}
			require.Equal(t, tc.want, section.DiscoveryURL(s))

			got, err := providertest.FirstRequest(t, func(c *http.Client) error {
				_, err := auth0.New(t.Context(), section, s, c)
				return err
			})

			require.Equal(t, tc.want, got)
			require.ErrorContains(t, err, "auth0: oidc: discovery at "+tc.want)
		})
	}
}

func TestNewRefusesSettingsThatCannotWork(t *testing.T) {
	t.Parallel()
	base := oidc.Settings{Audience: audience, ClientID: "c", ClientSecret: "s", RedirectURL: providertest.RedirectURL}
	cases := []struct {
		name             string
		domain           string
		edit             func(*oidc.Settings)
		setting, problem string
	}{
		{"no audience", "example.us.auth0.com", func(s *oidc.Settings) { s.Audience = "" }, "AUDIENCE", "is required for provider auth0"},
		{"no domain and no config URL", "", func(*oidc.Settings) {}, "AUTH0_DOMAIN", "is required for provider auth0 unless CONFIG_URL is set"},
		{"a domain with a scheme", "https://example.us.auth0.com", func(*oidc.Settings) {}, "AUTH0_DOMAIN", "must be a bare host name"},
		{"a domain with a path", "example.us.auth0.com/x", func(*oidc.Settings) {}, "AUTH0_DOMAIN", "must be a bare host name"},
		{"another audience in the extra authorize parameters", "example.us.auth0.com", func(s *oidc.Settings) {
			s.ExtraAuthorizeParams = map[string]string{"audience": "https://other.example"}
		}, "EXTRA_AUTHORIZE_PARAMS", "sets audience to another value than AUDIENCE"},
		{"another audience in the extra token parameters", "example.us.auth0.com", func(s *oidc.Settings) {
			s.ExtraTokenParams = map[string]string{"audience": "https://other.example"}
		}, "EXTRA_TOKEN_PARAMS", "sets audience to another value than AUDIENCE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := base
			tc.edit(&s)
			section := auth0.Config{Domain: tc.domain}

			var se *oidc.SettingError
			require.ErrorAs(t, section.Validate(s), &se)
			require.Equal(t, tc.setting, se.Setting)
			require.Contains(t, se.Problem, tc.problem)

			got, err := providertest.FirstRequest(t, func(c *http.Client) error {
				_, err := auth0.New(t.Context(), section, s, c)
				return err
			})
			require.ErrorContains(t, err, "auth0: "+tc.setting+" "+tc.problem)
			require.Empty(t, got, "refused before any request")
		})
	}
}

func TestEveryProblemIsReportedAtOnce(t *testing.T) {
	t.Parallel()
	s := oidc.Settings{ExtraTokenParams: map[string]string{"audience": "x"}}

	err := auth0.Config{Domain: "https://example.us.auth0.com"}.Validate(s)

	require.ErrorContains(t, err, "AUDIENCE is required")
	require.ErrorContains(t, err, "AUTH0_DOMAIN must be a bare host name")
}

func TestTheOperatorsParameterMapsAreNotModified(t *testing.T) {
	t.Parallel()
	up := idp.NewAuth0(t, idp.Auth0Options{})
	s := settings(up)
	s.ExtraAuthorizeParams = map[string]string{"connection": "github"}
	newProvider(t, s)
	require.Equal(t, map[string]string{"connection": "github"}, s.ExtraAuthorizeParams)
}
