package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/oidcproxy/oidcproxy/adapters/httpapi"
	"github.com/oidcproxy/oidcproxy/test/idp"
	"github.com/oidcproxy/oidcproxy/test/pgtest"
)

// cli runs one subcommand and returns its exit code, standard output and
// standard error.
func cli(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(t.Context(), args, envOf(env), &out, &errOut)
	return code, out.String(), errOut.String()
}

// cliJSON runs a subcommand with --json, requires success and decodes its
// output into v.
func cliJSON(t *testing.T, env map[string]string, v any, args ...string) {
	t.Helper()
	code, out, errOut := cli(t, env, append(args, "--json")...)
	require.Equal(t, 0, code, errOut)
	require.NoError(t, json.Unmarshal([]byte(out), v), out)
}

// mcpBackend is an MCP server built with the official Go SDK, for the
// gateway to forward to.
func mcpBackend(t *testing.T) string {
	t.Helper()
	server := mcp.NewServer(&mcp.Implementation{Name: "cli-test-backend", Version: "1"}, nil)
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp"
}

// initialize sends an MCP initialize request through the gateway with the
// bearer token and returns the status.
func initialize(t *testing.T, base, token string) int {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"cli-test","version":"1"}}}`
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/mcp", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// jwksFile writes a JWK Set with one fresh public key and returns its path.
func jwksFile(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	doc, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "ci-1", Algorithm: "ES256", Use: "sig"}}})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "client-jwks.json")
	require.NoError(t, os.WriteFile(path, doc, 0o600))
	return path
}

// While a server runs, `grants revoke --user` goes through its admin
// listener: every token of the user stops at the gateway with the very
// next request.
func TestGrantsRevokeUserEndsEveryTokenAtTheGatewayAtOnce(t *testing.T) {
	f := idp.NewFaulty(t, idp.FaultyOptions{ClientID: "proxy", ClientSecret: "proxy-secret"})
	env := serveEnv(t, f.ConfigURL, filepath.Join(t.TempDir(), "p.db"))
	env["OIDC_PROXY_MCP_UPSTREAM"] = mcpBackend(t)
	env["OIDC_PROXY_ADMIN_TOKEN"] = "admin-token-for-the-test"
	serveUntil(t, env)
	base := env["OIDC_PROXY_BASE_URL"]

	first, firstCfg := loginAt(t, base)
	second, _ := loginAt(t, base)
	require.Equal(t, http.StatusOK, initialize(t, base, first.AccessToken))
	require.Equal(t, http.StatusOK, initialize(t, base, second.AccessToken))

	var page httpapi.GrantPage
	cliJSON(t, env, &page, "grants", "list", "--user", idp.DefaultSubject)
	require.Len(t, page.Grants, 2)
	clients := map[string]bool{}
	for _, g := range page.Grants {
		require.Equal(t, idp.DefaultSubject, g.Subject)
		require.False(t, g.ExpiresAt.IsZero())
		clients[g.ClientID] = true
	}
	require.Len(t, clients, 2, "one grant for each client")
	code, out, errOut := cli(t, env, "grants", "list")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "LAST REFRESH")
	require.Contains(t, out, "a use of an access token is not recorded")
	require.Contains(t, out, page.Grants[0].GrantID)

	code, out, errOut = cli(t, env, "grants", "revoke", "--user", idp.DefaultSubject)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "revoked 2 grant(s)")
	require.Equal(t, http.StatusUnauthorized, initialize(t, base, first.AccessToken), "at once, not at the token's expiry")
	require.Equal(t, http.StatusUnauthorized, initialize(t, base, second.AccessToken))
	_, err := firstCfg.TokenSource(t.Context(), &oauth2.Token{RefreshToken: first.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
	require.Error(t, err, "the refresh token died with its grant")

	cliJSON(t, env, &page, "grants", "list", "--user", idp.DefaultSubject)
	require.Empty(t, page.Grants)
	code, _, errOut = cli(t, env, "grants", "revoke")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "name what to revoke")

	// Without the token, the admin listener refuses the CLI.
	noToken := map[string]string{}
	for k, v := range env {
		noToken[k] = v
	}
	delete(noToken, "OIDC_PROXY_ADMIN_TOKEN")
	code, _, errOut = cli(t, noToken, "grants", "list")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "refused")
}

// Clients are managed through the running server too: a machine client is
// created with a secret shown once, listed as an operator's, and deleted
// with every grant of it.
func TestClientsCreateListAndDeleteWhileServing(t *testing.T) {
	f := idp.NewFaulty(t, idp.FaultyOptions{ClientID: "proxy", ClientSecret: "proxy-secret"})
	env := serveEnv(t, f.ConfigURL, filepath.Join(t.TempDir(), "p.db"))
	env["OIDC_PROXY_MCP_UPSTREAM"] = mcpBackend(t)
	serveUntil(t, env)
	base := env["OIDC_PROXY_BASE_URL"]
	tok, cfg := loginAt(t, base)

	code, out, errOut := cli(t, env, "clients", "create", "--name", "nightly CI", "--scope", "openid")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "client_secret:")
	require.Contains(t, out, "shown this once")
	var created httpapi.CreatedClient
	cliJSON(t, env, &created, "clients", "create", "--name", "agent", "--jwks-file", jwksFile(t))
	require.Equal(t, "private_key_jwt", created.TokenEndpointAuthMethod)
	require.Empty(t, created.ClientSecret)
	require.True(t, created.HasJWKS)

	var page struct {
		Clients []httpapi.AdminClient `json:"clients"`
	}
	cliJSON(t, env, &page, "clients", "list")
	kinds := map[string]bool{}
	for _, c := range page.Clients {
		kinds[c.ClientID] = c.Operator
	}
	require.Equal(t, map[string]bool{cfg.ClientID: false, created.ClientID: true}, map[string]bool{cfg.ClientID: kinds[cfg.ClientID], created.ClientID: kinds[created.ClientID]})
	require.Len(t, page.Clients, 3)
	cliJSON(t, env, &page, "clients", "list", "--limit", "2")
	require.Len(t, page.Clients, 2)
	code, out, errOut = cli(t, env, "clients", "list")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "KIND")
	require.Contains(t, out, "operator")
	require.Contains(t, out, "dynamic")

	code, out, errOut = cli(t, env, "clients", "create", "--name", "x", "--scope", "admin")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `scope "admin" is not supported`)
	code, _, errOut = cli(t, env, "clients", "create", "--name", "x", "--jwks-file", filepath.Join(t.TempDir(), "missing.json"))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "missing.json")

	require.Equal(t, http.StatusOK, initialize(t, base, tok.AccessToken))
	code, out, errOut = cli(t, env, "clients", "delete", cfg.ClientID)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "revoked 1 grant(s)")
	require.Equal(t, http.StatusUnauthorized, initialize(t, base, tok.AccessToken))
	code, _, errOut = cli(t, env, "clients", "delete", cfg.ClientID)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "no stored client")
	code, _, _ = cli(t, env, "clients", "delete")
	require.Equal(t, 2, code)
	code, _, _ = cli(t, env, "clients", "frobnicate")
	require.Equal(t, 2, code)
}

// With no server running the subcommands work on the store file, write
// their audit events to standard error, and a server started afterwards
// sees what they did.
func TestClientsAndGrantsOnAStoppedStore(t *testing.T) {
	f := idp.NewFaulty(t, idp.FaultyOptions{ClientID: "proxy", ClientSecret: "proxy-secret"})
	env := serveEnv(t, f.ConfigURL, filepath.Join(t.TempDir(), "p.db"))
	env["OIDC_PROXY_MCP_UPSTREAM"] = mcpBackend(t)
	stop := serveUntil(t, env)
	base := env["OIDC_PROXY_BASE_URL"]
	tok, cfg := loginAt(t, base)
	stop()
	// Audit events are Info records, which the test's "warn" would drop.
	env["OIDC_PROXY_LOG_LEVEL"] = "info"

	var grants httpapi.GrantPage
	cliJSON(t, env, &grants, "grants", "list", "--client", cfg.ClientID)
	require.Len(t, grants.Grants, 1)

	code, out, errOut := cli(t, env, "clients", "create", "--name", "offline CI")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "client_secret:")
	require.Contains(t, errOut, `"event":"admin_client_created"`)
	require.Contains(t, errOut, `"via":"command line"`)
	secret := out[strings.Index(out, "client_secret:")+len("client_secret:"):]
	secret = strings.TrimSpace(secret[:strings.Index(secret, "\n")])
	require.NotContains(t, errOut, secret, "the secret is never logged")

	code, out, errOut = cli(t, env, "grants", "revoke", "--grant", grants.Grants[0].GrantID)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "revoked 1 grant(s)")
	require.Contains(t, errOut, `"event":"admin_grants_revoked"`)

	serveUntil(t, env)
	require.Equal(t, http.StatusUnauthorized, initialize(t, base, tok.AccessToken), "the server started on the revoked store")
	var clients struct {
		Clients []httpapi.AdminClient `json:"clients"`
	}
	cliJSON(t, env, &clients, "clients", "list")
	require.Len(t, clients.Clients, 2)
}

// With DATABASE_URL the subcommands work on the database that every
// instance shares, while they serve: a revocation there ends the user's
// tokens at every instance's gateway with its next request.
func TestGrantsRevokeOnPostgreSQLReachesEveryInstance(t *testing.T) {
	f := idp.NewFaulty(t, idp.FaultyOptions{ClientID: "proxy", ClientSecret: "proxy-secret"})
	dbURL := pgtest.Schema(t)
	backend := mcpBackend(t)
	first := postgresEnv(t, f.ConfigURL, dbURL)
	first["OIDC_PROXY_MCP_UPSTREAM"] = backend
	// A second instance behind the same public URL: its own listeners,
	// the same issuer, key and database.
	second := map[string]string{}
	for k, v := range first {
		second[k] = v
	}
	second["OIDC_PROXY_LISTEN_ADDR"] = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	second["OIDC_PROXY_ADMIN_ADDR"] = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	serveUntil(t, first)
	serveUntil(t, second) // returns once the first answers: both share BASE_URL
	otherBase := "http://" + second["OIDC_PROXY_LISTEN_ADDR"]
	require.Eventually(t, func() bool {
		resp, err := http.Get(otherBase + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond)

	base := first["OIDC_PROXY_BASE_URL"]
	tok, _ := loginAt(t, base)
	require.Equal(t, http.StatusOK, initialize(t, base, tok.AccessToken))
	require.Equal(t, http.StatusOK, initialize(t, otherBase, tok.AccessToken))

	var page httpapi.GrantPage
	cliJSON(t, first, &page, "grants", "list", "--user", idp.DefaultSubject)
	require.Len(t, page.Grants, 1)
	code, out, errOut := cli(t, first, "grants", "revoke", "--user", idp.DefaultSubject)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "revoked 1 grant(s)")
	// The command revoked in the database itself, so both instances learn
	// of it from the database's notification: within a second, the bound
	// the PostgreSQL store promises, on each of them.
	for _, b := range []string{base, otherBase} {
		require.Eventually(t, func() bool { return initialize(t, b, tok.AccessToken) == http.StatusUnauthorized },
			time.Second, 5*time.Millisecond, "the revocation reaches %s", b)
	}
}
