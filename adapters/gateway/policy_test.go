package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/gateway"
	"github.com/oidcproxy/oidcproxy/adapters/policyfile"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// gatewayPolicy is the policy file of these tests: the scope rule hides
// delete_* from callers without mcp:admin, the group rule admin_* from
// non-admins, the CEL condition secret resources from everyone outside
// the security group. Prompts are named by no rule.
const gatewayPolicy = `
authorization:
  rules:
    - name: destructive tools
      tools: ["delete_*"]
      scopes: [mcp:write, mcp:admin]
    - name: admin tools
      tools: ["admin_*"]
      groups: [admins]
    - name: secret resources
      resources: ["file:///secret/*"]
      condition: '"security" in groups'
`

// Bearer tokens of the policy tests.
const (
	// tokenStaff holds mcp:write but not mcp:admin; groups [staff].
	tokenStaff = "staff.token.sig"
	// tokenAdmin holds every scope; groups [admins, security].
	tokenAdmin = "admin.token.sig"
)

// wantScopeChallenge is the challenge to tokenStaff calling delete_*: the
// gateway's own required scopes, then every scope of the matching rule.
const wantScopeChallenge = `Bearer error="insufficient_scope", scope="mcp:tools profile mcp:write mcp:admin", ` +
	`resource_metadata="` + testMetadataURL + `"`

// writePolicy writes a policy file and loads it with the real loader.
func writePolicy(t testing.TB, src string) (*policyfile.Source, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte(src), 0o600))
	s, err := policyfile.Load(path)
	require.NoError(t, err)
	return s, path
}

// decisions records what the gateway's Observer receives.
type decisions struct {
	mu     sync.Mutex
	seen   []string
	hidden []string
}

func (d *decisions) decided(_ context.Context, method, outcome string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seen = append(d.seen, method+" "+outcome)
}

func (d *decisions) hide(_ context.Context, method string, n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hidden = append(d.hidden, fmt.Sprint(method, " ", n))
}

func (d *decisions) all() ([]string, []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.seen), slices.Clone(d.hidden)
}

// newPolicyFixture puts the gateway with gatewayPolicy in front of
// backend, with the staff and admin tokens known to its verifier.
func newPolicyFixture(t testing.TB, backend http.Handler, src string) (*fixture, *decisions) {
	t.Helper()
	source, _ := writePolicy(t, src)
	d := &decisions{}
	f := newFixture(t, backend, func(o *gateway.Options) {
		o.Policy = source
		o.Observe.Decided = d.decided
		o.Observe.Hidden = d.hide
	})
	addPolicyTokens(f.verifier)
	return f, d
}

func addPolicyTokens(v *fixedVerifier) {
	user := func(sub, client string, scopes []string, groups ...any) verdict {
		g := grantFor("grant-"+sub, sub, sub+"@example.com", true)
		g.ClientID = client
		g.Identity.Claims = map[string]any{"groups": groups}
		return verdict{access: ports.VerifiedAccess{
			Token: domain.AccessToken{Subject: sub, ClientID: client, Scopes: scopes, GrantID: g.ID}, Grant: g,
		}}
	}
	v.results[tokenStaff] = user("sam", "client-s", []string{"mcp:tools", "profile", "mcp:write"}, "staff")
	v.results[tokenAdmin] = user("ada", "client-a", []string{"mcp:tools", "profile", "mcp:write", "mcp:admin"}, "admins", "security")
}

// policyBackend is a real MCP server (official Go SDK) with tools,
// prompts and resources on both sides of gatewayPolicy; it counts the
// calls each tool and resource receives.
type policyBackend struct {
	mu    sync.Mutex
	calls map[string]int
	http.Handler
}

func (b *policyBackend) count(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls[name]++
}

func (b *policyBackend) Calls(name string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[name]
}

// newPolicyBackend answers in JSON or event streams; sessionless (as the
// SDK serves protocol 2026-07-28) or with sessions (2025 revisions).
func newPolicyBackend(jsonAnswers, sessionless bool) *policyBackend {
	b := &policyBackend{calls: map[string]int{}}
	server := mcp.NewServer(&mcp.Implementation{Name: "backend", Version: "v1.0.0"}, nil)
	for _, name := range []string{"search", "delete_file", "admin_reset", "list_files"} {
		mcp.AddTool(server, &mcp.Tool{Name: name, Description: "the " + name + " tool"},
			func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, struct{}, error) {
				b.count(name)
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name + " done"}}}, struct{}{}, nil
			})
	}
	for _, uri := range []string{"file:///docs/guide", "file:///secret/keys"} {
		server.AddResource(&mcp.Resource{URI: uri, Name: "r"}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			b.count(uri)
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, Text: "contents"}}}, nil
		})
	}
	for _, name := range []string{"summarize", "delete_summary"} {
		server.AddPrompt(&mcp.Prompt{Name: name}, func(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: name}}}}, nil
		})
	}
	b.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server },
		&mcp.StreamableHTTPOptions{JSONResponse: jsonAnswers, Stateless: sessionless})
	return b
}

// connect opens an MCP session through the gateway with token, speaking
// protocol version (the SDK's newest when "").
func connect(t *testing.T, f *fixture, token, version string, rt func(http.RoundTripper) http.RoundTripper) *mcp.ClientSession {
	t.Helper()
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	var next http.RoundTripper = transport
	if rt != nil {
		next = rt(transport)
	}
	httpClient := &http.Client{Transport: &bearerTransport{token: token, host: "proxy.example", next: next}}
	client := mcp.NewClient(&mcp.Implementation{Name: "client", Version: "v1.0.0"}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: f.front.URL + "/mcp", HTTPClient: httpClient, MaxRetries: -1,
	}, &mcp.ClientSessionOptions{ProtocolVersion: version})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func toolNames(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	res, err := cs.ListTools(t.Context(), nil)
	require.NoError(t, err)
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	return names
}

func TestThePolicyDecidesEveryCallOfAnMCPSession(t *testing.T) {
	for _, answers := range []string{"event-stream", "json"} {
		for _, version := range []string{"2025-06-18", "2025-11-25", "2026-07-28"} {
			t.Run(answers+" answers, protocol "+version, func(t *testing.T) {
				backend := newPolicyBackend(answers == "json", version >= "2026-07-28")
				f, d := newPolicyFixture(t, backend, gatewayPolicy)
				cs := connect(t, f, tokenStaff, version, nil)
				require.Equal(t, version, cs.InitializeResult().ProtocolVersion)

				require.Equal(t, []string{"list_files", "search"}, toolNames(t, cs),
					"delete_file needs mcp:admin, admin_reset the admins group")

				res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "search"})
				require.NoError(t, err)
				require.False(t, res.IsError)
				require.Equal(t, 1, backend.Calls("search"))

				_, err = cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "delete_file"})
				require.ErrorContains(t, err, `Insufficient scope: tool "delete_file" needs the scopes mcp:tools profile mcp:write mcp:admin`)
				_, err = cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "admin_reset"})
				require.ErrorContains(t, err, `Forbidden: tool "admin_reset" is not allowed for this caller`)
				require.Zero(t, backend.Calls("delete_file"), "a refused call never reaches the backend")
				require.Zero(t, backend.Calls("admin_reset"), "a refused call never reaches the backend")

				resources, err := cs.ListResources(t.Context(), nil)
				require.NoError(t, err)
				require.Len(t, resources.Resources, 1)
				require.Equal(t, "file:///docs/guide", resources.Resources[0].URI)
				_, err = cs.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: "file:///secret/keys"})
				require.ErrorContains(t, err, `Forbidden: resource "file:///secret/keys"`)
				require.Zero(t, backend.Calls("file:///secret/keys"))

				prompts, err := cs.ListPrompts(t.Context(), nil)
				require.NoError(t, err)
				require.Len(t, prompts.Prompts, 2, "no rule names prompts: the list passes whole")

				// The session goes on after refusals (the SDK reads the
				// JSON-RPC error of a 403 as an error of that call).
				res, err = cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "list_files"})
				require.NoError(t, err)
				require.False(t, res.IsError)

				admin := connect(t, f, tokenAdmin, version, nil)
				require.Equal(t, []string{"admin_reset", "delete_file", "list_files", "search"}, toolNames(t, admin))
				_, err = admin.CallTool(t.Context(), &mcp.CallToolParams{Name: "delete_file"})
				require.NoError(t, err)
				require.Equal(t, 1, backend.Calls("delete_file"))

				seen, hidden := d.all()
				require.Contains(t, seen, "tools/call insufficient_scope")
				require.Contains(t, seen, "tools/call forbidden")
				require.Contains(t, seen, "resources/read forbidden")
				require.Contains(t, seen, "tools/call allowed")
				require.Contains(t, seen, "tools/list allowed")
				require.Contains(t, hidden, "tools/list 2")
				require.Contains(t, hidden, "resources/list 1")
				require.NotContains(t, strings.Join(seen, " "), "delete_file", "metrics never carry tool names")
			})
		}
	}
}

// postRPC posts one JSON-RPC body to the gateway.
func postRPC(t *testing.T, f *fixture, token, body string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	h := http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json, text/event-stream"}}
	for k, v := range header {
		h[k] = v
	}
	return f.do(t, http.MethodPost, "/mcp", token, []byte(body), h)
}

// tallyBackend counts the requests that reach it and answers each with
// an empty JSON-RPC result.
type tallyBackend struct {
	mu       sync.Mutex
	requests int
	headers  []http.Header
}

func (c *tallyBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	c.mu.Lock()
	c.requests++
	c.headers = append(c.headers, r.Header.Clone())
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
}

func (c *tallyBackend) Requests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests
}

// rpcError decodes a JSON-RPC error answer.
type rpcAnswer struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func decodeRPC(t *testing.T, body []byte) rpcAnswer {
	t.Helper()
	var a rpcAnswer
	require.NoError(t, json.Unmarshal(body, &a), string(body))
	require.Equal(t, "2.0", a.JSONRPC)
	return a
}

func TestARefusedCallGetsA403ThatSaysWhatToDo(t *testing.T) {
	be := &tallyBackend{}
	f, _ := newPolicyFixture(t, be, gatewayPolicy)

	t.Run("missing scopes: a challenge with every scope needed", func(t *testing.T) {
		res, body := postRPC(t, f, tokenStaff, `{"jsonrpc":"2.0","id":"call-9","method":"tools/call","params":{"name":"delete_file"}}`, nil)
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		require.Equal(t, []string{wantScopeChallenge}, res.Header.Values("Www-Authenticate"))
		require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
		a := decodeRPC(t, body)
		require.JSONEq(t, `"call-9"`, string(a.ID), "the request's id is echoed")
		require.Equal(t, codeForbidden, a.Error.Code)
		require.Equal(t, `Insufficient scope: tool "delete_file" needs the scopes mcp:tools profile mcp:write mcp:admin`, a.Error.Message)
	})
	t.Run("a missing group: a JSON-RPC error naming the tool, no challenge", func(t *testing.T) {
		res, body := postRPC(t, f, tokenStaff, `{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"admin_reset","arguments":{}}}`, nil)
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		require.Empty(t, res.Header.Values("Www-Authenticate"), "more scopes would not help")
		a := decodeRPC(t, body)
		require.JSONEq(t, `12`, string(a.ID))
		require.Equal(t, codeForbidden, a.Error.Code)
		require.Equal(t, `Forbidden: tool "admin_reset" is not allowed for this caller`, a.Error.Message)
		require.NotContains(t, string(body), "admin tools", "the rule is never shown to the caller")
	})
	t.Run("a false condition", func(t *testing.T) {
		res, body := postRPC(t, f, tokenStaff, `{"jsonrpc":"2.0","id":13,"method":"resources/read","params":{"uri":"file:///secret/keys"}}`, nil)
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		require.Equal(t, `Forbidden: resource "file:///secret/keys" is not allowed for this caller`, decodeRPC(t, body).Error.Message)
	})
	t.Run("a long name is shortened in the answer", func(t *testing.T) {
		long := "admin_" + strings.Repeat("x", 1000)
		res, body := postRPC(t, f, tokenStaff, `{"jsonrpc":"2.0","id":14,"method":"tools/call","params":{"name":"`+long+`"}}`, nil)
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		require.Less(t, len(body), 500)
	})
	require.Zero(t, be.Requests(), "no refused request reached the backend")

	logs := f.logs.String()
	require.Contains(t, logs, "event=mcp_request_denied")
	require.Contains(t, logs, `reason="authorization.rules[0] \"destructive tools\""`)
	require.Contains(t, logs, "decision=insufficient_scope")
	require.Contains(t, logs, `reason="authorization.rules[1] \"admin tools\""`)
	require.Contains(t, logs, "mcp_name=admin_reset")
	require.Contains(t, logs, "subject=sam")
	require.Contains(t, logs, "client_id=client-s")
	require.NotContains(t, logs, tokenStaff, "tokens never reach the log")

	t.Run("allowed calls and other messages pass", func(t *testing.T) {
		for _, body := range []string{
			`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search"}}`,
			`{"jsonrpc":"2.0","id":2,"method":"initialize","params":{}}`,
			`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
			`{"jsonrpc":"2.0","id":5,"result":{"roots":[]}}`,
		} {
			res, _ := postRPC(t, f, tokenStaff, body, nil)
			require.Equal(t, http.StatusOK, res.StatusCode, body)
		}
		require.Equal(t, 4, be.Requests())
	})
}

func TestABodyTheGatewayCannotDecideOnIsRefused(t *testing.T) {
	be := &tallyBackend{}
	f, _ := newPolicyFixture(t, be, gatewayPolicy)
	tests := []struct {
		name   string
		body   string
		header http.Header
		status int
		code   int
		id     string
	}{
		{"a header naming another tool", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search"}}`,
			http.Header{"Mcp-Method": {"tools/call"}, "Mcp-Name": {"delete_file"}}, http.StatusBadRequest, codeHeaderMismatch, "3"},
		{"a header naming another method", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search"}}`,
			http.Header{"Mcp-Method": {"tools/list"}}, http.StatusBadRequest, codeHeaderMismatch, "3"},
		{"malformed JSON", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search"}`,
			nil, http.StatusBadRequest, codeParse, "null"},
		{"a batch", `[{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"delete_file"}}]`,
			nil, http.StatusBadRequest, codeInvalidRequest, "null"},
		{"a call without a tool name", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{}}`,
			nil, http.StatusBadRequest, codeInvalidParams, "3"},
		{"a smuggled second name", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search","Name":"delete_file"}}`,
			nil, http.StatusBadRequest, codeInvalidRequest, "null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := postRPC(t, f, tokenAdmin, tt.body, tt.header)
			require.Equal(t, tt.status, res.StatusCode, string(body))
			a := decodeRPC(t, body)
			require.Equal(t, tt.code, a.Error.Code, a.Error.Message)
			require.JSONEq(t, tt.id, string(a.ID))
		})
	}
	t.Run("an oversized body", func(t *testing.T) {
		source, _ := writePolicy(t, gatewayPolicy)
		small := newFixture(t, be, func(o *gateway.Options) {
			o.Policy = source
			o.MaxBodyBytes = 1024
		})
		addPolicyTokens(small.verifier)
		big := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search","arguments":{"q":"` +
			strings.Repeat("x", 1024) + `"}}}`
		res, body := postRPC(t, small, tokenAdmin, big, nil)
		require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)
		require.Equal(t, codeInvalidRequest, decodeRPC(t, body).Error.Code)
	})
	t.Run("mirrored headers on a request without a body", func(t *testing.T) {
		res, body := f.do(t, http.MethodGet, "/mcp", tokenAdmin, nil, http.Header{"Mcp-Method": {"tools/call"}})
		require.Equal(t, http.StatusBadRequest, res.StatusCode)
		require.Equal(t, codeHeaderMismatch, decodeRPC(t, body).Error.Code)
	})
	require.Zero(t, be.Requests())
	t.Run("headers that agree pass, Base64 included", func(t *testing.T) {
		res, _ := postRPC(t, f, tokenAdmin, `{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"file:///docs/é"}}`,
			http.Header{"Mcp-Method": {"resources/read"}, "Mcp-Name": {"=?base64?ZmlsZTovLy9kb2NzL8Op?="}, "Mcp-Protocol-Version": {"2026-07-28"}})
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, 1, be.Requests())
	})
}

func TestWithoutAPolicyBodiesAreReadOnlyToCheckMirroredHeaders(t *testing.T) {
	be := &tallyBackend{}
	f := newFixture(t, be, nil)
	// Behaviour as before policies: the backend judges the body.
	res, _ := postRPC(t, f, tokenAlice, `{"not json`, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, 1, be.Requests())
	// Headers that contradict the body are refused all the same.
	res, body := postRPC(t, f, tokenAlice, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search"}}`,
		http.Header{"Mcp-Method": {"tools/call"}, "Mcp-Name": {"delete_file"}})
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	require.Equal(t, codeHeaderMismatch, decodeRPC(t, body).Error.Code)
	require.Equal(t, 1, be.Requests())
}

// mirrorRewriter changes the Mcp-Name header of tools/call requests, as a
// client (or something between it and the gateway) that says one thing in
// the header and another in the body.
type mirrorRewriter struct{ next http.RoundTripper }

func (m mirrorRewriter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Mcp-Method") == "tools/call" {
		r = r.Clone(r.Context())
		r.Header.Set("Mcp-Name", "search")
	}
	return m.next.RoundTrip(r)
}

func TestAn20260728ClientsHeadersAreCheckedAgainstTheBody(t *testing.T) {
	backend := newPolicyBackend(false, true)
	f, _ := newPolicyFixture(t, backend, gatewayPolicy)
	cs := connect(t, f, tokenAdmin, "2026-07-28", func(next http.RoundTripper) http.RoundTripper { return mirrorRewriter{next} })
	_, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "search"})
	require.NoError(t, err, "the header agrees with the body")
	_, err = cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "delete_file"})
	require.ErrorContains(t, err, "Header mismatch: the Mcp-Name header does not match params.name of the body")
	require.Zero(t, backend.Calls("delete_file"))
	require.Equal(t, 1, backend.Calls("search"))
}

// stagedBackend answers a list request with an event stream: a progress
// notification, then, only once release is closed, the list answer. A
// gateway that held the stream until its end would never pass the
// notification on.
func stagedBackend(release <-chan struct{}, list string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":1,\"progress\":1}}\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "event: message\ndata: "+list+"\n\n")
	}
}

func TestStreamsArePassedOnAsTheyArrive(t *testing.T) {
	for _, tt := range []struct {
		name, method, list, want string
	}{
		{"a filtered list answer's notifications go first", "tools/list",
			`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"},{"name":"delete_file"}]}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"}]}}`},
		{"a list no rule could filter is not touched", "prompts/list",
			`{"jsonrpc":"2.0","id":1,"result":{"prompts":[{"name":"delete_summary"}]}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"prompts":[{"name":"delete_summary"}]}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			f, _ := newPolicyFixture(t, stagedBackend(release, tt.list), gatewayPolicy)
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, f.front.URL+"/mcp",
				strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"`+tt.method+`","params":{"_meta":{"progressToken":1}}}`))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+tokenStaff)
			req.Header.Set("Content-Type", "application/json")
			res, err := f.client.Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			require.Equal(t, http.StatusOK, res.StatusCode)
			first := make([]byte, 0, 256)
			buf := make([]byte, 256)
			for !bytes.Contains(first, []byte("\n\n")) {
				n, err := res.Body.Read(buf)
				require.NoError(t, err, "the notification arrives before the list answer is sent")
				first = append(first, buf[:n]...)
			}
			require.Contains(t, string(first), "notifications/progress")
			close(release)
			rest, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			require.Equal(t, "event: message\ndata: "+tt.want+"\n\n", string(first[bytes.Index(first, []byte("\n\n"))+2:])+string(rest))
		})
	}
}

func TestAListAnswerIsFilteredOrRefusedNeverPassedUnfiltered(t *testing.T) {
	list := `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"},{"name":"delete_file"}]}}`
	backend := func(contentType, encoding, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", contentType)
			w.Header().Set("X-Seen-Accept-Encoding", r.Header.Get("Accept-Encoding"))
			if encoding != "" {
				w.Header().Set("Content-Encoding", encoding)
			}
			_, _ = io.WriteString(w, body)
		}
	}
	listReq := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	t.Run("a JSON answer", func(t *testing.T) {
		f, _ := newPolicyFixture(t, backend("application/json; charset=utf-8", "", list), gatewayPolicy)
		res, body := postRPC(t, f, tokenStaff, listReq, http.Header{"Accept-Encoding": {"gzip"}})
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.JSONEq(t, `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"}]}}`, string(body))
		require.Equal(t, fmt.Sprint(len(body)), res.Header.Get("Content-Length"))
		require.Empty(t, res.Header.Get("X-Seen-Accept-Encoding"), "a list answer is asked for uncompressed")
	})
	for name, b := range map[string]http.HandlerFunc{
		"a compressed answer":  backend("application/json", "gzip", list),
		"another content type": backend("text/plain", "", list),
		"malformed JSON":       backend("application/json", "", list[:len(list)-1]),
	} {
		t.Run(name, func(t *testing.T) {
			f, _ := newPolicyFixture(t, b, gatewayPolicy)
			res, body := postRPC(t, f, tokenStaff, listReq, nil)
			require.Equal(t, http.StatusBadGateway, res.StatusCode)
			require.NotContains(t, string(body), "delete_file")
		})
	}
	t.Run("other answers keep the client's Accept-Encoding", func(t *testing.T) {
		f, _ := newPolicyFixture(t, backend("application/json", "", `{"jsonrpc":"2.0","id":1,"result":{}}`), gatewayPolicy)
		res, _ := postRPC(t, f, tokenStaff, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search"}}`,
			http.Header{"Accept-Encoding": {"gzip"}})
		require.Equal(t, "gzip", res.Header.Get("X-Seen-Accept-Encoding"))
	})
}

func TestAResumedStreamIsFiltered(t *testing.T) {
	list := `{"jsonrpc":"2.0","id":4,"result":{"tools":[{"name":"search"},{"name":"admin_reset"}]}}`
	be := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "id: 7\ndata: "+list+"\n\n")
	})
	f, _ := newPolicyFixture(t, be, gatewayPolicy)
	res, body := f.do(t, http.MethodGet, "/mcp", tokenStaff, nil, http.Header{"Last-Event-Id": {"6"}, "Accept": {"text/event-stream"}})
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "id: 7\ndata: "+`{"jsonrpc":"2.0","id":4,"result":{"tools":[{"name":"search"}]}}`+"\n\n", string(body))
}

func TestAReloadedPolicyDecidesTheNextRequest(t *testing.T) {
	be := &tallyBackend{}
	source, path := writePolicy(t, gatewayPolicy)
	f := newFixture(t, be, func(o *gateway.Options) { o.Policy = source })
	addPolicyTokens(f.verifier)
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search"}}`
	res, _ := postRPC(t, f, tokenStaff, call, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)

	require.NoError(t, os.WriteFile(path, []byte("authorization:\n  default: deny\n  rules:\n    - tools: [list_files]\n"), 0o600))
	require.NoError(t, source.Reload())
	res, _ = postRPC(t, f, tokenStaff, call, nil)
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	require.Equal(t, 1, be.Requests())
}

func TestAStandaloneStreamIsFilteredToo(t *testing.T) {
	// A server must not answer requests on the GET stream, but a backend
	// that does must not leak the hidden entries to the caller.
	list := `{"jsonrpc":"2.0","id":4,"result":{"tools":[{"name":"search"},{"name":"admin_reset"}]}}`
	be := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: "+list+"\n\n")
	})
	f, _ := newPolicyFixture(t, be, gatewayPolicy)
	res, body := f.do(t, http.MethodGet, "/mcp", tokenStaff, nil, http.Header{"Accept": {"text/event-stream"}})
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "data: "+`{"jsonrpc":"2.0","id":4,"result":{"tools":[{"name":"search"}]}}`+"\n\n", string(body))
}

func TestAMachineCallerIsDecidedAsAMachine(t *testing.T) {
	// A rule meant for people only ("!machine") must not let a machine
	// through because the gateway took it for a person without claims;
	// and a machine-only rule must let it through.
	const src = `
authorization:
  default: deny
  rules:
    - tools: ["people_*"]
      condition: '!machine'
    - tools: ["machine_*"]
      condition: 'machine && client_id == "ci-1" && sub == "ci-1"'
`
	be := &tallyBackend{}
	source, _ := writePolicy(t, src)
	f := newFixture(t, be, func(o *gateway.Options) { o.Policy = source })
	call := func(tool string) int {
		res, _ := postRPC(t, f, tokenMachine, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"`+tool+`"}}`, nil)
		return res.StatusCode
	}
	require.Equal(t, http.StatusForbidden, call("people_search"))
	require.Equal(t, http.StatusOK, call("machine_deploy"))
	require.Equal(t, 1, be.Requests())
}

func TestRulesSeeTheGrantsSubjectNotAClaimOfTheIdentity(t *testing.T) {
	// The grant's subject is the one the proxy mapped (a partner IdP's
	// users are qualified by their issuer); an identity whose own subject
	// claim says otherwise must not pass for that user.
	const src = `
authorization:
  default: deny
  rules:
    - tools: ["mine"]
      condition: 'sub == "alice"'
`
	be := &tallyBackend{}
	source, _ := writePolicy(t, src)
	f := newFixture(t, be, func(o *gateway.Options) { o.Policy = source })
	g := grantFor("grant-partner", "partner.example|alice", "alice@partner.example", false)
	g.Identity.Subject = "alice"
	f.verifier.results["partner.token.sig"] = verdict{access: ports.VerifiedAccess{
		Token: domain.AccessToken{Subject: g.Subject, ClientID: g.ClientID, GrantID: g.ID}, Grant: g,
	}}
	res, _ := postRPC(t, f, "partner.token.sig", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"mine"}}`, nil)
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	require.Equal(t, 0, be.Requests())
}
