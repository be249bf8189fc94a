package e2e_test

import (
	"encoding/base64"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy"
	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/test/pgtest"
)

// copyStore runs the copy `oidcproxy store copy` runs, with the proxy's
// encryption key.
func (p *proxy) copyStore(t *testing.T, from, to string) oidcproxy.StoreCopyResult {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(p.Env["OIDC_PROXY_ENCRYPTION_KEY"])
	require.NoError(t, err)
	res, err := oidcproxy.CopyStore(t.Context(), oidcproxy.StoreCopy{From: from, To: to, EncryptionKey: key})
	require.NoError(t, err)
	return res
}

// A user signs in through an App on its bbolt file; the App stops, the
// store is copied into PostgreSQL, and an App on the database (same
// address, same key) takes over: the access token issued before the copy
// passes its gateway, the refresh token rotates. Copied back into a new
// bbolt file, the session goes on again; and the refresh token rotated
// before the first copy is still recognised as reuse after the second,
// and ends the grant.
func TestASessionSurvivesACopyToPostgreSQLAndBack(t *testing.T) {
	be := startBackend(t)
	p, _ := startWithOP(t, withEnv("MCP_UPSTREAM", be.URL), withEnv("REFRESH_REUSE_GRACE", "0"))
	c := p.register(t, nil)
	first, _ := p.login(t, c)
	second, err := p.refresh(t, c, first.RefreshToken)
	require.NoError(t, err)
	p.stop()

	db := pgtest.Database(t)
	res := p.copyStore(t, p.StorePath, db)
	require.Equal(t, 2, res.Copied[ports.KindRefreshToken], "the rotated token and its successor")
	delete(p.Env, "OIDC_PROXY_STORE_PATH")
	p.Env["OIDC_PROXY_DATABASE_URL"] = db
	p.restart()

	resp, _ := bearerPost(t, p, second.AccessToken, nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "an access token signed before the copy verifies after it: the key ring moved")
	third, err := p.refresh(t, c, second.RefreshToken)
	require.NoError(t, err, "a refresh token issued before the copy works after it")
	p.stop()

	back := filepath.Join(t.TempDir(), "back.db")
	p.copyStore(t, db, back)
	delete(p.Env, "OIDC_PROXY_DATABASE_URL")
	p.Env["OIDC_PROXY_STORE_PATH"] = back
	p.restart()

	fourth, err := p.refresh(t, c, third.RefreshToken)
	require.NoError(t, err, "and after the copy back")
	_, err = p.refresh(t, c, first.RefreshToken)
	require.Equal(t, "invalid_grant", oauthErrorCode(err), "the token rotated before both copies is reuse")
	_, err = p.refresh(t, c, fourth.RefreshToken)
	require.Equal(t, "invalid_grant", oauthErrorCode(err), "which revoked the grant")
	resp, _ = bearerPost(t, p, fourth.AccessToken, nil, nil)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}
