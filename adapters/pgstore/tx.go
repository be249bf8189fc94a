package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// rwTx is a read-decide-write transaction in two network round trips: BEGIN
// travels with the statement that reads and locks the rows (begin), the
// caller decides in Go — running the use case's callback — and the writes
// travel with COMMIT (commit). That is as few round trips as a pre-read
// followed by one conditional write statement, and unlike that pattern it
// lets exactly one of concurrent callers reach the callback, across
// processes: the others wait on the row lock and then read what the
// winner committed.
//
// Isolation is READ COMMITTED with explicit row locks (SELECT … FOR
// UPDATE and its weaker modes). That is enough because every decision is
// made on locked rows: a transaction that waited for a lock re-reads the
// latest committed version of the row and re-checks the WHERE clause
// against it (EvalPlanQual), so it decides on the winner's result, never on
// a stale snapshot. SERIALIZABLE would add no guarantee here and turn
// those waits into serialization failures to retry.
type rwTx struct {
	conn    *pgxpool.Conn
	timeout time.Duration
}

// begin acquires a connection, opens the transaction and runs query,
// scanning its first row into dest. found reports whether there was a row.
// On an error the transaction is already rolled back.
func (s *Store) begin(ctx context.Context, query string, args []any, dest ...any) (tx *rwTx, found bool, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	tx = &rwTx{conn: conn, timeout: s.timeout}
	b := &pgx.Batch{}
	b.Queue(sqlBegin)
	b.Queue(query, args...).QueryRow(func(row pgx.Row) error {
		err := row.Scan(dest...)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		found = err == nil
		return err
	})
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		tx.rollback()
		return nil, false, err
	}
	return tx, found, nil
}

// commit sends the statements queued in b (none: commit what the first
// statement did) followed by COMMIT, and releases the connection. If a
// statement fails, the server skips the rest of the round trip, COMMIT
// included; the transaction is then rolled back and the error returned.
func (t *rwTx) commit(ctx context.Context, b *pgx.Batch) error {
	if b == nil {
		b = &pgx.Batch{}
	}
	b.Queue("COMMIT")
	err := t.conn.SendBatch(ctx, b).Close()
	if err != nil {
		t.rollback()
		return err
	}
	t.release()
	return nil
}

// rollback ends the transaction without a change and releases the
// connection. It runs on its own short deadline, so that a caller's
// cancelled context still gets its locks released promptly; if even that
// fails, the pool discards the connection (it is not idle), and the server
// rolls back when the session ends.
func (t *rwTx) rollback() {
	if t.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
	defer cancel()
	_, _ = t.conn.Exec(ctx, "ROLLBACK")
	t.release()
}

// release returns the connection to the pool; later calls do nothing. A
// deferred rollback after commit or rollback is therefore harmless.
func (t *rwTx) release() {
	if t.conn != nil {
		t.conn.Release()
		t.conn = nil
	}
}
