package e2e_test

import (
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/httpapi"
	"github.com/oidcproxy/oidcproxy/test/idp"
	"github.com/oidcproxy/oidcproxy/test/pgtest"
	"github.com/oidcproxy/oidcproxy/test/proxytest"
)

// pairFront is what a load balancer is to several instances: one base URL,
// each request sent to the instance the test chose last.
type pairFront struct {
	URL    string
	target atomic.Pointer[url.URL]
}

func startPairFront(t *testing.T, ln net.Listener) *pairFront {
	f := &pairFront{URL: "http://" + ln.Addr().String()}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(f.target.Load())
		pr.Out.Host = pr.In.Host // the instances see the public host, as behind a balancer
	}}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return f
}

// pair is two Apps on one PostgreSQL schema behind one front: one
// authorization server as its users see it.
type pair struct {
	front *pairFront
	// A and B share the configuration, the base URL and ENCRYPTION_KEY.
	A, B  *proxy
	addrs map[*proxy]*url.URL
}

// startPair starts two Apps on a throw-away schema, in front of a
// real OpenID provider.
func startPair(t *testing.T, opts ...proxyOption) *pair {
	t.Helper()
	ln := listen(t)
	fr := startPairFront(t, ln)
	op := idp.StartOP(t, idp.Client{ID: upstreamClientID, Secret: upstreamSecret, RedirectURIs: []string{fr.URL + "/auth/callback"}})
	env := baseEnv(t, fr.URL, op.ConfigURL)
	pg, _ := withPostgres(t)
	pg(env)
	for _, o := range opts {
		o(env)
	}
	in := &pair{front: fr, addrs: map[*proxy]*url.URL{}}
	start := func() *proxy {
		own := listen(t)
		p := &proxy{t: t, BaseURL: fr.URL, Env: maps.Clone(env), Clock: &testClock{}, Logs: &proxytest.LogBuffer{}, Upstream: op}
		p.start(own)
		in.addrs[p] = &url.URL{Scheme: "http", Host: own.Addr().String()}
		return p
	}
	in.A, in.B = start(), start()
	in.use(in.A)
	return in
}

// use sends the following requests to p.
func (in *pair) use(p *proxy) { in.front.target.Store(in.addrs[p]) }

// Cookies and CSRF tokens are signed with a key derived from
// ENCRYPTION_KEY, which every instance shares: a browser whose requests
// alternate between instances completes the flow, and a remembered
// consent set by one is honoured by the other.
func TestCookiesAndCSRFTokensOfOneInstanceVerifyOnAnother(t *testing.T) {
	in := startPair(t, withEnv("CONSENT", "remember"))
	a, b := in.A, in.B
	c := a.register(t, nil)
	f := newFlow(t, c)

	in.use(b)
	res := f.Browser.get(t, a.authorizeURL(c, f.State, f.Verifier))
	require.Equal(t, http.StatusFound, res.Status, res.Body)
	require.Equal(t, "/consent", res.Location.Path)
	in.use(a)
	consent := f.Browser.get(t, res.Location.String()) // the consent cookie is signed by A
	require.Equal(t, http.StatusOK, consent.Status, consent.Body)
	in.use(b)
	up := a.decide(t, f, consent, "approve") // B checks A's cookie and CSRF token, signs the binding and remember cookies
	require.Equal(t, http.StatusSeeOther, up.Status, up.Body)
	cb, err := a.Upstream.Login(t.Context(), f.Browser.Client, up.Location.String())
	require.NoError(t, err)
	in.use(a)
	final := f.Browser.get(t, cb.String()) // A checks B's binding cookie
	require.Equal(t, http.StatusFound, final.Status, final.Body)
	code := final.Location.Query().Get("code")
	require.NotEmpty(t, code, final.Location.String())
	in.use(b)
	status, _, doc := b.postToken(t, withMCPResource(exchangeForm(c, code, f.Verifier), a))
	require.Equal(t, http.StatusOK, status, doc)

	// A second authorization, on A, skips the consent page: the remember
	// cookie B signed verifies there.
	again := newFlow(t, c)
	again.Browser = f.Browser
	in.use(a)
	res = f.Browser.get(t, a.authorizeURL(c, again.State, again.Verifier))
	require.Equal(t, http.StatusFound, res.Status, res.Body)
	require.NotEqual(t, "/consent", res.Location.Path, "the remembered consent was honoured")
}

func withMCPResource(form url.Values, p *proxy) url.Values {
	form.Set("resource", p.BaseURL+"/mcp")
	return form
}

// A revocation on one instance closes the other's gateway to the token
// within a second, although that instance had the grant in memory.
func TestARevocationOnOneInstanceClosesTheOthersGatewayWithinASecond(t *testing.T) {
	be := startBackend(t)
	in := startPair(t, withEnv("MCP_UPSTREAM", be.URL))
	a, b := in.A, in.B
	c := a.register(t, nil)
	tok, _ := a.login(t, c)

	in.use(b)
	resp, body := bearerPost(t, b, tok.AccessToken, nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	resp, body = bearerPost(t, b, tok.AccessToken, nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)

	in.use(a)
	status, _, doc := a.postFormJSON(t, "/revoke", url.Values{"token": {tok.RefreshToken}, "client_id": {c.ID}})
	require.Equal(t, http.StatusOK, status, doc)
	revoked := time.Now()
	in.use(b)
	require.Eventually(t, func() bool {
		resp, _ := bearerPost(t, b, tok.AccessToken, nil, nil)
		return resp.StatusCode == http.StatusUnauthorized
	}, time.Second, 5*time.Millisecond, "B's gateway still admits the revoked token")
	t.Logf("B's gateway refused the token %v after the revocation on A", time.Since(revoked))
}

// A key rotated through one instance's admin endpoint is announced to the
// others: they sign with it and publish it within a second, and a token
// it signed verifies on any of them at once.
func TestAKeyRotatedOnOneInstanceIsUsedByTheOthersWithinASecond(t *testing.T) {
	be := startBackend(t)
	in := startPair(t, withEnv("MCP_UPSTREAM", be.URL))
	a, b := in.A, in.B
	c := a.register(t, nil)
	tok, _ := a.login(t, c)
	before := accessTokenKeyID(t, tok.AccessToken)

	rotated := rotateKeyVia(t, a)
	require.NotEqual(t, before, rotated)
	in.use(b)
	require.Eventually(t, func() bool {
		return strings.Contains(jwksOf(t, b), rotated)
	}, time.Second, 10*time.Millisecond, "B publishes the new key")
	next, err := b.refresh(t, c, tok.RefreshToken)
	require.NoError(t, err)
	require.Equal(t, rotated, accessTokenKeyID(t, next.AccessToken), "B signs with the new key")

	in.use(a)
	resp, body := bearerPost(t, a, next.AccessToken, nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "A verifies B's token of the new key: %s", body)
	in.use(b)
	resp, body = bearerPost(t, b, tok.AccessToken, nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "the retired key still verifies its tokens: %s", body)
}

// rotateKeyVia rotates the signing key through p's admin endpoint, as an
// operator's `oidcproxy keys rotate` does against a running server, and
// returns the new key id.
func rotateKeyVia(t *testing.T, p *proxy) string {
	t.Helper()
	rec := adminRotateKey(t, p)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var k httpapi.KeyInfo
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &k))
	return k.ID
}

// adminRotateKey posts a key rotation to p's admin handler, from loopback.
func adminRotateKey(t *testing.T, p *proxy) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:9090/keys/rotate", nil).WithContext(t.Context())
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set(httpapi.AdminRequestHeader, "1")
	rec := httptest.NewRecorder()
	p.App.AdminHandler().ServeHTTP(rec, req)
	return rec
}

func accessTokenKeyID(t *testing.T, token string) string {
	t.Helper()
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	require.NoError(t, err)
	return jws.Signatures[0].Protected.KeyID
}

func jwksOf(t *testing.T, p *proxy) string {
	t.Helper()
	resp, err := http.Get(p.BaseURL + "/jwks.json")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(body)
}

// While the database cannot be reached, every request that needs it is
// answered 503 temporarily_unavailable (JSON at the API, an HTML page in
// the browser, a bearer error at the gateway) within DATABASE_TIMEOUT,
// /readyz reports the store down; once it is back the same requests
// succeed without a restart, the refresh token presented during the
// outage included (nothing was half written).
//
// The outage is a TCP proxy between the App and the server that the test
// cuts (connections dropped, new ones closed: a server that stopped or
// restarted) or stalls (nothing carried: a network partition): the
// server itself is shared with other tests and must not be stopped.
func TestWhileTheDatabaseIsDownRequestsAreTemporarilyUnavailable(t *testing.T) {
	be := startBackend(t)
	schema := pgtest.Schema(t)
	dbURL, db := pgtest.ProxyURL(t, schema)
	const timeout = time.Second
	p, _ := startWithOP(t, withEnv("MCP_UPSTREAM", be.URL), withEnv("DATABASE_TIMEOUT", timeout.String()),
		func(env map[string]string) {
			delete(env, "OIDC_PROXY_STORE_PATH")
			env["OIDC_PROXY_DATABASE_URL"] = dbURL
		})
	c := p.register(t, nil)
	tok, _ := p.login(t, c)
	resp, body := bearerPost(t, p, tok.AccessToken, nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {c.ID}}

	for _, outage := range []struct {
		name  string
		start func()
	}{
		{"the server went away", db.Cut},
		{"the network stalls", db.Stall},
	} {
		t.Run(outage.name, func(t *testing.T) {
			outage.start()
			require.Eventually(t, func() bool { return readyStatus(t, p) == http.StatusServiceUnavailable },
				10*time.Second, 50*time.Millisecond, "/readyz reports the store down")

			started := time.Now()
			status, header, doc := p.postToken(t, refresh)
			requireOAuthError(t, http.StatusServiceUnavailable, "temporarily_unavailable", status, header, doc)
			require.Less(t, time.Since(started), timeout+time.Second, "answered within DATABASE_TIMEOUT")
			status, doc = p.postJSON(t, "/register", map[string]any{"redirect_uris": []string{"http://127.0.0.1:1/cb"}})
			require.Equal(t, http.StatusServiceUnavailable, status, doc)
			require.Equal(t, "temporarily_unavailable", doc["error"])

			page := newBrowser(t).get(t, p.authorizeURL(c, "s", "verifier-0123456789-0123456789-0123456789"))
			require.Equal(t, http.StatusServiceUnavailable, page.Status, page.Body)
			require.Contains(t, page.Header.Get("Content-Type"), "text/html")
			require.Contains(t, page.Body, "temporarily_unavailable")

			// Cached grants are served only while the store's listener is
			// connected; it notices the outage (at once, or by its
			// heartbeat), and from then on the bearer check needs the
			// database.
			require.Eventually(t, func() bool {
				resp, _ := bearerPost(t, p, tok.AccessToken, nil, nil)
				return resp.StatusCode == http.StatusServiceUnavailable
			}, 10*time.Second, 50*time.Millisecond, "the gateway answers 503")
			resp, body := bearerPost(t, p, tok.AccessToken, nil, nil)
			require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
			require.Contains(t, body, "temporarily_unavailable")
			require.Equal(t, http.StatusServiceUnavailable, adminRotateKey(t, p).Code, "the admin endpoint too")
			require.NotContains(t, p.Logs.String(), `"level":"ERROR"`, "an outage is logged as a warning, not as our fault")

			db.Restore()
			require.Eventually(t, func() bool { return readyStatus(t, p) == http.StatusOK },
				10*time.Second, 50*time.Millisecond, "/readyz recovers")
			status, _, doc = p.postToken(t, refresh)
			require.Equal(t, http.StatusOK, status, doc)
			refresh.Set("refresh_token", doc["refresh_token"].(string))
			tok.AccessToken = doc["access_token"].(string)
			resp, body = bearerPost(t, p, tok.AccessToken, nil, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, body)
		})
	}
}

// ready asks p's admin handler for /readyz.
func readyStatus(t *testing.T, p *proxy) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:9090/readyz", nil).WithContext(t.Context())
	req.RemoteAddr = "127.0.0.1:40000"
	rec := httptest.NewRecorder()
	p.App.AdminHandler().ServeHTTP(rec, req)
	return rec.Code
}
