package e2e_test

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	xhtml "golang.org/x/net/html"

	"github.com/oidcproxy/oidcproxy/test/idp"
	"github.com/oidcproxy/oidcproxy/test/proxytest"
)

// The directory of the OP these tests sign in at. The example OP puts
// email and email_verified into userinfo, the claims below into ID tokens
// and userinfo.
var directory = []idp.User{
	{Subject: "alice-sub", Username: "alice", Password: "alice-pw", Email: "alice@example.com", EmailVerified: true,
		Claims: map[string]any{"groups": []any{"staff"}}},
	{Subject: "bob-sub", Username: "bob", Password: "bob-pw", Email: "bob@corp.example", EmailVerified: true},
	{Subject: "carol-sub", Username: "carol", Password: "carol-pw", Email: "carol@other.example", EmailVerified: true,
		Claims: map[string]any{"realm_access": map[string]any{"roles": []any{"mcp-admin", "offline"}}}},
	{Subject: "dave-sub", Username: "dave", Password: "dave-pw", Email: "dave@example.com", EmailVerified: false},
	{Subject: "erin-sub", Username: "erin", Password: "erin-pw", Email: "erin@other.example", EmailVerified: true,
		Claims: map[string]any{"department": "engineering"}},
	{Subject: "frank-sub", Username: "frank", Password: "frank-pw", Email: "frank@other.example", EmailVerified: true,
		Claims: map[string]any{"groups": []any{"staff"}, "department": "sales"}},
}

// thePolicy admits alice by address, bob by domain, carol by a Keycloak
// realm role, erin by a condition; dave's address is listed but
// unverified, and frank matches nothing.
const thePolicy = `
group_claims: [groups, realm_access.roles]
admission:
  allow:
    emails: [alice@example.com, dave@example.com]
    domains: [corp.example]
    groups: [mcp-admin]
    condition: 'claims.?department.orValue("") == "engineering"'
`

// asUser signs in at the OP as one user of its directory.
type asUser struct {
	op                 *idp.OP
	username, password string
}

func (u asUser) Login(ctx context.Context, c *http.Client, authURL string) (*url.URL, error) {
	return u.op.LoginAs(ctx, c, authURL, u.username, u.password)
}

// policyProxy is a proxy in front of an OP with the directory above, with
// POLICY_FILE pointing at a file holding policy.
type policyProxy struct {
	*proxy
	op         *idp.OP
	policyPath string
}

func startWithPolicy(t *testing.T, policy string, opts ...proxyOption) *policyProxy {
	t.Helper()
	ln := listen(t)
	base := "http://" + ln.Addr().String()
	op := idp.StartOPWithUsers(t, directory, idp.Client{ID: upstreamClientID, Secret: upstreamSecret, RedirectURIs: []string{base + "/auth/callback"}})
	env := baseEnv(t, base, op.ConfigURL)
	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte(policy), 0o600))
	env["OIDC_PROXY_POLICY_FILE"] = path
	for _, o := range opts {
		o(env)
	}
	p := &proxy{t: t, BaseURL: base, Env: env, StorePath: env["OIDC_PROXY_STORE_PATH"], Clock: &testClock{}, Logs: &proxytest.LogBuffer{}, Upstream: op}
	p.start(ln)
	return &policyProxy{proxy: p, op: op, policyPath: path}
}

// as makes the next sign-ins those of username.
func (p *policyProxy) as(username string) {
	for _, u := range directory {
		if u.Username == username {
			p.Upstream = asUser{op: p.op, username: u.Username, password: u.Password}
			return
		}
	}
	p.t.Fatalf("no user %q in the directory", username)
}

func (p *policyProxy) rewritePolicy(t *testing.T, policy string) {
	t.Helper()
	require.NoError(t, os.WriteFile(p.policyPath, []byte(policy), 0o600))
}

// admin serves the App's admin handler on loopback, as ADMIN_ADDR would.
func (p *policyProxy) admin(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(p.App.AdminHandler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// reload asks the admin endpoint to reload the policy.
func reload(t *testing.T, admin string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, admin+"/policy/reload", nil)
	require.NoError(t, err)
	req.Header.Set("X-OIDCProxy-Admin", "1")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	return resp.StatusCode, decodeBody(t, resp)
}

// auditLines returns the audit records of event logged after from.
func auditLines(t *testing.T, logs string, event string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `"audit":true`) {
			continue
		}
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		if rec["event"] == event {
			out = append(out, rec)
		}
	}
	return out
}

func TestThePolicyAdmitsByVerifiedEmailDomainGroupAndCondition(t *testing.T) {
	p := startWithPolicy(t, thePolicy)
	c := p.register(t, nil)
	for _, user := range []string{"alice", "bob", "carol", "erin"} {
		t.Run(user, func(t *testing.T) {
			p.as(user)
			tok, _ := p.login(t, c)
			require.NotEmpty(t, tok.AccessToken)
			_, err := p.refresh(t, c, tok.RefreshToken)
			require.NoError(t, err, "and still at a refresh")
		})
	}
	require.Empty(t, auditLines(t, p.Logs.String(), "admission_denied"))
}

func TestARefusedUserSeesWhichAccountWasRefusedAndTheClientGetsAccessDenied(t *testing.T) {
	p := startWithPolicy(t, thePolicy)
	c := p.register(t, nil)
	for _, tc := range []struct{ user, email, subject string }{
		{"dave", "dave@example.com", "dave-sub"},      // listed, but the IdP has not verified the address
		{"frank", "frank@other.example", "frank-sub"}, // nothing matches
	} {
		t.Run(tc.user, func(t *testing.T) {
			logsBefore := len(p.Logs.String())
			p.as(tc.user)
			f := newFlow(t, c)
			res := f.Browser.get(t, p.toCallback(t, f).String())

			// The person: a page naming the account, nothing about the rule.
			require.Equal(t, http.StatusForbidden, res.Status)
			require.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
			require.Contains(t, res.Body, html.EscapeString(tc.email)+"</strong> is not allowed to use this application")
			for _, secret := range []string{"corp.example", "mcp-admin", "engineering", "admission", "condition", "matched"} {
				require.NotContains(t, res.Body, secret, "the page reveals the policy")
			}
			require.Empty(t, res.Location, "no redirect: the page is shown")

			// The client: access_denied, its state and our issuer, once the
			// page moves on (the Refresh header) or the person follows its
			// link.
			refresh := res.Header.Get("Refresh")
			delay, target, ok := strings.Cut(refresh, "; url=")
			require.True(t, ok, "Refresh header %q", refresh)
			require.Equal(t, "10", delay)
			u, err := url.Parse(target)
			require.NoError(t, err)
			require.Equal(t, c.RedirectURI, u.Scheme+"://"+u.Host+u.Path)
			q := u.Query()
			require.Equal(t, "access_denied", q.Get("error"))
			require.Equal(t, f.State, q.Get("state"))
			require.Equal(t, p.BaseURL, q.Get("iss"))
			require.Empty(t, q.Get("code"))
			require.NotContains(t, target, tc.email, "the account stays out of the client's URL")
			require.Equal(t, target, returnLink(t, res.Body), "the page's link goes where the Refresh header does")

			// The operator: an audit record with who and why, no address.
			logs := p.Logs.String()[logsBefore:]
			recs := auditLines(t, logs, "admission_denied")
			require.Len(t, recs, 1)
			require.Equal(t, tc.subject, recs[0]["subject"])
			require.Equal(t, c.ID, recs[0]["client_id"])
			require.Equal(t, "no admission.allow entry matched", recs[0]["reason"])
			require.NotContains(t, logs, tc.email, "logs never carry email addresses")
		})
	}
	// Nothing was stored for them: the sweep finds only the client, which
	// never completed a grant (registration hygiene removes it).
	p.Clock.Advance(1000 * time.Hour)
	removed, err := p.App.Application().SweepExpired.Handle(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, removed, "only the unused client was left to sweep")
}

func TestAUserTakenOutOfThePolicyLosesAccessAtTheNextRefresh(t *testing.T) {
	p := startWithPolicy(t, thePolicy)
	admin := p.admin(t)
	c := p.register(t, nil)
	p.as("alice")
	tok, _ := p.login(t, c)
	next, err := p.refresh(t, c, tok.RefreshToken)
	require.NoError(t, err)

	// The operator takes alice out and reloads, while a client keeps a
	// connection to the proxy open: the reload drops no connection.
	conn := keepAliveClient()
	require.False(t, getReusing(t, conn, p.BaseURL+"/healthz"))
	p.rewritePolicy(t, strings.Replace(thePolicy, "alice@example.com, ", "", 1))
	status, body := reload(t, admin)
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, true, body["reloaded"])
	require.Contains(t, body["summary"], "admission: 1 email, 1 domain")
	require.True(t, getReusing(t, conn, p.BaseURL+"/healthz"), "the connection opened before the reload still serves")

	_, err = p.refresh(t, c, next.RefreshToken)
	require.Equal(t, "invalid_grant", oauthErrorCode(err))
	recs := auditLines(t, p.Logs.String(), "admission_denied")
	require.Len(t, recs, 1)
	require.Equal(t, "alice-sub", recs[0]["subject"])
	require.Equal(t, "refresh_token", recs[0]["grant_type"])
	require.NotEmpty(t, recs[0]["grant_id"])

	// The grant is gone: taking alice back does not revive it; she signs
	// in again.
	p.rewritePolicy(t, thePolicy)
	require.NoError(t, p.App.ReloadPolicy(), "the SIGHUP path")
	_, err = p.refresh(t, c, next.RefreshToken)
	require.Equal(t, "invalid_grant", oauthErrorCode(err))
	again, _ := p.login(t, c)
	require.NotEmpty(t, again.AccessToken)
}

func TestLeavingAGroupAtTheIdPEndsAccessAtTheRefreshThatAsksTheIdP(t *testing.T) {
	p := startWithPolicy(t, thePolicy)
	c := p.register(t, nil)
	p.as("carol")
	tok, _ := p.login(t, c)

	// The IdP takes carol's role away. Our refreshes do not ask the IdP
	// while its access token lives...
	p.op.SetClaims("carol-sub", map[string]any{"realm_access": map[string]any{"roles": []any{"offline"}}})
	next, err := p.refresh(t, c, tok.RefreshToken)
	require.NoError(t, err)

	// ...the first one after it has expired does, and the new ID token
	// no longer admits her.
	p.Clock.Advance(2 * time.Hour)
	_, err = p.refresh(t, c, next.RefreshToken)
	require.Equal(t, "invalid_grant", oauthErrorCode(err))
	recs := auditLines(t, p.Logs.String(), "admission_denied")
	require.Len(t, recs, 1)
	require.Equal(t, "carol-sub", recs[0]["subject"])
}

func TestAnInvalidPolicyOnReloadKeepsThePolicyInForce(t *testing.T) {
	p := startWithPolicy(t, thePolicy)
	admin := p.admin(t)
	c := p.register(t, nil)

	p.rewritePolicy(t, `
admission:
  allow:
    domains: ["*.example.com"]
    sujects: [x]
`)
	status, body := reload(t, admin)
	require.Equal(t, http.StatusUnprocessableEntity, status, body)
	require.Equal(t, "invalid_policy", body["error"])
	problems, _ := body["problems"].([]any)
	require.Len(t, problems, 2, "every problem: %v", problems)
	joined := problems[0].(string) + "\n" + problems[1].(string)
	require.Contains(t, joined, `unknown key "sujects"`)
	require.Contains(t, joined, "subdomains are not matched by a pattern")
	require.Contains(t, p.Logs.String(), "access policy not reloaded; the policy in force stays")
	require.Error(t, p.App.ReloadPolicy(), "the SIGHUP path refuses it too")

	// The old policy decides: bob is admitted by his domain, frank is not.
	p.as("bob")
	tok, _ := p.login(t, c)
	require.NotEmpty(t, tok.AccessToken)
	p.as("frank")
	f := newFlow(t, c)
	res := f.Browser.get(t, p.toCallback(t, f).String())
	require.Equal(t, http.StatusForbidden, res.Status)

	// An unreadable file too.
	require.NoError(t, os.Remove(p.policyPath))
	status, body = reload(t, admin)
	require.Equal(t, http.StatusUnprocessableEntity, status, body)
	p.as("bob")
	_, err := p.refresh(t, c, tok.RefreshToken)
	require.NoError(t, err)
}

func TestTheReloadEndpointIsGuardedLikeTheKeyEndpoints(t *testing.T) {
	p := startWithPolicy(t, thePolicy)
	admin := p.admin(t)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, admin+"/policy/reload", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "a form post a web page could send")

	req, err = http.NewRequestWithContext(t.Context(), http.MethodPost, admin+"/policy/reload", nil)
	require.NoError(t, err)
	req.Header.Set("X-OIDCProxy-Admin", "1")
	req.Header.Set("Origin", "https://evil.example")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "a cross-origin request")
}

func TestWithoutAPolicyFileReloadHasNothingToDo(t *testing.T) {
	p, _ := startWithOP(t)
	srv := httptest.NewServer(p.App.AdminHandler())
	t.Cleanup(srv.Close)
	status, body := reload(t, srv.URL)
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, body["error_description"], "no access policy file is configured")
	require.NoError(t, p.App.ReloadPolicy())
}

func TestAPublicProviderWithoutAdmissionIsWarnedOfAtStart(t *testing.T) {
	open, _ := startWithEmulation(t, "google", func(t testing.TB, o idp.FaultyOptions) *idp.Faulty {
		return idp.NewGoogle(t, idp.GoogleOptions{FaultyOptions: o})
	})
	require.Contains(t, open.Logs.String(), "provider google signs in anyone with a Google account")
	require.Contains(t, open.Logs.String(), `"level":"WARN"`)

	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte("admission:\n  allow:\n    domains: [example.com]\n"), 0o600))
	closed, _ := startWithEmulation(t, "google", func(t testing.TB, o idp.FaultyOptions) *idp.Faulty {
		return idp.NewGoogle(t, idp.GoogleOptions{FaultyOptions: o})
	}, withEnv("POLICY_FILE", path))
	require.NotContains(t, closed.Logs.String(), "signs in anyone")
	require.Contains(t, closed.Logs.String(), "access policy loaded")
}

// keepAliveClient is a client with one connection it reuses.
func keepAliveClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
}

// getReusing fetches u and reports whether an open connection served it.
func getReusing(t *testing.T, c *http.Client, u string) bool {
	t.Helper()
	var reused bool
	ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	require.NoError(t, err)
	resp, err := c.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return reused
}

// returnLink is the href of the refusal page's link back to the client.
func returnLink(t *testing.T, body string) string {
	t.Helper()
	doc, err := xhtml.Parse(strings.NewReader(body))
	require.NoError(t, err)
	var href string
	var walk func(n *xhtml.Node)
	walk = func(n *xhtml.Node) {
		if n.Type == xhtml.ElementNode && n.Data == "a" && attr(n, "id") == "return" {
			href = attr(n, "href")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	require.NotEmpty(t, href, "no return link on the page")
	return href
}
