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
		_, _, err := s.RedeemCode(t.Context(), code2.Hash, benchNow, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: issueFor("rt-" + rotatable.ID)})
		require.NoError(t, err)
	}

	ok := func(err error) bool { return err == nil || errors.Is(err, domain.ErrNotFound) }
	for i := range rounds {
		var wg sync.WaitGroup
		errs := make([]error, 4)
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			_, _, errs[0] = s.RedeemCode(t.Context(), fmt.Sprintf("code-r%d", i), benchNow, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: issueFor(fmt.Sprintf("rt-r%d", i))})
		})
		wg.Go(func() { <-start; errs[1] = s.RevokeGrant(t.Context(), fmt.Sprintf("r%d", i)) })
		wg.Go(func() {
			<-start
			_, _, errs[2] = s.RotateRefreshToken(t.Context(), fmt.Sprintf("rt-t%d", i), benchNow, domain.RefreshUse{ClientID: "client"}, domain.RotateFunc(func(old domain.RefreshToken, g *domain.Grant) (domain.RefreshToken, error) {
				g.ExpiresAt = benchNow.Add(time.Hour)
				next := old
				next.Hash = "next-" + old.Hash
				return next, nil
			}))

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

// rightful is a RedeemCode check that accepts every presenter.
func rightful(domain.AuthorizationCode) error { return nil }

// stranger is a RedeemCode check that refuses every presenter.
func stranger(domain.AuthorizationCode) error { return errors.New("not the code's client") }

// A replay that revokes its grant deletes the grant in the transaction
// that holds the code's lock, while other replays of the same code queue
// for that lock. They must queue without holding anything the deletion
// needs: a replay that had locked the grant in a shared mode before
// queueing for the code would deadlock with the deletion, and one side
// would fail with SQLSTATE 40P01. Here the revoking replay holds its locks
// until the others are seen waiting, so the queue is certain to form; each
// queued replay then finds the grant gone.
func TestReplaysQueuedBehindARevokingReplayDoNotDeadlock(t *testing.T) {
	url := pgtest.Database(t)
	s := openStore(t, url)
	ctx := t.Context()
	g, code := benchGrant("replayed")
	require.NoError(t, s.CreateGrant(ctx, g, code))
	_, _, err := s.RedeemCode(ctx, code.Hash, benchNow, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: issueFor("rt-replayed")})
	require.NoError(t, err)

	watcher, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = watcher.Close(context.Background()) })
	waiting := func() int {
		var n int
		err := watcher.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		require.NoError(t, err)
		return n
	}

	const queued = 3
	var wg sync.WaitGroup
	errs := make([]error, queued)
	noIssue := func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) {
		return nil, errors.New("a replay reached issue")
	}
	_, _, err = s.RedeemCode(ctx, code.Hash, benchNow, domain.CodeUseFuncs{CheckFunc: func(domain.AuthorizationCode) error {
		for i := range queued {
			wg.Go(func() {
				_, _, errs[i] = s.RedeemCode(ctx, code.Hash, benchNow, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: noIssue})
			})
		}
		deadline := time.Now().Add(5 * time.Second)
		for waiting() < queued && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		return nil
	}, IssueFunc: noIssue})

	require.ErrorIs(t, err, domain.ErrAlreadyConsumed, "the first replay revokes")
	wg.Wait()
	for i, err := range errs {
		require.ErrorIs(t, err, domain.ErrNotFound, "queued replay %d", i)
	}
	_, err = s.GetGrant(ctx, "replayed", benchNow)
	require.ErrorIs(t, err, domain.ErrNotFound)
}
