package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/oidcproxy/oidcproxy/test/idp"
)

// backend is an MCP server built with the official Go SDK, as a team would
// put behind the gateway. It records what the gateway forwarded.
type backend struct {
	URL string
	mu  sync.Mutex
	// Seen are the headers of every HTTP request the backend received.
	Seen []http.Header
}

type whoami struct {
	Subject string `json:"subject"`
	Email   string `json:"email"`
	// Client is the machine client the gateway names (X-Forwarded-Client).
	Client string `json:"client"`
}

func startBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{}
	server := mcp.NewServer(&mcp.Implementation{Name: "e2e-backend", Version: "1"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "whoami", Description: "who is calling"},
		func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, whoami, error) {
			h := req.Extra.Header
			return nil, whoami{Subject: h.Get("X-Forwarded-User"), Email: h.Get("X-Forwarded-Email"), Client: h.Get("X-Forwarded-Client")}, nil
		})
	mcp.AddTool(server, &mcp.Tool{Name: "countdown", Description: "sends progress notifications, slowly"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, struct{}, error) {
			for i := range 3 {
				_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
					ProgressToken: req.Params.GetProgressToken(), Progress: float64(i + 1), Total: 3,
					Message: fmt.Sprintf("step %d", i+1),
				})
				time.Sleep(150 * time.Millisecond)
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, struct{}{}, nil
		})
	handler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.Seen = append(b.Seen, r.Header.Clone())
		b.mu.Unlock()
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	b.URL = srv.URL + "/mcp"
	return b
}

func (b *backend) headers() []http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]http.Header(nil), b.Seen...)
}

// sdkOAuth is the Go SDK's own OAuth client (discovery from the 401
// challenge, dynamic registration, PKCE), with our scripted browser as the
// user.
func sdkOAuth(t *testing.T, p *proxy) *auth.AuthorizationCodeHandler {
	t.Helper()
	return sdkOAuthScoped(t, p, nil)
}

// sdkOAuthScoped is sdkOAuth with the SDK's scope filter, which narrows
// the scopes the client asks for.
func sdkOAuthScoped(t *testing.T, p *proxy, scopes func([]string) []string) *auth.AuthorizationCodeHandler {
	t.Helper()
	const redirect = "http://127.0.0.1:53682/callback"
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{
			Metadata: &oauthex.ClientRegistrationMetadata{
				ClientName:              "Go SDK e2e client",
				RedirectURIs:            []string{redirect},
				TokenEndpointAuthMethod: "none",
				GrantTypes:              []string{"authorization_code", "refresh_token"},
			},
		},
		RedirectURL:         redirect,
		RequestRefreshToken: true,
		ScopeFilter:         scopes,
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			b := newBrowser(t)
			res := b.get(t, args.URL)
			if res.Location == nil || res.Location.Path != "/consent" {
				return nil, fmt.Errorf("authorize answered %d: %s", res.Status, res.Body)
			}
			consent := b.get(t, res.Location.String())
			up := p.decide(t, &flow{Browser: b}, consent, "approve")
			cb, err := p.Upstream.Login(ctx, b.Client, up.Location.String())
			if err != nil {
				return nil, err
			}
			final := b.get(t, cb.String())
			if final.Location == nil {
				return nil, fmt.Errorf("callback answered %d: %s", final.Status, final.Body)
			}
			q := final.Location.Query()
			return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		},
	})
	require.NoError(t, err)
	return h
}

func TestAnMCPClientReachesAServerBehindTheGatewayWithTheOfficialSDK(t *testing.T) {
	be := startBackend(t)
	p, op := startWithOP(t, withEnv("MCP_UPSTREAM", be.URL))

	var mu sync.Mutex
	var progress []time.Time
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			progress = append(progress, time.Now())
			mu.Unlock()
		},
	})
	session, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{
		Endpoint:     p.BaseURL + "/mcp",
		OAuthHandler: sdkOAuth(t, p),
	}, nil)
	require.NoError(t, err, "401 challenge → discovery → registration → consent → login → token → initialize")
	defer session.Close()

	tools, err := session.ListTools(t.Context(), nil)
	require.NoError(t, err)
	require.Len(t, tools.Tools, 2)

	res, err := session.CallTool(t.Context(), &mcp.CallToolParams{Name: "whoami"})
	require.NoError(t, err)
	require.False(t, res.IsError)
	out := res.StructuredContent.(map[string]any)
	require.Equal(t, op.Subject, out["subject"])
	require.Equal(t, op.Email, out["email"])

	// Progress notifications stream through the gateway one by one.
	start := time.Now()
	_, err = session.CallTool(t.Context(), &mcp.CallToolParams{Name: "countdown", Meta: mcp.Meta{"progressToken": "p1"}})
	require.NoError(t, err)
	done := time.Now()
	mu.Lock()
	require.Len(t, progress, 3)
	first := progress[0]
	mu.Unlock()
	require.Less(t, first.Sub(start), done.Sub(start)-200*time.Millisecond,
		"the first event arrived while the tool was still running, not buffered to the end")

	for _, h := range be.headers() {
		require.Empty(t, h.Get("Authorization"), "the backend never sees the bearer token")
		require.Equal(t, op.Subject, h.Get("X-Forwarded-User"))
	}
}

// bearer sends one MCP-shaped POST to the gateway.
func bearerPost(t *testing.T, p *proxy, token string, body []byte, header http.Header) (*http.Response, string) {
	t.Helper()
	if body == nil {
		body = []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.BaseURL+"/mcp", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp, b.String()
}

func TestTheGatewayRefusesEverythingButOurLiveTokensForThisResource(t *testing.T) {
	be := startBackend(t)
	p, f := startWithFaulty(t, withEnv("MCP_UPSTREAM", be.URL), withEnv("REQUIRED_SCOPES", "mcp:tools"),
		withEnv("SCOPES_SUPPORTED", "openid profile email mcp:tools"))
	f.Update(func(x *idp.Faults) {
		x.AccessToken = idp.AccessTokenShape{JWT: true, Audience: []string{"https://api.example"}}
	})
	c := p.register(t, nil)
	tok, _ := p.login(t, c)
	meta := p.BaseURL + "/.well-known/oauth-protected-resource/mcp"

	t.Run("a valid token passes", func(t *testing.T) {
		p.Spans.Reset()
		resp, _ := bearerPost(t, p, tok.AccessToken, nil, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		// One server span per proxied request, annotated with the client;
		// the token check adds no spans of its own on this hot path.
		var server int
		for _, s := range p.Spans.GetSpans() {
			require.NotEqual(t, "usecase.VerifyAccessToken", s.Name)
			require.NotEqual(t, "store.GetGrant", s.Name)
			if s.Name == "POST /mcp" {
				server++
				var client string
				for _, a := range s.Attributes {
					if a.Key == "oauth.client_id" || strings.HasSuffix(string(a.Key), "client_id") {
						client = a.Value.AsString()
					}
				}
				require.Equal(t, c.ID, client)
			}
		}
		require.Equal(t, 1, server)
	})
	t.Run("no token: 401 with the resource metadata and scope", func(t *testing.T) {
		resp, _ := bearerPost(t, p, "", nil, nil)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		challenge := resp.Header.Get("WWW-Authenticate")
		require.Contains(t, challenge, `Bearer resource_metadata="`+meta+`"`)
		require.Contains(t, challenge, `scope="mcp:tools"`)
	})
	t.Run("garbage token", func(t *testing.T) {
		resp, body := bearerPost(t, p, "not-a-token", nil, nil)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		require.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
		require.Contains(t, body, `"error":"invalid_token"`)
		require.Contains(t, p.Logs.String(), `"audit":true,"event":"bearer_rejected","client_ip":"127.0.0.1","remote_addr":"127.0.0.1:`)
		require.NotContains(t, p.Logs.String(), "not-a-token", "the refused token is never logged")
	})
	t.Run("the upstream IdP's own token (no passthrough)", func(t *testing.T) {
		upstreamAccess := f.Issued()[0] // access, refresh and ID token, in that order
		require.Equal(t, 2, strings.Count(upstreamAccess, "."), "a JWT signed by the IdP, valid at the IdP")
		resp, _ := bearerPost(t, p, upstreamAccess, nil, nil)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	})
	t.Run("a token of another proxy instance", func(t *testing.T) {
		other, _ := startWithFaulty(t)
		oc := other.register(t, nil)
		otherTok, _ := other.login(t, oc)
		resp, _ := bearerPost(t, p, otherTok.AccessToken, nil, nil)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	})
	t.Run("missing scope: 403 insufficient_scope for step-up", func(t *testing.T) {
		narrow := newFlow(t, c)
		redirect := p.authorizeURL(c, narrow.State, narrow.Verifier, oauth2.SetAuthURLParam("scope", "openid"))
		consentRes := narrow.Browser.get(t, redirect)
		consent := narrow.Browser.get(t, consentRes.Location.String())
		up := p.decide(t, narrow, consent, "approve")
		cb, err := p.Upstream.Login(t.Context(), narrow.Browser.Client, up.Location.String())
		require.NoError(t, err)
		final := narrow.Browser.get(t, cb.String())
		narrowTok, err := c.OAuth.Exchange(t.Context(), final.Location.Query().Get("code"), oauth2.VerifierOption(narrow.Verifier))
		require.NoError(t, err)
		resp, body := bearerPost(t, p, narrowTok.AccessToken, nil, nil)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, body)
		challenge := resp.Header.Get("WWW-Authenticate")
		require.Contains(t, challenge, `error="insufficient_scope"`)
		require.Contains(t, challenge, `scope="mcp:tools"`)
		require.Contains(t, challenge, `resource_metadata="`+meta+`"`)
	})
	t.Run("a disallowed Origin", func(t *testing.T) {
		resp, _ := bearerPost(t, p, tok.AccessToken, nil, http.Header{"Origin": {"https://evil.example"}})
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		resp, _ = bearerPost(t, p, tok.AccessToken, nil, http.Header{"Origin": {p.BaseURL}})
		require.Equal(t, http.StatusOK, resp.StatusCode, "the proxy's own origin is allowed")
	})
	t.Run("an oversize body", func(t *testing.T) {
		big := append([]byte(`{"jsonrpc":"2.0","id":1,"method":"x","params":{"pad":"`), bytes.Repeat([]byte("a"), 5<<20)...)
		resp, _ := bearerPost(t, p, tok.AccessToken, append(big, `"}}`...), nil)
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	})
	t.Run("a revoked grant's token, at once", func(t *testing.T) {
		victim, _ := p.login(t, c)
		resp, _ := bearerPost(t, p, victim.AccessToken, nil, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		status, _, _ := p.postFormJSON(t, "/revoke", url.Values{"token": {victim.RefreshToken}, "client_id": {c.ID}})
		require.Equal(t, http.StatusOK, status)
		resp, _ = bearerPost(t, p, victim.AccessToken, nil, nil)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "revocation is not cached")
	})
	t.Run("an expired token", func(t *testing.T) {
		p.Clock.Advance(2 * time.Hour)
		defer p.Clock.Advance(-2 * time.Hour)
		resp, _ := bearerPost(t, p, tok.AccessToken, nil, nil)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		require.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
	})
}

func TestAnUnreachableBackendIsABadGateway(t *testing.T) {
	ln := listen(t)
	dead := "http://" + ln.Addr().String() + "/mcp"
	require.NoError(t, ln.Close())
	p, _ := startWithFaulty(t, withEnv("MCP_UPSTREAM", dead))
	c := p.register(t, nil)
	tok, _ := p.login(t, c)
	resp, body := bearerPost(t, p, tok.AccessToken, nil, nil)
	require.Equal(t, http.StatusBadGateway, resp.StatusCode)
	require.Contains(t, body, `"jsonrpc":"2.0"`)
	require.NotContains(t, body, ln.Addr().String(), "the backend's address stays private")
}
