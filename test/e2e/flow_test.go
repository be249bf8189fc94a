package e2e_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAnMCPClientGetsTokensThroughTheProxyFromARealOpenIDProvider(t *testing.T) {
	p, op := startWithOP(t)
	c := p.register(t, nil)

	tok, _ := p.login(t, c)
	require.NotEmpty(t, tok.AccessToken)
	require.NotEmpty(t, tok.RefreshToken)
	require.Equal(t, "Bearer", tok.TokenType)
	require.True(t, tok.Expiry.After(p.Clock.Now()))

	// Refresh rotates the refresh token.
	next, err := p.refresh(t, c, tok.RefreshToken)
	require.NoError(t, err)
	require.NotEqual(t, tok.RefreshToken, next.RefreshToken)
	require.NotEmpty(t, next.AccessToken)

	// Revoking the refresh token ends the grant: the successor is dead too.
	status, _, _ := p.postFormJSON(t, "/revoke", url.Values{"token": {next.RefreshToken}, "client_id": {c.ID}})
	require.Equal(t, http.StatusOK, status)
	_, err = p.refresh(t, c, next.RefreshToken)
	require.Equal(t, "invalid_grant", oauthErrorCode(err))
	require.Equal(t, 1, op.RevocationCalls(), "the upstream refresh token is revoked as well")
}
