// Package chromium_test drives oidcproxy's consent page in a real headless
// Chromium (Debian's chromium package, through chromedp): the things only a
// browser enforces — framing rules, cookie attributes, HTML escaping as
// parsed by a real parser, form submission with the browser's own Origin and
// Sec-Fetch-* headers — are checked where they take effect.
package chromium_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/oidcproxy/oidcproxy"
	"github.com/oidcproxy/oidcproxy/adapters/telemetry"
	"github.com/oidcproxy/oidcproxy/test/idp"
	"github.com/oidcproxy/oidcproxy/test/proxytest"
)

// requireEnv, set to 1, makes a missing Chromium fail these tests instead
// of skipping them. .ci/run sets it after installing Chromium, so in CI
// they always run and can always fail; on a developer's machine with only
// Go installed the README's test command still passes, and -v says what
// was skipped and how to run it.
const requireEnv = "OIDCPROXY_REQUIRE_CHROMIUM"

// testTimeout bounds each test, browser start included, and stepTimeout
// each wait for a page: the whole flow takes about a second even under
// -race on two cores, and a page that never comes must fail the test with
// where the browser is, not hang until go test's own deadline.
const (
	testTimeout = 45 * time.Second
	stepTimeout = 10 * time.Second
)

const (
	upstreamClientID = "oidcproxy-chromium"
	upstreamSecret   = "upstream-secret-chromium-0123456789"
)

// wallClock is the real time: Chromium and the upstream OP both use it.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// env is one proxy in front of the real OP, and the MCP client's loopback
// redirect listener, which records every redirect it receives.
type env struct {
	BaseURL   string
	OP        *idp.OP
	Callbacks chan *url.URL
	// CallbackURL is the client's redirect URI.
	CallbackURL string
	logs        *proxytest.LogBuffer
}

func start(t *testing.T) *env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	base := "http://" + ln.Addr().String()
	op := idp.StartOP(t, idp.Client{ID: upstreamClientID, Secret: upstreamSecret, RedirectURIs: []string{base + "/auth/callback"}})
	e := &env{BaseURL: base, OP: op, Callbacks: make(chan *url.URL, 4), logs: &proxytest.LogBuffer{}}
	proxytest.Serve(t, ln, proxytest.Env(t, base, op.ConfigURL, upstreamClientID, upstreamSecret), wallClock{}, e.logs, telemetry.Options{}, oidcproxy.CIMDRootCAs{})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("proxy logs:\n%s", e.logs.String())
		}
	})

	// The MCP client's loopback listener, as a desktop client runs it.
	client := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		u := *r.URL
		select {
		case e.Callbacks <- &u:
		default:
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<!DOCTYPE html><title>signed in</title><p id=done>You may close this window.</p>")
	}))
	t.Cleanup(client.Close)
	e.CallbackURL = client.URL + "/callback"
	return e
}

// mcpClient is a registered public client with the x/oauth2 configuration
// an MCP client builds from the proxy's metadata.
type mcpClient struct {
	ID    string
	OAuth *oauth2.Config
}

// register registers a public native client (RFC 7591) named name.
func (e *env) register(t *testing.T, name string) *mcpClient {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"client_name":   name,
		"redirect_uris": []string{e.CallbackURL},
		"grant_types":   []string{"authorization_code", "refresh_token"},
	})
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.BaseURL+"/register", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var doc struct {
		ClientID string `json:"client_id"`
	}
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	return &mcpClient{ID: doc.ClientID, OAuth: &oauth2.Config{
		ClientID:    doc.ClientID,
		RedirectURL: e.CallbackURL,
		Endpoint: oauth2.Endpoint{
			AuthURL:   e.BaseURL + "/authorize",
			TokenURL:  e.BaseURL + "/token",
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}}
}

// authorization is one authorization request as an MCP client builds it:
// a fresh state and PKCE verifier, S256, the MCP resource.
type authorization struct {
	URL, State, Verifier string
}

func (e *env) authorization(c *mcpClient) authorization {
	a := authorization{State: "state-" + oauth2.GenerateVerifier()[:12], Verifier: oauth2.GenerateVerifier()}
	a.URL = c.OAuth.AuthCodeURL(a.State, oauth2.S256ChallengeOption(a.Verifier),
		oauth2.SetAuthURLParam("resource", e.BaseURL+"/mcp"))
	return a
}

// awaitCallback returns the next redirect the client's listener received.
func (e *env) awaitCallback(tab context.Context, t *testing.T) *url.URL {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, stepTimeout)
	defer cancel()
	select {
	case u := <-e.Callbacks:
		return u
	case <-ctx.Done():
		failAt(t, tab, "the browser never reached the client's redirect URI", ctx.Err())
		return nil
	}
}

// chromiumPath finds Debian's Chromium, or skips the test with how to get
// it (fails instead when requireEnv says so).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "Chromium is not installed: run `apt-get update && apt-get install -y chromium` (Debian) " +
		"to run the consent page's browser tests"
	if os.Getenv(requireEnv) == "1" {
		t.Fatal(msg + " (" + requireEnv + "=1 requires them)")
	}
	t.Skip(msg)
	return ""
}

// newBrowser starts a headless Chromium with its own profile (so cookies
// never leak between tests) and returns a tab context bounded by
// testTimeout; the browser is closed when the test ends.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath(t)
	ctx, cancelTimeout := context.WithTimeout(t.Context(), testTimeout)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		// Chromium refuses to start as root with its sandbox on, and tests
		// and CI run as root here; the pages it visits are our own, on
		// loopback.
		chromedp.NoSandbox,
		chromedp.DisableGPU,
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancelTimeout()
	})
	// Start the browser now, so a start failure reads as one.
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate("about:blank")), "start Chromium at %s", path)
	return tab
}

// toConsent opens the authorization URL in the tab and waits for the
// consent form.
func toConsent(t *testing.T, tab context.Context, e *env, a authorization) {
	t.Helper()
	do(t, tab,
		chromedp.Navigate(a.URL),
		chromedp.WaitVisible(chromedp.CSS(`button[value="approve"]`)),
	)
	loc, err := chromedp.Run(tab, chromedp.Location())
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(loc, e.BaseURL+"/consent?"), loc)
}

// evalBool evaluates a JavaScript expression in the tab.
func evalBool(t *testing.T, tab context.Context, expr string) bool {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Evaluate[bool](expr))
	require.NoError(t, err, expr)
	return v
}

// do runs browser steps, each wait bounded by stepTimeout.
func do(t *testing.T, tab context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		failAt(t, tab, "browser step failed", err)
	}
}

// failAt ends the test with where the browser is and what the page says,
// which a bare "context deadline exceeded" does not tell.
func failAt(t *testing.T, tab context.Context, what string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 3*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	require.FailNow(t, what, "%v\nbrowser at: %s\npage text:\n%s", err, loc, text)
}
