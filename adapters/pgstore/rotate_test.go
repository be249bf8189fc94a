package pgstore_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/pgstore"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/test/pgtest"
)

// benchRotation is the plain rotation of a refresh_token request by
// benchGrant's client, to successor.
func benchRotation(successor string) domain.Rotation {
	return domain.Rotation{ClientID: "client", SuccessorHash: successor, TTL: 24 * time.Hour, Now: benchNow}
}

// redeemedGrant stores benchGrant(id) and redeems its code, so that the
// grant's live refresh token is refresh.
func redeemedGrant(t *testing.T, s *pgstore.Store, id, refresh string) {
	t.Helper()
	g, code := benchGrant(id)
	require.NoError(t, s.CreateGrant(t.Context(), g, code))
	_, _, err := s.RedeemCode(t.Context(), code.Hash, benchNow, benchRedemption(refresh))
	require.NoError(t, err)
}

// The usual refresh, a live token presented by its client, is decided by
// the one statement that rotates it; anything else is left to the locking
// transaction, and the statement changed nothing.
func TestTheRotationStatementDecidesTheUsualRefresh(t *testing.T) {
	s := openStore(t, pgtest.Schema(t))
	redeemedGrant(t, s, "g1", "rt-1")

	other := benchRotation("rt-other")
	other.ClientID = "client-other"
	decided, err := s.RotatePlain(t.Context(), "rt-1", benchNow, other)
	require.NoError(t, err)
	require.False(t, decided, "another client's presentation is the transaction's to refuse")

	decided, err = s.RotatePlain(t.Context(), "rt-1", benchNow, benchRotation("rt-2"))
	require.NoError(t, err)
	require.True(t, decided, "the client's refresh rotates in the statement")
	next, err := s.GetRefreshToken(t.Context(), "rt-2", benchNow)
	require.NoError(t, err)
	require.Equal(t, benchNow.Add(24*time.Hour), next.ExpiresAt)
	grant, err := s.GetGrant(t.Context(), "g1", benchNow)
	require.NoError(t, err)
	require.Equal(t, benchNow.Add(24*time.Hour), grant.ExpiresAt, "the grant's expiry slides")
	require.Equal(t, benchNow, grant.LastUsedAt)

	decided, err = s.RotatePlain(t.Context(), "rt-1", benchNow, benchRotation("rt-3"))
	require.NoError(t, err)
	require.False(t, decided, "a rotated token is the transaction's to decide (retry or reuse)")
	_, err = s.GetRefreshToken(t.Context(), "rt-3", benchNow)
	require.ErrorIs(t, err, domain.ErrNotFound)
}

// Plain rotations racing revocations of their grants, and retries of the
// token they rotate (the locking transaction), never deadlock: all lock
// the grant first. Every outcome is one the contract allows.
func TestPlainRotationsRacingRevocationsAndRetriesNeverDeadlock(t *testing.T) {
	s := openStore(t, pgtest.Schema(t))
	const rounds = 40
	for i := range rounds {
		for _, id := range []string{fmt.Sprintf("r%d", i), fmt.Sprintf("q%d", i)} {
			redeemedGrant(t, s, id, "rt-"+id)
		}
		// q<i>'s first token is rotated already: presenting it again
		// within the window is a retry, through the transaction.
		_, _, err := s.RotateRefreshToken(t.Context(), fmt.Sprintf("rt-q%d", i), benchNow, domain.RefreshUse{ClientID: "client"},
			benchRotation(fmt.Sprintf("rt-q%d-1", i)))
		require.NoError(t, err)
	}
	retry := domain.RefreshUse{ClientID: "client", Grace: time.Minute}
	for i := range rounds {
		errs := make([]error, 4)
		together(func() {
			_, _, errs[0] = s.RotateRefreshToken(t.Context(), fmt.Sprintf("rt-r%d", i), benchNow, retry, benchRotation(fmt.Sprintf("rt-r%d-1", i)))
		}, func() {
			errs[1] = s.RevokeGrant(t.Context(), fmt.Sprintf("r%d", i))
		}, func() {
			_, _, errs[2] = s.RotateRefreshToken(t.Context(), fmt.Sprintf("rt-q%d-1", i), benchNow, retry, benchRotation(fmt.Sprintf("rt-q%d-2", i)))
		}, func() {
			_, _, errs[3] = s.RotateRefreshToken(t.Context(), fmt.Sprintf("rt-q%d", i), benchNow, retry, benchRotation(fmt.Sprintf("rt-q%d-3", i)))
		})
		for j, err := range errs {
			if err != nil && !errors.Is(err, domain.ErrNotFound) && !errors.Is(err, domain.ErrAlreadyConsumed) {
				t.Fatalf("round %d call %d: %v", i, j, err)
			}
		}
	}
}

// The presenter is the RefreshUse's client: a Rotation naming another
// client does not let the single statement rotate a token its presenter
// does not hold; the rule refuses it.
func TestTheRotationStatementDecidesForThePresenterOnly(t *testing.T) {
	s := openStore(t, pgtest.Schema(t))
	redeemedGrant(t, s, "g1", "rt-1")

	_, decision, err := s.RotateRefreshToken(t.Context(), "rt-1", benchNow, domain.RefreshUse{ClientID: "client-other"}, benchRotation("rt-2"))
	require.ErrorIs(t, err, domain.ErrWrongClient)
	require.Equal(t, domain.RefreshRefuse, decision)
	_, err = s.GetRefreshToken(t.Context(), "rt-2", benchNow)
	require.ErrorIs(t, err, domain.ErrNotFound, "nothing was rotated")
}
