package e2e_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/test/idp"
)

func TestAnExpiredUpstreamTokenIsRefreshedUpstreamOnOurRefresh(t *testing.T) {
	p, f := startWithFaulty(t)
	f.Update(func(x *idp.Faults) { x.RotateRefreshTokens = true })
	c := p.register(t, nil)
	tok, _ := p.login(t, c)
	before := f.Calls().Token

	// Still fresh upstream: our refresh does not touch the IdP.
	next, err := p.refresh(t, c, tok.RefreshToken)
	require.NoError(t, err)
	require.Equal(t, before, f.Calls().Token)

	// Two hours later the upstream access token (expires_in 3600) is dead.
	p.Clock.Advance(2 * time.Hour)
	again, err := p.refresh(t, c, next.RefreshToken)
	require.NoError(t, err)
	require.Equal(t, before+1, f.Calls().Token, "one upstream refresh")
	require.Equal(t, "refresh_token", f.LastToken().Form.Get("grant_type"))

	// The rotated upstream refresh token was stored: the next upstream
	// refresh uses it successfully.
	p.Clock.Advance(2 * time.Hour)
	_, err = p.refresh(t, c, again.RefreshToken)
	require.NoError(t, err)
	require.Equal(t, before+2, f.Calls().Token)
}

func TestAnUpstreamRefusalEndsTheGrant(t *testing.T) {
	p, f := startWithFaulty(t)
	c := p.register(t, nil)
	tok, _ := p.login(t, c)
	f.Update(func(x *idp.Faults) { x.TokenError = "invalid_grant" })
	p.Clock.Advance(2 * time.Hour)
	_, err := p.refresh(t, c, tok.RefreshToken)
	require.Equal(t, "invalid_grant", oauthErrorCode(err))

	// A transient upstream failure, in contrast, keeps the grant.
	p2, f2 := startWithFaulty(t)
	c2 := p2.register(t, nil)
	tok2, _ := p2.login(t, c2)
	f2.Update(func(x *idp.Faults) { x.TokenStatus = 503 })
	p2.Clock.Advance(2 * time.Hour)
	_, err = p2.refresh(t, c2, tok2.RefreshToken)
	require.Equal(t, "temporarily_unavailable", oauthErrorCode(err))
	f2.Update(func(x *idp.Faults) { *x = idp.Faults{} })
	_, err = p2.refresh(t, c2, tok2.RefreshToken)
	require.NoError(t, err, "the same refresh token works once the IdP is back")
}

func TestWithoutAnUpstreamRefreshTokenOurTokensDoNotOutliveTheUpstreamSession(t *testing.T) {
	p, f := startWithFaulty(t, withEnv("ACCESS_TOKEN_TTL", "2h"), withEnv("REFRESH_TOKEN_TTL", "24h"))
	f.Update(func(x *idp.Faults) { x.OmitRefreshToken = true })
	c := p.register(t, nil)
	tok, _ := p.login(t, c)
	require.WithinDuration(t, time.Now().Add(time.Hour), tok.Expiry, 2*time.Minute,
		"capped by the upstream access token's hour, not our 2h")

	p.Clock.Advance(90 * time.Minute)
	_, err := p.refresh(t, c, tok.RefreshToken)
	require.Equal(t, "invalid_grant", oauthErrorCode(err))
}

func TestUpstreamTokensAreSealedAtRest(t *testing.T) {
	p, f := startWithFaulty(t)
	c := p.register(t, nil)
	p.login(t, c)
	issued := f.Issued()
	require.Len(t, issued, 3, "access, refresh and ID token")
	p.stop()
	db, err := os.ReadFile(p.StorePath)
	require.NoError(t, err)
	for _, tok := range issued {
		require.False(t, strings.Contains(string(db), tok), "an upstream token is in the store file in the clear")
		for _, part := range strings.Split(tok, ".") {
			if len(part) > 20 {
				require.False(t, strings.Contains(string(db), part))
			}
		}
	}
	require.NotContains(t, p.Logs.String(), issued[0])
}
