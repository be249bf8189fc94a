package storetest

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

func testGrants(t *testing.T, newStore func(*testing.T) ports.Store) {
	t.Run("a created grant reads back with every field", func(t *testing.T) {
		s := newStore(t)
		want := fullGrant("g1")
		requireEveryFieldSet(t, want)
		seedGrant(t, s, want)

		got, err := s.GetGrant(t.Context(), "g1", base)
		require.NoError(t, err)
		require.Equal(t, want, got)
	})

	t.Run("a duplicate grant id is refused and its code is not stored", func(t *testing.T) {
		s := newStore(t)
		first := fullGrant("g1")
		seedGrant(t, s, first)
		second := fullGrant("g1")
		second.Subject = "someone else"

		err := s.CreateGrant(t.Context(), second, freshCode("code-2", "g1"))
		require.ErrorIs(t, err, domain.ErrAlreadyExists)

		got, err := s.GetGrant(t.Context(), "g1", base)
		require.NoError(t, err)
		require.Equal(t, first, got)
		_, _, err = s.RedeemCode(t.Context(), "code-2", base, domain.CodeUseFuncs{CheckFunc: stranger, IssueFunc: noIssue(t)})
		require.ErrorIs(t, err, domain.ErrNotFound)
	})

	t.Run("a duplicate code hash is refused and its grant is not stored", func(t *testing.T) {
		s := newStore(t)
		code := seedGrant(t, s, fullGrant("g1"))

		taken := code
		taken.GrantID = "g2"
		err := s.CreateGrant(t.Context(), fullGrant("g2"), taken)
		require.ErrorIs(t, err, domain.ErrAlreadyExists)

		_, err = s.GetGrant(t.Context(), "g2", base)
		require.ErrorIs(t, err, domain.ErrNotFound)
	})

	t.Run("a code that names another grant is refused", func(t *testing.T) {
		s := newStore(t)
		err := s.CreateGrant(t.Context(), fullGrant("g1"), freshCode("code-1", "g2"))
		require.Error(t, err)

		_, err = s.GetGrant(t.Context(), "g1", base)
		require.ErrorIs(t, err, domain.ErrNotFound)
	})

	t.Run("an unknown grant reads as not found", func(t *testing.T) {
		s := newStore(t)
		seedGrant(t, s, fullGrant("g1"))

		_, err := s.GetGrant(t.Context(), "g2", base)
		require.ErrorIs(t, err, domain.ErrNotFound)
	})

	t.Run("revoking a grant makes it and its codes and refresh tokens unreadable", func(t *testing.T) {
		s := newStore(t)
		seedToken(t, s, fullGrant("g1"), liveToken("rt-1", "g1"))
		_, _, err := s.RotateRefreshToken(t.Context(), "rt-1", base, strict("g1"), domain.RotateFunc(successor("rt-2")))
		require.NoError(t, err)
		kept := fullGrant("g2")
		seedToken(t, s, kept, liveToken("rt-3", "g2"))

		require.NoError(t, s.RevokeGrant(t.Context(), "g1"))

		_, err = s.GetGrant(t.Context(), "g1", base)
		require.ErrorIs(t, err, domain.ErrNotFound)
		_, _, err = s.RedeemCode(t.Context(), "code-g1", base, domain.CodeUseFuncs{CheckFunc: stranger, IssueFunc: noIssue(t)})
		require.ErrorIs(t, err, domain.ErrNotFound)
		for _, hash := range []string{"rt-1", "rt-2"} {
			_, err = s.GetRefreshToken(t.Context(), hash, base)
			require.ErrorIs(t, err, domain.ErrNotFound, hash)
			_, _, err = s.RotateRefreshToken(t.Context(), hash, base, strict("g1"), domain.RotateFunc(noRotate(t)))
			require.ErrorIs(t, err, domain.ErrNotFound, hash)
		}

		got, err := s.GetGrant(t.Context(), "g2", base)
		require.NoError(t, err)
		require.Equal(t, kept, got)
		_, err = s.GetRefreshToken(t.Context(), "rt-3", base)
		require.NoError(t, err)
	})

	t.Run("a revoked grant id cannot resurrect its old tokens", func(t *testing.T) {
		s := newStore(t)
		seedToken(t, s, fullGrant("g1"), liveToken("rt-1", "g1"))
		require.NoError(t, s.RevokeGrant(t.Context(), "g1"))

		// A new grant reusing the id must not bring back what hung on the
		// old one: revocation deletes the children, not just the parent.
		require.NoError(t, s.CreateGrant(t.Context(), fullGrant("g1"), freshCode("code-new", "g1")))
		_, err := s.GetRefreshToken(t.Context(), "rt-1", base)
		require.ErrorIs(t, err, domain.ErrNotFound)
		_, _, err = s.RedeemCode(t.Context(), "code-g1", base, domain.CodeUseFuncs{CheckFunc: stranger, IssueFunc: noIssue(t)})
		require.ErrorIs(t, err, domain.ErrNotFound)
	})

	t.Run("revoking an absent grant is not an error", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.RevokeGrant(t.Context(), "nobody"))
	})

	t.Run("of 32 concurrent creations of one grant exactly one wins", func(t *testing.T) {
		s := newStore(t)
		errs := race(racers, func(i int) error {
			return s.CreateGrant(t.Context(), fullGrant("g1"), freshCode(fmt.Sprintf("code-%d", i), "g1"))
		})
		won := winners(errs)
		require.Len(t, won, 1)
		for i, err := range errs {
			_, _, rerr := s.RedeemCode(t.Context(), fmt.Sprintf("code-%d", i), base, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) {
				return nil, nil
			}})

			if i == won[0] {
				require.NoError(t, rerr)
				continue
			}
			require.ErrorIs(t, err, domain.ErrAlreadyExists)
			require.ErrorIs(t, rerr, domain.ErrNotFound)
		}
	})

	t.Run("concurrent creations of different grants all succeed", func(t *testing.T) {
		s := newStore(t)
		errs := race(racers, func(i int) error {
			id := fmt.Sprintf("g%d", i)
			return s.CreateGrant(t.Context(), fullGrant(id), freshCode("code-"+id, id))
		})
		require.Len(t, winners(errs), racers)
		for i := range racers {
			want := fullGrant(fmt.Sprintf("g%d", i))
			got, err := s.GetGrant(t.Context(), want.ID, base)
			require.NoError(t, err)
			require.Equal(t, want, got)
		}
	})
}
