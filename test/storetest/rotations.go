package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// testRotations runs RotateRefreshToken with the rotation of a
// refresh_token request, domain.Rotation, whose plain form a store may
// write in the statement that rotates: every outcome must be
// domain.DecideRefresh's, and what is stored what Rotate builds.
func testRotations(t *testing.T, newStore func(*testing.T) ports.Store) {
	// seeded stores g1 with its live token rt-1.
	seeded := func(t *testing.T) ports.Store {
		t.Helper()
		s := newStore(t)
		seedToken(t, s, fullGrant("g1"), liveToken("rt-1", "g1"))
		return s
	}
	rotation := func(successor string, now time.Time, after *domain.Grant) domain.Rotation {
		return domain.Rotation{ClientID: "client-g1", SuccessorHash: successor, TTL: 48 * time.Hour, Now: now, After: after}
	}

	t.Run("a plain rotation stores the successor Rotate builds and slides the grant", func(t *testing.T) {
		s := seeded(t)
		now := base.Add(time.Minute)
		var after domain.Grant
		r := rotation("rt-2", now, &after)

		got, decision, err := s.RotateRefreshToken(t.Context(), "rt-1", now, strict("g1"), r)
		require.NoError(t, err)
		require.Equal(t, domain.RefreshRotate, decision)

		want := fullGrant("g1")
		wantToken, err := r.Rotate(liveToken("rt-1", "g1"), &want)
		require.NoError(t, err)
		require.Equal(t, wantToken, got)
		require.Equal(t, want, after, "After receives the grant's new state")
		stored, err := s.GetRefreshToken(t.Context(), "rt-2", now)
		require.NoError(t, err)
		require.Equal(t, wantToken, stored)
		grant, err := s.GetGrant(t.Context(), "g1", now)
		require.NoError(t, err)
		require.Equal(t, want, grant)
		old, err := s.GetRefreshToken(t.Context(), "rt-1", now)
		require.NoError(t, err)
		require.Equal(t, now, old.RotatedAt)
		require.Equal(t, "rt-2", old.SuccessorHash)
	})

	t.Run("a rotation renewing the upstream session and the identity writes them", func(t *testing.T) {
		s := seeded(t)
		now := base.Add(time.Minute)
		renewed := domain.Grant{SealedUpstream: []byte("renewed"), UpstreamExpiry: now.Add(time.Hour), HasUpstreamRefresh: false}
		identity := domain.Identity{Subject: "subject-g1", Issuer: "https://idp.example.com", Email: "new@example.com"}
		r := rotation("rt-2", now, nil)
		r.Renewed, r.Identity = &renewed, &identity

		_, _, err := s.RotateRefreshToken(t.Context(), "rt-1", now, strict("g1"), r)
		require.NoError(t, err)
		grant, err := s.GetGrant(t.Context(), "g1", now)
		require.NoError(t, err)
		require.Equal(t, []byte("renewed"), grant.SealedUpstream)
		require.Equal(t, renewed.UpstreamExpiry, grant.UpstreamExpiry)
		require.False(t, grant.HasUpstreamRefresh)
		require.Equal(t, identity, grant.Identity)
	})

	t.Run("another client's presentation is refused and changes nothing", func(t *testing.T) {
		s := seeded(t)
		r := rotation("rt-2", base, nil)
		r.ClientID = "client-other"

		_, decision, err := s.RotateRefreshToken(t.Context(), "rt-1", base, domain.RefreshUse{ClientID: "client-other"}, r)
		require.ErrorIs(t, err, domain.ErrWrongClient)
		require.Equal(t, domain.RefreshRefuse, decision)
		old, err := s.GetRefreshToken(t.Context(), "rt-1", base)
		require.NoError(t, err)
		require.False(t, old.Rotated())
	})

	t.Run("a second use after the window revokes the grant", func(t *testing.T) {
		s := seeded(t)
		_, _, err := s.RotateRefreshToken(t.Context(), "rt-1", base, strict("g1"), rotation("rt-2", base, nil))
		require.NoError(t, err)

		_, decision, err := s.RotateRefreshToken(t.Context(), "rt-1", base, strict("g1"), rotation("rt-3", base, nil))
		require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
		require.Equal(t, domain.RefreshRevoke, decision)
		_, err = s.GetGrant(t.Context(), "g1", base)
		require.ErrorIs(t, err, domain.ErrNotFound)
	})

	t.Run("a second use within the window is a retry", func(t *testing.T) {
		s := seeded(t)
		_, _, err := s.RotateRefreshToken(t.Context(), "rt-1", base, within("g1", grace), rotation("rt-2", base, nil))
		require.NoError(t, err)

		_, decision, err := s.RotateRefreshToken(t.Context(), "rt-1", base, within("g1", grace), rotation("rt-3", base, nil))
		require.NoError(t, err)
		require.Equal(t, domain.RefreshRetry, decision)
		withdrawn, err := s.GetRefreshToken(t.Context(), "rt-2", base)
		require.NoError(t, err)
		require.True(t, withdrawn.Rotated(), "the unused successor is withdrawn")
	})

	t.Run("an expired token is not found", func(t *testing.T) {
		s := seeded(t)
		at := liveToken("rt-1", "g1").ExpiresAt
		_, _, err := s.RotateRefreshToken(t.Context(), "rt-1", at, strict("g1"), rotation("rt-2", at, nil))
		require.ErrorIs(t, err, domain.ErrNotFound)
	})

	t.Run("of concurrent rotations of one token one rotates and the rest revoke", func(t *testing.T) {
		s := seeded(t)
		errs := race(racers, func(i int) error {
			_, _, err := s.RotateRefreshToken(t.Context(), "rt-1", base, strict("g1"), rotation(fmt.Sprintf("rt-next-%d", i), base, nil))
			return err
		})
		require.Len(t, winners(errs), 1)
		for _, err := range errs {
			if err != nil && !errorIsAny(err, domain.ErrAlreadyConsumed, domain.ErrNotFound) {
				t.Fatalf("a loser got %v", err)
			}
		}
		_, err := s.GetGrant(t.Context(), "g1", base)
		require.ErrorIs(t, err, domain.ErrNotFound, "the reuse revoked the grant")
	})
}
