package e2e_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// The gateway forwards the upstream IdP's access token only when told to,
// and it gets the token from the VerifyAccessToken use case, which alone
// knows how the grant's upstream tokens are sealed.
func TestTheGatewayForwardsTheUpstreamAccessTokenOnlyWhenConfigured(t *testing.T) {
	t.Run("configured", func(t *testing.T) {
		be := startBackend(t)
		p, f := startWithFaulty(t, withEnv("MCP_UPSTREAM", be.URL), withEnv("UPSTREAM_TOKEN_HEADER", "X-Upstream-Token"))
		c := p.register(t, nil)
		tok, _ := p.login(t, c)
		resp, body := bearerPost(t, p, tok.AccessToken, nil, http.Header{"X-Upstream-Token": {"spoofed-by-the-client"}})
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		upstreamAccess := f.Issued()[0] // access, refresh and ID token, in that order
		seen := be.headers()
		require.NotEmpty(t, seen)
		for _, h := range seen {
			require.Equal(t, []string{upstreamAccess}, h.Values("X-Upstream-Token"))
		}
		require.NotContains(t, p.Logs.String(), upstreamAccess, "the forwarded credential is never logged")
	})
	t.Run("not configured", func(t *testing.T) {
		be := startBackend(t)
		p, _ := startWithFaulty(t, withEnv("MCP_UPSTREAM", be.URL))
		c := p.register(t, nil)
		tok, _ := p.login(t, c)
		resp, body := bearerPost(t, p, tok.AccessToken, nil, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		for _, h := range be.headers() {
			require.Empty(t, h.Values("X-Upstream-Token"))
		}
	})
}
