package oidc_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/providers/oidc"
	"github.com/oidcproxy/oidcproxy/test/idp"
	"github.com/oidcproxy/oidcproxy/test/providertest"
)

func startRealOP(t *testing.T) (*idp.OP, *oidc.Provider, *countingTransport) {
	t.Helper()
	op := idp.StartOP(t, idp.Client{ID: "proxy", Secret: "proxy-secret", RedirectURIs: []string{callback}})
	client, counter := newCountingClient(t)
	p, err := oidc.New(t.Context(), oidc.Settings{
		ConfigURL:    op.ConfigURL,
		ClientID:     "proxy",
		ClientSecret: "proxy-secret",
		RedirectURL:  callback,
		Strict:       true,
		Timeout:      5 * time.Second,
	}, client)
	require.NoError(t, err)
	return op, p, counter
}

func TestRealOPLoginYieldsTheUsersVerifiedIdentity(t *testing.T) {
	t.Parallel()
	op, p, _ := startRealOP(t)

	identity, tokens, err := login(t, p, op, "email", "profile")
	require.NoError(t, err)

	require.Equal(t, op.Subject, identity.Subject)
	require.Equal(t, op.Issuer, identity.Issuer)
	require.Equal(t, op.Email, identity.Email)
	require.True(t, identity.EmailVerified)
	require.NotEmpty(t, identity.Name)
	require.NotEmpty(t, tokens.AccessToken)
	require.NotEqual(t, 2, strings.Count(tokens.AccessToken, "."), "the example OP issues opaque access tokens to web clients")
	require.NotEmpty(t, tokens.IDToken)
	require.NotEmpty(t, tokens.RefreshToken, "offline_access is in the OP's scopes_supported, so it was requested")
	require.False(t, tokens.Expiry.IsZero())
	require.Equal(t, op.Issuer, p.Issuer())
}

func TestRealOPAuthorizeURLAsksForOfflineAccessAndPKCE(t *testing.T) {
	t.Parallel()
	_, p, _ := startRealOP(t)
	f := newFlow()

	u, err := url.Parse(p.AuthCodeURL(f.Request("email")))
	require.NoError(t, err)

	q := u.Query()
	require.Equal(t, "openid offline_access email", q.Get("scope"))
	require.Equal(t, f.Challenge(), q.Get("code_challenge"))
	require.Equal(t, "S256", q.Get("code_challenge_method"))
	require.Equal(t, callback, q.Get("redirect_uri"))
}

func TestRealOPRefreshRotatesTheRefreshToken(t *testing.T) {
	t.Parallel()
	op, p, _ := startRealOP(t)
	_, tokens, err := login(t, p, op)
	require.NoError(t, err)

	refreshed, err := p.Refresh(t.Context(), tokens)
	require.NoError(t, err)

	require.NotEmpty(t, refreshed.Tokens.AccessToken)
	require.NotEqual(t, tokens.AccessToken, refreshed.Tokens.AccessToken)
	require.NotEmpty(t, refreshed.Tokens.RefreshToken)
	require.NotEqual(t, tokens.RefreshToken, refreshed.Tokens.RefreshToken, "the example OP rotates refresh tokens")
	require.NotEmpty(t, refreshed.Tokens.IDToken)

	_, err = p.Refresh(t.Context(), tokens)
	providertest.RequireCode(t, err, domain.CodeInvalidGrant)
}

func TestRealOPRevokeEndsTheUpstreamGrant(t *testing.T) {
	t.Parallel()
	op, p, _ := startRealOP(t)
	_, tokens, err := login(t, p, op)
	require.NoError(t, err)
	require.NotEmpty(t, p.RevocationEndpoint())

	require.NoError(t, p.Revoke(t.Context(), tokens))
	require.Equal(t, 1, op.RevocationCalls())

	_, err = p.Refresh(t.Context(), tokens)
	providertest.RequireCode(t, err, domain.CodeInvalidGrant)
}

func TestRealOPUnreachableIsTemporarilyUnavailable(t *testing.T) {
	t.Parallel()
	op, p, _ := startRealOP(t)
	f := newFlow()
	code := loginCode(t, p, op, f)
	require.NoError(t, p.Ready(t.Context()))

	op.SetDown(true)

	_, _, err := p.Exchange(t.Context(), exchangeRequest(code, f))
	providertest.RequireCode(t, err, domain.CodeTemporarilyUnavailable)
	require.Error(t, p.Ready(t.Context()))

	op.SetDown(false)
	require.NoError(t, p.Ready(t.Context()))
}

func TestRealOPCodeExchangeUsesTheInjectedClientOnly(t *testing.T) {
	t.Parallel()
	op, p, counter := startRealOP(t)
	discovery := counter.n.Load()
	require.Equal(t, int64(1), discovery, "discovery went through the injected client")

	_, tokens, err := login(t, p, op)
	require.NoError(t, err)
	require.Equal(t, 1, op.TokenCalls())
	// token endpoint, JWKS for the ID-token signature, and userinfo: the
	// example OP keeps email out of ID tokens that come with an access token.
	require.Equal(t, int64(4), counter.n.Load())

	refreshed, err := p.Refresh(t.Context(), tokens)
	require.NoError(t, err)
	// token endpoint and userinfo (JWKS is cached): the refreshed ID token
	// has no email either, and the renewed identity looks for it there.
	require.Equal(t, int64(6), counter.n.Load(), "refresh")
	require.NotNil(t, refreshed.Identity)
	require.Equal(t, op.Subject, refreshed.Identity.Subject)

	require.NoError(t, p.Revoke(t.Context(), tokens))
	require.Equal(t, int64(7), counter.n.Load())
	require.NoError(t, p.Ready(t.Context()))
	require.Equal(t, int64(8), counter.n.Load())
}
