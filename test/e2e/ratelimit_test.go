package e2e_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/oidcproxy/oidcproxy/test/idp"
)

// The abuse limits through the real App over loopback HTTP. Every request
// of these tests comes from 127.0.0.1, which is trusted as a proxy in some
// tests and not in others.

// limit sets one rate limit: perMinute and its burst.
func limit(name, perMinute, burst string) proxyOption {
	return func(env map[string]string) {
		env["OIDC_PROXY_RATE_LIMIT_"+name] = perMinute
		env["OIDC_PROXY_RATE_LIMIT_"+name+"_BURST"] = burst
	}
}

// registerFrom posts a registration with the given X-Forwarded-For header
// ("" for none) and returns the status, headers and body.
func (p *proxy) registerFrom(t *testing.T, forwardedFor string) (int, http.Header, map[string]any) {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"client_name": "Limited", "redirect_uris": []string{"http://127.0.0.1:53682/callback"}})
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.BaseURL+"/register", bytes.NewReader(raw))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if forwardedFor != "" {
		req.Header.Set("X-Forwarded-For", forwardedFor)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	return resp.StatusCode, resp.Header, decodeBody(t, resp)
}

// requireRateLimited checks a JSON 429 answer.
func requireRateLimited(t *testing.T, status int, header http.Header, body map[string]any) {
	t.Helper()
	require.Equal(t, http.StatusTooManyRequests, status, body)
	require.Regexp(t, `^[1-9][0-9]*$`, header.Get("Retry-After"), "whole seconds")
	require.Equal(t, "temporarily_unavailable", body["error"])
	require.Equal(t, "no-store", header.Get("Cache-Control"))
}

func TestABurstBeyondTheTokenLimitGets429WithRetryAfter(t *testing.T) {
	p, _ := startWithOP(t, limit("TOKEN", "60", "3"))
	form := url.Values{"grant_type": {"password"}, "username": {"u"}, "password": {"p"}}
	for range 3 {
		status, _, body := p.postToken(t, form)
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, "unsupported_grant_type", body["error"], "within the burst, requests are answered as usual")
	}
	status, header, body := p.postToken(t, form)
	requireRateLimited(t, status, header, body)
	require.Equal(t, "1", header.Get("Retry-After"), "one request a second refills one place")
	require.Equal(t, "*", header.Get("Access-Control-Allow-Origin"), "browser clients can read the refusal")
	require.Contains(t, header.Get("Access-Control-Expose-Headers"), "Retry-After")

	time.Sleep(1100 * time.Millisecond) // the limiters run on the monotonic clock
	status, _, body = p.postToken(t, form)
	require.Equal(t, http.StatusBadRequest, status, "admitted again after Retry-After: %v", body)

	require.Contains(t, p.Logs.String(), `"msg":"rate limit refused a request","limit":"token"`)
}

func TestForwardedForIsIgnoredFromAnUntrustedPeer(t *testing.T) {
	p, _ := startWithOP(t, limit("REGISTER", "60", "2"))
	for i, forged := range []string{"198.51.100.1", "198.51.100.2"} {
		status, _, body := p.registerFrom(t, forged)
		require.Equal(t, http.StatusCreated, status, "registration %d: %v", i, body)
	}
	status, header, body := p.registerFrom(t, "198.51.100.3")
	requireRateLimited(t, status, header, body)
	require.NotContains(t, p.Logs.String(), `"client_ip":"198.51.100.`, "the forged addresses reach no audit record")
	require.Contains(t, p.Logs.String(), `"event":"client_registered","client_ip":"127.0.0.1"`)
}

func TestForwardedForIsHonouredFromATrustedPeerAndAnotherAddressIsUnaffected(t *testing.T) {
	p, _ := startWithOP(t, limit("REGISTER", "60", "2"), withEnv("TRUSTED_PROXIES", "127.0.0.1/32"))
	for range 2 {
		status, _, body := p.registerFrom(t, "198.51.100.1")
		require.Equal(t, http.StatusCreated, status, body)
	}
	status, header, body := p.registerFrom(t, "198.51.100.1")
	requireRateLimited(t, status, header, body)
	// What a client writes left of the address the proxy appended is not
	// read: it cannot buy itself a new budget.
	status, header, body = p.registerFrom(t, "203.0.113.66, 198.51.100.1")
	requireRateLimited(t, status, header, body)

	status, _, body = p.registerFrom(t, "198.51.100.2")
	require.Equal(t, http.StatusCreated, status, "another client address has its own budget: %v", body)
	require.Contains(t, p.Logs.String(), `"event":"client_registered","client_ip":"198.51.100.2","remote_addr":"127.0.0.1:`)

	status, _, body = p.registerFrom(t, "")
	require.Equal(t, http.StatusCreated, status, "the proxy's own requests count as the proxy: %v", body)
}

func TestTheSignInPagesAnswerTheLimitWithAnHTMLPage(t *testing.T) {
	p, _ := startWithOP(t, limit("AUTHORIZE", "60", "1"))
	b := newBrowser(t)
	authorize := p.BaseURL + "/authorize?client_id=nobody&response_type=code"
	first := b.get(t, authorize)
	require.Equal(t, http.StatusBadRequest, first.Status, "an unknown client's page, within the budget")

	refused := b.get(t, authorize)
	require.Equal(t, http.StatusTooManyRequests, refused.Status)
	require.Nil(t, refused.Location, "never a redirect")
	require.Contains(t, refused.Header.Get("Content-Type"), "text/html")
	require.Equal(t, "1", refused.Header.Get("Retry-After"))
	require.Contains(t, refused.Body, "Too many sign-in requests came from your network")
	require.Contains(t, refused.Body, "Wait 1 seconds")
	require.Equal(t, "DENY", refused.Header.Get("X-Frame-Options"))

	consent := b.get(t, p.BaseURL+"/consent?txn=unknown")
	require.Equal(t, http.StatusBadRequest, consent.Status, "the consent page has a budget of its own: %s", consent.Body)
	require.Equal(t, http.StatusTooManyRequests, b.get(t, p.BaseURL+"/consent?txn=unknown").Status)
	callback := b.get(t, p.BaseURL+"/auth/callback?state=unknown&code=x")
	require.NotEqual(t, http.StatusTooManyRequests, callback.Status, "and so has the callback")
	require.Equal(t, http.StatusTooManyRequests, b.get(t, p.BaseURL+"/auth/callback?state=unknown&code=x").Status)
}

func TestAGatewaySubjectBeyondItsLimitGets429AndAnotherSubjectIsUnaffected(t *testing.T) {
	be := startBackend(t)
	p, f := startWithFaulty(t, withEnv("MCP_UPSTREAM", be.URL), limit("GATEWAY", "60", "2"))
	c := p.register(t, nil)
	alice, _ := p.login(t, c)
	f.Set(idp.Faults{IDTokenClaims: map[string]any{"sub": "another-user"}})
	other, _ := p.login(t, c)

	initialize := []byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`)
	for range 2 {
		resp, body := bearerPost(t, p, alice.AccessToken, initialize, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
	}
	before := len(be.headers())
	resp, body := bearerPost(t, p, alice.AccessToken, initialize, nil)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, body)
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	require.JSONEq(t, `{"error":"temporarily_unavailable","error_description":"too many requests; retry after the time in the Retry-After header"}`, body)
	require.Len(t, be.headers(), before, "the refused request never reached the backend")

	resp, body = bearerPost(t, p, other.AccessToken, initialize, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "another subject has its own budget: %s", body)
}

func TestMetadataDocumentFetchesAreLimitedPerClientAddressButCachedDocumentsAreNot(t *testing.T) {
	p, docs := startWithDocHost(t, limit("CIMD", "60", "1"))
	first := docs.publish(t, "/first.json", cimdDocument())
	second := docs.publish(t, "/second.json", cimdDocument())

	res := p.authorizePage(t, first, cimdRedirectURI)
	require.Equal(t, http.StatusFound, res.Status, res.Body)

	refused := p.authorizePage(t, second, cimdRedirectURI)
	require.Equal(t, http.StatusTooManyRequests, refused.Status, refused.Body)
	require.Nil(t, refused.Location)
	require.Contains(t, refused.Header.Get("Content-Type"), "text/html")
	require.Equal(t, "1", refused.Header.Get("Retry-After"))
	require.Contains(t, refused.Body, "too many new client metadata documents")
	require.Zero(t, docs.Hits("/second.json"), "refused before any fetch")

	res = p.authorizePage(t, first, cimdRedirectURI)
	require.Equal(t, http.StatusFound, res.Status, "a cached document costs nothing: %s", res.Body)
	require.Equal(t, 1, docs.Hits("/first.json"))

	status, header, body := p.postToken(t, url.Values{
		"grant_type": {"authorization_code"}, "client_id": {second}, "code": {"x"},
		"redirect_uri": {cimdRedirectURI}, "code_verifier": {oauth2.GenerateVerifier()},
	})
	requireRateLimited(t, status, header, body)
	require.Contains(t, body["error_description"], "too many new client metadata documents")
}

func TestTheClientBoundRefusesRegistrationUntilUnusedClientsAreSwept(t *testing.T) {
	p, _ := startWithOP(t, withEnv("MAX_CLIENTS", "2"))
	used := p.register(t, nil)
	unused := p.register(t, nil)
	tok, _ := p.login(t, used)

	status, _, body := p.registerFrom(t, "")
	require.Equal(t, http.StatusServiceUnavailable, status, body)
	require.Equal(t, "temporarily_unavailable", body["error"])
	require.Contains(t, body["error_description"], "no more client registrations")

	// A day later the sweeper removes the client nobody signed in
	// through; the used one stays and keeps working.
	p.Clock.Advance(24*time.Hour + time.Minute)
	_, err := p.App.Application().SweepExpired.Handle(t.Context())
	require.NoError(t, err)

	gone := newFlow(t, unused)
	page := gone.Browser.get(t, p.authorizeURL(unused, gone.State, gone.Verifier))
	require.Equal(t, http.StatusBadRequest, page.Status)
	require.Contains(t, page.Body, "unknown client")

	next, err := p.refresh(t, used, tok.RefreshToken)
	require.NoError(t, err, "the used client's grant works on")
	require.NotEmpty(t, next.AccessToken)
	p.toConsent(t, newFlow(t, used))

	status, _, body = p.registerFrom(t, "")
	require.Equal(t, http.StatusCreated, status, "the sweep made room: %v", body)
}

// A request beyond the limit is refused without its body being read, and
// its connection is closed rather than drained: a client that announces a
// body and never sends it cannot hold the refusal up.
func TestARefusedRequestsBodyIsNotRead(t *testing.T) {
	p, _ := startWithOP(t, limit("REGISTER", "60", "1"))
	status, _, body := p.registerFrom(t, "")
	require.Equal(t, http.StatusCreated, status, body)

	u, err := url.Parse(p.BaseURL)
	require.NoError(t, err)
	conn, err := net.Dial("tcp", u.Host)
	require.NoError(t, err)
	defer conn.Close()
	// 1000 bytes announced (few enough that net/http would wait to drain
	// them), 16 sent, and then nothing more.
	_, err = io.WriteString(conn, "POST /register HTTP/1.1\r\nHost: "+u.Host+"\r\nContent-Type: application/json\r\n"+
		"Content-Length: 1000\r\n\r\n{\"client_name\":\"")
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "answered at once, not after the body")
	defer resp.Body.Close()
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.True(t, resp.Close, "Connection: close")
}
