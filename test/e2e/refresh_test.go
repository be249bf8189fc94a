package e2e_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// refreshForm is a refresh_token grant request of a public client.
func refreshForm(c *mcpClient, refreshToken string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}, "client_id": {c.ID}}
}

// A client whose refresh response never arrived (a crash, a timeout, a
// restart) retries with the token it still holds: within
// REFRESH_REUSE_GRACE, while the successor it never saw is unused, that
// is a retry, not theft. The user stays signed in; the unused successor
// is withdrawn, and whoever presents it later ends the grant.
func TestARefreshRetriedAfterALostResponseKeepsTheUserSignedIn(t *testing.T) {
	p, _ := startWithOP(t)
	c := p.register(t, nil)
	tok, _ := p.login(t, c)

	lost, err := p.refresh(t, c, tok.RefreshToken) // the response the client never saw
	require.NoError(t, err)
	p.Clock.Advance(20 * time.Second)
	retried, err := p.refresh(t, c, tok.RefreshToken)
	require.NoError(t, err, "a retry within the window keeps the grant")
	require.NotEqual(t, lost.RefreshToken, retried.RefreshToken)
	require.Contains(t, p.Logs.String(), `"event":"refresh_retry"`)

	// The retried chain lives on.
	again, err := p.refresh(t, c, retried.RefreshToken)
	require.NoError(t, err)

	// The withdrawn successor is dead, and using it is theft: whoever held
	// it did not see the retry. The grant goes, with the live chain.
	_, err = p.refresh(t, c, lost.RefreshToken)
	require.Equal(t, "invalid_grant", oauthErrorCode(err))
	_, err = p.refresh(t, c, again.RefreshToken)
	require.Equal(t, "invalid_grant", oauthErrorCode(err))
	require.Contains(t, p.Logs.String(), `"event":"token_reuse_detected_grant_revoked"`)
}

func TestARefreshRetryOutsideTheRuleRevokesTheGrant(t *testing.T) {
	cases := []struct {
		name  string
		env   []proxyOption
		after time.Duration
	}{
		{"after the window", nil, 60 * time.Second},
		{"with a shorter window", []proxyOption{withEnv("REFRESH_REUSE_GRACE", "5s")}, 5 * time.Second},
		{"with the window off", []proxyOption{withEnv("REFRESH_REUSE_GRACE", "0")}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := startWithOP(t, tc.env...)
			c := p.register(t, nil)
			tok, _ := p.login(t, c)
			next, err := p.refresh(t, c, tok.RefreshToken)
			require.NoError(t, err)

			p.Clock.Advance(tc.after)
			_, err = p.refresh(t, c, tok.RefreshToken)
			require.Equal(t, "invalid_grant", oauthErrorCode(err))
			_, err = p.refresh(t, c, next.RefreshToken)
			require.Equal(t, "invalid_grant", oauthErrorCode(err), "the grant was revoked")
		})
	}

	t.Run("by another client", func(t *testing.T) {
		p, _ := startWithOP(t)
		c := p.register(t, nil)
		other := p.register(t, nil)
		tok, _ := p.login(t, c)
		next, err := p.refresh(t, c, tok.RefreshToken)
		require.NoError(t, err)

		status, _, doc := p.postToken(t, refreshForm(other, tok.RefreshToken))
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, "invalid_grant", doc["error"])
		_, err = p.refresh(t, c, next.RefreshToken)
		require.Equal(t, "invalid_grant", oauthErrorCode(err), "the grant was revoked")
	})
}

// MCP clients that send one refresh twice at once (FastMCP users have
// seen this): every duplicate gets tokens, and exactly one of the refresh
// tokens handed out is live afterwards.
func TestConcurrentDuplicateRefreshesLeaveOneLiveRefreshToken(t *testing.T) {
	p, _ := startWithOP(t)
	c := p.register(t, map[string]any{"token_endpoint_auth_method": "client_secret_basic"})
	tok, _ := p.login(t, c)

	const n = 8
	issued := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			status, _, doc := p.postToken(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, c.ID, c.Secret)
			if status == http.StatusOK {
				issued[i], _ = doc["refresh_token"].(string)
			} else {
				issued[i] = fmt.Sprintf("status %d: %v", status, doc)
			}
		})
	}
	wg.Wait()

	live := 0
	for _, rt := range issued {
		require.False(t, strings.HasPrefix(rt, "status "), rt)
		status, doc := introspect(t, p, rt, "", c.ID, c.Secret)
		require.Equal(t, http.StatusOK, status)
		if doc["active"] == true {
			live++
		}
	}
	require.Equal(t, 1, live, "live refresh tokens among %d duplicates", n)
}
