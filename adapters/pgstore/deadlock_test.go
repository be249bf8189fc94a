package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/test/pgtest"
)

// A revocation of several grants locks them in its scan's order; a
// transaction holding two of them in the other order (a batch of
// redemptions, here a transaction by hand) makes PostgreSQL break the
// deadlock by aborting one of the two. When the revocation is the one
// aborted, it runs again: the operator sees the grants revoked, not an
// error.
func TestARevocationThatLosesADeadlockRunsAgain(t *testing.T) {
	url := pgtest.Schema(t)
	s := openStore(t, url)
	for _, id := range []string{"g1", "g2"} {
		g, code := benchGrant(id)
		g.Subject = "alice"
		require.NoError(t, s.CreateGrant(t.Context(), g, code))
	}
	holder, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = holder.Close(context.Background()) })
	watcher, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = watcher.Close(context.Background()) })

	tx, err := holder.Begin(t.Context())
	require.NoError(t, err)
	_, err = tx.Exec(t.Context(), `SELECT FROM grants WHERE id = 'g2' FOR UPDATE`)
	require.NoError(t, err)

	type outcome struct {
		n   int
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		n, err := s.RevokeGrants(t.Context(), ports.GrantFilter{Subject: "alice"})
		done <- outcome{n, err}
	}()
	// The revocation has locked g1 and waits for g2.
	require.Eventually(t, func() bool {
		var waiting bool
		err := watcher.QueryRow(t.Context(), `SELECT EXISTS (SELECT FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE 'DELETE FROM grants%')`).Scan(&waiting)
		return err == nil && waiting
	}, 10*time.Second, 5*time.Millisecond)
	// This transaction now wants g1: a deadlock. The revocation waited
	// first, so its deadlock check runs first and aborts it.
	_, err = tx.Exec(t.Context(), `SELECT FROM grants WHERE id = 'g1' FOR UPDATE`)
	require.NoError(t, err, "the revocation, not this transaction, lost the deadlock")
	require.NoError(t, tx.Rollback(t.Context()))

	res := <-done
	require.NoError(t, res.err, "the revocation ran again once the deadlock was broken")
	require.Equal(t, 2, res.n)
	for _, id := range []string{"g1", "g2"} {
		_, err := s.GetGrant(t.Context(), id, benchNow)
		require.Error(t, err, "%s is revoked", id)
	}
}
