package pgstore_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/test/pgtest"
)

// A revocation racing a redemption or a rotation of the same grant must
// not deadlock: both lock the grant before its codes and tokens, the order
// the revocation's cascade takes. A deadlock would surface as an error
// (SQLSTATE 40P01) from one side; here every call either wins or finds the
// grant gone.
func TestRevocationRacingRedemptionAndRotationNeverDeadlocks(t *testing.T) {
	s := openStore(t, pgtest.Schema(t))
	const rounds = 40
	for i := range rounds {
		redeemable, code := benchGrant(fmt.Sprintf("r%d", i))
		require.NoError(t, s.CreateGrant(t.Context(), redeemable, code))
		rotatable, code2 := benchGrant(fmt.Sprintf("t%d", i))
		require.NoError(t, s.CreateGrant(t.Context(), rotatable, code2))
		_, _, err := s.RedeemCode(t.Context(), code2.Hash, benchNow, issueFor("rt-"+rotatable.ID))
		require.NoError(t, err)
	}

	ok := func(err error) bool { return err == nil || errors.Is(err, domain.ErrNotFound) }
	for i := range rounds {
		var wg sync.WaitGroup
		errs := make([]error, 4)
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			_, _, errs[0] = s.RedeemCode(t.Context(), fmt.Sprintf("code-r%d", i), benchNow, issueFor(fmt.Sprintf("rt-r%d", i)))
		})
		wg.Go(func() { <-start; errs[1] = s.RevokeGrant(t.Context(), fmt.Sprintf("r%d", i)) })
		wg.Go(func() {
			<-start
			_, _, errs[2] = s.RotateRefreshToken(t.Context(), fmt.Sprintf("rt-t%d", i), benchNow, domain.RefreshUse{ClientID: "client"}, func(old domain.RefreshToken, g *domain.Grant) (domain.RefreshToken, error) {
				g.ExpiresAt = benchNow.Add(time.Hour)
				next := old
				next.Hash = "next-" + old.Hash
				return next, nil
			})
		})
		wg.Go(func() { <-start; errs[3] = s.RevokeGrant(t.Context(), fmt.Sprintf("t%d", i)) })
		close(start)
		wg.Wait()
		for j, err := range errs {
			require.True(t, ok(err), "round %d call %d: %v", i, j, err)
		}
		for _, id := range []string{fmt.Sprintf("r%d", i), fmt.Sprintf("t%d", i)} {
			_, err := s.GetGrant(t.Context(), id, benchNow)
			require.ErrorIs(t, err, domain.ErrNotFound, "the revocation holds")
		}
	}
}

// issueFor is an issue callback that stores a refresh token named hash.
func issueFor(hash string) func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) {
	return func(c domain.AuthorizationCode, g domain.Grant) (*domain.RefreshToken, error) {
		return &domain.RefreshToken{Hash: hash, GrantID: g.ID, ClientID: g.ClientID, Scopes: c.Scopes,
			IssuedAt: benchNow, ExpiresAt: g.ExpiresAt}, nil
	}
}
