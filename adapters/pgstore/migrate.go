package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The schema is a sequence of SQL files embedded in the binary,
// migrations/NNNN_name.sql, numbered from 1 without gaps. Each is applied
// once, in its own transaction together with its row in the version table,
// so a failed migration leaves the schema as it was. Applying runs under a
// session advisory lock: instances starting together take turns, and the
// later ones find the work done. A database whose version is higher than
// the last file here was migrated by a newer oidcproxy; this binary refuses
// it rather than misread it.
//
// This is a small runner of our own rather than goose or golang-migrate:
// the whole need is "apply embedded files in order, under a lock, refuse a
// newer schema", about a hundred lines; those libraries add command-line
// tooling, down-migrations we would not ship, their own version-table
// formats, and dependencies, and would still need the newer-schema check
// written here.

//go:embed migrations/*.sql
var migrationFiles embed.FS

// versionTable records applied migrations. Its name is prefixed because
// the database may be shared with other applications' tables.
const versionTable = "oidcproxy_schema_version"

// migrationLockKey is the pg_advisory_lock key that serializes migrations:
// the bytes of "oidcprox", fixed for every oidcproxy version. Advisory
// locks are per database, so instances on other databases do not wait.
const migrationLockKey int64 = 0x6f69646370726f78

// migrationTimeout bounds the wait for the lock and the migrations
// themselves: a migration of a large table may take longer than one store
// call may.
const migrationTimeout = 5 * time.Minute

// ErrSchemaTooNew: the database was migrated by a newer oidcproxy. It is
// left untouched.
var ErrSchemaTooNew = errors.New("the database schema is newer than this binary supports")

type migration struct {
	version int
	name    string
	sql     string
}

// migrations reads the embedded files, in order. A malformed set is a
// build mistake, caught by the tests.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("migration file %s is not named NNNN_name.sql", e.Name())
		}
		body, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(body)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration versions must run 1, 2, 3… without gaps; %d is out of place", m.version)
		}
	}
	return out, nil
}

// LatestSchemaVersion is the schema version this binary migrates to.
func LatestSchemaVersion() int {
	ms, err := migrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// migrate brings the schema up to date on one connection of pool, holding
// the migration lock for the duration.
func migrate(ctx context.Context, pool *pgxpool.Pool, timeout time.Duration, t target) error {
	all, err := migrations()
	if err != nil {
		return fmt.Errorf("pgstore: migrations: %w", err)
	}
	connectCtx, cancel := context.WithTimeout(ctx, timeout)
	conn, err := pool.Acquire(connectCtx)
	cancel()
	if err != nil {
		return connectionError(err, t)
	}
	defer conn.Release()
	ctx, cancel = context.WithTimeout(ctx, migrationTimeout)
	defer cancel()
	// The session's statement_timeout is the store's short one; the lock
	// wait and a migration may need longer.
	if err := simple(ctx, conn.Conn(), "SET statement_timeout = "+strconv.FormatInt(migrationTimeout.Milliseconds(), 10)); err != nil {
		return connectionError(err, t)
	}
	defer func() {
		// Back to the pool's setting, or out of the pool.
		resetCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		if err := simple(resetCtx, conn.Conn(), "RESET statement_timeout"); err != nil {
			_ = conn.Conn().Close(resetCtx)
		}
	}()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
		return fmt.Errorf("pgstore: migrate: wait for the migration lock: %w", err)
	}
	defer func() {
		unlockCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		if _, err := conn.Exec(unlockCtx, "SELECT pg_advisory_unlock($1)", migrationLockKey); err != nil {
			// Closing the session releases its locks.
			_ = conn.Conn().Close(unlockCtx)
		}
	}()

	if err := simple(ctx, conn.Conn(), `CREATE TABLE IF NOT EXISTS `+versionTable+` (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("pgstore: migrate: create %s: %w", versionTable, err)
	}
	current, err := schemaVersion(ctx, conn.Conn())
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	if current > len(all) {
		return fmt.Errorf("pgstore: %w: the database %s has schema version %d, this oidcproxy supports up to %d; upgrade oidcproxy (or point it at another database)",
			ErrSchemaTooNew, t, current, len(all))
	}
	for _, m := range all[current:] {
		if err := apply(ctx, conn.Conn(), m); err != nil {
			return fmt.Errorf("pgstore: migrate to schema version %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}

// schemaVersion is the highest applied migration, 0 for none.
func schemaVersion(ctx context.Context, conn *pgx.Conn) (int, error) {
	var v int
	err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+versionTable).Scan(&v)
	return v, err
}

// apply runs one migration file and records it, in one transaction. The
// file may hold many statements, so it goes through the simple query
// protocol.
func apply(ctx context.Context, conn *pgx.Conn, m migration) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := simple(ctx, conn, m.sql); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+versionTable+` (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// simple runs sql, which may hold several statements and no parameters,
// through the simple query protocol: utility statements and migration
// files need no prepared statement.
func simple(ctx context.Context, conn *pgx.Conn, sql string) error {
	_, err := conn.PgConn().Exec(ctx, sql).ReadAll()
	return err
}

// Status is what Inspect finds: for `oidcproxy check`.
type Status struct {
	// Server is the server's version number, such as 15.4.
	Server string
	// SchemaVersion is the applied schema version, 0 for a database
	// oidcproxy has not set up yet.
	SchemaVersion int
	// LatestVersion is the version this binary migrates to.
	LatestVersion int
}

// Inspect connects once, without changing anything, and reports the
// server's version and the schema's. Failures are *ConnectionError.
func Inspect(ctx context.Context, opts Options) (Status, error) {
	opts = opts.withDefaults()
	cfg, t, err := poolConfig(opts)
	if err != nil {
		return Status{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return Status{}, connectionError(err, t)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	st := Status{LatestVersion: LatestSchemaVersion()}
	var exists bool
	err = conn.QueryRow(ctx, `SELECT current_setting('server_version'), to_regclass($1) IS NOT NULL`, versionTable).Scan(&st.Server, &exists)
	if f := strings.Fields(st.Server); len(f) > 0 {
		st.Server = f[0] // "15.20 (Debian 15.20-0+deb12u1)" → "15.20"
	}
	if err == nil && exists {
		st.SchemaVersion, err = schemaVersion(ctx, conn)
	}
	if err != nil {
		return Status{}, connectionError(err, t)
	}
	return st, nil
}
