package e2e_test

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/httpapi"
)

// serveAdmin serves the App's admin listener on loopback, as Run does on
// ADMIN_ADDR, and returns its URL.
func (p *proxy) serveAdmin(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(p.App.AdminHandler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// adminPost sends a JSON body to the admin listener as the CLI does and
// decodes the answer into out.
func adminPost(t *testing.T, u string, body, out any) int {
	t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, bytes.NewReader(raw))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(httpapi.AdminRequestHeader, "1")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
	return resp.StatusCode
}

// bearerTransport adds a fixed bearer token to every request: an MCP
// client that already holds its access token.
type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// An operator revokes a user's grants on the admin listener while the
// user's MCP sessions (the official Go SDK, with tokens of two clients)
// are open: the next tool call of each fails, and the revocation is an
// audit event that names the user but no token.
func TestRevokingAUsersGrantsEndsTheirMCPSessionsAtOnce(t *testing.T) {
	be := startBackend(t)
	p, op := startWithOP(t, withEnv("MCP_UPSTREAM", be.URL))
	admin := p.serveAdmin(t)
	desktop, ide := p.register(t, nil), p.register(t, nil)
	desktopTok, _ := p.login(t, desktop)
	ideTok, _ := p.login(t, ide)

	connect := func(token string) *mcp.ClientSession {
		client := mcp.NewClient(&mcp.Implementation{Name: "e2e-admin", Version: "1"}, nil)
		session, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{
			Endpoint:   p.BaseURL + "/mcp",
			HTTPClient: &http.Client{Transport: bearerTransport{token: token}},
		}, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = session.Close() })
		return session
	}
	sessions := []*mcp.ClientSession{connect(desktopTok.AccessToken), connect(ideTok.AccessToken)}
	for _, s := range sessions {
		res, err := s.CallTool(t.Context(), &mcp.CallToolParams{Name: "whoami"})
		require.NoError(t, err)
		require.Equal(t, op.Subject, res.StructuredContent.(map[string]any)["subject"])
	}

	var page httpapi.GrantPage
	resp, err := http.Get(admin + "/grants?" + url.Values{"user": {op.Subject}}.Encode())
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
	resp.Body.Close()
	require.Len(t, page.Grants, 2)

	var revoked httpapi.RevokedGrants
	p.Spans.Reset()
	require.Equal(t, http.StatusOK, adminPost(t, admin+"/grants/revoke", httpapi.RevokeGrantsRequest{User: op.Subject}, &revoked))
	require.Equal(t, 2, revoked.Revoked)
	spans := map[string]bool{}
	for _, s := range p.Spans.GetSpans() {
		spans[s.Name] = true
		for _, a := range s.Attributes {
			require.NotEqual(t, op.Subject, a.Value.Emit(), "span %s names the user", s.Name)
		}
	}
	require.True(t, spans["usecase.RevokeGrants"] && spans["store.RevokeGrants"], "%v", spans)

	for _, s := range sessions {
		_, err := s.CallTool(t.Context(), &mcp.CallToolParams{Name: "whoami"})
		require.Error(t, err, "the very next call after the revocation")
	}
	for _, tok := range []string{desktopTok.AccessToken, ideTok.AccessToken} {
		resp, _ := bearerPost(t, p, tok, nil, nil)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		require.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
	}
	_, err = p.refresh(t, desktop, desktopTok.RefreshToken)
	require.Equal(t, "invalid_grant", oauthErrorCode(err), "the refresh token died with the grant")

	logs := p.Logs.String()
	require.Contains(t, logs, `"event":"admin_grants_revoked"`)
	require.Contains(t, logs, `"sub":"`+op.Subject+`"`)
	require.Contains(t, logs, `"revoked":2`)
	for _, secret := range []string{desktopTok.AccessToken, desktopTok.RefreshToken, ideTok.AccessToken} {
		require.False(t, strings.Contains(logs, secret), "no token is logged")
	}
}
