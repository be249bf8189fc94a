package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/pgstore"
	"github.com/oidcproxy/oidcproxy/test/pgtest"
)

// probeInsert is the statement the batcher tests batch: it stores a key
// with a positive value and returns it, or returns no row for a key
// stored already; a value below one breaks the table's check.
const probeInsert = `INSERT INTO probe (k, v) VALUES ($1, $2) ON CONFLICT (k) DO NOTHING RETURNING k`

// probeCall is one call of probeInsert and its outcome.
type probeCall struct {
	key, batchKey string
	v             int
	ctx           context.Context
	found         bool
	err           error
}

// probeBatcher opens a store on a schema of its own with the probe table
// and returns a batcher of probeInsert and the schema's URL.
func probeBatcher(t *testing.T) (pgstore.Batcher, string) {
	t.Helper()
	url := pgtest.Schema(t)
	s := openStore(t, url)
	pgtest.Exec(t, url, `CREATE TABLE probe (k text PRIMARY KEY, v int NOT NULL CHECK (v > 0))`)
	return s.NewBatcher(probeInsert), url
}

// runHeld sends calls while the batcher's slots are held, waits until
// want of them queue, and releases the slots: the queued calls then go
// out together, as batches form under load.
func runHeld(t *testing.T, b pgstore.Batcher, want int, calls []*probeCall) {
	t.Helper()
	release := b.Hold()
	var wg sync.WaitGroup
	for _, c := range calls {
		if c.ctx == nil {
			c.ctx = t.Context()
		}
		if c.batchKey == "" {
			c.batchKey = c.key
		}
		wg.Go(func() {
			var got string
			c.found, c.err = b.QueryRow(c.ctx, c.batchKey, []any{c.key, c.v}, &got)
			if c.found && got != c.key {
				c.err = fmt.Errorf("row %q for key %q", got, c.key)
			}
		})
	}
	require.Eventually(t, func() bool { return b.Pending() == want }, 5*time.Second, time.Millisecond)
	release()
	wg.Wait()
}

// transactions returns the transaction that wrote each probe row.
func transactions(t *testing.T, url string) map[string]string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), `SELECT k, xmin::text FROM probe`)
	require.NoError(t, err)
	out := map[string]string{}
	for rows.Next() {
		var k, xid string
		require.NoError(t, rows.Scan(&k, &xid))
		out[k] = xid
	}
	require.NoError(t, rows.Err())
	return out
}

func TestQueuedCallsCommitAsOneBatchAndEachGetsItsOwnRow(t *testing.T) {
	b, url := probeBatcher(t)
	pgtest.Exec(t, url, `INSERT INTO probe VALUES ('stored', 1)`)
	var calls []*probeCall
	for i := range 10 {
		calls = append(calls, &probeCall{key: fmt.Sprintf("k%d", i), v: i + 1})
	}
	calls = append(calls, &probeCall{key: "stored", v: 2})
	runHeld(t, b, len(calls), calls)

	for _, c := range calls[:10] {
		require.NoError(t, c.err, c.key)
		require.True(t, c.found, "%s: its own row", c.key)
	}
	require.NoError(t, calls[10].err)
	require.False(t, calls[10].found, "a statement that returns no row answers not found")
	xids := transactions(t, url)
	require.Len(t, xids, 11)
	for _, c := range calls[:10] {
		require.Equal(t, xids["k0"], xids[c.key], "every queued call commits in the one transaction of the batch")
	}
	require.NotEqual(t, xids["k0"], xids["stored"])
}

func TestABatchAStatementOfWhichFailsRunsEachCallAlone(t *testing.T) {
	b, url := probeBatcher(t)
	calls := []*probeCall{{key: "a", v: 1}, {key: "bad", v: -1}, {key: "b", v: 2}, {key: "c", v: 3}}
	runHeld(t, b, len(calls), calls)

	var pgErr *pgconn.PgError
	require.ErrorAs(t, calls[1].err, &pgErr, "the failing call gets the server's error")
	require.Equal(t, "23514", pgErr.Code, "check_violation")
	require.False(t, calls[1].found)
	xids := transactions(t, url)
	for _, c := range []*probeCall{calls[0], calls[2], calls[3]} {
		require.NoError(t, c.err, "%s: the batch's failure is not its own", c.key)
		require.True(t, c.found, c.key)
		require.Contains(t, xids, c.key)
	}
	require.Len(t, xids, 3, "the failed batch was rolled back whole; each call then ran alone")
	require.NotEqual(t, xids["a"], xids["b"])
	require.NotEqual(t, xids["b"], xids["c"])
}

func TestCallsWithOneKeyNeverShareABatch(t *testing.T) {
	b, url := probeBatcher(t)
	calls := []*probeCall{
		{key: "x1", batchKey: "same", v: 1},
		{key: "y", v: 1},
		{key: "x2", batchKey: "same", v: 2},
	}
	runHeld(t, b, len(calls), calls)

	for _, c := range calls {
		require.NoError(t, c.err, c.key)
		require.True(t, c.found, c.key)
	}
	xids := transactions(t, url)
	require.NotEqual(t, xids["x1"], xids["x2"], "the second call of a key waits for the next batch")
	// Whichever call of the key leads the first batch, that batch carries
	// the other key's call too.
	require.Contains(t, []string{xids["x1"], xids["x2"]}, xids["y"])
}

func TestACallWithdrawnBeforeItsBatchIsNeverRun(t *testing.T) {
	b, url := probeBatcher(t)
	ctx, cancel := context.WithCancel(t.Context())
	gone := &probeCall{key: "gone", v: 1, ctx: ctx}
	release := b.Hold()
	done := make(chan struct{})
	go func() {
		defer close(done)
		gone.found, gone.err = b.QueryRow(gone.ctx, gone.key, []any{gone.key, gone.v}, new(string))
	}()
	require.Eventually(t, func() bool { return b.Pending() == 1 }, 5*time.Second, time.Millisecond)
	cancel()
	<-done
	require.True(t, errors.Is(gone.err, context.Canceled), "%v", gone.err)
	require.Zero(t, b.Pending(), "the call left the queue")
	release()

	found, err := b.QueryRow(t.Context(), "next", []any{"next", 1}, new(string))
	require.NoError(t, err)
	require.True(t, found)
	xids := transactions(t, url)
	require.NotContains(t, xids, "gone")
	require.Contains(t, xids, "next")
}
