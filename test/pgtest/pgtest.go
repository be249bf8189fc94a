// Package pgtest gives tests a throw-away PostgreSQL database or schema on
// the server the test machine runs (127.0.0.1:5432, trust authentication,
// as in CI), and removes it when the test ends.
//
// Without a reachable server the tests that need one skip, saying why;
// with OIDCPROXY_REQUIRE_POSTGRES=1 (set by CI, which starts the server)
// they fail instead, so a broken database cannot pass as a skipped test.
// OIDCPROXY_TEST_POSTGRES_URL overrides the administrative connection
// (default: user postgres, then root, database test).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// RequireEnv makes a missing server fail the tests instead of skipping them.
const RequireEnv = "OIDCPROXY_REQUIRE_POSTGRES"

// URLEnv overrides the administrative connection URL.
const URLEnv = "OIDCPROXY_TEST_POSTGRES_URL"

// namePrefix starts the name of every database and schema made here, so
// that leftovers of killed test runs can be recognised and removed.
const namePrefix = "oidcproxy_test_"

// staleAfter is the age past which a leftover is removed by a later run:
// far longer than any test, so a concurrent run's objects are safe.
const staleAfter = 6 * time.Hour

var defaultURLs = []string{
	"postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
	"postgres://root@127.0.0.1:5432/test?sslmode=disable",
}

var (
	adminOnce sync.Once
	adminURL  string
	adminErr  error
)

// admin finds a working administrative URL once per process, and removes
// stale leftovers of earlier runs.
func admin() (string, error) {
	adminOnce.Do(func() {
		candidates := defaultURLs
		if u := os.Getenv(URLEnv); u != "" {
			candidates = []string{u}
		}
		var errs []string
		for _, u := range candidates {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			conn, err := pgx.Connect(ctx, u)
			if err == nil {
				removeStale(ctx, conn)
				_ = conn.Close(ctx)
				cancel()
				adminURL = u
				return
			}
			cancel()
			errs = append(errs, err.Error())
		}
		adminErr = fmt.Errorf("no PostgreSQL server reachable (%s)", strings.Join(errs, "; "))
	})
	return adminURL, adminErr
}

// connect opens an administrative connection, or skips (or fails) t.
func connect(t testing.TB) (*pgx.Conn, string) {
	t.Helper()
	u, err := admin()
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("pgtest: %v, and %s=1 requires one", err, RequireEnv)
		}
		t.Skipf("pgtest: %v; start PostgreSQL on 127.0.0.1:5432 (or set %s) to run this test", err, URLEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	return conn, u
}

// newName makes a unique object name that carries its creation time.
func newName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s%d_%s", namePrefix, time.Now().Unix(), hex.EncodeToString(b[:]))
}

// Database creates an empty database for t and returns its URL; the
// database is dropped when t ends. A database of its own isolates a test
// completely (advisory locks and LISTEN/NOTIFY are per database); it costs
// a few hundred milliseconds.
func Database(t testing.TB) string {
	t.Helper()
	conn, base := connect(t)
	name := newName()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	_ = conn.Close(ctx)
	if err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() { drop(t, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)") })
	return withPath(t, base, name, nil)
}

// Schema creates an empty schema in the administrative database and
// returns a URL whose connections use it (search_path); the schema is
// dropped when t ends. It is far cheaper than a database, and enough for a
// test that needs its own tables only.
func Schema(t testing.TB) string {
	t.Helper()
	conn, base := connect(t)
	name := newName()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize())
	_ = conn.Close(ctx)
	if err != nil {
		t.Fatalf("pgtest: create schema: %v", err)
	}
	t.Cleanup(func() { drop(t, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE") })
	return withPath(t, base, "", url.Values{"search_path": {name}})
}

// Exec runs one administrative statement (to break things on purpose, or
// to look at them) against the database of url.
func Exec(t testing.TB, dbURL, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}

// withPath returns base with its database replaced (when db is set) and
// params added.
func withPath(t testing.TB, base, db string, params url.Values) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", URLEnv, err)
	}
	if db != "" {
		u.Path = "/" + db
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func drop(t testing.TB, sql string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Errorf("pgtest: cleanup: %v", err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Errorf("pgtest: cleanup: %v", err)
	}
}

// removeStale drops databases and schemas this package made more than
// staleAfter ago (a test run killed before its cleanups).
func removeStale(ctx context.Context, conn *pgx.Conn) {
	cutoff := time.Now().Add(-staleAfter).Unix()
	for _, q := range []struct{ list, drop string }{
		{"SELECT datname FROM pg_database WHERE datname LIKE $1", "DROP DATABASE IF EXISTS %s WITH (FORCE)"},
		{"SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", "DROP SCHEMA IF EXISTS %s CASCADE"},
	} {
		rows, err := conn.Query(ctx, q.list, namePrefix+"%")
		if err != nil {
			continue
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			continue
		}
		for _, name := range names {
			var created int64
			if _, err := fmt.Sscanf(strings.TrimPrefix(name, namePrefix), "%d_", &created); err != nil || created > cutoff {
				continue
			}
			_, _ = conn.Exec(ctx, fmt.Sprintf(q.drop, pgx.Identifier{name}.Sanitize()))
		}
	}
}
