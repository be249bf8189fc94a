package providertest

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/providers"
	"github.com/oidcproxy/oidcproxy/providers/oidc"
	"github.com/oidcproxy/oidcproxy/test/idp"
)

// Case is one provider under test and the IdP it is tested against.
type Case struct {
	// Name is the provider's registry name; Provider.Name must return it.
	// The suite builds the provider from the settings section that
	// providers.Registry[Name] returns, so the registry line is tested
	// too.
	Name string
	// Upstream starts the emulated IdP with the suite's options (client,
	// secret and user); Settings(up) then points a provider at it.
	Upstream func(t testing.TB, o idp.FaultyOptions) *idp.Faulty
	// Section fills the provider's own settings section (the pointer the
	// registry returned, such as *azure.Config) for up: a tenant, a hosted
	// domain. May be nil.
	Section func(section providers.Config, up *idp.Faulty)
	// Settings adds what the provider needs beyond Settings(up) among the
	// settings every provider shares: an audience, required scopes. May be
	// nil.
	Settings func(s *oidc.Settings, up *idp.Faulty)
	// Scopes are the scopes the MCP client asks for.
	Scopes []string
	// GrantedScope is the scope a login must report in
	// domain.UpstreamTokens.Scope, in its local form.
	GrantedScope string
	// Claims are claims the IdP adds to ID tokens (tid, hd) that the
	// identity must keep.
	Claims map[string]any
}

// The suite's upstream client and user.
const (
	clientID     = "suite-client"
	clientSecret = "suite-secret-0123456789abcdef-0123456789"
	subject      = "suite-user-42"
	email        = "ada@suite.example"
	name         = "Ada Suite"
)

// Run runs the provider suite for c. Every check starts its own upstream
// and provider, and runs in parallel with the others.
func Run(t *testing.T, c Case) {
	t.Helper()
	require.Contains(t, providers.Registry, c.Name, "Case.Name must be a registered provider")
	require.NotNil(t, c.Upstream, "Case.Upstream")
	checks := []struct {
		name string
		run  func(*testing.T, Case)
	}{
		{"the provider reports its registry name", checkName},
		{"the upstream URL carries state, nonce, the S256 challenge and the exact callback", checkAuthCodeURL},
		{"a login yields the verified identity and the upstream tokens", checkLogin},
		{"a refresh renews the upstream tokens", checkRefresh},
		{"bad ID tokens are rejected as access_denied", checkBadIDTokens},
		{"token responses without expires_in and with refresh_expires_in 0 are accepted", checkLifetimes},
		{"an IdP refusal is access_denied and an IdP outage temporarily_unavailable", checkTokenErrors},
		{"revocation and readiness reach the IdP or are no-ops", checkRevokeAndReady},
		{"every upstream call goes through the injected HTTP client", checkInjectedClient},
	}
	for _, ch := range checks {
		t.Run(ch.name, func(t *testing.T) {
			t.Parallel()
			ch.run(t, c)
		})
	}
}

// start starts the case's upstream and builds the provider through client
// (a fresh counting client when nil).
func start(t *testing.T, c Case, client *http.Client) (ports.IdentityProvider, *idp.Faulty) {
	t.Helper()
	up := c.Upstream(t, idp.FaultyOptions{
		ClientID: clientID, ClientSecret: clientSecret,
		Subject: subject, Email: email, Name: name,
	})
	s := Settings(up)
	if c.Settings != nil {
		c.Settings(&s, up)
	}
	section := providers.Registry[c.Name]()
	if c.Section != nil {
		c.Section(section, up)
	}
	if client == nil {
		client = NewCountingClient(t).Client
	}
	p, err := section.Open(t.Context(), s, client)
	require.NoError(t, err)
	require.NotNil(t, p)
	return p, up
}

func checkName(t *testing.T, c Case) {
	p, _ := start(t, c, nil)
	require.Equal(t, c.Name, p.Name())
}

func checkAuthCodeURL(t *testing.T, c Case) {
	p, up := start(t, c, nil)
	f := NewFlow()

	Code(t, p, up, f, c.Scopes...)

	q := up.LastAuthorize()
	require.Equal(t, "code", q.Get("response_type"))
	require.Equal(t, clientID, q.Get("client_id"))
	require.Equal(t, RedirectURL, q.Get("redirect_uri"), "the callback byte for byte")
	require.Equal(t, f.State, q.Get("state"))
	require.Equal(t, f.Nonce, q.Get("nonce"))
	require.Equal(t, f.Challenge(), q.Get("code_challenge"))
	require.Equal(t, "S256", q.Get("code_challenge_method"))
	require.Contains(t, strings.Fields(q.Get("scope")), "openid")
	require.False(t, q.Has("client_secret"), "the secret never travels through the browser")
}

func checkLogin(t *testing.T, c Case) {
	p, up := start(t, c, nil)
	before := time.Now()

	identity, tokens, err := Login(t, p, up, c.Scopes...)

	require.NoError(t, err)
	require.Equal(t, subject, identity.Subject)
	require.Equal(t, up.TokenIssuer, identity.Issuer, "the issuer of the verified ID token")
	require.Equal(t, email, identity.Email)
	require.True(t, identity.EmailVerified)
	require.Equal(t, name, identity.Name)
	for k, v := range c.Claims {
		require.Equal(t, v, identity.Claims[k], "claim %s", k)
	}
	require.NotEmpty(t, tokens.AccessToken)
	require.NotEmpty(t, tokens.IDToken)
	require.NotEmpty(t, tokens.RefreshToken, "the provider must ask the IdP for a refresh token the way the IdP wants")
	require.Equal(t, c.GrantedScope, tokens.Scope)
	require.WithinDuration(t, before.Add(time.Hour), tokens.Expiry, time.Minute)
}

func checkRefresh(t *testing.T, c Case) {
	p, up := start(t, c, nil)
	refresher, ok := p.(ports.Refresher)
	require.True(t, ok, "a provider that cannot refresh ends every session after one upstream access token")
	_, tokens, err := Login(t, p, up, c.Scopes...)
	require.NoError(t, err)

	fresh, err := refresher.Refresh(t.Context(), tokens)

	require.NoError(t, err)
	require.Equal(t, "refresh_token", up.LastToken().Form.Get("grant_type"))
	require.NotEmpty(t, fresh.Tokens.AccessToken)
	require.NotEqual(t, tokens.AccessToken, fresh.Tokens.AccessToken)
	require.Equal(t, tokens.RefreshToken, fresh.Tokens.RefreshToken, "a refresh token the IdP did not rotate is kept")
	require.Equal(t, c.GrantedScope, fresh.Tokens.Scope)
	require.NotNil(t, fresh.Identity, "a refresh with a new ID token renews the identity")
	require.Equal(t, subject, fresh.Identity.Subject)
	require.Equal(t, email, fresh.Identity.Email)

	up.Set(idp.Faults{TokenError: "invalid_grant"})
	_, err = refresher.Refresh(t.Context(), tokens)
	RequireCode(t, err, domain.CodeInvalidGrant)
}

func checkBadIDTokens(t *testing.T, c Case) {
	p, up := start(t, c, nil)
	cases := []struct {
		name  string
		fault idp.IDTokenFault
	}{
		{"bad signature", idp.IDTokenBadSignature},
		{"wrong audience", idp.IDTokenWrongAudience},
		{"wrong issuer", idp.IDTokenWrongIssuer},
		{"wrong nonce", idp.IDTokenWrongNonce},
		{"expired", idp.IDTokenExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// One IdP serves the cases in turn: a fault applies to the
			// next token response, so they must not overlap.
			f := NewFlow()
			cb := Code(t, p, up, f, c.Scopes...)
			up.Set(idp.Faults{IDToken: tc.fault})
			defer up.Set(idp.Faults{})

			_, _, err := p.Exchange(t.Context(), f.Exchange(cb))

			RequireCode(t, err, domain.CodeAccessDenied)
		})
	}
	// The same IdP unbroken is accepted: the failures were the faults'.
	_, _, err := Login(t, p, up, c.Scopes...)
	require.NoError(t, err)
}

func checkLifetimes(t *testing.T, c Case) {
	p, up := start(t, c, nil)
	up.Set(idp.Faults{OmitExpiresIn: true, TokenExtra: map[string]any{"refresh_expires_in": 0}})

	_, tokens, err := Login(t, p, up, c.Scopes...)

	require.NoError(t, err)
	require.True(t, tokens.Expiry.IsZero(), "no expires_in: the expiry is unknown, not invented")
	require.NotEmpty(t, tokens.RefreshToken, "refresh_expires_in 0 means no expiry, not no refresh token")
}

func checkTokenErrors(t *testing.T, c Case) {
	p, up := start(t, c, nil)
	cases := []struct {
		faults idp.Faults
		want   domain.ErrorCode
	}{
		{idp.Faults{TokenError: "invalid_grant", TokenErrorDescription: "code expired for ada@suite.example"}, domain.CodeAccessDenied},
		{idp.Faults{TokenStatus: http.StatusServiceUnavailable}, domain.CodeTemporarilyUnavailable},
	}
	for _, tc := range cases {
		f := NewFlow()
		cb := Code(t, p, up, f, c.Scopes...)
		up.Set(tc.faults)

		_, _, err := p.Exchange(t.Context(), f.Exchange(cb))

		e := RequireCode(t, err, tc.want)
		require.NotContains(t, e.Description, email, "the IdP's text never reaches the client")
		up.Set(idp.Faults{})
	}
}

func checkRevokeAndReady(t *testing.T, c Case) {
	p, up := start(t, c, nil)
	if rc, ok := p.(ports.ReadinessChecker); ok {
		require.NoError(t, rc.Ready(t.Context()))
	}
	revoker, ok := p.(ports.Revoker)
	if !ok {
		return
	}
	_, tokens, err := Login(t, p, up, c.Scopes...)
	require.NoError(t, err)

	require.NoError(t, revoker.Revoke(t.Context(), tokens))

	if up.Calls().Revocation > 0 {
		require.True(t, up.Revoked(tokens.RefreshToken), "the refresh token ends the upstream grant")
	}
}

func checkInjectedClient(t *testing.T, c Case) {
	client := NewCountingClient(t)
	p, up := start(t, c, client.Client)
	_, tokens, err := Login(t, p, up, c.Scopes...)
	require.NoError(t, err)
	if r, ok := p.(ports.Refresher); ok {
		_, err = r.Refresh(t.Context(), tokens)
		require.NoError(t, err)
	}
	if r, ok := p.(ports.Revoker); ok {
		require.NoError(t, r.Revoke(t.Context(), tokens))
	}
	if r, ok := p.(ports.ReadinessChecker); ok {
		require.NoError(t, r.Ready(t.Context()))
	}

	calls := up.Calls()
	server := calls.Discovery + calls.JWKS + calls.Token + calls.Revocation + calls.UserInfo
	require.Positive(t, server)
	require.Equal(t, int64(server), client.Requests(),
		"every request the IdP's server side received came through the injected client (the browser made the rest)")
}
