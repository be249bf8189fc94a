package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/oidcproxy/oidcproxy/test/browser"
	"github.com/oidcproxy/oidcproxy/test/idp"
)

// syncBuffer collects a subcommand's output while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestVersionAndUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 0, run(t.Context(), []string{"version"}, envOf(nil), &out, &errOut))
	require.Contains(t, out.String(), "oidcproxy")
	require.Equal(t, 2, run(t.Context(), nil, envOf(nil), &out, &errOut))
	require.Equal(t, 2, run(t.Context(), []string{"frobnicate"}, envOf(nil), &out, &errOut))
	require.Contains(t, errOut.String(), `unknown command "frobnicate"`)
}

func TestCheckReportsEveryProblemAtOnceWithoutLeakingSecrets(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(t.Context(), []string{"check"}, envOf(map[string]string{
		"OIDC_PROXY_BASE_URL":         "ftp://example.com",
		"OIDC_PROXY_CLIENT_SECRET":    "super-secret-value",
		"OIDC_PROXY_ACCESS_TOKEN_TTL": "-1h",
		"OIDC_PROXY_CONSENT":          "sometimes",
	}), &out, &errOut)
	require.Equal(t, 1, code)
	msg := errOut.String()
	for _, want := range []string{"OIDC_PROXY_BASE_URL", "OIDC_PROXY_CLIENT_ID", "OIDC_PROXY_CONFIG_URL", "OIDC_PROXY_ACCESS_TOKEN_TTL", "OIDC_PROXY_CONSENT"} {
		require.Contains(t, msg, want)
	}
	require.NotContains(t, msg, "super-secret-value")
}

func TestCheckReachesTheUpstreamDiscovery(t *testing.T) {
	f := idp.NewFaulty(t, idp.FaultyOptions{ClientID: "c", ClientSecret: "s"})
	env := map[string]string{
		"OIDC_PROXY_BASE_URL":        "http://localhost:8000",
		"OIDC_PROXY_CONFIG_URL":      f.ConfigURL,
		"OIDC_PROXY_CLIENT_ID":       "c",
		"OIDC_PROXY_CLIENT_SECRET":   "s",
		"OIDC_PROXY_TIMEOUT_SECONDS": "2",
	}
	var out, errOut bytes.Buffer
	require.Equal(t, 0, run(t.Context(), []string{"check"}, envOf(env), &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "upstream: ok")
	require.Contains(t, out.String(), "http://localhost:8000/auth/callback")

	f.Update(func(x *idp.Faults) { x.DiscoveryStatus = http.StatusInternalServerError })
	out.Reset()
	require.Equal(t, 1, run(t.Context(), []string{"check"}, envOf(env), &out, &errOut))
	require.Contains(t, out.String(), "upstream: FAILED")
}

func TestCheckReportsAPresetsProblemsUnderItsSettingsWithEveryOtherProblem(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"azure", []string{"--azure-authority", "http://login.example"}, map[string]string{
			"OIDC_PROXY_PROVIDER": "azure", "OIDC_PROXY_AZURE_TENANT_ID": "common/../evil", "OIDC_PROXY_AUDIENCE": "api://x",
		}, []string{
			"OIDC_PROXY_AZURE_TENANT_ID: must be a tenant ID", "OIDC_PROXY_AZURE_AUTHORITY: must be an https URL",
			"OIDC_PROXY_REQUIRED_SCOPES: must name at least one scope your API exposes", "OIDC_PROXY_AUDIENCE: must be the application (client) ID",
		}},
		{"auth0", nil, map[string]string{"OIDC_PROXY_PROVIDER": "auth0", "OIDC_PROXY_AUTH0_DOMAIN": "https://example.auth0.com"}, []string{
			"OIDC_PROXY_AUTH0_DOMAIN: must be a bare host name", "OIDC_PROXY_AUDIENCE: is required for provider auth0",
		}},
		{"google", []string{"--google-hosted-domain", "user@example.com"}, map[string]string{"OIDC_PROXY_PROVIDER": "google"}, []string{
			"OIDC_PROXY_GOOGLE_HOSTED_DOMAIN: must be a domain name",
		}},
		{"oidc", nil, map[string]string{"OIDC_PROXY_PROVIDER": "oidc"}, []string{"OIDC_PROXY_CONFIG_URL: is required for provider oidc"}},
		{"an unknown provider", nil, map[string]string{"OIDC_PROXY_PROVIDER": "okta"}, []string{
			`OIDC_PROXY_PROVIDER: unknown provider "okta"; known providers: `,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.env["OIDC_PROXY_BASE_URL"] = "ftp://example.com"
			var out, errOut bytes.Buffer

			code := run(t.Context(), append([]string{"check"}, tc.args...), envOf(tc.env), &out, &errOut)

			require.Equal(t, 1, code)
			for _, want := range append(tc.want, "OIDC_PROXY_BASE_URL: ", "OIDC_PROXY_CLIENT_ID: ") {
				require.Contains(t, errOut.String(), "\n"+want)
			}
			require.Empty(t, out.String(), "nothing is fetched from a configuration that cannot work")
		})
	}
}

func TestCheckReachesAPresetsDiscoveryWithItsOwnSettings(t *testing.T) {
	up := idp.NewAzure(t, idp.AzureOptions{FaultyOptions: idp.FaultyOptions{ClientID: "c", ClientSecret: "s"}})
	env := map[string]string{
		"OIDC_PROXY_PROVIDER":        "azure",
		"OIDC_PROXY_BASE_URL":        "http://localhost:8000",
		"OIDC_PROXY_CONFIG_URL":      up.ConfigURL,
		"OIDC_PROXY_CLIENT_ID":       "c",
		"OIDC_PROXY_CLIENT_SECRET":   "s",
		"OIDC_PROXY_REQUIRED_SCOPES": "mcp.read",
	}
	var out, errOut bytes.Buffer

	code := run(t.Context(), []string{"check", "--azure-tenant-id", "common"}, envOf(env), &out, &errOut)

	require.Equal(t, 0, code, errOut.String())
	require.Contains(t, out.String(), "upstream: ok")
	require.Positive(t, up.Calls().Discovery)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startDev runs `oidcproxy dev` until the test ends and returns its base URL.
func startDev(t *testing.T) string {
	t.Helper()
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	startDevWith(t, map[string]string{
		"OIDC_PROXY_LISTEN_ADDR": fmt.Sprintf("127.0.0.1:%d", port),
		"OIDC_PROXY_BASE_URL":    base,
	}, base)
	return base
}

// startDevWith runs `oidcproxy dev` with env until the test ends, waits
// for its metadata at base and returns what it printed.
func startDevWith(t *testing.T, env map[string]string, base string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"dev"}, envOf(env), &out, &errOut) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			require.Equal(t, 0, code, errOut.String())
		case <-time.After(20 * time.Second):
			t.Error("oidcproxy dev did not stop")
		}
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/.well-known/oauth-authorization-server")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 15*time.Second, 50*time.Millisecond, "dev did not come up: %s %s", out.String(), errOut.String())
	require.Contains(t, out.String(), "DEVELOPMENT ONLY")
	return out.String()
}

// devLogin registers a client at a running dev proxy, signs the dev user in
// with the scripted browser and returns the client's token.
func devLogin(t *testing.T, base string) *oauth2.Token {
	t.Helper()
	return devLoginAs(t, base, browser.New("test-user@localhost", "verysecure"))
}

// devLoginAs is devLogin with a given browser.
func devLoginAs(t *testing.T, base string, b *browser.Browser) *oauth2.Token {
	t.Helper()
	const redirect = "http://127.0.0.1:9/callback"
	body := strings.NewReader(`{"client_name":"dev test","redirect_uris":["` + redirect + `"]}`)
	resp, err := http.Post(base+"/register", "application/json", body)
	require.NoError(t, err)
	var reg struct {
		ClientID string `json:"client_id"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&reg))
	resp.Body.Close()

	cfg := &oauth2.Config{ClientID: reg.ClientID, RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{AuthURL: base + "/authorize", TokenURL: base + "/token", AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	b.StopAt = redirect
	res, err := b.Authorize(t.Context(), cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("resource", base+"/mcp")))
	require.NoError(t, err)
	require.Equal(t, "st", res.URL.Query().Get("state"), res.URL.String())
	tok, err := cfg.Exchange(t.Context(), res.URL.Query().Get("code"), oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	return tok
}

func TestDevServesMetadataAndCompletesAFlowToTheDemoServer(t *testing.T) {
	base := startDev(t)
	tok := devLogin(t, base)
	require.NotEmpty(t, tok.RefreshToken)

	client := mcp.NewClient(&mcp.Implementation{Name: "dev-test", Version: "1"}, nil)
	session, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{
		Endpoint:   base + "/mcp",
		HTTPClient: oauth2.NewClient(t.Context(), oauth2.StaticTokenSource(tok)),
	}, nil)
	require.NoError(t, err)
	defer session.Close()
	res, err := session.CallTool(t.Context(), &mcp.CallToolParams{Name: "whoami"})
	require.NoError(t, err)
	require.False(t, res.IsError, "%+v", res.Content)
	require.Contains(t, res.Content[0].(*mcp.TextContent).Text, "You are ")
	require.Contains(t, res.Content[0].(*mcp.TextContent).Text, "test-user@")

	// Without a token the gateway challenges.
	resp, err := http.Post(base+"/mcp", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Contains(t, resp.Header.Get("WWW-Authenticate"), "resource_metadata=")
}

func decode(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	defer resp.Body.Close()
	var doc map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	return doc
}
