package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/httpapi"
	"github.com/oidcproxy/oidcproxy/test/idp"
	"github.com/oidcproxy/oidcproxy/test/slowclient"
)

// Clients that declare a body and send it a byte at a time must not hold
// the server's connections: `oidcproxy serve` answers them 408 and closes,
// on the public listener and on the admin one.
func TestServeCutsSlowRequestBodiesOnBothListeners(t *testing.T) {
	const timeout = time.Second
	// Generous: -race on a shared machine; without the deadline the
	// connections stay open for as long as the client likes.
	const margin = 4 * time.Second
	f := idp.NewFaulty(t, idp.FaultyOptions{ClientID: "proxy", ClientSecret: "proxy-secret"})
	env := serveEnv(t, f.ConfigURL, filepath.Join(t.TempDir(), "p.db"))
	env["OIDC_PROXY_REQUEST_BODY_TIMEOUT"] = timeout.String()
	serveUntil(t, env)
	public := strings.TrimPrefix(env["OIDC_PROXY_BASE_URL"], "http://")
	admin := env["OIDC_PROXY_ADMIN_ADDR"]

	type target struct{ addr, method, path string }
	var targets []target
	for range 20 {
		targets = append(targets, target{public, http.MethodPost, "/token"})
	}
	targets = append(targets,
		target{public, http.MethodPost, "/register"},
		target{admin, http.MethodPost, "/keys/rotate"},
		target{admin, http.MethodGet, "/healthz"},
	)
	results := make([]slowclient.Result, len(targets))
	var wg sync.WaitGroup
	for i, tg := range targets {
		wg.Go(func() {
			results[i] = slowclient.Do(t, tg.addr, slowclient.Request{
				Method: tg.method, Path: tg.path, Length: 10_000, Every: 200 * time.Millisecond,
				Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, httpapi.AdminRequestHeader: {"1"}},
			}, timeout+margin)
		})
	}
	wg.Wait()
	for i, res := range results {
		tg := targets[i]
		require.True(t, res.Closed, "%s %s %s: still open after %s", tg.addr, tg.method, tg.path, res.After)
		require.Equal(t, http.StatusRequestTimeout, res.Status, "%s %s: %s", tg.method, tg.path, res.Body)
	}
}
