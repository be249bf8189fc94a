package pgstore

import (
	"context"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oidcproxy/oidcproxy/ports"
)

var (
	_ ports.Exporter = (*Store)(nil)
	_ ports.Importer = (*Store)(nil)
)

// copyTimeout bounds each statement of an export or an import, and the
// pauses between them, in place of the store's short per-call timeout: an
// export streams rows at the pace of whatever consumes them (an import
// into another store), and an import's inserts hold their transaction
// open for as long as the source takes to read.
const copyTimeout = 30 * time.Minute

// importBatch is how many inserts an import sends per round trip.
const importBatch = 500

// The export reads each table in the order and key order of
// ports.Exporter. COLLATE "C" orders keys by their bytes, as bbolt and the
// memory store do, whatever the database's default collation.
var exportQueries = []struct {
	kind  ports.RecordKind
	query string
}{
	{ports.KindClient, `SELECT ` + clientCols + ` FROM clients ORDER BY id COLLATE "C"`},
	{ports.KindSigningKey, `SELECT ` + keyCols + ` FROM signing_keys ORDER BY id COLLATE "C"`},
	{ports.KindTransaction, `SELECT ` + transactionCols + ` FROM transactions WHERE expires_ns > $1 ORDER BY id COLLATE "C"`},
	{ports.KindGrant, `SELECT ` + grantCols + ` FROM grants WHERE expires_ns > $1 ORDER BY id COLLATE "C"`},
	{ports.KindCode, `SELECT ` + codeColsC + ` FROM codes c JOIN grants g ON g.id = c.grant_id
		WHERE c.expires_ns > $1 AND g.expires_ns > $1 ORDER BY c.hash COLLATE "C"`},
	{ports.KindRefreshToken, `SELECT ` + refreshColsT + ` FROM refresh_tokens t JOIN grants g ON g.id = t.grant_id
		WHERE t.expires_ns > $1 AND g.expires_ns > $1 ORDER BY t.hash COLLATE "C"`},
	{ports.KindUsedAssertion, `SELECT key, expires_ns FROM assertion_ids WHERE expires_ns > $1 ORDER BY key COLLATE "C"`},
}

// Inserts of an import: plain INSERTs, so that a key seen twice fails the
// transaction instead of being skipped. Their placeholders are counted from
// the column lists, so a column added to a table reaches the import too.
var (
	sqlImportClient = insertInto("clients", clientCols)
	sqlImportKey    = insertInto("signing_keys", keyCols)
	sqlImportGrant  = insertInto("grants", grantCols)
	sqlImportCode   = insertInto("codes", codeCols)
	sqlImportUsed   = insertInto("assertion_ids", "key, expires_ns")
)

// insertInto is a plain INSERT of one row of cols (a comma-separated list)
// into table, with one placeholder per column.
func insertInto(table, cols string) string {
	n := strings.Count(cols, ",") + 1
	ph := make([]string, n)
	for i := range ph {
		ph[i] = "$" + strconv.Itoa(i+1)
	}
	return "INSERT INTO " + table + " (" + cols + ") VALUES (" + strings.Join(ph, ", ") + ")"
}

const (
	// sqlImportLock keeps every instance that still runs on the database
	// from writing while the import checks that the tables are empty and
	// fills them (SHARE ROW EXCLUSIVE conflicts with every write, and with
	// itself, so two imports take turns); reads go on.
	sqlImportLock = `LOCK TABLE clients, signing_keys, transactions, grants, codes, refresh_tokens, assertion_ids
		IN SHARE ROW EXCLUSIVE MODE`
	// sqlHoldings counts the rows of each table, in the order of
	// holdingKinds.
	sqlHoldings = `SELECT (SELECT count(*) FROM clients), (SELECT count(*) FROM signing_keys),
		(SELECT count(*) FROM transactions), (SELECT count(*) FROM grants),
		(SELECT count(*) FROM codes), (SELECT count(*) FROM refresh_tokens),
		(SELECT count(*) FROM assertion_ids)`
)

// holdingKinds are the kinds sqlHoldings counts, in its order.
var holdingKinds = []ports.RecordKind{ports.KindClient, ports.KindSigningKey, ports.KindTransaction,
	ports.KindGrant, ports.KindCode, ports.KindRefreshToken, ports.KindUsedAssertion}

// copyTx opens a transaction for an export or an import on a connection of
// its own, with copyTimeout in place of the store's per-call timeouts.
func (s *Store) copyTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, func(), error) {
	conn, err := s.acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	tx, err := conn.BeginTx(ctx, opts)
	if err != nil {
		conn.Release()
		return nil, nil, err
	}
	end := func() {
		rollbackCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
		defer cancel()
		_ = tx.Rollback(rollbackCtx) // after a commit, a no-op
		conn.Release()
	}
	ms := strconv.FormatInt(copyTimeout.Milliseconds(), 10)
	for _, setting := range []string{"statement_timeout", "idle_in_transaction_session_timeout"} {
		if _, err := tx.Exec(ctx, "SELECT set_config($1, $2, true)", setting, ms); err != nil {
			end()
			return nil, nil, err
		}
	}
	return tx, end, nil
}

// Export yields the store's live records from one REPEATABLE READ,
// read-only transaction (see ports.Exporter): one snapshot of the whole
// database, which writers do not wait for. Rows stream from the server as
// the consumer takes them.
func (s *Store) Export(ctx context.Context, now time.Time) iter.Seq2[ports.Record, error] {
	const op = "export"
	return func(yield func(ports.Record, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(ports.Record{}, fail(op, err))
			return
		}
		tx, end, err := s.copyTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			yield(ports.Record{}, fail(op, err))
			return
		}
		defer end()
		for _, q := range exportQueries {
			more, err := exportTable(ctx, tx, q.kind, q.query, now, yield)
			if err != nil {
				yield(ports.Record{}, fail(op, err))
				return
			}
			if !more {
				return
			}
		}
	}
}

// exportTable yields the rows of one query; more is false when the
// consumer stopped.
func exportTable(ctx context.Context, tx pgx.Tx, kind ports.RecordKind, query string, now time.Time, yield func(ports.Record, error) bool) (more bool, err error) {
	var args []any
	if kind != ports.KindClient && kind != ports.KindSigningKey {
		args = append(args, ns(now))
	}
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRecord(kind, rows)
		if err != nil {
			return false, err
		}
		if !yield(r, nil) {
			return false, nil
		}
	}
	return true, rows.Err()
}

// scanRecord scans the current row of a query of exportQueries.
func scanRecord(kind ports.RecordKind, row pgx.Row) (ports.Record, error) {
	switch kind {
	case ports.KindClient:
		var r clientRow
		err := row.Scan(r.dest()...)
		c := r.domain()
		return ports.Record{Client: &c}, err
	case ports.KindSigningKey:
		var r keyRow
		err := row.Scan(r.dest()...)
		k := r.domain()
		return ports.Record{SigningKey: &k}, err
	case ports.KindTransaction:
		var r transactionRow
		err := row.Scan(r.dest()...)
		t := r.domain()
		return ports.Record{Transaction: &t}, err
	case ports.KindGrant:
		var r grantRow
		err := row.Scan(r.dest()...)
		g := r.domain()
		return ports.Record{Grant: &g}, err
	case ports.KindCode:
		var r codeRow
		err := row.Scan(r.dest()...)
		c := r.domain()
		return ports.Record{Code: &c}, err
	case ports.KindRefreshToken:
		var r refreshRow
		err := row.Scan(r.dest()...)
		t := r.domain()
		return ports.Record{RefreshToken: &t}, err
	case ports.KindUsedAssertion:
		var (
			u         ports.UsedAssertion
			expiresNS int64
		)
		err := row.Scan(&u.Key, &expiresNS)
		u.ExpiresAt = fromNS(expiresNS)
		return ports.Record{UsedAssertion: &u}, err
	}
	return ports.Record{}, fmt.Errorf("unknown record kind %d", kind)
}

// Import stores records into the empty store in one transaction (see
// ports.Importer). It first locks every table against writers
// (sqlImportLock) and counts what they hold, so that no instance still
// running on the database can slip a record in between the check and the
// copy, then sends the inserts in batches of importBatch and commits.
func (s *Store) Import(ctx context.Context, records iter.Seq2[ports.Record, error]) (ports.RecordCounts, error) {
	const op = "import"
	if err := ctx.Err(); err != nil {
		return nil, fail(op, err)
	}
	tx, end, err := s.copyTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return nil, fail(op, err)
	}
	defer end()
	// A session that still holds the tables (an instance in the middle of
	// a write) makes the lock fail within the store's timeout rather than
	// keep the import waiting.
	lockWait := strconv.FormatInt(s.timeout.Milliseconds(), 10)
	if _, err := tx.Exec(ctx, "SELECT set_config('lock_timeout', $1, true)", lockWait); err != nil {
		return nil, fail(op, err)
	}
	if _, err := tx.Exec(ctx, sqlImportLock); err != nil {
		return nil, fail(op, err)
	}
	held := make([]int64, len(holdingKinds))
	dest := make([]any, len(held))
	for i := range held {
		dest[i] = &held[i]
	}
	if err := tx.QueryRow(ctx, sqlHoldings).Scan(dest...); err != nil {
		return nil, fail(op, err)
	}
	holds := ports.RecordCounts{}
	for i, kind := range holdingKinds {
		if held[i] > 0 {
			holds[kind] = int(held[i])
		}
	}
	if holds.Total() > 0 {
		return nil, fail(op, &ports.NotEmptyError{Holds: holds})
	}

	var check ports.ImportCheck
	b := &pgx.Batch{}
	flush := func() error {
		if b.Len() == 0 {
			return nil
		}
		err := tx.SendBatch(ctx, b).Close()
		b = &pgx.Batch{}
		return alreadyExists(err)
	}
	for r, err := range records {
		if err != nil {
			return nil, err
		}
		kind, err := check.Next(r)
		if err != nil {
			return nil, fail(op, err)
		}
		if !validKey(r.Key()) {
			return nil, fail(op, fmt.Errorf("a %s: %w", kind, errInvalidKey))
		}
		query, args := importStatement(r)
		b.Queue(query, args...)
		if b.Len() >= importBatch {
			if err := flush(); err != nil {
				return nil, fail(op, err)
			}
		}
	}
	if err := flush(); err != nil {
		return nil, fail(op, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fail(op, err)
	}
	return check.Counts(), nil
}

// importStatement is the insert of one checked record.
func importStatement(r ports.Record) (string, []any) {
	switch {
	case r.Client != nil:
		return sqlImportClient, clientArgs(*r.Client)
	case r.SigningKey != nil:
		return sqlImportKey, keyArgs(*r.SigningKey)
	case r.Transaction != nil:
		return sqlInsertNewTransaction, transactionArgs(*r.Transaction)
	case r.Grant != nil:
		return sqlImportGrant, grantArgs(*r.Grant)
	case r.Code != nil:
		return sqlImportCode, codeArgs(*r.Code)
	case r.UsedAssertion != nil:
		return sqlImportUsed, []any{r.UsedAssertion.Key, ns(r.UsedAssertion.ExpiresAt)}
	default:
		return sqlInsertRefreshToken, refreshArgs(*r.RefreshToken)
	}
}

// Sessions counts the sessions connected to the database at opts.URL
// whose application_name is name, other than its own: with name
// "oidcproxy" (what every instance's pool sets, see poolConfig), the
// instances running on that database. `oidcproxy store copy` refuses to
// copy from or into a database that instances use: a copy taken while
// they write misses their later writes (a refresh token rotated after it
// would be live again in the copy). It connects once and changes
// nothing; failures are *ConnectionError.
func Sessions(ctx context.Context, opts Options, name string) (int, error) {
	opts = opts.withDefaults()
	cfg, t, err := poolConfig(opts)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return 0, connectionError(err, t)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()`, name).Scan(&n)
	if err != nil {
		return 0, connectionError(err, t)
	}
	return n, nil
}
