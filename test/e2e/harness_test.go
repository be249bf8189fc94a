package e2e_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/oidcproxy/oidcproxy"
	"github.com/oidcproxy/oidcproxy/adapters/telemetry"
	"github.com/oidcproxy/oidcproxy/test/idp"
	"github.com/oidcproxy/oidcproxy/test/proxytest"
)

// upstreamClientID and upstreamSecret are the proxy's own credentials at
// the upstream IdP.
const (
	upstreamClientID = "oidcproxy-e2e"
	upstreamSecret   = "upstream-secret-0123456789"
)

// testClock is a settable clock shared by the proxy and the test, so that
// expiry is tested without sleeping. It starts at the wall clock because
// the upstream IdP and the cookies use real time.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// upstream is what the proxy can be pointed at: the real OP or the faulty
// IdP.
type upstream interface {
	Login(ctx context.Context, c *http.Client, authURL string) (*url.URL, error)
}

// proxy is one running oidcproxy App on loopback.
type proxy struct {
	t         *testing.T
	BaseURL   string
	StorePath string
	Env       map[string]string
	Clock     *testClock
	Logs      *proxytest.LogBuffer
	Upstream  upstream
	// Spans and Metrics receive the App's telemetry.
	Spans   *tracetest.InMemoryExporter
	Metrics *sdkmetric.ManualReader
	// CIMDRoots verify client metadata document servers (httptest TLS).
	CIMDRoots *x509.CertPool
	App       *oidcproxy.App
	stop      func()
}

type proxyOption func(env map[string]string)

func withEnv(k, v string) proxyOption {
	return func(env map[string]string) { env["OIDC_PROXY_"+k] = v }
}

// startWithOP runs the proxy in front of a real OpenID provider.
func startWithOP(t *testing.T, opts ...proxyOption) (*proxy, *idp.OP) {
	t.Helper()
	return startWithOPTrusting(t, nil, opts...)
}

// startWithOPTrusting is startWithOP with the roots that client metadata
// document servers are verified against.
func startWithOPTrusting(t *testing.T, cimdRoots *x509.CertPool, opts ...proxyOption) (*proxy, *idp.OP) {
	t.Helper()
	ln := listen(t)
	base := "http://" + ln.Addr().String()
	op := idp.StartOP(t, idp.Client{ID: upstreamClientID, Secret: upstreamSecret, RedirectURIs: []string{base + "/auth/callback"}})
	env := baseEnv(t, base, op.ConfigURL)
	// The example OP issues refresh tokens only for offline_access, which
	// the provider requests whenever discovery lists it.
	for _, o := range opts {
		o(env)
	}
	p := &proxy{t: t, BaseURL: base, Env: env, StorePath: env["OIDC_PROXY_STORE_PATH"], Clock: &testClock{}, Logs: &proxytest.LogBuffer{}, Upstream: op, CIMDRoots: cimdRoots}
	p.start(ln)
	return p, op
}

// startWithFaulty runs the proxy in front of the fault-injecting IdP.
func startWithFaulty(t *testing.T, opts ...proxyOption) (*proxy, *idp.Faulty) {
	t.Helper()
	ln := listen(t)
	base := "http://" + ln.Addr().String()
	f := idp.NewFaulty(t, idp.FaultyOptions{ClientID: upstreamClientID, ClientSecret: upstreamSecret})
	env := baseEnv(t, base, f.ConfigURL)
	for _, o := range opts {
		o(env)
	}
	p := &proxy{t: t, BaseURL: base, Env: env, StorePath: env["OIDC_PROXY_STORE_PATH"], Clock: &testClock{}, Logs: &proxytest.LogBuffer{}, Upstream: f}
	p.start(ln)
	return p, f
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return ln
}

func baseEnv(t *testing.T, base, configURL string) map[string]string {
	return proxytest.Env(t, base, configURL, upstreamClientID, upstreamSecret)
}

// start builds the App with the test injector and serves it on ln.
func (p *proxy) start(ln net.Listener) {
	p.t.Helper()
	if p.Spans == nil {
		p.Spans = tracetest.NewInMemoryExporter()
		p.Metrics = sdkmetric.NewManualReader()
	}
	p.App, p.stop = proxytest.Serve(p.t, ln, p.Env, p.Clock, p.Logs, telemetry.Options{
		SpanExporter: p.Spans,
		MetricReader: p.Metrics,
	}, oidcproxy.CIMDRootCAs{Pool: p.CIMDRoots})
}

// restart stops the App and starts a new one on the same address, store
// file and key: what an operator's restart does.
func (p *proxy) restart() {
	p.t.Helper()
	p.stop()
	u, err := url.Parse(p.BaseURL)
	require.NoError(p.t, err)
	var ln net.Listener
	require.Eventually(p.t, func() bool {
		ln, err = net.Listen("tcp", u.Host)
		return err == nil
	}, 5*time.Second, 20*time.Millisecond)
	p.start(ln)
}

// browser is a scripted user agent: a cookie jar, no automatic redirects.
type browser struct {
	*http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{&http.Client{
		Jar:     jar,
		Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

// page is a fetched response with its body read.
type page struct {
	Status   int
	Header   http.Header
	Body     string
	Location *url.URL
}

func (b *browser) do(t *testing.T, req *http.Request) page {
	t.Helper()
	resp, err := b.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	require.NoError(t, err)
	p := page{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
	if loc, err := resp.Location(); err == nil {
		p.Location = loc
	}
	return p
}

func (b *browser) get(t *testing.T, u string) page {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	require.NoError(t, err)
	return b.do(t, req)
}

func (b *browser) postForm(t *testing.T, u string, form url.Values) page {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(t, req)
}

// formFields returns the inputs (name → value) of the first form on a page
// and the form's action.
func formFields(t *testing.T, body string) (string, url.Values) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	require.NoError(t, err)
	values := url.Values{}
	action := ""
	var walk func(n *html.Node, inForm bool)
	walk = func(n *html.Node, inForm bool) {
		if n.Type == html.ElementNode && n.Data == "form" && action == "" {
			action = attr(n, "action")
			inForm = true
		}
		if inForm && n.Type == html.ElementNode && n.Data == "input" && attr(n, "name") != "" {
			values.Set(attr(n, "name"), attr(n, "value"))
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inForm)
		}
	}
	walk(doc, false)
	require.NotEmpty(t, action, "no form on the page:\n%s", body)
	return action, values
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// mcpClient is an MCP client as the SDKs behave: dynamic registration, then
// the authorization code flow with PKCE through x/oauth2.
type mcpClient struct {
	ID, Secret  string
	RedirectURI string
	OAuth       *oauth2.Config
}

// register registers a public native client with a loopback redirect URI.
func (p *proxy) register(t *testing.T, extra map[string]any) *mcpClient {
	t.Helper()
	redirect := "http://127.0.0.1:53682/callback"
	body := map[string]any{
		"client_name":   "E2E MCP Client",
		"redirect_uris": []string{redirect},
		"grant_types":   []string{"authorization_code", "refresh_token"},
	}
	for k, v := range extra {
		body[k] = v
	}
	status, doc := p.postJSON(t, "/register", body)
	require.Equal(t, http.StatusCreated, status, doc)
	c := &mcpClient{ID: doc["client_id"].(string), RedirectURI: doc["redirect_uris"].([]any)[0].(string)}
	if s, ok := doc["client_secret"].(string); ok {
		c.Secret = s
	}
	style := oauth2.AuthStyleInParams
	if doc["token_endpoint_auth_method"] == "client_secret_basic" {
		style = oauth2.AuthStyleInHeader
	}
	c.OAuth = &oauth2.Config{
		ClientID:     c.ID,
		ClientSecret: c.Secret,
		RedirectURL:  c.RedirectURI,
		Endpoint: oauth2.Endpoint{
			AuthURL:   p.BaseURL + "/authorize",
			TokenURL:  p.BaseURL + "/token",
			AuthStyle: style,
		},
	}
	return c
}

func (p *proxy) postJSON(t *testing.T, path string, body any) (int, map[string]any) {
	t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	resp, err := http.Post(p.BaseURL+path, "application/json", bytes.NewReader(raw))
	require.NoError(t, err)
	defer resp.Body.Close()
	var doc map[string]any
	data, _ := io.ReadAll(resp.Body)
	if len(data) > 0 {
		require.NoError(t, json.Unmarshal(data, &doc), string(data))
	}
	return resp.StatusCode, doc
}

// postToken posts a raw token-endpoint form (for negative cases x/oauth2
// would not send) and returns status, headers and the decoded body.
func (p *proxy) postToken(t *testing.T, form url.Values, basic ...string) (int, http.Header, map[string]any) {
	t.Helper()
	return p.postFormJSON(t, "/token", form, basic...)
}

func (p *proxy) postFormJSON(t *testing.T, path string, form url.Values, basic ...string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.BaseURL+path, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var doc map[string]any
	if len(data) > 0 {
		require.NoError(t, json.Unmarshal(data, &doc), string(data))
	}
	return resp.StatusCode, resp.Header, doc
}

// flow is one authorization in progress, as a client and browser see it.
type flow struct {
	Client   *mcpClient
	Browser  *browser
	State    string
	Verifier string
}

// authorizeURL builds the client's authorization URL with PKCE S256 and the
// MCP resource.
func (p *proxy) authorizeURL(c *mcpClient, state, verifier string, extra ...oauth2.AuthCodeOption) string {
	opts := append([]oauth2.AuthCodeOption{
		oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("resource", p.BaseURL+"/mcp"),
	}, extra...)
	return c.OAuth.AuthCodeURL(state, opts...)
}

func newFlow(t *testing.T, c *mcpClient) *flow {
	return &flow{Client: c, Browser: newBrowser(t), State: "client-state-" + oauth2.GenerateVerifier()[:8], Verifier: oauth2.GenerateVerifier()}
}

// toConsent starts the flow and returns the consent page.
func (p *proxy) toConsent(t *testing.T, f *flow, extra ...oauth2.AuthCodeOption) page {
	t.Helper()
	res := f.Browser.get(t, p.authorizeURL(f.Client, f.State, f.Verifier, extra...))
	require.Equal(t, http.StatusFound, res.Status, res.Body)
	require.Equal(t, "/consent", res.Location.Path, res.Location.String())
	consent := f.Browser.get(t, res.Location.String())
	require.Equal(t, http.StatusOK, consent.Status, consent.Body)
	return consent
}

// decide submits the consent form with the given decision.
func (p *proxy) decide(t *testing.T, f *flow, consent page, decision string) page {
	t.Helper()
	action, fields := formFields(t, consent.Body)
	fields.Set("decision", decision)
	return f.Browser.postForm(t, p.BaseURL+action, fields)
}

// toCallback approves, logs in upstream, and returns the proxy's callback
// URL (not yet visited).
func (p *proxy) toCallback(t *testing.T, f *flow) *url.URL {
	t.Helper()
	consent := p.toConsent(t, f)
	up := p.decide(t, f, consent, "approve")
	require.Equal(t, http.StatusSeeOther, up.Status, up.Body)
	cb, err := p.Upstream.Login(t.Context(), f.Browser.Client, up.Location.String())
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(cb.String(), p.BaseURL+"/auth/callback"), cb.String())
	return cb
}

// authorize runs the browser part of the flow and returns the client's
// redirect (with code, state and iss).
func (p *proxy) authorize(t *testing.T, f *flow) *url.URL {
	t.Helper()
	cb := p.toCallback(t, f)
	final := f.Browser.get(t, cb.String())
	require.Equal(t, http.StatusFound, final.Status, final.Body)
	require.True(t, strings.HasPrefix(final.Location.String(), f.Client.RedirectURI+"?"), final.Location.String())
	return final.Location
}

// login runs a whole flow and returns the client's tokens.
func (p *proxy) login(t *testing.T, c *mcpClient) (*oauth2.Token, *flow) {
	t.Helper()
	f := newFlow(t, c)
	redirect := p.authorize(t, f)
	q := redirect.Query()
	require.Equal(t, f.State, q.Get("state"))
	require.Equal(t, p.BaseURL, q.Get("iss"))
	tok, err := c.OAuth.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(f.Verifier),
		oauth2.SetAuthURLParam("resource", p.BaseURL+"/mcp"))
	require.NoError(t, err)
	return tok, f
}

// oauthErrorCode extracts the OAuth error code from an x/oauth2 error.
func oauthErrorCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return fmt.Sprintf("not an OAuth error: %v", err)
}

// refresh uses a refresh token once, the way x/oauth2 does.
func (p *proxy) refresh(t *testing.T, c *mcpClient, refreshToken string) (*oauth2.Token, error) {
	t.Helper()
	src := c.OAuth.TokenSource(t.Context(), &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Unix(1, 0)})
	return src.Token()
}

func withVerifier(v string) oauth2.AuthCodeOption { return oauth2.VerifierOption(v) }

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

func decodeBody(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var doc map[string]any
	if len(data) > 0 {
		require.NoError(t, json.Unmarshal(data, &doc), string(data))
	}
	return doc
}
