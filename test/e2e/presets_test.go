package e2e_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/test/idp"
	"github.com/oidcproxy/oidcproxy/test/proxytest"
)

// startWithEmulation runs the proxy with PROVIDER=provider in front of an
// emulation of that provider's IdP; CONFIG_URL points the preset at it.
func startWithEmulation(t *testing.T, provider string, emulate func(testing.TB, idp.FaultyOptions) *idp.Faulty,
	opts ...proxyOption,
) (*proxy, *idp.Faulty) {
	t.Helper()
	ln := listen(t)
	base := "http://" + ln.Addr().String()
	up := emulate(t, idp.FaultyOptions{ClientID: upstreamClientID, ClientSecret: upstreamSecret})
	env := baseEnv(t, base, up.ConfigURL)
	env["OIDC_PROXY_PROVIDER"] = provider
	for _, o := range opts {
		o(env)
	}
	p := &proxy{t: t, BaseURL: base, Env: env, StorePath: env["OIDC_PROXY_STORE_PATH"], Clock: &testClock{}, Logs: &proxytest.LogBuffer{}, Upstream: up}
	p.start(ln)
	return p, up
}

// presetFlow runs authorize → consent → upstream → callback → token, then a
// refresh that renews the upstream tokens, and returns the upstream
// authorization request the proxy made.
func presetFlow(t *testing.T, p *proxy, up *idp.Faulty, scopes ...string) url.Values {
	t.Helper()
	c := p.register(t, nil)
	c.OAuth.Scopes = scopes

	tok, _ := p.login(t, c)
	require.NotEmpty(t, tok.AccessToken)
	require.NotEmpty(t, tok.RefreshToken)
	if len(scopes) > 0 {
		require.Equal(t, strings.Join(scopes, " "), tok.Extra("scope"), "the client gets the scopes it asked for, in its own spelling")
	}
	authorize := up.LastAuthorize()

	// Two hours later the upstream access token is dead: our refresh
	// renews it upstream with the refresh token the preset obtained.
	before := up.Calls().Token
	p.Clock.Advance(2 * time.Hour)
	next, err := p.refresh(t, c, tok.RefreshToken)
	require.NoError(t, err)
	require.NotEmpty(t, next.AccessToken)
	require.Equal(t, before+1, up.Calls().Token, "one upstream refresh")
	require.Equal(t, "refresh_token", up.LastToken().Form.Get("grant_type"))
	return authorize
}

func TestAnAuth0PresetFlowGetsJWTAccessTokensForTheAudienceAndRefreshes(t *testing.T) {
	const audience = "https://mcp.example.com/api"
	p, up := startWithEmulation(t, "auth0",
		func(t testing.TB, o idp.FaultyOptions) *idp.Faulty {
			return idp.NewAuth0(t, idp.Auth0Options{FaultyOptions: o, Audience: audience})
		},
		withEnv("AUDIENCE", audience))

	authorize := presetFlow(t, p, up, "openid", "email")

	require.Equal(t, audience, authorize.Get("audience"))
	require.Contains(t, strings.Fields(authorize.Get("scope")), "offline_access")
}

func TestAGooglePresetFlowNeverSendsOfflineAccessAndStillRefreshes(t *testing.T) {
	p, up := startWithEmulation(t, "google",
		func(t testing.TB, o idp.FaultyOptions) *idp.Faulty {
			return idp.NewGoogle(t, idp.GoogleOptions{FaultyOptions: o, HostedDomain: "example.com"})
		},
		withEnv("GOOGLE_HOSTED_DOMAIN", "example.com"))

	// MCP clients ask for offline_access; Google refuses it.
	authorize := presetFlow(t, p, up, "openid", "email", "profile", "offline_access")

	require.Equal(t, "openid email profile", authorize.Get("scope"))
	require.Equal(t, "offline", authorize.Get("access_type"))
	require.Equal(t, "consent", authorize.Get("prompt"))
	require.Equal(t, "example.com", authorize.Get("hd"))
}

func TestAnAzurePresetFlowPrefixesTheAPIScopeAndRefreshes(t *testing.T) {
	// The API's manifest decides the access token version: null (v1.0
	// tokens, the default) or 2 (v2.0 tokens); both must work.
	for _, version := range []int{0, 2} {
		t.Run(fmt.Sprintf("accessTokenAcceptedVersion %d", version), func(t *testing.T) {
			p, up := startWithEmulation(t, "azure",
				func(t testing.TB, o idp.FaultyOptions) *idp.Faulty {
					return idp.NewAzure(t, idp.AzureOptions{FaultyOptions: o, Tenant: "organizations", AccessTokenVersion: version})
				},
				withEnv("AZURE_TENANT_ID", "organizations"),
				withEnv("REQUIRED_SCOPES", "mcp.read"),
				// Entra refuses resource (AADSTS9010010); the preset must hold it
				// back even when the operator forwards it for other IdPs.
				withEnv("FORWARD_RESOURCE", "true"))

			authorize := presetFlow(t, p, up, "mcp.read")

			require.Equal(t, "openid offline_access api://"+upstreamClientID+"/mcp.read", authorize.Get("scope"))
			require.False(t, authorize.Has("resource"))
		})
	}
}
