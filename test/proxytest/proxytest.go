// Package proxytest runs the real oidcproxy App, built by the test injector,
// on a loopback listener for black-box tests (test/e2e, test/chromium), so
// that every such test starts the proxy the same way.
package proxytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy"
	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/adapters/telemetry"
	"github.com/oidcproxy/oidcproxy/ports"
)

// Env returns the OIDC_PROXY_* environment of a proxy at baseURL in front
// of the IdP whose discovery document is at configURL: a bbolt store in
// t.TempDir(), a fresh encryption key, debug logs, and a short upstream
// timeout so a broken IdP fails a test quickly.
func Env(t testing.TB, baseURL, configURL, clientID, clientSecret string) map[string]string {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return map[string]string{
		"OIDC_PROXY_BASE_URL":        baseURL,
		"OIDC_PROXY_CONFIG_URL":      configURL,
		"OIDC_PROXY_CLIENT_ID":       clientID,
		"OIDC_PROXY_CLIENT_SECRET":   clientSecret,
		"OIDC_PROXY_STORE_PATH":      filepath.Join(t.TempDir(), "oidcproxy.db"),
		"OIDC_PROXY_ENCRYPTION_KEY":  base64.StdEncoding.EncodeToString(key),
		"OIDC_PROXY_LOG_LEVEL":       "debug",
		"OIDC_PROXY_TIMEOUT_SECONDS": "3",
	}
}

// Serve loads and validates the configuration from env (as the process
// environment would hold it), builds the App with the test injector and
// serves it on ln. stop shuts the App down, requires a clean shutdown and
// closes the store; it runs at the end of the test if not called before,
// and a second call does nothing. The OTEL_* variables of the test
// process are blanked for the test (telemetry reads the process
// environment), so a developer's settings never leak into it. roots are
// the CAs the Client ID Metadata Document fetcher trusts (a nil Pool: the
// system's).
func Serve(t testing.TB, ln net.Listener, env map[string]string, clock ports.Clock, logs io.Writer, tel telemetry.Options, roots oidcproxy.CIMDRootCAs) (app *oidcproxy.App, stop func()) {
	t.Helper()
	cfg, err := config.Load(nil, func(k string) string { return env[k] }, oidcproxy.ProviderSections())
	require.NoError(t, err)
	require.NoError(t, cfg.Validate(config.ValidateOptions{RequireUpstream: true, Provider: oidcproxy.ValidateProvider}))
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OTEL_") {
			t.Setenv(k, "")
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	app, cleanup, err := oidcproxy.InitializeTestApp(ctx, cfg, clock, logs, tel, roots)
	if err != nil {
		cancel()
		_ = ln.Close()
		require.NoError(t, err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, ln, nil) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
			cleanup()
		})
	}
	t.Cleanup(stop)
	return app, stop
}

// LogBuffer collects the proxy's log output from concurrent handlers, so
// that a test can search it or show it when it fails.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
