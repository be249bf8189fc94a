package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// testExpiry checks that every entity with an expiry reads as missing from
// its ExpiresAt on (the rule of domain.Transaction.Expired), before any
// sweep, and is still readable a nanosecond earlier.
func testExpiry(t *testing.T, newStore func(*testing.T) ports.Store) {
	const ns = time.Nanosecond

	t.Run("an expired transaction is not found by update, consume or replace", func(t *testing.T) {
		s := newStore(t)
		tx := fullTransaction("t1")
		require.NoError(t, s.CreateTransaction(t.Context(), tx))
		at := tx.ExpiresAt

		require.ErrorIs(t, s.UpdateTransaction(t.Context(), "t1", at, noop), domain.ErrNotFound)
		_, err := s.ConsumeTransaction(t.Context(), "t1", at, nil)
		require.ErrorIs(t, err, domain.ErrNotFound)
		_, err = s.ReplaceTransaction(t.Context(), "t1", at, func(domain.Transaction) (domain.Transaction, error) {
			return fullTransaction("t2"), nil
		})
		require.ErrorIs(t, err, domain.ErrNotFound)

		require.NoError(t, s.UpdateTransaction(t.Context(), "t1", at.Add(-ns), noop))
	})

	t.Run("an expired grant is not found and takes its codes and refresh tokens with it", func(t *testing.T) {
		s := newStore(t)
		g := fullGrant("g1")
		g.ExpiresAt = base.Add(time.Minute) // before its code and token expire
		seedToken(t, s, g, liveToken("rt-1", "g1"))
		require.NoError(t, s.CreateGrant(t.Context(), fullGrantExpiring("g2", g.ExpiresAt), freshCode("code-2", "g2")))
		at := g.ExpiresAt

		_, err := s.GetGrant(t.Context(), "g1", at)
		require.ErrorIs(t, err, domain.ErrNotFound)
		_, err = s.GetRefreshToken(t.Context(), "rt-1", at)
		require.ErrorIs(t, err, domain.ErrNotFound)
		_, _, err = s.RotateRefreshToken(t.Context(), "rt-1", at, strict("g1"), domain.RotateFunc(noRotate(t)))
		require.ErrorIs(t, err, domain.ErrNotFound)
		_, _, err = s.RedeemCode(t.Context(), "code-2", at, domain.CodeUseFuncs{CheckFunc: stranger, IssueFunc: noIssue(t)})
		require.ErrorIs(t, err, domain.ErrNotFound)

		_, err = s.GetGrant(t.Context(), "g1", at.Add(-ns))
		require.NoError(t, err)
		_, err = s.GetRefreshToken(t.Context(), "rt-1", at.Add(-ns))
		require.NoError(t, err)
	})

	t.Run("an expired code is not found and issue is not called", func(t *testing.T) {
		s := newStore(t)
		code := seedGrant(t, s, fullGrant("g1"))
		at := code.ExpiresAt

		_, _, err := s.RedeemCode(t.Context(), code.Hash, at, domain.CodeUseFuncs{CheckFunc: stranger, IssueFunc: noIssue(t)})
		require.ErrorIs(t, err, domain.ErrNotFound)

		_, _, err = s.RedeemCode(t.Context(), code.Hash, at.Add(-ns), domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) {
			return nil, nil
		}})

		require.NoError(t, err)
	})

	t.Run("an expired refresh token is not found by get or rotate", func(t *testing.T) {
		s := newStore(t)
		rt := liveToken("rt-1", "g1")
		seedToken(t, s, fullGrant("g1"), rt)
		at := rt.ExpiresAt

		_, err := s.GetRefreshToken(t.Context(), "rt-1", at)
		require.ErrorIs(t, err, domain.ErrNotFound)
		_, _, err = s.RotateRefreshToken(t.Context(), "rt-1", at, strict("g1"), domain.RotateFunc(noRotate(t)))
		require.ErrorIs(t, err, domain.ErrNotFound)

		_, _, err = s.RotateRefreshToken(t.Context(), "rt-1", at.Add(-ns), strict("g1"), domain.RotateFunc(successor("rt-2")))
		require.NoError(t, err)
	})
}

// testSweep checks that Sweep deletes exactly what expired, counts it, and
// leaves the rest readable.
func testSweep(t *testing.T, newStore func(*testing.T) ports.Store) {
	t.Run("sweep counts exactly what expired and leaves the rest", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		// Expired at sweep time (base+90m): t1, gA with its code and token,
		// and gB's code. Everything else lives on.
		t1, t2 := fullTransaction("t1"), fullTransaction("t2")
		t1.ExpiresAt = base.Add(time.Minute)
		t2.ExpiresAt = base.Add(3 * time.Hour)
		require.NoError(t, s.CreateTransaction(ctx, t1))
		require.NoError(t, s.CreateTransaction(ctx, t2))
		rtA := liveToken("rt-A", "gA")
		rtA.ExpiresAt = base.Add(50 * time.Minute)
		seedToken(t, s, fullGrantExpiring("gA", base.Add(time.Hour)), rtA)
		seedToken(t, s, fullGrantExpiring("gB", base.Add(48*time.Hour)), liveToken("rt-B", "gB"))
		codeC := freshCode("code-C", "gC")
		codeC.ExpiresAt = base.Add(2 * time.Hour)
		require.NoError(t, s.CreateGrant(ctx, fullGrantExpiring("gC", base.Add(48*time.Hour)), codeC))
		require.NoError(t, s.CreateClient(ctx, fullClient("c1")))
		require.NoError(t, s.PutKey(ctx, fullKey("k1", base)))
		now := base.Add(90 * time.Minute)

		n, err := s.Sweep(ctx, now)
		require.NoError(t, err)
		require.Equal(t, 5, n)
		n, err = s.Sweep(ctx, now)
		require.NoError(t, err)
		require.Zero(t, n, "a second sweep finds nothing left")

		// Swept records are gone for good: even an earlier "now" cannot
		// see them any more.
		require.ErrorIs(t, s.UpdateTransaction(ctx, "t1", base, noop), domain.ErrNotFound)
		_, err = s.GetGrant(ctx, "gA", base)
		require.ErrorIs(t, err, domain.ErrNotFound)
		_, _, err = s.RedeemCode(ctx, "code-gA", base, domain.CodeUseFuncs{CheckFunc: stranger, IssueFunc: noIssue(t)})
		require.ErrorIs(t, err, domain.ErrNotFound)
		_, err = s.GetRefreshToken(ctx, "rt-A", base)
		require.ErrorIs(t, err, domain.ErrNotFound)
		_, _, err = s.RedeemCode(ctx, "code-gB", base, domain.CodeUseFuncs{CheckFunc: stranger, IssueFunc: noIssue(t)})
		require.ErrorIs(t, err, domain.ErrNotFound)

		require.NoError(t, s.UpdateTransaction(ctx, "t2", now, noop))
		_, err = s.GetGrant(ctx, "gB", now)
		require.NoError(t, err)
		_, err = s.GetRefreshToken(ctx, "rt-B", now)
		require.NoError(t, err)
		_, err = s.GetGrant(ctx, "gC", now)
		require.NoError(t, err)
		_, _, err = s.RedeemCode(ctx, "code-C", now, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) {
			return nil, nil
		}})

		require.NoError(t, err)
		_, err = s.GetClient(ctx, "c1")
		require.NoError(t, err)
		keys, err := s.ListKeys(ctx)
		require.NoError(t, err)
		require.Len(t, keys, 1)
	})

	t.Run("sweep counts every record when thousands expire", func(t *testing.T) {
		s := newStore(t)
		const total = 2500 // more than one bounded sweep transaction
		for i := range total {
			tx := fullTransaction(fmt.Sprintf("t%04d", i))
			tx.ExpiresAt = base.Add(time.Duration(i) * time.Millisecond)
			require.NoError(t, s.CreateTransaction(t.Context(), tx))
		}

		n, err := s.Sweep(t.Context(), base.Add(time.Hour))
		require.NoError(t, err)
		require.Equal(t, total, n)
	})

	t.Run("a transaction whose update moved its expiry is swept at the new expiry", func(t *testing.T) {
		s := newStore(t)
		tx := fullTransaction("t1")
		require.NoError(t, s.CreateTransaction(t.Context(), tx))
		extended := tx.ExpiresAt.Add(time.Hour)
		require.NoError(t, s.UpdateTransaction(t.Context(), "t1", base, func(tx *domain.Transaction) error {
			tx.ExpiresAt = extended
			return nil
		}))

		n, err := s.Sweep(t.Context(), tx.ExpiresAt)
		require.NoError(t, err)
		require.Zero(t, n, "the old expiry no longer applies")
		n, err = s.Sweep(t.Context(), extended)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.ErrorIs(t, s.UpdateTransaction(t.Context(), "t1", base, noop), domain.ErrNotFound)
	})

	t.Run("sweep of an empty store removes nothing", func(t *testing.T) {
		s := newStore(t)
		n, err := s.Sweep(t.Context(), base)
		require.NoError(t, err)
		require.Zero(t, n)
	})
}

func fullGrantExpiring(id string, at time.Time) domain.Grant {
	g := fullGrant(id)
	g.ExpiresAt = at
	return g
}
