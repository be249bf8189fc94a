package usecase_test

import (
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// mintSealed stores a live grant whose upstream tokens are sealed under
// sealedFor (the grant's own id, unless a test wants another) and signs an
// access token for it.
func (f *fixture) mintSealed(t *testing.T, upstream domain.UpstreamTokens, sealedFor func(grantID string) string) string {
	t.Helper()
	now := f.clock.Now()
	id := rand.Text()
	plain, err := json.Marshal(upstream)
	require.NoError(t, err)
	sealed, err := f.sealer.Seal(plain, []byte(sealedFor(id)))
	require.NoError(t, err)
	g := domain.Grant{ID: id, ClientID: "c", Subject: "alice", Resource: resource, SealedUpstream: sealed,
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	require.NoError(t, f.store.CreateGrant(t.Context(), g, domain.AuthorizationCode{Hash: rand.Text(), ClientID: "c", GrantID: id,
		IssuedAt: now, ExpiresAt: now.Add(time.Minute)}))
	tok, err := f.tokens.Issue(t.Context(), domain.AccessToken{Issuer: issuer, Subject: "alice", Audience: resource, ClientID: "c",
		Scopes: []string{"mcp"}, GrantID: id, JTI: rand.Text(), IssuedAt: now, NotBefore: now, ExpiresAt: now.Add(time.Hour)})
	require.NoError(t, err)
	return tok
}

func TestVerifyAccessTokenHandsOverTheUpstreamTokenOnlyWhenAsked(t *testing.T) {
	f := newFixture(t)
	own := func(id string) string { return id }
	verify := func(token string, withUpstream bool) (ports.VerifiedAccess, error) {
		return f.app.VerifyAccessToken.Handle(t.Context(), ports.VerifyAccessTokenCommand{
			Token: token, Resource: resource, RequiredScopes: []string{"mcp"}, WithUpstream: withUpstream,
		})
	}

	tok := f.mintSealed(t, domain.UpstreamTokens{AccessToken: "upstream-at", RefreshToken: "upstream-rt", TokenType: "Bearer"}, own)
	access, err := verify(tok, true)
	require.NoError(t, err)
	require.Equal(t, "upstream-at", access.UpstreamAccessToken)
	require.Equal(t, "alice", access.Grant.Subject)

	access, err = verify(tok, false)
	require.NoError(t, err)
	require.Empty(t, access.UpstreamAccessToken, "not asked, not opened")

	t.Run("tokens sealed for another grant do not open", func(t *testing.T) {
		tok := f.mintSealed(t, domain.UpstreamTokens{AccessToken: "upstream-at"}, func(string) string { return "another-grant" })
		_, err := verify(tok, true)
		require.Equal(t, domain.CodeServerError, domain.CodeOf(err), "%v", err)
		require.ErrorContains(t, err, "open upstream tokens")
		_, err = verify(tok, false)
		require.NoError(t, err, "a resource server that does not forward the upstream token is not affected")
	})
	t.Run("a grant without an upstream access token", func(t *testing.T) {
		tok := f.mintSealed(t, domain.UpstreamTokens{RefreshToken: "upstream-rt"}, own)
		_, err := verify(tok, true)
		require.Equal(t, domain.CodeServerError, domain.CodeOf(err), "%v", err)
		require.ErrorContains(t, err, "no upstream access token")
	})
	t.Run("a refused token opens nothing", func(t *testing.T) {
		_, err := f.app.VerifyAccessToken.Handle(t.Context(), ports.VerifyAccessTokenCommand{
			Token: tok, Resource: "https://other.example/mcp", WithUpstream: true,
		})
		require.Equal(t, domain.CodeInvalidToken, domain.CodeOf(err))
	})
}
