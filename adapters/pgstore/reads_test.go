package pgstore_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/pgstore"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/test/pgtest"
)

// heldRead is a read that counts its runs and answers only once released.
type heldRead struct {
	runs    atomic.Int32
	release chan struct{}
	answer  string
}

func newHeldRead(answer string) *heldRead {
	return &heldRead{release: make(chan struct{}), answer: answer}
}

func (h *heldRead) read(ctx context.Context) (string, error) {
	h.runs.Add(1)
	select {
	case <-h.release:
		return h.answer, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// answers runs n callers of r.Do for id in epoch and returns their
// answers as they come.
func answers(ctx context.Context, r pgstore.Reads, n int, id string, epoch uint64, read func(context.Context) (string, error)) chan result {
	out := make(chan result, n)
	for range n {
		go func() {
			v, err := r.Do(ctx, id, epoch, read)
			out <- result{v, err}
		}()
	}
	return out
}

type result struct {
	value string
	err   error
}

// joined waits until want callers wait for a read of id.
func joined(t *testing.T, r pgstore.Reads, id string, want int) {
	t.Helper()
	require.Eventually(t, func() bool { return r.Waiting(id) == want }, 5*time.Second, time.Millisecond,
		"callers waiting for the read of %s", id)
}

func TestCallersThatMissTogetherShareOneRead(t *testing.T) {
	r := pgstore.NewReads()
	h := newHeldRead("record")
	leader := answers(t.Context(), r, 1, "k", 1, h.read)
	require.Eventually(t, func() bool { return h.runs.Load() == 1 }, 5*time.Second, time.Millisecond)
	others := answers(t.Context(), r, 20, "k", 1, h.read)
	joined(t, r, "k", 20)

	close(h.release)
	require.Equal(t, result{"record", nil}, <-leader)
	for range 20 {
		require.Equal(t, result{"record", nil}, <-others)
	}
	require.EqualValues(t, 1, h.runs.Load(), "reads of the database")
	require.Zero(t, r.Waiting("k"), "a finished read is forgotten")
}

func TestAnotherKeyOrAnotherEpochIsAnotherRead(t *testing.T) {
	r := pgstore.NewReads()
	first := newHeldRead("before the change")
	held := answers(t.Context(), r, 1, "k", 1, first.read)
	require.Eventually(t, func() bool { return first.runs.Load() == 1 }, 5*time.Second, time.Millisecond)

	// A caller that missed after a change was forgotten (a new epoch)
	// must not get the answer of a read that began before it (nor wait
	// for it: the first read is held until the end of the test).
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	v, err := r.Do(ctx, "k", 2, func(context.Context) (string, error) { return "after the change", nil })
	require.NoError(t, err)
	require.Equal(t, "after the change", v)
	v, err = r.Do(ctx, "other", 1, func(context.Context) (string, error) { return "other record", nil })
	require.NoError(t, err)
	require.Equal(t, "other record", v)

	close(first.release)
	require.Equal(t, result{"before the change", nil}, <-held)
}

func TestAnErrorIsEveryWaitersAnswer(t *testing.T) {
	r := pgstore.NewReads()
	release := make(chan struct{})
	var runs atomic.Int32
	read := func(context.Context) (string, error) {
		runs.Add(1)
		<-release
		return "", domain.ErrNotFound
	}
	leader := answers(t.Context(), r, 1, "k", 1, read)
	require.Eventually(t, func() bool { return runs.Load() == 1 }, 5*time.Second, time.Millisecond)
	others := answers(t.Context(), r, 5, "k", 1, read)
	joined(t, r, "k", 5)
	close(release)
	for _, ch := range []chan result{leader, others, others, others, others, others} {
		require.ErrorIs(t, (<-ch).err, domain.ErrNotFound)
	}
	require.EqualValues(t, 1, runs.Load(), "an answer, even not found, is not read again")
}

func TestAWaiterThatGoesAwayDoesNotStopTheRead(t *testing.T) {
	r := pgstore.NewReads()
	h := newHeldRead("record")
	leader := answers(t.Context(), r, 1, "k", 1, h.read)
	require.Eventually(t, func() bool { return h.runs.Load() == 1 }, 5*time.Second, time.Millisecond)
	ctx, cancel := context.WithCancel(t.Context())
	gone := answers(ctx, r, 1, "k", 1, h.read)
	joined(t, r, "k", 1)

	cancel()
	select {
	case res := <-gone:
		require.ErrorIs(t, res.err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("a waiter whose request ended still waits for the read")
	}
	close(h.release)
	require.Equal(t, result{"record", nil}, <-leader)
}

func TestWhenTheReaderGoesAwayTheWaitersReadAgain(t *testing.T) {
	r := pgstore.NewReads()
	first := newHeldRead("unused")
	ctx, cancel := context.WithCancel(t.Context())
	leader := answers(ctx, r, 1, "k", 1, first.read)
	require.Eventually(t, func() bool { return first.runs.Load() == 1 }, 5*time.Second, time.Millisecond)
	second := newHeldRead("record")
	others := answers(t.Context(), r, 4, "k", 1, second.read)
	joined(t, r, "k", 4)

	cancel()
	require.ErrorIs(t, (<-leader).err, context.Canceled, "the reader's own answer")
	// One of the waiters reads again, and the three others wait for it.
	require.Eventually(t, func() bool { return second.runs.Load() == 1 }, 5*time.Second, time.Millisecond)
	joined(t, r, "k", 3)
	close(second.release)
	for range 4 {
		require.Equal(t, result{"record", nil}, <-others, "not the reader's cancellation")
	}
	require.EqualValues(t, 1, second.runs.Load(), "the waiters share the second read too")
}

func TestAReadThatPanicsAnswersItsWaitersAndIsForgotten(t *testing.T) {
	r := pgstore.NewReads()
	release := make(chan struct{})
	var runs atomic.Int32
	panics := make(chan any, 1)
	go func() {
		defer func() { panics <- recover() }()
		_, _ = r.Do(t.Context(), "k", 1, func(context.Context) (string, error) {
			runs.Add(1)
			<-release
			panic("decoding defect")
		})
	}()
	require.Eventually(t, func() bool { return runs.Load() == 1 }, 5*time.Second, time.Millisecond)
	others := answers(t.Context(), r, 3, "k", 1, func(context.Context) (string, error) { return "unused", nil })
	joined(t, r, "k", 3)

	close(release)
	require.Equal(t, "decoding defect", <-panics, "the panic stays the reader's")
	for range 3 {
		require.ErrorIs(t, (<-others).err, pgstore.ErrReadAborted)
	}
	v, err := r.Do(t.Context(), "k", 1, func(context.Context) (string, error) { return "record", nil })
	require.NoError(t, err)
	require.Equal(t, "record", v, "a later miss reads again")
}

// The store's cache misses go through reads: requests that miss one
// client or one grant together (as every request in flight does when a hot
// record ages out of the cache) send one query, on one connection.
func TestRequestsThatMissOneRecordTogetherSendOneQuery(t *testing.T) {
	url := pgtest.Schema(t)
	s := listening(t, url)
	client := domain.Client{ID: "hot-client", Name: "hot", RedirectURIs: []string{"http://127.0.0.1/cb"}, CreatedAt: benchNow}
	require.NoError(t, s.CreateClient(t.Context(), client))
	grant, code := benchGrant("hot-grant")
	require.NoError(t, s.CreateGrant(t.Context(), grant, code))

	for _, tc := range []struct {
		table, id string
		get       func(context.Context) error
	}{
		{"clients", client.ID, func(ctx context.Context) error {
			got, err := s.GetClient(ctx, client.ID)
			if err == nil && got.Name != client.Name {
				err = errors.New("another client")
			}
			return err
		}},
		{"grants", grant.ID, func(ctx context.Context) error {
			got, err := s.GetGrant(ctx, grant.ID, benchNow)
			if err == nil && got.ID != grant.ID {
				err = errors.New("another grant")
			}
			return err
		}},
	} {
		t.Run(tc.table, func(t *testing.T) {
			// Another session holds the table, so that the first read
			// waits while the others miss.
			release := lockTable(t, url, tc.table)
			before := s.PoolAcquires()
			const callers = 16
			errs := make(chan error, callers)
			for range callers {
				go func() { errs <- tc.get(t.Context()) }()
			}
			require.Eventually(t, func() bool { return s.WaitingReads(tc.id) == callers-1 }, 5*time.Second, time.Millisecond)
			release()
			for range callers {
				require.NoError(t, <-errs)
			}
			require.EqualValues(t, 1, s.PoolAcquires()-before, "connections taken for the reads")
		})
	}
}

// lockTable takes table in ACCESS EXCLUSIVE mode in a transaction of its
// own connection, and returns the function that ends it.
func lockTable(t *testing.T, url, table string) (release func()) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	tx, err := conn.Begin(t.Context())
	require.NoError(t, err)
	_, err = tx.Exec(t.Context(), "LOCK TABLE "+pgx.Identifier{table}.Sanitize()+" IN ACCESS EXCLUSIVE MODE")
	require.NoError(t, err)
	done := false
	release = func() {
		if !done {
			done = true
			require.NoError(t, tx.Commit(context.Background()))
			require.NoError(t, conn.Close(context.Background()))
		}
	}
	t.Cleanup(release)
	return release
}
