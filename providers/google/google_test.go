package google_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/providers"
	"github.com/oidcproxy/oidcproxy/providers/google"
	"github.com/oidcproxy/oidcproxy/providers/oidc"
	"github.com/oidcproxy/oidcproxy/test/idp"
	"github.com/oidcproxy/oidcproxy/test/providertest"
)

const hostedDomain = "example.com"

func TestGooglePassesTheProviderSuite(t *testing.T) {
	t.Parallel()
	providertest.Run(t, providertest.Case{
		Name: google.Name,
		Upstream: func(t testing.TB, o idp.FaultyOptions) *idp.Faulty {
			return idp.NewGoogle(t, idp.GoogleOptions{FaultyOptions: o, HostedDomain: hostedDomain})
		},
		Section:  func(c providers.Config, _ *idp.Faulty) { c.(*google.Config).HostedDomain = hostedDomain },
		Settings: func(s *oidc.Settings, _ *idp.Faulty) { s.RequiredScopes = []string{"email"} },
		// MCP clients ask for offline_access; Google must never see it.
		Scopes:       []string{"openid", "email", "profile", "offline_access"},
		GrantedScope: "openid email profile",
		Claims:       map[string]any{"hd": hostedDomain},
	})
}

func newProvider(t *testing.T, up *idp.Faulty, section google.Config, edit ...func(*oidc.Settings)) *google.Provider {
	t.Helper()
	s := providertest.Settings(up)
	for _, e := range edit {
		e(&s)
	}
	p, err := google.New(t.Context(), section, s, providertest.NewCountingClient(t).Client)
	require.NoError(t, err)
	return p
}

func TestOfflineAccessIsNeverSentToGoogle(t *testing.T) {
	t.Parallel()
	up := idp.NewGoogle(t, idp.GoogleOptions{})
	p := newProvider(t, up, google.Config{})

	_, tokens, err := providertest.Login(t, p, up, "offline_access", "email")

	require.NoError(t, err, "Google refuses offline_access with invalid_scope")
	require.Equal(t, "openid email", up.LastAuthorize().Get("scope"))
	require.NotEmpty(t, tokens.RefreshToken, "refresh tokens come from access_type=offline instead")
}

func TestRefreshTokensAreAskedForWithAccessTypeOfflineAndPromptConsent(t *testing.T) {
	t.Parallel()
	up := idp.NewGoogle(t, idp.GoogleOptions{})
	p := newProvider(t, up, google.Config{})

	_, tokens, err := providertest.Login(t, p, up, "email")

	require.NoError(t, err)
	q := up.LastAuthorize()
	require.Equal(t, "offline", q.Get("access_type"))
	require.Equal(t, "consent", q.Get("prompt"))
	require.NotEmpty(t, tokens.RefreshToken)
}

func TestTheOperatorMayOverrideAccessTypeAndPrompt(t *testing.T) {
	t.Parallel()
	up := idp.NewGoogle(t, idp.GoogleOptions{})
	operator := map[string]string{"prompt": "select_account", "access_type": "online"}
	p := newProvider(t, up, google.Config{}, func(s *oidc.Settings) { s.ExtraAuthorizeParams = operator })

	_, tokens, err := providertest.Login(t, p, up, "email")

	require.NoError(t, err)
	q := up.LastAuthorize()
	require.Equal(t, "select_account", q.Get("prompt"))
	require.Equal(t, "online", q.Get("access_type"))
	require.Empty(t, tokens.RefreshToken, "online access gets no refresh token, as the operator chose")
	require.Equal(t, map[string]string{"prompt": "select_account", "access_type": "online"}, operator, "the operator's map is not modified")
}

func TestGoogleAccessTokensAreNeverParsed(t *testing.T) {
	t.Parallel()
	up := idp.NewGoogle(t, idp.GoogleOptions{})
	withScope := func(s *oidc.Settings) { s.RequiredScopes = []string{"email"} }

	// The emulation's opaque tokens have three dot-separated parts. The
	// generic provider, asked to check scopes, takes that for a JWT.
	generic, err := oidc.New(t.Context(), func() oidc.Settings {
		s := providertest.Settings(up)
		withScope(&s)
		return s
	}(), providertest.NewCountingClient(t).Client)
	require.NoError(t, err)
	_, _, err = providertest.Login(t, generic, up, "email")
	providertest.RequireCode(t, err, domain.CodeAccessDenied)

	p := newProvider(t, up, google.Config{}, withScope)
	identity, tokens, err := providertest.Login(t, p, up, "email")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(tokens.AccessToken, "ya29."))
	require.Equal(t, up.Subject, identity.Subject, "the identity comes from the verified ID token")
}

func TestRequiredScopesAreCheckedAgainstTheTokenResponse(t *testing.T) {
	t.Parallel()
	up := idp.NewGoogle(t, idp.GoogleOptions{})
	p := newProvider(t, up, google.Config{}, func(s *oidc.Settings) { s.RequiredScopes = []string{"email"} })
	f := providertest.NewFlow()
	cb := providertest.Code(t, p, up, f)
	up.Set(idp.Faults{GrantedScope: "openid " + google.ProfileScope})

	_, _, err := p.Exchange(t.Context(), f.Exchange(cb))

	providertest.RequireCode(t, err, domain.CodeAccessDenied)
	require.ErrorContains(t, err, "granted scope lacks [email]")
}

func TestEmailAndProfileScopesAreNormalisedBothWays(t *testing.T) {
	t.Parallel()
	up := idp.NewGoogle(t, idp.GoogleOptions{})
	// REQUIRED_SCOPES in Google's long form, checked against its echo.
	p := newProvider(t, up, google.Config{}, func(s *oidc.Settings) { s.RequiredScopes = []string{google.EmailScope} })

	_, tokens, err := providertest.Login(t, p, up, google.ProfileScope)

	require.NoError(t, err)
	require.Equal(t, "openid email profile", up.LastAuthorize().Get("scope"), "short forms go upstream")
	require.Equal(t, "openid email profile", tokens.Scope, "the long forms Google echoes come back short")
	refreshed, err := p.Refresh(t.Context(), tokens)
	require.NoError(t, err)
	require.Equal(t, "openid email profile", refreshed.Tokens.Scope)
}

func TestTheHostedDomainIsEnforcedOnTheVerifiedClaim(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		claimed string
		ok      bool
	}{
		{"an account of the domain", hostedDomain, true},
		{"the domain in another case", "Example.COM", true},
		{"an account of another Workspace domain", "other.example", false},
		{"a consumer account without hd", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := idp.NewGoogle(t, idp.GoogleOptions{HostedDomain: tc.claimed})
			p := newProvider(t, up, google.Config{HostedDomain: hostedDomain})

			_, _, err := providertest.Login(t, p, up)

			require.Equal(t, hostedDomain, up.LastAuthorize().Get("hd"), "hd is sent as a hint")
			if tc.ok {
				require.NoError(t, err)
			} else {
				providertest.RequireCode(t, err, domain.CodeAccessDenied)
			}
		})
	}
}

func TestARefreshedIDTokenOfAnotherHostedDomainEndsTheGrant(t *testing.T) {
	t.Parallel()
	up := idp.NewGoogle(t, idp.GoogleOptions{HostedDomain: hostedDomain})
	p := newProvider(t, up, google.Config{HostedDomain: hostedDomain})
	_, tokens, err := providertest.Login(t, p, up)
	require.NoError(t, err)
	up.Set(idp.Faults{IDTokenClaims: map[string]any{"hd": "other.example"}})

	_, err = p.Refresh(t.Context(), tokens)

	providertest.RequireCode(t, err, domain.CodeInvalidGrant)
}

func TestSettingsThatCannotBeCheckedOnOpaqueTokensAreRefused(t *testing.T) {
	t.Parallel()
	cases := map[string]func(*google.Config, *oidc.Settings){
		"an audience":               func(_ *google.Config, s *oidc.Settings) { s.Audience = "https://api.example" },
		"an algorithm":              func(_ *google.Config, s *oidc.Settings) { s.Algorithm = "RS256" },
		"a malformed hosted domain": func(c *google.Config, _ *oidc.Settings) { c.HostedDomain = "user@example.com" },
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			var section google.Config
			s := oidc.Settings{ConfigURL: "http://127.0.0.1:9/.well-known/openid-configuration",
				ClientID: "c", ClientSecret: "s", RedirectURL: providertest.RedirectURL}
			edit(&section, &s)
			got, err := providertest.FirstRequest(t, func(c *http.Client) error {
				_, err := google.New(t.Context(), section, s, c)
				return err
			})
			require.ErrorContains(t, err, "google: ")
			require.Empty(t, got, "refused before any request")
		})
	}
}

func TestDiscoveryIsGooglesUnlessAConfigURLIsSet(t *testing.T) {
	t.Parallel()
	s := oidc.Settings{ClientID: "c", ClientSecret: "s", RedirectURL: providertest.RedirectURL}

	got, err := providertest.FirstRequest(t, func(c *http.Client) error {
		_, err := google.New(t.Context(), google.Config{}, s, c)
		return err
	})

	require.Equal(t, google.DiscoveryURL, got)
	require.ErrorContains(t, err, "google: oidc: discovery at "+google.DiscoveryURL)
}
