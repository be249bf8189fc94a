package boltstore_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/boltstore"
	"github.com/oidcproxy/oidcproxy/domain"
)

// GetGrant serves repeated reads from decoded records; these are the
// properties that make that safe.
func TestRepeatedGrantReadsSeeEveryChangeAndRevocation(t *testing.T) {
	s, err := boltstore.Open(boltstore.Options{Path: filepath.Join(t.TempDir(), "g.db"), NoSync: true})
	require.NoError(t, err)
	defer s.Close()
	ctx := t.Context()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	g := domain.Grant{ID: "g1", ClientID: "c", Subject: "alice", Scopes: []string{"mcp"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	require.NoError(t, s.CreateGrant(ctx, g, domain.AuthorizationCode{Hash: "code", ClientID: "c", GrantID: "g1", IssuedAt: now, ExpiresAt: now.Add(time.Minute)}))
	_, _, err = s.RedeemCode(ctx, "code", now, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) {
		return &domain.RefreshToken{Hash: "rt", GrantID: "g1", ClientID: "c", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}, nil
	}})

	require.NoError(t, err)

	first, err := s.GetGrant(ctx, "g1", now)
	require.NoError(t, err)
	first.Scopes[0] = "mutated by a caller"
	again, err := s.GetGrant(ctx, "g1", now)
	require.NoError(t, err)
	require.Equal(t, []string{"mcp"}, again.Scopes, "callers never share the cached value")

	later := now.Add(2 * time.Hour)
	_, _, err = s.RotateRefreshToken(ctx, "rt", now, domain.RefreshUse{ClientID: "c"}, domain.RotateFunc(func(_ domain.RefreshToken, gr *domain.Grant) (domain.RefreshToken, error) {
		gr.ExpiresAt = later
		return domain.RefreshToken{Hash: "rt2", GrantID: "g1", ClientID: "c", IssuedAt: now, ExpiresAt: later}, nil
	}))

	require.NoError(t, err)
	rewritten, err := s.GetGrant(ctx, "g1", now)
	require.NoError(t, err)
	require.Equal(t, later, rewritten.ExpiresAt, "a rewritten record is decoded again")

	_, err = s.GetGrant(ctx, "g1", later)
	require.ErrorIs(t, err, domain.ErrNotFound, "expiry is judged on every read")

	require.NoError(t, s.RevokeGrant(ctx, "g1"))
	_, err = s.GetGrant(ctx, "g1", now)
	require.ErrorIs(t, err, domain.ErrNotFound, "revocation is immediate")
}

// Readers race a revocation: once RevokeGrant has returned, no read may
// find the grant, also not one whose read transaction began before the
// commit and which would put the old record back into the cache.
func TestRevocationWinsOverReadsInFlight(t *testing.T) {
	s, err := boltstore.Open(boltstore.Options{Path: filepath.Join(t.TempDir(), "g.db"), NoSync: true})
	require.NoError(t, err)
	defer s.Close()
	ctx := t.Context()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for round := range 200 {
		id := fmt.Sprintf("g%d", round)
		g := domain.Grant{ID: id, ClientID: "c", Subject: "alice", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		code := domain.AuthorizationCode{Hash: "code-" + id, ClientID: "c", GrantID: id, IssuedAt: now, ExpiresAt: now.Add(time.Minute)}
		require.NoError(t, s.CreateGrant(ctx, g, code))

		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
						_, _ = s.GetGrant(ctx, id, now)
					}
				}
			})
		}
		time.Sleep(100 * time.Microsecond)
		require.NoError(t, s.RevokeGrant(ctx, id))
		for range 50 {
			_, err := s.GetGrant(ctx, id, now)
			require.ErrorIs(t, err, domain.ErrNotFound, "round %d: a revoked grant was read back", round)
		}
		close(stop)
		wg.Wait()
		_, err := s.GetGrant(ctx, id, now)
		require.ErrorIs(t, err, domain.ErrNotFound, "round %d: a stale read refilled the cache", round)
	}
}
