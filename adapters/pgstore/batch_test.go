package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	return s.NewBatcher(probeInsert, 1), url
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

// send starts c on b and waits until the batcher has queued it as the
// want-th pending call, and a little more, for its goroutine to block on
// the batch slots: calls sent one after another this way usually lead in
// that order, since blocked senders on a channel are woken first come,
// first served. The tests that use it hold whichever call leads.
func send(t *testing.T, wg *sync.WaitGroup, b pgstore.Batcher, want int, c *probeCall, args ...any) {
	t.Helper()
	if c.ctx == nil {
		c.ctx = t.Context()
	}
	if c.batchKey == "" {
		c.batchKey = c.key
	}
	if args == nil {
		args = []any{c.key, c.v}
	}
	wg.Go(func() {
		c.found, c.err = b.QueryRow(c.ctx, c.batchKey, args, new(string))
	})
	require.Eventually(t, func() bool { return b.Pending() == want }, 5*time.Second, time.Millisecond)
	time.Sleep(20 * time.Millisecond)
}

func TestACallWithLittleTimeLeftDoesNotCutTheOthersShort(t *testing.T) {
	b, url := probeBatcher(t)
	// Another transaction inserts "a" and keeps it uncommitted for a
	// while: the batch's insert of "a" waits for it.
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	tx, err := conn.Begin(t.Context())
	require.NoError(t, err)
	_, err = tx.Exec(t.Context(), `INSERT INTO probe VALUES ('a', 1)`)
	require.NoError(t, err)

	short, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	lead, late, a, c := &probeCall{key: "lead", v: 1}, &probeCall{key: "late", v: 1, ctx: short},
		&probeCall{key: "b", v: 1}, &probeCall{key: "c", v: 1}
	a.key, a.batchKey = "a", "a"
	release := b.Hold()
	var wg sync.WaitGroup
	for i, c := range []*probeCall{lead, late, a, c} {
		send(t, &wg, b, i+1, c)
	}
	release()
	time.Sleep(400 * time.Millisecond) // past the late call's deadline
	require.NoError(t, tx.Rollback(t.Context()))
	wg.Wait()

	for _, c := range []*probeCall{lead, a, c} {
		require.NoError(t, c.err, "%s: the batch ran on its own calls' time", c.key)
		require.True(t, c.found, c.key)
	}
	xids := transactions(t, url)
	if late.err == nil {
		// The late call got the slot first (a loaded machine may wake it
		// before the lead) and went alone, within its time.
		require.True(t, late.found)
		require.NotEqual(t, xids["lead"], xids["late"], "a late call leads a batch of its own")
		return
	}
	require.ErrorIs(t, late.err, context.DeadlineExceeded, "the call whose time ran out fails alone")
	require.NotContains(t, xids, "late")
}

// lockProbe locks the probe_locks row $1 and sleeps $2 seconds holding
// it: a statement that holds one lock while it waits for nothing.
const lockProbe = `WITH locked AS MATERIALIZED (SELECT k FROM probe_locks WHERE k = $1 FOR UPDATE)
	SELECT k FROM locked WHERE pg_sleep($2)::text = ''`

func TestTwoBatchesNeverWaitForEachOthersLocks(t *testing.T) {
	url := pgtest.Database(t)
	// PostgreSQL breaks a deadlock after deadlock_timeout, and the batcher
	// would then run the calls again alone: with a timeout longer than the
	// calls' deadline, a deadlock fails the calls instead.
	pgtest.Exec(t, url, `ALTER DATABASE `+pgx.Identifier{currentDatabase(t, url)}.Sanitize()+` SET deadlock_timeout = '1min'`)
	s := openStore(t, url)
	pgtest.Exec(t, url, `CREATE TABLE probe_locks (k text PRIMARY KEY); INSERT INTO probe_locks VALUES ('x'), ('y')`)
	b := s.NewBatcher(lockProbe, 2)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	release := b.Hold()
	var wg sync.WaitGroup
	// The first batch locks x, then y; the second would lock y, then x.
	xa, ya := &probeCall{key: "x", ctx: ctx}, &probeCall{key: "y", ctx: ctx}
	send(t, &wg, b, 1, xa, "x", 0.3)
	send(t, &wg, b, 2, ya, "y", 0.0)
	release()
	require.Eventually(t, func() bool { return b.Pending() == 0 }, 5*time.Second, time.Millisecond)
	yb, xb := &probeCall{key: "y", ctx: ctx}, &probeCall{key: "x", ctx: ctx}
	send(t, &wg, b, 1, yb, "y", 0.3)
	send(t, &wg, b, 2, xb, "x", 0.0)
	release()
	wg.Wait()

	for _, c := range []*probeCall{xa, ya, yb, xb} {
		require.NoError(t, c.err, "%s: the batches must not deadlock", c.key)
		require.True(t, c.found, c.key)
	}
}

// currentDatabase is the name of the database url points at.
func currentDatabase(t *testing.T, url string) string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var name string
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&name))
	return name
}

func TestOnlyAnErrorOfSeverityErrorMeansTheBatchWasRolledBack(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"an ERROR", &pgconn.PgError{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: "40P01"}, true},
		{"an ERROR in the server's language", &pgconn.PgError{Severity: "FEHLER", SeverityUnlocalized: "ERROR", Code: "23505"}, true},
		{"an ERROR from a server that sends no unlocalized severity", &pgconn.PgError{Severity: "ERROR"}, true},
		{"wrapped", fmt.Errorf("batch: %w", &pgconn.PgError{SeverityUnlocalized: "ERROR"}), true},
		{"a FATAL error ends the session: the commit is unknown", &pgconn.PgError{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "57P01"}, false},
		{"a localized FATAL", &pgconn.PgError{Severity: "ERROR", SeverityUnlocalized: "FATAL"}, false},
		{"a lost connection", errors.New("unexpected EOF"), false},
		{"a deadline", context.DeadlineExceeded, false},
	} {
		require.Equal(t, c.want, pgstore.RolledBack(c.err), c.name)
	}
}

// panicky is a scan target that panics, as a defect in a row's decoding
// would.
type panicky struct{}

func (*panicky) Scan(any) error { panic("decoding defect") }

func TestABatchThatPanicsAnswersEveryCallAndGivesItsSlotBack(t *testing.T) {
	b, _ := probeBatcher(t)
	release := b.Hold()
	var (
		wg       sync.WaitGroup
		panicked = make([]any, 2)
		errs     = make([]error, 2)
	)
	dests := []any{new(string), new(panicky)}
	for i, key := range []string{"fine", "defect"} {
		wg.Go(func() {
			defer func() { panicked[i] = recover() }()
			_, errs[i] = b.QueryRow(t.Context(), key, []any{key, 1}, dests[i])
		})
		require.Eventually(t, func() bool { return b.Pending() == i+1 }, 5*time.Second, time.Millisecond)
	}
	release()
	wg.Wait()

	leader := slices.IndexFunc(panicked, func(p any) bool { return p != nil })
	require.GreaterOrEqual(t, leader, 0, "the panic reaches the goroutine that ran the batch")
	require.Equal(t, "decoding defect", panicked[leader])
	other := 1 - leader
	require.Nil(t, panicked[other])
	require.ErrorIs(t, errs[other], pgstore.ErrBatchAborted, "the other call gets an error, not an empty answer")

	done := make(chan error, 1)
	go func() {
		_, err := b.QueryRow(t.Context(), "after", []any{"after", 1}, new(string))
		done <- err
	}()
	select {
	case err := <-done:
		require.NoError(t, err, "the slot was given back")
	case <-time.After(5 * time.Second):
		t.Fatal("the slot leaked: a later call never ran")
	}
}
