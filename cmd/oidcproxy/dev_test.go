package main

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/test/browser"
)

func TestDevBaseURLFollowsTheListenAddress(t *testing.T) {
	for _, tc := range []struct{ listen, want string }{
		{"127.0.0.1:18000", "http://localhost:18000"},
		{"127.0.0.2:8000", "http://localhost:8000"},
		{":8000", "http://localhost:8000"},
		{"0.0.0.0:8000", "http://localhost:8000"},
		{"[::]:8000", "http://localhost:8000"},
		{"[::1]:18000", "http://[::1]:18000"},
		{"localhost:18000", "http://localhost:18000"},
		{"dev.example.test:18000", "http://dev.example.test:18000"},
	} {
		got, err := devBaseURL(tc.listen)
		require.NoError(t, err, tc.listen)
		require.Equal(t, tc.want, got, tc.listen)
	}
	_, err := devBaseURL("127.0.0.1:0")
	require.ErrorContains(t, err, "OIDC_PROXY_BASE_URL")
}

// With only a listen address, dev serves and prints URLs on that address
// (it used to print http://localhost:8000 whatever the port), and its
// identity provider's form comes filled in: a browser with no credentials
// of its own signs in by submitting it.
func TestDevWithOnlyAListenAddressServesThereAndSignsInWithThePrefilledForm(t *testing.T) {
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	out := startDevWith(t, map[string]string{"OIDC_PROXY_LISTEN_ADDR": fmt.Sprintf("127.0.0.1:%d", port)}, base)
	require.Contains(t, out, base+"/mcp")
	require.NotContains(t, out, "localhost:8000/")

	resp, err := http.Get(base + "/.well-known/oauth-authorization-server")
	require.NoError(t, err)
	meta := decode(t, resp)
	require.Equal(t, base, meta["issuer"])
	resp, err = http.Get(base + "/.well-known/oauth-protected-resource/mcp")
	require.NoError(t, err)
	require.Equal(t, base+"/mcp", decode(t, resp)["resource"])

	tok := devLoginAs(t, base, browser.New("", ""))
	require.NotEmpty(t, tok.AccessToken)
}
