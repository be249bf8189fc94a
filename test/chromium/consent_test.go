package chromium_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

func TestAPersonApprovesInChromiumAndTheMCPClientGetsATokenForItsCode(t *testing.T) {
	e := start(t)
	c := e.register(t, "Chromium MCP Client")
	tab := newBrowser(t)
	a := e.authorization(c)

	toConsent(t, tab, e, a)
	heading, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("h1")))
	require.NoError(t, err)
	require.Contains(t, heading, "Chromium MCP Client")
	body, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("body")))
	require.NoError(t, err)
	redirect, err := url.Parse(e.CallbackURL)
	require.NoError(t, err)
	require.Contains(t, body, redirect.Host, "the consent page names where the browser will be sent")

	// Approve, then sign in on the OP's own login form.
	do(t, tab,
		chromedp.Click(chromedp.CSS(`button[value="approve"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#password`)),
	)
	loc, err := chromedp.Run(tab, chromedp.Location())
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(loc, e.OP.Issuer), "the browser is at the upstream OP: %s", loc)
	requireProxyCookiesAreHttpOnlyAndLax(t, tab, e)

	do(t, tab,
		chromedp.SendKeys(chromedp.CSS(`#username`), e.OP.Username),
		chromedp.SendKeys(chromedp.CSS(`#password`), e.OP.Password),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
	)
	cb := e.awaitCallback(tab, t)
	q := cb.Query()
	require.NotEmpty(t, q.Get("code"))
	require.Equal(t, a.State, q.Get("state"))
	require.Equal(t, e.BaseURL, q.Get("iss"), "RFC 9207: the issuer comes with the code")
	do(t, tab, chromedp.WaitVisible(chromedp.CSS(`#done`)))
	loc, err = chromedp.Run(tab, chromedp.Location())
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(loc, e.CallbackURL+"?"), "Chromium ended on the client's redirect URI: %s", loc)

	tok, err := c.OAuth.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(a.Verifier),
		oauth2.SetAuthURLParam("resource", e.BaseURL+"/mcp"))
	require.NoError(t, err)
	require.Equal(t, "Bearer", tok.TokenType)
	require.Len(t, strings.Split(tok.AccessToken, "."), 3, "the access token is a JWT")
	require.NotEmpty(t, tok.RefreshToken)
}

// requireProxyCookiesAreHttpOnlyAndLax reads the cookies Chromium holds for
// the proxy through CDP: every one must be hidden from scripts and sent on
// top-level navigations only (Lax, which the return from the IdP needs).
func requireProxyCookiesAreHttpOnlyAndLax(t *testing.T, tab context.Context, e *env) {
	t.Helper()
	res, err := chromedp.Call(tab, network.GetCookies, network.GetCookiesParams{URLs: []string{e.BaseURL + "/"}})
	require.NoError(t, err)
	require.NotEmpty(t, res.Cookies, "after approving, Chromium holds the proxy's browser-binding cookie")
	for _, c := range res.Cookies {
		require.True(t, strings.HasPrefix(c.Name, "oidcproxy-"), "unexpected cookie %q", c.Name)
		require.True(t, c.HTTPOnly, "cookie %s must be HttpOnly", c.Name)
		require.Equal(t, network.CookieSameSiteLax, c.SameSite, "cookie %s must be SameSite=Lax", c.Name)
		require.Equal(t, "/", c.Path, "cookie %s", c.Name)
	}
}

func TestAPersonWhoDeniesInChromiumIsSentBackToTheClientWithAccessDenied(t *testing.T) {
	e := start(t)
	c := e.register(t, "Chromium MCP Client")
	tab := newBrowser(t)
	a := e.authorization(c)

	toConsent(t, tab, e, a)
	do(t, tab, chromedp.Click(chromedp.CSS(`button[value="deny"]`)))
	cb := e.awaitCallback(tab, t)
	q := cb.Query()
	require.Equal(t, "access_denied", q.Get("error"))
	require.Equal(t, a.State, q.Get("state"))
	require.Equal(t, e.BaseURL, q.Get("iss"))
	require.Empty(t, q.Get("code"))
	do(t, tab, chromedp.WaitVisible(chromedp.CSS(`#done`)))
	loc, err := chromedp.Run(tab, chromedp.Location())
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(loc, e.CallbackURL+"?"), loc)
}

func TestAClientNameWithScriptMarkupIsShownAsTextAndNeverRuns(t *testing.T) {
	e := start(t)
	const name = `Evil<script>window.pwned=1;document.title="pwned"</script><img src=x onerror="window.pwned=2">`
	c := e.register(t, name)
	tab := newBrowser(t)

	toConsent(t, tab, e, e.authorization(c))
	heading, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("h1")))
	require.NoError(t, err)
	require.Contains(t, heading, name, "the markup is shown to the person, as text")
	require.False(t, evalBool(t, tab, `document.querySelector("body script, body img") !== null`),
		"the client name became elements")
	require.False(t, evalBool(t, tab, `typeof window.pwned !== "undefined"`), "the client name's script ran")
	title, err := chromedp.Run(tab, chromedp.Title())
	require.NoError(t, err)
	require.Equal(t, "Authorize "+name, title)
}

func TestAnotherSiteCannotFrameTheConsentPage(t *testing.T) {
	e := start(t)
	c := e.register(t, "Chromium MCP Client")
	tab := newBrowser(t)

	// A live consent page (a real transaction), reached the way an attacker
	// would: by starting an authorization and keeping the consent URL.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.authorization(c).URL, nil)
	require.NoError(t, err)
	resp, err := noFollow.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	consent, err := resp.Location()
	require.NoError(t, err)
	consentURL := e.BaseURL + consent.RequestURI()
	require.True(t, strings.HasPrefix(consentURL, e.BaseURL+"/consent?txn="), consentURL)

	// The attacker's page frames it next to a frameable page of the proxy
	// (its metadata document), which shows that a frame of the proxy
	// loads at all from this origin, so a blank consent frame means blocked.
	control := e.BaseURL + "/.well-known/oauth-authorization-server"
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!DOCTYPE html><title>attacker</title>
<iframe id="consent" src="%s"></iframe>
<iframe id="control" src="%s"></iframe>`, consentURL, control)
	}))
	t.Cleanup(attacker.Close)

	do(t, tab, chromedp.Navigate(attacker.URL))
	var frames map[string]*page.FrameTree
	require.Eventually(t, func() bool {
		frames = childFrames(t, tab)
		return frames[control] != nil && len(frames) == 2
	}, 10*time.Second, 50*time.Millisecond, "the attacker page's frames never loaded")

	require.Empty(t, frames[control].Frame.UnreachableURL, "the control frame loads")
	blocked := frames[consentURL]
	require.NotNil(t, blocked, "frames: %v", frameURLs(frames))
	require.Equal(t, consentURL, blocked.Frame.UnreachableURL, "Chromium refused to show the consent page in a frame")
	require.False(t, evalBool(t, tab, `(() => {
		try { return document.getElementById("consent").contentDocument.querySelector("form") !== null }
		catch (e) { return false } })()`), "the consent form is in the frame")
}

// childFrames maps the URLs of the top page's child frames (the URL it
// failed to load, for a blocked frame) to the frames.
func childFrames(t *testing.T, tab context.Context) map[string]*page.FrameTree {
	t.Helper()
	res, err := chromedp.Call(tab, page.GetFrameTree, cdp.Empty{})
	require.NoError(t, err)
	out := map[string]*page.FrameTree{}
	for _, f := range res.FrameTree.ChildFrames {
		u := f.Frame.URL
		if f.Frame.UnreachableURL != "" {
			u = f.Frame.UnreachableURL
		}
		out[u] = f
	}
	return out
}

func frameURLs(frames map[string]*page.FrameTree) []string {
	var out []string
	for _, f := range frames {
		out = append(out, f.Frame.URL+" (unreachable: "+f.Frame.UnreachableURL+")")
	}
	return out
}
