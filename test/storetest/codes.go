package storetest

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

func testCodes(t *testing.T, newStore func(*testing.T) ports.Store) {
	t.Run("a code reads back with every field", func(t *testing.T) {
		s := newStore(t)
		g := fullGrant("g1")
		// A code stored already redeemed is the only way to read one back
		// unchanged: RedeemCode returns it with ErrAlreadyConsumed.
		want := freshCode("code-1", "g1")
		want.RedeemedAt = base.Add(time.Second)
		requireEveryFieldSet(t, want)
		require.NoError(t, s.CreateGrant(t.Context(), g, want))

		code, grant, err := s.RedeemCode(t.Context(), "code-1", base.Add(time.Minute), domain.CodeUseFuncs{CheckFunc: stranger, IssueFunc: noIssue(t)})
		require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
		require.Equal(t, want, code)
		require.Equal(t, g, grant)
	})

	t.Run("redeeming marks the code and stores the issued refresh token", func(t *testing.T) {
		s := newStore(t)
		g := fullGrant("g1")
		stored := seedGrant(t, s, g)
		now := base.Add(time.Minute)
		rt := liveToken("rt-1", "g1")
		var seenCode domain.AuthorizationCode
		var seenGrant domain.Grant

		code, grant, err := s.RedeemCode(t.Context(), stored.Hash, now, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(c domain.AuthorizationCode, g domain.Grant) (*domain.RefreshToken, error) {
			seenCode, seenGrant = c, g
			return &rt, nil
		}})

		require.NoError(t, err)

		want := stored
		want.RedeemedAt = now
		require.Equal(t, want, seenCode, "issue sees the code as it is being stored")
		require.Equal(t, g, seenGrant)
		require.Equal(t, want, code)
		require.Equal(t, g, grant)
		got, err := s.GetRefreshToken(t.Context(), "rt-1", now)
		require.NoError(t, err)
		require.Equal(t, rt, got)
	})

	t.Run("a replay the check refuses is answered with the stored code and changes nothing", func(t *testing.T) {
		s := newStore(t)
		stored := seedGrant(t, s, fullGrant("g1"))
		first := base.Add(time.Minute)
		rt := liveToken("rt-1", "g1")
		_, _, err := s.RedeemCode(t.Context(), stored.Hash, first, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) {
			return &rt, nil
		}})

		require.NoError(t, err)

		want := stored
		want.RedeemedAt = first
		var checked domain.AuthorizationCode
		code, _, err := s.RedeemCode(t.Context(), stored.Hash, base.Add(2*time.Minute), domain.CodeUseFuncs{CheckFunc: func(c domain.AuthorizationCode) error {
			checked = c
			return errStranger
		}, IssueFunc: noIssue(t)})

		require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
		require.NotErrorIs(t, err, errStranger)
		require.Equal(t, want, code)
		require.Equal(t, want, checked, "check sees the stored code")
		_, err = s.GetGrant(t.Context(), "g1", first)
		require.NoError(t, err, "the grant lives on")
		_, err = s.GetRefreshToken(t.Context(), "rt-1", first)
		require.NoError(t, err, "and so does its refresh token")
	})

	t.Run("a replay the check accepts has revoked the grant when RedeemCode returns", func(t *testing.T) {
		s := newStore(t)
		g := fullGrant("g1")
		stored := seedGrant(t, s, g)
		first := base.Add(time.Minute)
		rt := liveToken("rt-1", "g1")
		_, _, err := s.RedeemCode(t.Context(), stored.Hash, first, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) {
			return &rt, nil
		}})

		require.NoError(t, err)

		code, grant, err := s.RedeemCode(t.Context(), stored.Hash, base.Add(2*time.Minute), domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: noIssue(t)})
		require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
		want := stored
		want.RedeemedAt = first
		require.Equal(t, want, code, "the caller learns which code was replayed")
		require.Equal(t, g, grant, "and the grant it revoked")
		_, err = s.GetGrant(t.Context(), "g1", first)
		require.ErrorIs(t, err, domain.ErrNotFound, "the grant is revoked")
		_, err = s.GetRefreshToken(t.Context(), "rt-1", first)
		require.ErrorIs(t, err, domain.ErrNotFound, "with the token issued from the code")
		_, _, err = s.RedeemCode(t.Context(), stored.Hash, base.Add(3*time.Minute), domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: noIssue(t)})
		require.ErrorIs(t, err, domain.ErrNotFound, "and the code")
	})

	t.Run("redeeming without a refresh token stores none", func(t *testing.T) {
		s := newStore(t)
		stored := seedGrant(t, s, fullGrant("g1"))

		code, _, err := s.RedeemCode(t.Context(), stored.Hash, base, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) {
			return nil, nil
		}})

		require.NoError(t, err)
		require.True(t, code.Redeemed())
	})

	t.Run("a failing check burns the code with its grant before issue", func(t *testing.T) {
		s := newStore(t)
		stored := seedGrant(t, s, fullGrant("g1"))
		var checked domain.AuthorizationCode

		_, _, err := s.RedeemCode(t.Context(), stored.Hash, base, domain.CodeUseFuncs{CheckFunc: func(c domain.AuthorizationCode) error {
			checked = c
			return errStranger
		}, IssueFunc: noIssue(t)})

		require.ErrorIs(t, err, errStranger)
		require.Equal(t, stored, checked, "check sees the stored code")

		_, err = s.GetGrant(t.Context(), "g1", base)
		require.ErrorIs(t, err, domain.ErrNotFound, "the grant is revoked")
		_, _, err = s.RedeemCode(t.Context(), stored.Hash, base, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: noIssue(t)})
		require.ErrorIs(t, err, domain.ErrNotFound, "and its code with it")
	})

	t.Run("a failing issue burns the code with its grant and stores nothing else", func(t *testing.T) {
		s := newStore(t)
		stored := seedGrant(t, s, fullGrant("g1"))
		rt := liveToken("rt-1", "g1")

		_, _, err := s.RedeemCode(t.Context(), stored.Hash, base, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) {
			return &rt, errSentinel
		}})

		require.ErrorIs(t, err, errSentinel)

		_, err = s.GetGrant(t.Context(), "g1", base)
		require.ErrorIs(t, err, domain.ErrNotFound, "the grant is revoked")
		_, _, err = s.RedeemCode(t.Context(), stored.Hash, base, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: noIssue(t)})
		require.ErrorIs(t, err, domain.ErrNotFound, "and its code with it")
		_, err = s.GetRefreshToken(t.Context(), "rt-1", base)
		require.ErrorIs(t, err, domain.ErrNotFound)
	})

	t.Run("an issued refresh token of another grant is refused and the code stays usable", func(t *testing.T) {
		s := newStore(t)
		stored := seedGrant(t, s, fullGrant("g1"))
		stray := liveToken("rt-1", "g2")

		_, _, err := s.RedeemCode(t.Context(), stored.Hash, base, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) {
			return &stray, nil
		}})

		require.Error(t, err)
		_, err = s.GetRefreshToken(t.Context(), "rt-1", base)
		require.ErrorIs(t, err, domain.ErrNotFound)
		_, _, err = s.RedeemCode(t.Context(), stored.Hash, base, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) {
			return nil, nil
		}})

		require.NoError(t, err)
	})

	t.Run("an unknown code is not found", func(t *testing.T) {
		s := newStore(t)
		seedGrant(t, s, fullGrant("g1"))

		_, _, err := s.RedeemCode(t.Context(), "code-unknown", base, domain.CodeUseFuncs{CheckFunc: stranger, IssueFunc: noIssue(t)})
		require.ErrorIs(t, err, domain.ErrNotFound)
	})

	t.Run("of 32 concurrent redemptions exactly one reaches issue", func(t *testing.T) {
		s := newStore(t)
		stored := seedGrant(t, s, fullGrant("g1"))
		errs, reached := raceRedemptions(t, s, stored.Hash, refusesReplays)

		won := winners(errs)
		require.Len(t, won, 1)
		for i, err := range errs {
			_, gerr := s.GetRefreshToken(t.Context(), fmt.Sprintf("rt-%d", i), base)
			if i == won[0] {
				require.True(t, reached[i].Load())
				require.NoError(t, gerr)
				continue
			}
			require.False(t, reached[i].Load(), "a loser reached issue")
			require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
			require.ErrorIs(t, gerr, domain.ErrNotFound)
		}
	})

	t.Run("of 32 concurrent rightful redemptions one wins and the grant ends revoked", func(t *testing.T) {
		s := newStore(t)
		stored := seedGrant(t, s, fullGrant("g1"))
		errs, reached := raceRedemptions(t, s, stored.Hash, rightful)

		won := winners(errs)
		require.Len(t, won, 1)
		replays := 0
		for i, err := range errs {
			_, gerr := s.GetRefreshToken(t.Context(), fmt.Sprintf("rt-%d", i), base)
			require.ErrorIs(t, gerr, domain.ErrNotFound, "racer %d's refresh token outlived the replay", i)
			if i == won[0] {
				require.True(t, reached[i].Load())
				continue
			}
			require.False(t, reached[i].Load(), "a loser reached issue")
			if errors.Is(err, domain.ErrAlreadyConsumed) {
				replays++
				continue
			}
			require.ErrorIs(t, err, domain.ErrNotFound, "a loser finds the code redeemed or its grant revoked")
		}
		require.NotZero(t, replays, "some loser saw the redeemed code")
		_, err := s.GetGrant(t.Context(), "g1", base)
		require.ErrorIs(t, err, domain.ErrNotFound, "the replays revoked the grant")
	})

	t.Run("concurrent redemptions of different codes each get their own", func(t *testing.T) {
		s := newStore(t)
		for i := range racers {
			seedGrant(t, s, fullGrant(fmt.Sprintf("g%d", i)))
		}
		got := make([]domain.AuthorizationCode, racers)

		errs := race(racers, func(i int) error {
			id := fmt.Sprintf("g%d", i)
			code, _, err := s.RedeemCode(t.Context(), "code-"+id, base, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(c domain.AuthorizationCode, g domain.Grant) (*domain.RefreshToken, error) {
				rt := liveToken("rt-"+id, g.ID)
				return &rt, nil
			}})

			got[i] = code
			return err
		})

		require.Len(t, winners(errs), racers)
		for i := range racers {
			id := fmt.Sprintf("g%d", i)
			require.Equal(t, "code-"+id, got[i].Hash)
			rt, err := s.GetRefreshToken(t.Context(), "rt-"+id, base)
			require.NoError(t, err)
			require.Equal(t, id, rt.GrantID)
		}
	})
}

// raceRedemptions has racers goroutines redeem the code of grant g1 at
// once, each issuing its own refresh token rt-<i>, and returns each one's
// error and whether it reached issue.
func raceRedemptions(t *testing.T, s ports.Store, hash string, check func(domain.AuthorizationCode) error) ([]error, *[racers]atomic.Bool) {
	t.Helper()
	var reached [racers]atomic.Bool
	errs := race(racers, func(i int) error {
		_, _, err := s.RedeemCode(t.Context(), hash, base, domain.CodeUseFuncs{CheckFunc: check, IssueFunc: func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) {
			reached[i].Store(true)
			rt := liveToken(fmt.Sprintf("rt-%d", i), "g1")
			return &rt, nil
		}})

		return err
	})
	return errs, &reached
}
