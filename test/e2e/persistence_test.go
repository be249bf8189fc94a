package e2e_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClientsAndRefreshTokensSurviveARestart(t *testing.T) {
	p, _ := startWithOP(t)
	c := p.register(t, nil)
	tok, _ := p.login(t, c)

	p.restart()

	next, err := p.refresh(t, c, tok.RefreshToken)
	require.NoError(t, err, "the refresh token and the client are still there")
	require.NotEmpty(t, next.AccessToken)
	// The client can run a new flow too.
	again, _ := p.login(t, c)
	require.NotEmpty(t, again.RefreshToken)
}

func TestNoSecretReachesTheLogsOrTheStoreFile(t *testing.T) {
	p, _ := startWithOP(t)
	c := p.register(t, map[string]any{"token_endpoint_auth_method": "client_secret_post"})
	require.NotEmpty(t, c.Secret)
	f := newFlow(t, c)
	redirect := p.authorize(t, f)
	code := redirect.Query().Get("code")
	tok, err := c.OAuth.Exchange(t.Context(), code, withVerifier(f.Verifier))
	require.NoError(t, err)
	next, err := p.refresh(t, c, tok.RefreshToken)
	require.NoError(t, err)
	// Failures log too: a replayed code and a reused refresh token.
	_, _ = c.OAuth.Exchange(t.Context(), code, withVerifier(f.Verifier))
	_, _ = p.refresh(t, c, tok.RefreshToken)

	secrets := map[string]string{
		"client secret":          c.Secret,
		"authorization code":     code,
		"code verifier":          f.Verifier,
		"access token":           tok.AccessToken,
		"refresh token":          tok.RefreshToken,
		"rotated refresh token":  next.RefreshToken,
		"upstream client secret": upstreamSecret,
	}
	logs := p.Logs.String()
	require.NotEmpty(t, logs)
	p.stop()
	db, err := os.ReadFile(p.StorePath)
	require.NoError(t, err)
	for name, s := range secrets {
		require.NotContains(t, logs, s, "%s in the logs", name)
		require.False(t, strings.Contains(string(db), s), "%s in the store file", name)
	}
	// The access token's signature part alone must not be there either.
	parts := strings.Split(tok.AccessToken, ".")
	require.False(t, strings.Contains(string(db), parts[2]))
}
