package e2e_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
)

// e2ePolicy is the operator's policy file: whoami needs a scope the client
// does not ask for at first, countdown is for another company's users.
const e2ePolicy = `
authorization:
  rules:
    - name: whoami needs its scope
      tools: [whoami]
      scopes: [mcp:whoami]
    - name: countdown for nowhere.example
      tools: [countdown]
      condition: 'email.endsWith("@nowhere.example")'
`

// toolBackend is an MCP server (official Go SDK) that counts the calls of
// each of its tools.
type toolBackend struct {
	URL   string
	mu    sync.Mutex
	calls map[string]int
}

func (b *toolBackend) Calls(name string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[name]
}

func startToolBackend(t *testing.T) *toolBackend {
	t.Helper()
	b := &toolBackend{calls: map[string]int{}}
	server := mcp.NewServer(&mcp.Implementation{Name: "e2e-policy-backend", Version: "1"}, nil)
	for _, name := range []string{"whoami", "countdown", "search"} {
		mcp.AddTool(server, &mcp.Tool{Name: name},
			func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, whoami, error) {
				b.mu.Lock()
				b.calls[name]++
				b.mu.Unlock()
				return nil, whoami{Subject: req.Extra.Header.Get("X-Forwarded-User")}, nil
			})
	}
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	t.Cleanup(srv.Close)
	b.URL = srv.URL + "/mcp"
	return b
}

func TestThePolicyFileDecidesWhatAnMCPClientMayCallThroughTheApp(t *testing.T) {
	be := startToolBackend(t)
	policyPath := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(policyPath, []byte(e2ePolicy), 0o600))
	p, op := startWithOP(t, withEnv("MCP_UPSTREAM", be.URL), withEnv("POLICY_FILE", policyPath),
		withEnv("SCOPES_SUPPORTED", "openid profile email offline_access mcp:whoami"))

	// At first the client asks for everything but mcp:whoami.
	var mu sync.Mutex
	var asked [][]string
	oauth := sdkOAuthScoped(t, p, func(discovered []string) []string {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, slices.Clone(discovered))
		if len(asked) == 1 {
			return slices.DeleteFunc(slices.Clone(discovered), func(s string) bool { return s == "mcp:whoami" })
		}
		return discovered
	})
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	session, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: p.BaseURL + "/mcp", OAuthHandler: oauth}, nil)
	require.NoError(t, err)
	defer session.Close()

	names := func() []string {
		res, err := session.ListTools(t.Context(), nil)
		require.NoError(t, err)
		var out []string
		for _, tool := range res.Tools {
			out = append(out, tool.Name)
		}
		slices.Sort(out)
		return out
	}
	require.Equal(t, []string{"search"}, names(), "whoami needs a scope the token lacks; countdown is for another domain")

	_, err = session.CallTool(t.Context(), &mcp.CallToolParams{Name: "countdown"})
	require.ErrorContains(t, err, `Forbidden: tool "countdown" is not allowed for this caller`)
	require.Zero(t, be.Calls("countdown"), "the refused call never reached the MCP server")

	// whoami: 403 insufficient_scope with the scope to ask for; the SDK
	// steps up (a new authorization with mcp:whoami) and retries.
	res, err := session.CallTool(t.Context(), &mcp.CallToolParams{Name: "whoami"})
	require.NoError(t, err)
	require.False(t, res.IsError)
	require.Equal(t, op.Subject, res.StructuredContent.(map[string]any)["subject"])
	require.Equal(t, 1, be.Calls("whoami"))
	mu.Lock()
	require.Len(t, asked, 2, "one authorization, then one step-up")
	require.Equal(t, []string{"mcp:whoami"}, asked[1], "the step-up asks for the scope the challenge named")
	mu.Unlock()
	require.Equal(t, []string{"search", "whoami"}, names(), "with the scope, whoami is listed")

	logs := p.Logs.String()
	require.Contains(t, logs, `"event":"mcp_request_denied"`)
	require.Contains(t, logs, `"reason":"authorization.rules[1] \"countdown for nowhere.example\""`)
	require.Contains(t, logs, `"decision":"insufficient_scope"`)

	rec := httptest.NewRecorder()
	p.App.AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	text := string(body)
	// The SDK sends a call refused with 403 and no insufficient_scope
	// once more before it gives up: two refusals of countdown.
	require.Contains(t, text, `oidcproxy_gateway_decisions_total{mcp_method_name="tools/call",oidcproxy_decision="forbidden"} 2`)
	require.Contains(t, text, `oidcproxy_gateway_decisions_total{mcp_method_name="tools/call",oidcproxy_decision="insufficient_scope"} 1`)
	require.Contains(t, text, `oidcproxy_gateway_list_entries_hidden_total{mcp_method_name="tools/list"} 3`)
	require.False(t, strings.Contains(text, "countdown"), "tool names are never metric labels")
}
