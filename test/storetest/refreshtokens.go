package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

func testRefreshTokens(t *testing.T, newStore func(*testing.T) ports.Store) {
	t.Run("a refresh token reads back with every field", func(t *testing.T) {
		s := newStore(t)
		want := liveToken("rt-1", "g1")
		want.RotatedAt = base.Add(time.Second)
		want.SuccessorHash = "rt-2"
		requireEveryFieldSet(t, want)
		seedToken(t, s, fullGrant("g1"), want)

		got, err := s.GetRefreshToken(t.Context(), "rt-1", base)
		require.NoError(t, err)
		require.Equal(t, want, got)
	})

	t.Run("rotation marks the token, stores the successor and saves the grant", func(t *testing.T) {
		s := newStore(t)
		g := fullGrant("g1")
		old := liveToken("rt-1", "g1")
		seedToken(t, s, g, old)
		now := base.Add(time.Hour)
		next := liveToken("rt-2", "g1")
		next.IssuedAt = now
		var seenToken domain.RefreshToken
		var seenGrant domain.Grant

		got, decision, err := s.RotateRefreshToken(t.Context(), "rt-1", now, strict("g1"), domain.RotateFunc(func(rt domain.RefreshToken, gr *domain.Grant) (domain.RefreshToken, error) {
			seenToken, seenGrant = rt, *gr

			gr.SealedUpstream = []byte("resealed")
			gr.UpstreamExpiry = now.Add(time.Hour)
			gr.HasUpstreamRefresh = false

			gr.LastUsedAt = now
			gr.Identity = renewedIdentity()
			return next, nil
		}))

		require.NoError(t, err)
		require.Equal(t, domain.RefreshRotate, decision)
		require.Equal(t, next, got)
		require.Equal(t, old, seenToken)
		require.Equal(t, g, seenGrant)

		rotated := old
		rotated.RotatedAt = now
		rotated.SuccessorHash = "rt-2"
		stored, err := s.GetRefreshToken(t.Context(), "rt-1", now)
		require.NoError(t, err)
		require.Equal(t, rotated, stored)
		stored, err = s.GetRefreshToken(t.Context(), "rt-2", now)
		require.NoError(t, err)
		require.Equal(t, next, stored)

		wantGrant := g
		wantGrant.SealedUpstream = []byte("resealed")
		wantGrant.UpstreamExpiry = now.Add(time.Hour)
		wantGrant.HasUpstreamRefresh = false
		wantGrant.LastUsedAt = now
		wantGrant.Identity = renewedIdentity()
		gotGrant, err := s.GetGrant(t.Context(), "g1", now)
		require.NoError(t, err)
		require.Equal(t, wantGrant, gotGrant)
	})

	t.Run("a rotation may extend the grant's expiry", func(t *testing.T) {
		s := newStore(t)
		g := fullGrant("g1")
		seedToken(t, s, g, liveToken("rt-1", "g1"))

		_, _, err := s.RotateRefreshToken(t.Context(), "rt-1", base, strict("g1"), domain.RotateFunc(func(rt domain.RefreshToken, gr *domain.Grant) (domain.RefreshToken, error) {
			gr.ExpiresAt = g.ExpiresAt.Add(24 * time.Hour)
			next := liveToken("rt-2", gr.ID)
			next.ExpiresAt = gr.ExpiresAt
			return next, nil
		}))

		require.NoError(t, err)

		later := g.ExpiresAt.Add(time.Hour)
		_, err = s.GetGrant(t.Context(), "g1", later)
		require.NoError(t, err)
		n, err := s.Sweep(t.Context(), later)
		require.NoError(t, err)
		require.Equal(t, 2, n, "the code and the first token expired; the grant did not")
		_, err = s.GetRefreshToken(t.Context(), "rt-2", later)
		require.NoError(t, err)

		// The grant is swept at its new expiry, not forgotten.
		n, err = s.Sweep(t.Context(), g.ExpiresAt.Add(24*time.Hour))
		require.NoError(t, err)
		require.Equal(t, 2, n, "the grant and the second token expired")
		_, err = s.GetGrant(t.Context(), "g1", base)
		require.ErrorIs(t, err, domain.ErrNotFound)
	})

	t.Run("without a retry window, reusing a rotated token revokes the grant", func(t *testing.T) {
		s := newStore(t)
		seedToken(t, s, fullGrant("g1"), liveToken("rt-1", "g1"))
		_, _, err := s.RotateRefreshToken(t.Context(), "rt-1", base, strict("g1"), domain.RotateFunc(successor("rt-2")))
		require.NoError(t, err)

		got, decision, err := s.RotateRefreshToken(t.Context(), "rt-1", base.Add(time.Second), strict("g1"), domain.RotateFunc(discarded(t, s)))
		require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
		require.Equal(t, domain.RefreshRevoke, decision)
		require.Equal(t, "rt-1", got.Hash)
		require.Equal(t, "rt-2", got.SuccessorHash)
		require.True(t, got.Rotated())
		requireRevoked(t, s, "g1", "rt-1", "rt-2")
	})

	t.Run("a failing rotate changes nothing", func(t *testing.T) {
		s := newStore(t)
		g := fullGrant("g1")
		old := liveToken("rt-1", "g1")
		seedToken(t, s, g, old)

		_, _, err := s.RotateRefreshToken(t.Context(), "rt-1", base, strict("g1"), domain.RotateFunc(func(rt domain.RefreshToken, gr *domain.Grant) (domain.RefreshToken, error) {
			gr.SealedUpstream = []byte("changed before failing")
			gr.Scopes[0] = "changed"
			return liveToken("rt-2", "g1"), errSentinel
		}))

		require.ErrorIs(t, err, errSentinel)

		got, err := s.GetRefreshToken(t.Context(), "rt-1", base)
		require.NoError(t, err)
		require.Equal(t, old, got, "the token is still live")
		_, err = s.GetRefreshToken(t.Context(), "rt-2", base)
		require.ErrorIs(t, err, domain.ErrNotFound)
		gotGrant, err := s.GetGrant(t.Context(), "g1", base)
		require.NoError(t, err)
		require.Equal(t, g, gotGrant)

		_, _, err = s.RotateRefreshToken(t.Context(), "rt-1", base, strict("g1"), domain.RotateFunc(successor("rt-3")))
		require.NoError(t, err, "a later rotation still works")
	})

	t.Run("a rotation that moves the token to another grant is refused", func(t *testing.T) {
		s := newStore(t)
		old := liveToken("rt-1", "g1")
		seedToken(t, s, fullGrant("g1"), old)

		_, _, err := s.RotateRefreshToken(t.Context(), "rt-1", base, strict("g1"), domain.RotateFunc(func(domain.RefreshToken, *domain.Grant) (domain.RefreshToken, error) {
			return liveToken("rt-2", "g2"), nil
		}))

		require.Error(t, err)
		got, err := s.GetRefreshToken(t.Context(), "rt-1", base)
		require.NoError(t, err)
		require.Equal(t, old, got)
	})

	t.Run("an unknown refresh token is not found by get or rotate", func(t *testing.T) {
		s := newStore(t)
		seedToken(t, s, fullGrant("g1"), liveToken("rt-1", "g1"))

		_, err := s.GetRefreshToken(t.Context(), "rt-unknown", base)
		require.ErrorIs(t, err, domain.ErrNotFound)
		_, _, err = s.RotateRefreshToken(t.Context(), "rt-unknown", base, strict("g1"), domain.RotateFunc(noRotate(t)))
		require.ErrorIs(t, err, domain.ErrNotFound)
	})

	// Without a retry window the first rotation wins; the next one to run
	// sees a rotated token, which is reuse, and revokes the grant; everyone
	// after that finds a token whose grant is gone. So every loser gets
	// ErrAlreadyConsumed or ErrNotFound, at least one gets
	// ErrAlreadyConsumed, and the grant ends revoked — even the winner's
	// successor is dead.
	t.Run("without a retry window, of 32 concurrent rotations exactly one wins and the grant ends revoked", func(t *testing.T) {
		s := newStore(t)
		seedToken(t, s, fullGrant("g1"), liveToken("rt-1", "g1"))

		errs := race(racers, func(i int) error {
			_, _, err := s.RotateRefreshToken(t.Context(), "rt-1", base, strict("g1"), domain.RotateFunc(successor(fmt.Sprintf("next-%d", i))))
			return err
		})

		won := winners(errs)
		require.Len(t, won, 1)
		consumed := 0
		for i, err := range errs {
			if i == won[0] {
				continue
			}
			switch {
			case errors.Is(err, domain.ErrAlreadyConsumed):
				consumed++
			case errors.Is(err, domain.ErrNotFound):
			default:
				t.Fatalf("loser %d: got %v, want ErrAlreadyConsumed or ErrNotFound", i, err)
			}
		}
		require.GreaterOrEqual(t, consumed, 1, "the first loser must see a reused token")
		requireRevoked(t, s, "g1", "rt-1", fmt.Sprintf("next-%d", won[0]))
	})

	t.Run("concurrent rotations of different tokens each get their own successor", func(t *testing.T) {
		s := newStore(t)
		for i := range racers {
			id := fmt.Sprintf("g%d", i)
			seedToken(t, s, fullGrant(id), liveToken("rt-"+id, id))
		}
		got := make([]domain.RefreshToken, racers)

		errs := race(racers, func(i int) error {
			id := fmt.Sprintf("g%d", i)
			next, _, err := s.RotateRefreshToken(t.Context(), "rt-"+id, base, strict(id), domain.RotateFunc(successor("next-"+id)))
			got[i] = next
			return err
		})

		require.Len(t, winners(errs), racers)
		for i := range racers {
			id := fmt.Sprintf("g%d", i)
			require.Equal(t, "next-"+id, got[i].Hash)
			old, err := s.GetRefreshToken(t.Context(), "rt-"+id, base)
			require.NoError(t, err)
			require.Equal(t, "next-"+id, old.SuccessorHash)
		}
	})
}

// requireRevoked checks that the grant and the named tokens are gone.
func requireRevoked(t *testing.T, s ports.Store, grantID string, hashes ...string) {
	t.Helper()
	_, err := s.GetGrant(t.Context(), grantID, base)
	require.ErrorIs(t, err, domain.ErrNotFound, "the grant is still live")
	for _, h := range hashes {
		_, err := s.GetRefreshToken(t.Context(), h, base)
		require.ErrorIs(t, err, domain.ErrNotFound, h)
	}
}

// renewedIdentity is an identity a refresh stores in place of the grant's:
// the access policy decides the next refresh on its group claims, lists
// and nested objects included, so they must come back as they went in.
func renewedIdentity() domain.Identity {
	return domain.Identity{
		Subject: "subject-g1", Issuer: "https://idp.example.com", Email: "renewed@example.com", EmailVerified: true, Name: "Renewed",
		Claims: map[string]any{
			"groups":       []any{"mcp", "staff"},
			"realm_access": map[string]any{"roles": []any{"kc-admin"}},
			"department":   "eng",
		},
	}
}
