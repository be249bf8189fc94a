package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/pgstore"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/test/pgtest"
)

// The usual outcomes of a token request are decided by the one statement
// that claims the code, without the locking transaction: a redemption, a
// replay by the rightful client (which revokes) and a replay by anyone
// else (which changes nothing). A request that does not meet a code not
// yet redeemed is left to the transaction, which burns it, and the claim
// has changed nothing before.
func TestTheClaimStatementDecidesTheUsualRedemptions(t *testing.T) {
	s := openStore(t, pgtest.Schema(t))
	g, code := benchGrant("g1")
	require.NoError(t, s.CreateGrant(t.Context(), g, code))

	wrong := benchRedemption("rt-wrong")
	wrong.Verifier += "-wrong"
	decided, err := s.Claim(t.Context(), code.Hash, benchNow, wrong)
	require.NoError(t, err)
	require.False(t, decided, "a mismatch on a code not yet redeemed is the transaction's to burn")
	_, err = s.GetRefreshToken(t.Context(), "rt-wrong", benchNow)
	require.ErrorIs(t, err, domain.ErrNotFound)

	decided, err = s.Claim(t.Context(), code.Hash, benchNow, benchRedemption("rt-1"))
	require.NoError(t, err)
	require.True(t, decided, "the rightful request redeems in the statement")
	_, err = s.GetRefreshToken(t.Context(), "rt-1", benchNow)
	require.NoError(t, err)

	decided, err = s.Claim(t.Context(), code.Hash, benchNow, wrong)
	require.True(t, decided)
	require.ErrorIs(t, err, domain.ErrAlreadyConsumed, "a replay with a wrong verifier is refused")
	_, err = s.GetGrant(t.Context(), g.ID, benchNow)
	require.NoError(t, err, "and changes nothing")

	decided, err = s.Claim(t.Context(), code.Hash, benchNow, benchRedemption("rt-2"))
	require.True(t, decided)
	require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
	_, err = s.GetGrant(t.Context(), g.ID, benchNow)
	require.ErrorIs(t, err, domain.ErrNotFound, "the rightful client's replay revokes the grant")

	decided, err = s.Claim(t.Context(), code.Hash, benchNow, benchRedemption("rt-3"))
	require.True(t, decided)
	require.ErrorIs(t, err, domain.ErrNotFound, "the code went with its grant")
}

// Token requests racing revocations of their grants never deadlock and
// never leave a refresh token on a revoked grant: the claim locks the
// grant before the code, the order the revocation's cascade takes.
func TestClaimsRacingRevocationsNeverDeadlock(t *testing.T) {
	s := openStore(t, pgtest.Schema(t))
	const rounds = 40
	seedGrants(t, s, rounds)
	for i := range rounds {
		id := fmt.Sprintf("g%d", i)
		var redeemErr, revokeErr error
		together(func() {
			_, _, redeemErr = s.RedeemCode(t.Context(), "code-"+id, benchNow, benchRedemption("rt-"+id))
		}, func() { revokeErr = s.RevokeGrant(t.Context(), id) })
		require.NoError(t, revokeErr, "round %d", i)
		if redeemErr != nil {
			require.ErrorIs(t, redeemErr, domain.ErrNotFound, "round %d", i)
		}
		_, err := s.GetRefreshToken(t.Context(), "rt-"+id, benchNow)
		require.ErrorIs(t, err, domain.ErrNotFound, "round %d: no token outlives its grant", i)
	}
}

// A rightful token request racing one with a wrong verifier for the same
// code never deadlocks: the claim and the locking transaction that burns
// the code queue on the grant. Whichever locks it first decides: the
// rightful request redeems (and the burn finds a redeemed code it may not
// touch), or the burn revokes the grant (and the rightful request finds
// nothing).
func TestClaimsRacingBurnsNeverDeadlock(t *testing.T) {
	s := openStore(t, pgtest.Schema(t))
	const rounds = 60
	seedGrants(t, s, rounds)
	for i := range rounds {
		id := fmt.Sprintf("g%d", i)
		wrong := benchRedemption("rt-wrong-" + id)
		wrong.Verifier += "-wrong"
		var rightErr, wrongErr error
		together(func() {
			_, _, rightErr = s.RedeemCode(t.Context(), "code-"+id, benchNow, benchRedemption("rt-"+id))
		}, func() {
			_, _, wrongErr = s.RedeemCode(t.Context(), "code-"+id, benchNow, wrong)
		})
		_, err := s.GetRefreshToken(t.Context(), "rt-"+id, benchNow)
		if rightErr == nil {
			require.ErrorIs(t, wrongErr, domain.ErrAlreadyConsumed, "round %d", i)
			require.NoError(t, err, "round %d: the redemption stands", i)
			continue
		}
		require.ErrorIs(t, rightErr, domain.ErrNotFound, "round %d", i)
		require.Equal(t, wrong.Check(code(i)), wrongErr, "round %d: the burn", i)
		require.ErrorIs(t, err, domain.ErrNotFound, "round %d", i)
	}
}

// code is benchGrant's code of grant g<i>.
func code(i int) domain.AuthorizationCode {
	_, c := benchGrant(fmt.Sprintf("g%d", i))
	return c
}

// seedGrants stores n benchGrants, g0 to g<n-1>, with their codes.
func seedGrants(t *testing.T, s *pgstore.Store, n int) {
	t.Helper()
	for i := range n {
		g, code := benchGrant(fmt.Sprintf("g%d", i))
		require.NoError(t, s.CreateGrant(t.Context(), g, code))
	}
}

// together runs fns on goroutines of their own, released at once, and
// returns when all have.
func together(fns ...func()) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, fn := range fns {
		wg.Go(func() { <-start; fn() })
	}
	close(start)
	wg.Wait()
}

// A request the single statements refuse writes nothing: no lock, no
// transaction id, so its commit waits for no WAL flush. Whoever holds a
// redeemed code or a rotated token (or makes one up) cannot make the
// database flush for each try; only a request that changes something
// gets a transaction id.
func TestRefusedRequestsWriteNothing(t *testing.T) {
	url := pgtest.Schema(t)
	s := openStore(t, url)
	g, code := benchGrant("g1")
	require.NoError(t, s.CreateGrant(t.Context(), g, code))
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })

	// writes runs statement with args in a transaction it rolls back, and
	// reports whether the transaction got an id.
	writes := func(statement string, args ...any) bool {
		t.Helper()
		tx, err := conn.Begin(t.Context())
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(t.Context()) }()
		rows, err := tx.Query(t.Context(), statement, args...)
		require.NoError(t, err)
		rows.Close()
		require.NoError(t, rows.Err())
		var xid *string
		require.NoError(t, tx.QueryRow(t.Context(), "SELECT pg_current_xact_id_if_assigned()::text").Scan(&xid))
		return xid != nil
	}
	r := benchRedemption("rt-1")
	c, ok := r.Claim()
	require.True(t, ok)
	claimAt := func(now time.Time, hash, challenge string) bool {
		return writes(pgstore.ClaimCodeStatement, hash, pgstore.NS(now), c.ClientID, c.RedirectURI, challenge,
			c.Resources, "rt-x", pgstore.NS(now.Add(time.Hour)))
	}
	claim := func(hash, challenge string) bool { return claimAt(benchNow, hash, challenge) }
	require.True(t, claim(code.Hash, c.Challenge), "a claim writes (the test can tell)")
	require.False(t, claimAt(code.ExpiresAt, code.Hash, c.Challenge), "an expired code writes nothing")
	require.False(t, claim(code.Hash, "another-challenge"), "a mismatch on a fresh code writes nothing")
	require.False(t, claim("code-made-up", c.Challenge), "a made-up code writes nothing")

	_, _, err = s.RedeemCode(t.Context(), code.Hash, benchNow, r)
	require.NoError(t, err)
	require.False(t, claim(code.Hash, "another-challenge"), "a stolen replay writes nothing")

	rotate := func(hash, client string) bool {
		return writes(pgstore.RotatePlainStatement, hash, pgstore.NS(benchNow), "rt-next", client, pgstore.NS(benchNow.Add(time.Hour)))
	}
	require.True(t, rotate("rt-1", "client"), "a rotation writes")
	require.False(t, rotate("rt-1", "client-other"), "another client's presentation writes nothing")
	_, _, err = s.RotateRefreshToken(t.Context(), "rt-1", benchNow, domain.RefreshUse{ClientID: "client"}, benchRotation("rt-2"))
	require.NoError(t, err)
	require.False(t, rotate("rt-1", "client"), "a rotated token's presentation writes nothing in the statement")
}

// The single statements run at READ COMMITTED whatever the server's
// default: on a database whose sessions default to SERIALIZABLE, the
// losers of concurrent claims of one code still find it redeemed (and
// revoke its grant, as replays), instead of failing with a serialization
// error that would leave the grant alive.
func TestClaimsStayReadCommittedOnAStricterServer(t *testing.T) {
	url := pgtest.Database(t)
	pgtest.Exec(t, url, `DO $$ BEGIN
		EXECUTE format('ALTER DATABASE %I SET default_transaction_isolation = %L', current_database(), 'serializable');
	END $$`)
	s := openStore(t, url)
	g, code := benchGrant("g1")
	require.NoError(t, s.CreateGrant(t.Context(), g, code))

	errs := make([]error, 16)
	fns := make([]func(), len(errs))
	for i := range fns {
		fns[i] = func() {
			_, _, errs[i] = s.RedeemCode(t.Context(), code.Hash, benchNow, benchRedemption(fmt.Sprintf("rt-%d", i)))
		}
	}
	together(fns...)
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, domain.ErrAlreadyConsumed) && !errors.Is(err, domain.ErrNotFound):
			t.Fatalf("a loser got %v", err)
		}
	}
	require.Equal(t, 1, won)
	_, err := s.GetGrant(t.Context(), g.ID, benchNow)
	require.ErrorIs(t, err, domain.ErrNotFound, "the replays revoked the grant")
}
