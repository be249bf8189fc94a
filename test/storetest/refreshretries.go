package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// grace is the retry window of these tests.
const grace = time.Minute

// testRefreshRetries checks the retry window of RotateRefreshToken
// (domain.DecideRefresh): a client whose refresh response was lost may
// present the rotated token again while its successor is unused, and gets
// a new pair; every other second use revokes the grant; and however the
// presentations interleave, at most one chain stays live.
func testRefreshRetries(t *testing.T, newStore func(*testing.T) ports.Store) {
	// rotated seeds rt-1 in g1 and rotates it to rt-2 at base, as a
	// first refresh whose response never reached the client.
	rotated := func(t *testing.T) ports.Store {
		t.Helper()
		s := newStore(t)
		seedToken(t, s, fullGrant("g1"), liveToken("rt-1", "g1"))
		_, decision, err := s.RotateRefreshToken(t.Context(), "rt-1", base, within("g1", grace), domain.RotateFunc(successor("rt-2")))
		require.NoError(t, err)
		require.Equal(t, domain.RefreshRotate, decision)
		return s
	}
	get := func(t *testing.T, s ports.Store, hash string) domain.RefreshToken {
		t.Helper()
		rt, err := s.GetRefreshToken(t.Context(), hash, base)
		require.NoError(t, err, hash)
		return rt
	}

	t.Run("a retry after a lost response issues a new pair and withdraws the unused successor", func(t *testing.T) {
		s := rotated(t)
		at := base.Add(10 * time.Second)
		var seen domain.RefreshToken
		next, decision, err := s.RotateRefreshToken(t.Context(), "rt-1", at, within("g1", grace), domain.RotateFunc(func(old domain.RefreshToken, g *domain.Grant) (domain.RefreshToken, error) {
			seen = old
			g.SealedUpstream = []byte("saved by the retry")
			return successor("rt-3")(old, g)
		}))

		require.NoError(t, err)
		require.Equal(t, domain.RefreshRetry, decision)
		require.Equal(t, "rt-3", next.Hash)
		require.Equal(t, "rt-2", seen.SuccessorHash, "rotate sees the presented token as stored")

		presented := get(t, s, "rt-1")
		require.Equal(t, "rt-3", presented.SuccessorHash)
		require.Equal(t, base, presented.RotatedAt, "the window still counts from the first rotation")
		withdrawn := get(t, s, "rt-2")
		require.True(t, withdrawn.Withdrawn())
		require.Equal(t, at, withdrawn.RotatedAt)
		require.False(t, get(t, s, "rt-3").Rotated())
		g, err := s.GetGrant(t.Context(), "g1", base)
		require.NoError(t, err)
		require.Equal(t, []byte("saved by the retry"), g.SealedUpstream)

		// The new successor is an ordinary live token.
		_, decision, err = s.RotateRefreshToken(t.Context(), "rt-3", at, within("g1", grace), domain.RotateFunc(successor("rt-4")))
		require.NoError(t, err)
		require.Equal(t, domain.RefreshRotate, decision)
	})

	t.Run("the withdrawn successor's holder revokes the grant when it comes back", func(t *testing.T) {
		// Whoever retried second replaced the other's successor; when that
		// other one uses it, one of the two cannot be the client.
		s := rotated(t)
		_, _, err := s.RotateRefreshToken(t.Context(), "rt-1", base.Add(time.Second), within("g1", grace), domain.RotateFunc(successor("rt-3")))
		require.NoError(t, err)

		got, decision, err := s.RotateRefreshToken(t.Context(), "rt-2", base.Add(2*time.Second), within("g1", grace), domain.RotateFunc(discarded(t, s)))
		require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
		require.Equal(t, domain.RefreshRevoke, decision)
		require.Equal(t, "rt-2", got.Hash)
		requireRevoked(t, s, "g1", "rt-1", "rt-2", "rt-3")
	})

	t.Run("a retry after the successor was used revokes the grant", func(t *testing.T) {
		s := rotated(t)
		_, _, err := s.RotateRefreshToken(t.Context(), "rt-2", base.Add(time.Second), within("g1", grace), domain.RotateFunc(successor("rt-3")))
		require.NoError(t, err)

		_, decision, err := s.RotateRefreshToken(t.Context(), "rt-1", base.Add(2*time.Second), within("g1", grace), domain.RotateFunc(discarded(t, s)))
		require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
		require.Equal(t, domain.RefreshRevoke, decision)
		requireRevoked(t, s, "g1", "rt-1", "rt-2", "rt-3")
	})

	t.Run("a retry at the end of the window revokes the grant", func(t *testing.T) {
		s := rotated(t)
		_, decision, err := s.RotateRefreshToken(t.Context(), "rt-1", base.Add(grace), within("g1", grace), domain.RotateFunc(discarded(t, s)))
		require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
		require.Equal(t, domain.RefreshRevoke, decision)
		requireRevoked(t, s, "g1", "rt-1", "rt-2")
	})

	t.Run("retries do not extend the window", func(t *testing.T) {
		s := rotated(t)
		_, _, err := s.RotateRefreshToken(t.Context(), "rt-1", base.Add(grace-time.Second), within("g1", grace), domain.RotateFunc(successor("rt-3")))
		require.NoError(t, err)
		_, decision, err := s.RotateRefreshToken(t.Context(), "rt-1", base.Add(grace), within("g1", grace), domain.RotateFunc(discarded(t, s)))
		require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
		require.Equal(t, domain.RefreshRevoke, decision)
		requireRevoked(t, s, "g1", "rt-1", "rt-3")
	})

	t.Run("a retry by another client revokes the grant", func(t *testing.T) {
		s := rotated(t)
		other := domain.RefreshUse{ClientID: "client-other", Grace: grace}
		_, decision, err := s.RotateRefreshToken(t.Context(), "rt-1", base.Add(time.Second), other, domain.RotateFunc(discarded(t, s)))
		require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
		require.Equal(t, domain.RefreshRevoke, decision)
		requireRevoked(t, s, "g1", "rt-1", "rt-2")
	})

	t.Run("a live token presented by another client is refused and nothing changes", func(t *testing.T) {
		s := newStore(t)
		old := liveToken("rt-1", "g1")
		seedToken(t, s, fullGrant("g1"), old)
		other := domain.RefreshUse{ClientID: "client-other", Grace: grace}
		got, decision, err := s.RotateRefreshToken(t.Context(), "rt-1", base, other, domain.RotateFunc(discarded(t, s)))
		require.ErrorIs(t, err, domain.ErrWrongClient)
		require.Equal(t, domain.RefreshRefuse, decision)
		require.Equal(t, old, got)
		require.Equal(t, old, get(t, s, "rt-1"))
		_, err = s.GetGrant(t.Context(), "g1", base)
		require.NoError(t, err)
	})

	t.Run("a retry whose successor has expired revokes the grant", func(t *testing.T) {
		s := newStore(t)
		seedToken(t, s, fullGrant("g1"), liveToken("rt-1", "g1"))
		_, _, err := s.RotateRefreshToken(t.Context(), "rt-1", base, within("g1", time.Hour), domain.RotateFunc(func(old domain.RefreshToken, g *domain.Grant) (domain.RefreshToken, error) {
			next := liveToken("rt-2", g.ID)
			next.ExpiresAt = base.Add(time.Minute)
			return next, nil
		}))

		require.NoError(t, err)
		_, decision, err := s.RotateRefreshToken(t.Context(), "rt-1", base.Add(time.Minute), within("g1", time.Hour), domain.RotateFunc(discarded(t, s)))
		require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
		require.Equal(t, domain.RefreshRevoke, decision)
		requireRevoked(t, s, "g1", "rt-1")
	})

	t.Run("a failing rotate on a retry changes nothing", func(t *testing.T) {
		s := rotated(t)
		before1, before2 := get(t, s, "rt-1"), get(t, s, "rt-2")
		_, decision, err := s.RotateRefreshToken(t.Context(), "rt-1", base.Add(time.Second), within("g1", grace), domain.RotateFunc(func(old domain.RefreshToken, g *domain.Grant) (domain.RefreshToken, error) {
			return liveToken("rt-3", g.ID), errSentinel
		}))

		require.ErrorIs(t, err, errSentinel)
		require.Equal(t, domain.RefreshRetry, decision)
		require.Equal(t, before1, get(t, s, "rt-1"))
		require.Equal(t, before2, get(t, s, "rt-2"), "the successor was not withdrawn")
		_, err = s.GetRefreshToken(t.Context(), "rt-3", base)
		require.ErrorIs(t, err, domain.ErrNotFound)
	})

	// A client that sends the same refresh twice (or a retry racing the
	// first request): each presentation sees the state the previous one
	// committed, so one rotates and every other one retries. All succeed,
	// and exactly one successor is live — the one the token names.
	t.Run("32 concurrent duplicate refreshes leave exactly one live chain", func(t *testing.T) {
		s := newStore(t)
		seedToken(t, s, fullGrant("g1"), liveToken("rt-1", "g1"))
		decisions := make([]domain.RefreshDecision, racers)

		errs := race(racers, func(i int) error {
			_, d, err := s.RotateRefreshToken(t.Context(), "rt-1", base, within("g1", grace), domain.RotateFunc(successor(fmt.Sprintf("next-%d", i))))
			decisions[i] = d
			return err
		})

		require.Len(t, winners(errs), racers, "every duplicate within the window succeeds: %v", errs)
		count := map[domain.RefreshDecision]int{}
		for _, d := range decisions {
			count[d]++
		}
		require.Equal(t, map[domain.RefreshDecision]int{domain.RefreshRotate: 1, domain.RefreshRetry: racers - 1}, count)
		live := 0
		named := get(t, s, "rt-1").SuccessorHash
		for i := range racers {
			rt := get(t, s, fmt.Sprintf("next-%d", i))
			if rt.Rotated() {
				require.True(t, rt.Withdrawn())
				continue
			}
			live++
			require.Equal(t, rt.Hash, named, "the live successor is the one the token names")
		}
		require.Equal(t, 1, live, "live successors")
	})
}
