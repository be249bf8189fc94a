package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/oidcproxy/oidcproxy/adapters/httpapi"
	"github.com/oidcproxy/oidcproxy/test/browser"
	"github.com/oidcproxy/oidcproxy/test/idp"
)

func serveEnv(t *testing.T, configURL, storePath string) map[string]string {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	port, admin := freePort(t), freePort(t)
	return map[string]string{
		"OIDC_PROXY_LISTEN_ADDR":    fmt.Sprintf("127.0.0.1:%d", port),
		"OIDC_PROXY_ADMIN_ADDR":     fmt.Sprintf("127.0.0.1:%d", admin),
		"OIDC_PROXY_BASE_URL":       fmt.Sprintf("http://127.0.0.1:%d", port),
		"OIDC_PROXY_CONFIG_URL":     configURL,
		"OIDC_PROXY_CLIENT_ID":      "proxy",
		"OIDC_PROXY_CLIENT_SECRET":  "proxy-secret",
		"OIDC_PROXY_STORE_PATH":     storePath,
		"OIDC_PROXY_ENCRYPTION_KEY": base64.StdEncoding.EncodeToString(key),
		"OIDC_PROXY_LOG_LEVEL":      "warn",
	}
}

// serveUntil runs `oidcproxy serve` until the returned stop is called.
func serveUntil(t *testing.T, env map[string]string) (stop func()) {
	t.Helper()
	stop, _ = serveLogged(t, env)
	return stop
}

// serveLogged is serveUntil that also returns what serve logs.
func serveLogged(t *testing.T, env map[string]string) (stop func(), logs *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errOut := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve"}, envOf(env), &syncBuffer{}, errOut) }()
	base := env["OIDC_PROXY_BASE_URL"]
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond, "serve did not start: %s", errOut.String())
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			require.Equal(t, 0, code, errOut.String())
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
	}
	t.Cleanup(stop)
	return stop, errOut
}

func TestKeysListAndRotateOnAStoppedStore(t *testing.T) {
	env := serveEnv(t, "http://127.0.0.1:9/.well-known/openid-configuration", filepath.Join(t.TempDir(), "p.db"))
	var out, errOut bytes.Buffer
	require.Equal(t, 0, run(t.Context(), []string{"keys", "list"}, envOf(env), &out, &errOut), errOut.String())
	require.Equal(t, 1, strings.Count(out.String(), "active"), out.String())

	out.Reset()
	require.Equal(t, 0, run(t.Context(), []string{"keys", "rotate"}, envOf(env), &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "new active signing key")

	out.Reset()
	require.Equal(t, 0, run(t.Context(), []string{"keys", "list"}, envOf(env), &out, &errOut), errOut.String())
	require.Equal(t, 2, strings.Count(out.String(), "ES256"), out.String())
	require.Contains(t, out.String(), "retired, published until")

	require.Equal(t, 2, run(t.Context(), []string{"keys"}, envOf(env), &out, &errOut))
}

func TestBackupWhileServingGivesAStoreServeStartsFrom(t *testing.T) {
	f := idp.NewFaulty(t, idp.FaultyOptions{ClientID: "proxy", ClientSecret: "proxy-secret"})
	dir := t.TempDir()
	env := serveEnv(t, f.ConfigURL, filepath.Join(dir, "live.db"))
	env["OIDC_PROXY_ADMIN_TOKEN"] = "admin-token-for-the-test"
	stop := serveUntil(t, env)

	// Without the token the admin listener hands out nothing but health.
	adminBase := "http://" + env["OIDC_PROXY_ADMIN_ADDR"]
	for _, path := range []string{"/backup", "/keys"} {
		resp, err := http.Get(adminBase + path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusForbidden, resp.StatusCode, path)
	}
	resp, err := http.Get(adminBase + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	base := env["OIDC_PROXY_BASE_URL"]

	tok, cfg := loginAt(t, base)

	// Rotation and backup go through the running server's admin listener.
	var out, errOut bytes.Buffer
	require.Equal(t, 0, run(t.Context(), []string{"keys", "rotate"}, envOf(env), &out, &errOut), errOut.String())
	backupPath := filepath.Join(dir, "backup.db")
	require.Equal(t, 0, run(t.Context(), []string{"backup", "--out", backupPath}, envOf(env), &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "wrote")
	require.Equal(t, 1, run(t.Context(), []string{"backup", "--out", backupPath}, envOf(env), &out, &errOut),
		"an existing file is never overwritten")
	stop()

	// A server started from the backup knows the client and the grant.
	env["OIDC_PROXY_STORE_PATH"] = backupPath
	serveUntil(t, env)
	src := cfg.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Unix(1, 0)})
	next, err := src.Token()
	require.NoError(t, err)
	require.NotEmpty(t, next.AccessToken)
}

// loginAt registers a client and runs a flow against a proxy whose upstream
// is the faulty IdP (which signs the user in without a form).
func loginAt(t *testing.T, base string) (*oauth2.Token, *oauth2.Config) {
	t.Helper()
	const redirect = "http://127.0.0.1:9/callback"
	resp, err := http.Post(base+"/register", "application/json", strings.NewReader(`{"redirect_uris":["`+redirect+`"]}`))
	require.NoError(t, err)
	doc := decode(t, resp)
	cfg := &oauth2.Config{ClientID: doc["client_id"].(string), RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{AuthURL: base + "/authorize", TokenURL: base + "/token", AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	b := browser.New("", "")
	b.StopAt = redirect
	res, err := b.Authorize(t.Context(), cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	require.NoError(t, err)
	tok, err := cfg.Exchange(t.Context(), res.URL.Query().Get("code"), oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	return tok, cfg
}

// adminRequest sends one request to the admin listener with the given Host
// header and extra headers, and returns the status.
func adminRequest(t *testing.T, adminAddr, method, path, host string, header http.Header) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+adminAddr+path, nil)
	require.NoError(t, err)
	if host != "" {
		req.Host = host
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// A web page in a browser on the server's host reaches the admin listener
// from loopback too: by cross-site requests, or same-origin after pointing
// a name it controls at 127.0.0.1 (DNS rebinding). Neither may read the
// keys or the backup or rotate a key; the CLI still can.
func TestTheAdminListenerRefusesWhatAWebPageCouldSend(t *testing.T) {
	f := idp.NewFaulty(t, idp.FaultyOptions{ClientID: "proxy", ClientSecret: "proxy-secret"})
	env := serveEnv(t, f.ConfigURL, filepath.Join(t.TempDir(), "p.db"))
	serveUntil(t, env)
	admin := env["OIDC_PROXY_ADMIN_ADDR"]
	_, port, err := net.SplitHostPort(admin)
	require.NoError(t, err)
	program := http.Header{httpapi.AdminRequestHeader: {"1"}}
	with := func(h http.Header, k, v string) http.Header {
		out := h.Clone()
		if out == nil {
			out = http.Header{}
		}
		out.Set(k, v)
		return out
	}

	refused := []struct {
		name, method, path, host string
		header                   http.Header
	}{
		{"a rebound name rotating a key", http.MethodPost, "/keys/rotate", "attacker.example", program},
		{"a rebound name with a port taking a backup", http.MethodGet, "/backup", "attacker.example:" + port, nil},
		{"a rebound name listing keys", http.MethodGet, "/keys", "attacker.example", nil},
		{"a foreign origin rotating a key", http.MethodPost, "/keys/rotate", "", with(program, "Origin", "http://evil.example")},
		{"a foreign origin taking a backup", http.MethodGet, "/backup", "", http.Header{"Origin": {"http://evil.example"}}},
		{"an opaque origin", http.MethodPost, "/keys/rotate", "", with(program, "Origin", "null")},
		{"another port of localhost", http.MethodGet, "/backup", "", http.Header{"Origin": {"http://127.0.0.1:1"}}},
		{"a cross-site fetch", http.MethodGet, "/backup", "", http.Header{"Sec-Fetch-Site": {"cross-site"}}},
		{"a same-site fetch", http.MethodGet, "/keys", "", http.Header{"Sec-Fetch-Site": {"same-site"}}},
		{"a simple text/plain post", http.MethodPost, "/keys/rotate", "", http.Header{"Content-Type": {"text/plain"}}},
		{"a simple form post", http.MethodPost, "/keys/rotate", "", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}},
		{"a post without any header", http.MethodPost, "/keys/rotate", "", nil},
	}
	for _, tc := range refused {
		require.Equal(t, http.StatusForbidden, adminRequest(t, admin, tc.method, tc.path, tc.host, tc.header), tc.name)
	}
	// Nothing above rotated a key.
	var out, errOut bytes.Buffer
	require.Equal(t, 0, run(t.Context(), []string{"keys", "list"}, envOf(env), &out, &errOut), errOut.String())
	require.Equal(t, 1, strings.Count(out.String(), "ES256"), out.String())

	// Probes and scrapers address the listener by any name.
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		require.Equal(t, http.StatusOK, adminRequest(t, admin, http.MethodGet, path, "oidcproxy.monitoring.svc:"+port, nil), path)
	}
	// Programs on this host: loopback names, same-origin, JSON.
	require.Equal(t, http.StatusOK, adminRequest(t, admin, http.MethodGet, "/keys", "localhost:"+port, nil))
	require.Equal(t, http.StatusOK, adminRequest(t, admin, http.MethodGet, "/keys", "[::1]:"+port, http.Header{"Sec-Fetch-Site": {"none"}}))
	require.Equal(t, http.StatusOK, adminRequest(t, admin, http.MethodGet, "/keys", "", http.Header{"Origin": {"http://" + admin}}))
	require.Equal(t, http.StatusOK, adminRequest(t, admin, http.MethodPost, "/keys/rotate", "", http.Header{"Content-Type": {"application/json"}}))

	// The CLI's own requests pass.
	out.Reset()
	require.Equal(t, 0, run(t.Context(), []string{"keys", "rotate"}, envOf(env), &out, &errOut), errOut.String())
	out.Reset()
	require.Equal(t, 0, run(t.Context(), []string{"keys", "list"}, envOf(env), &out, &errOut), errOut.String())
	require.Equal(t, 3, strings.Count(out.String(), "ES256"), out.String())
	backupPath := filepath.Join(t.TempDir(), "backup.db")
	require.Equal(t, 0, run(t.Context(), []string{"backup", "--out", backupPath}, envOf(env), &out, &errOut), errOut.String())
}

// A token does not lift the Host and cross-origin rules: a page that
// somehow had the token still could not use it from a browser.
func TestTheAdminTokenDoesNotLiftTheBrowserRules(t *testing.T) {
	f := idp.NewFaulty(t, idp.FaultyOptions{ClientID: "proxy", ClientSecret: "proxy-secret"})
	env := serveEnv(t, f.ConfigURL, filepath.Join(t.TempDir(), "p.db"))
	env["OIDC_PROXY_ADMIN_TOKEN"] = "admin-token-for-the-test"
	serveUntil(t, env)
	admin := env["OIDC_PROXY_ADMIN_ADDR"]
	bearer := http.Header{"Authorization": {"Bearer admin-token-for-the-test"}}
	require.Equal(t, http.StatusOK, adminRequest(t, admin, http.MethodGet, "/backup", "", bearer))
	require.Equal(t, http.StatusForbidden, adminRequest(t, admin, http.MethodGet, "/backup", "attacker.example", bearer))
	withOrigin := bearer.Clone()
	withOrigin.Set("Origin", "http://evil.example")
	require.Equal(t, http.StatusForbidden, adminRequest(t, admin, http.MethodGet, "/keys", "", withOrigin))
	require.Equal(t, http.StatusForbidden, adminRequest(t, admin, http.MethodPost, "/keys/rotate", "", bearer),
		"a state change needs a non-simple request even with the token")
}

func TestServeRefusesAnAdminListenerBeyondLoopbackWithoutAToken(t *testing.T) {
	env := serveEnv(t, "http://127.0.0.1:9/.well-known/openid-configuration", filepath.Join(t.TempDir(), "p.db"))
	env["OIDC_PROXY_ADMIN_ADDR"] = fmt.Sprintf("0.0.0.0:%d", freePort(t))
	var out, errOut bytes.Buffer
	require.Equal(t, 1, run(t.Context(), []string{"serve"}, envOf(env), &out, &errOut))
	require.Contains(t, errOut.String(), "OIDC_PROXY_ADMIN_ADDR")
	require.Contains(t, errOut.String(), "OIDC_PROXY_ADMIN_TOKEN is required")
}
