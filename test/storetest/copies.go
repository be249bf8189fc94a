package storetest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// testCopies checks that nothing a caller holds — an argument it passed, a
// value it got back, an argument of its callback — aliases stored state.
func testCopies(t *testing.T, newStore func(*testing.T) ports.Store) {
	t.Run("mutating a client after storing it or after reading it changes nothing", func(t *testing.T) {
		s := newStore(t)
		in := fullClient("c1")
		require.NoError(t, s.CreateClient(t.Context(), in))
		in.SecretHash[0] = 'X'
		in.RedirectURIs[0] = "https://evil.example.com/cb"

		out, err := s.GetClient(t.Context(), "c1")
		require.NoError(t, err)
		require.Equal(t, fullClient("c1"), out)
		out.SecretHash[0] = 'X'
		out.RedirectURIs[0] = "https://evil.example.com/cb"
		out.GrantTypes[0] = "password"
		out.Contacts[0] = "evil@example.com"

		again, err := s.GetClient(t.Context(), "c1")
		require.NoError(t, err)
		require.Equal(t, fullClient("c1"), again)
	})

	t.Run("mutating a grant's scopes, sealed tokens or nested claims changes nothing", func(t *testing.T) {
		s := newStore(t)
		in := fullGrant("g1")
		seedGrant(t, s, in)
		in.Scopes[0] = "admin"
		in.Identity.Claims["groups"].([]any)[0] = "root"

		out, err := s.GetGrant(t.Context(), "g1", base)
		require.NoError(t, err)
		require.Equal(t, fullGrant("g1"), out)
		out.SealedUpstream[0] = 'X'
		out.Identity.Claims["locale"] = "fr"
		out.Identity.Claims["org"].(map[string]any)["id"] = "org-evil"

		again, err := s.GetGrant(t.Context(), "g1", base)
		require.NoError(t, err)
		require.Equal(t, fullGrant("g1"), again)
	})

	t.Run("a callback that mutates its arguments changes nothing it was not given to change", func(t *testing.T) {
		s := newStore(t)
		seedGrant(t, s, fullGrant("g1"))
		rt := liveToken("rt-1", "g1")

		_, _, err := s.RedeemCode(t.Context(), "code-g1", base, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(c domain.AuthorizationCode, g domain.Grant) (*domain.RefreshToken, error) {
			c.Scopes[0] = "admin"
			g.Scopes[0] = "admin"
			g.Identity.Claims["groups"].([]any)[0] = "root"
			return &rt, nil
		}})

		require.NoError(t, err)
		rt.Scopes[0] = "admin" // after the store took it

		code, grant, err := s.RedeemCode(t.Context(), "code-g1", base, domain.CodeUseFuncs{CheckFunc: stranger, IssueFunc: noIssue(t)})
		require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
		require.Equal(t, freshCode("code-g1", "g1").Scopes, code.Scopes)
		require.Equal(t, fullGrant("g1"), grant)

		_, _, err = s.RotateRefreshToken(t.Context(), "rt-1", base, strict("g1"), domain.RotateFunc(func(old domain.RefreshToken, g *domain.Grant) (domain.RefreshToken, error) {
			old.Scopes[0] = "admin"
			return old, errSentinel
		}))

		require.ErrorIs(t, err, errSentinel)
		stored, err := s.GetRefreshToken(t.Context(), "rt-1", base)
		require.NoError(t, err)
		require.Equal(t, liveToken("rt-1", "g1"), stored)
	})

	t.Run("mutating a transaction after storing it changes nothing", func(t *testing.T) {
		s := newStore(t)
		in := fullTransaction("t1")
		require.NoError(t, s.CreateTransaction(t.Context(), in))
		in.Scopes[0] = "admin"

		out, err := s.ConsumeTransaction(t.Context(), "t1", base, nil)
		require.NoError(t, err)
		require.Equal(t, fullTransaction("t1"), out)
	})

	t.Run("mutating listed keys changes nothing", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.PutKey(t.Context(), fullKey("k1", base)))
		keys, err := s.ListKeys(t.Context())
		require.NoError(t, err)
		keys[0].SealedPrivate[0] = 'X'
		keys[0].PublicJWK[0] = 'X'

		again, err := s.ListKeys(t.Context())
		require.NoError(t, err)
		require.Equal(t, []domain.SigningKey{fullKey("k1", base)}, again)
	})
}
