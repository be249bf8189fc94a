package domain_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
)

// A request's claim states its rule as equalities: the S256 challenge of
// its verifier and the canonical form of each resource. A request that
// can only fail Check (a malformed verifier or resource) has no claim, so
// that a store reads the code and burns it.
func TestCodeRedemptionClaim(t *testing.T) {
	const verifier = "dBjftJeZ4CVP-mJ92K9m4l7DhoVbxNuVH8tX2O2KAnw"
	r := domain.CodeRedemption{ClientID: "c", RedirectURI: "http://127.0.0.1/cb", Verifier: verifier,
		Resources: []string{"HTTPS://MCP.Example.com/mcp/"}}

	c, ok := r.Claim()
	require.True(t, ok)
	require.Equal(t, domain.CodeClaim{ClientID: "c", RedirectURI: "http://127.0.0.1/cb",
		Challenge: domain.S256Challenge(verifier), Resources: []string{"https://mcp.example.com/mcp"}}, c)
	code := domain.AuthorizationCode{ClientID: "c", RedirectURI: "http://127.0.0.1/cb",
		CodeChallenge: c.Challenge, Resource: "https://mcp.example.com/mcp"}
	require.NoError(t, r.Check(code), "a code meeting the claim passes Check")

	bad := r
	bad.Verifier = "short"
	_, ok = bad.Claim()
	require.False(t, ok, "a malformed verifier has no claim")
	require.Error(t, bad.Check(code))

	bad = r
	bad.Resources = []string{"not a url"}
	_, ok = bad.Claim()
	require.False(t, ok, "a malformed resource has no claim")
	require.Error(t, bad.Check(code))
}

// The refresh token Issue builds lives RefreshTTL from now, never longer
// than its grant, and a grant whose upstream session ended issues none.
func TestCodeRedemptionIssue(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	g := domain.Grant{ID: "g", ExpiresAt: now.Add(2 * time.Hour), UpstreamExpiry: now.Add(time.Hour), HasUpstreamRefresh: true}
	code := domain.AuthorizationCode{Scopes: []string{"openid"}}
	r := domain.CodeRedemption{ClientID: "c", RefreshHash: "h", RefreshTTL: time.Hour, Now: now}

	rt, err := r.Issue(code, g)
	require.NoError(t, err)
	require.Equal(t, &domain.RefreshToken{Hash: "h", GrantID: "g", ClientID: "c", Scopes: []string{"openid"},
		IssuedAt: now, ExpiresAt: now.Add(time.Hour)}, rt)

	r.RefreshTTL = 24 * time.Hour
	rt, err = r.Issue(code, g)
	require.NoError(t, err)
	require.Equal(t, g.ExpiresAt, rt.ExpiresAt, "capped at the grant's expiry")

	r.RefreshHash = ""
	rt, err = r.Issue(code, g)
	require.NoError(t, err)
	require.Nil(t, rt, "no refresh token asked, none issued")

	g.HasUpstreamRefresh = false
	r.Now = g.UpstreamExpiry
	_, err = r.Issue(code, g)
	require.Equal(t, domain.ErrUpstreamSessionEnded(), err)
}
