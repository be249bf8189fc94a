package e2e_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

func introspect(t *testing.T, p *proxy, token, bearer string, basic ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.BaseURL+"/introspect",
		stringsReader(url.Values{"token": {token}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if len(basic) == 2 {
		req.SetBasicAuth(basic[0], basic[1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	return resp.StatusCode, decodeBody(t, resp)
}

func TestResourceServersCanIntrospectAccessTokens(t *testing.T) {
	const secret = "introspection-secret-for-resource-servers"
	p, op := startWithOP(t, withEnv("INTROSPECTION_SECRET", secret))
	c := p.register(t, nil)
	tok, _ := p.login(t, c)

	status, doc := introspect(t, p, tok.AccessToken, secret)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, true, doc["active"])
	require.Equal(t, op.Subject, doc["sub"])
	require.Equal(t, c.ID, doc["client_id"])
	require.Equal(t, p.BaseURL+"/mcp", doc["aud"])
	require.Equal(t, p.BaseURL, doc["iss"])

	// A refresh token is nobody's business but its client's.
	status, doc = introspect(t, p, tok.RefreshToken, secret)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, map[string]any{"active": false}, doc)

	// Garbage is simply inactive.
	status, doc = introspect(t, p, "not-a-token", secret)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, map[string]any{"active": false}, doc)

	// Without (or with a wrong) secret: 401.
	status, doc = introspect(t, p, tok.AccessToken, "wrong")
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, "invalid_client", doc["error"])
	status, _ = introspect(t, p, tok.AccessToken, "")
	require.Equal(t, http.StatusUnauthorized, status, "a public client id alone proves nothing")

	// After revocation the token is inactive at once.
	status, _, _ = p.postFormJSON(t, "/revoke", url.Values{"token": {tok.AccessToken}, "client_id": {c.ID}})
	require.Equal(t, http.StatusOK, status)
	status, doc = introspect(t, p, tok.AccessToken, secret)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, false, doc["active"])
}

func TestConfidentialClientsIntrospectTheirOwnRefreshTokens(t *testing.T) {
	p, _ := startWithOP(t)
	c := p.register(t, map[string]any{"token_endpoint_auth_method": "client_secret_basic"})
	other := p.register(t, map[string]any{"token_endpoint_auth_method": "client_secret_basic"})
	tok, _ := p.login(t, c)

	status, doc := introspect(t, p, tok.RefreshToken, "", c.ID, c.Secret)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, true, doc["active"])
	require.Equal(t, "refresh_token", doc["token_type"])

	status, doc = introspect(t, p, tok.RefreshToken, "", other.ID, other.Secret)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, false, doc["active"])

	status, doc = introspect(t, p, tok.RefreshToken, "", c.ID, "wrong-secret")
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, "invalid_client", doc["error"])
}
