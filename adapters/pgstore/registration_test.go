package pgstore_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/test/pgtest"
)

// A database migrated before the client hygiene migration has clients
// that were never counted and whose first grants were never recorded. The
// migration counts them and marks them used from their creation on
// (whether they were cannot be known): none is swept, and they fill the
// bound.
func TestClientsFromBeforeTheHygieneMigrationAreCountedAndNeverSwept(t *testing.T) {
	url := pgtest.Schema(t)
	files, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	require.NoError(t, err)
	pgtest.Exec(t, url, `CREATE TABLE oidcproxy_schema_version (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
	hygiene := false
	for _, f := range files { // Glob sorts: the migrations in order
		base := filepath.Base(f)
		if strings.HasSuffix(base, "_client_hygiene.sql") {
			hygiene = true
			break
		}
		body, err := os.ReadFile(f)
		require.NoError(t, err)
		pgtest.Exec(t, url, string(body))
		num, name, _ := strings.Cut(strings.TrimSuffix(base, ".sql"), "_")
		v, err := strconv.Atoi(num)
		require.NoError(t, err)
		pgtest.Exec(t, url, "INSERT INTO oidcproxy_schema_version (version, name) VALUES ($1, $2)", v, name)
	}
	require.True(t, hygiene, "the client hygiene migration exists")
	created := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		id       string
		operator bool
	}{{"registered-1", false}, {"registered-2", false}, {"operator", true}} {
		pgtest.Exec(t, url, `INSERT INTO clients (id, name, application_type, token_endpoint_auth_method, scope,
			client_uri, logo_uri, software_id, software_version, operator, created_ns)
			VALUES ($1, '', 'native', 'none', '', '', '', '', '', $2, $3)`, c.id, c.operator, created.UnixNano())
	}

	s := openStore(t, url)
	c, err := s.GetClient(t.Context(), "registered-1")
	require.NoError(t, err)
	require.Equal(t, created, c.FirstGrantAt)
	n, err := s.SweepUnusedClients(t.Context(), created.Add(365*24*time.Hour))
	require.NoError(t, err)
	require.Zero(t, n)
	err = s.RegisterClient(t.Context(), domain.Client{ID: "third", CreatedAt: created}, 2)
	require.ErrorIs(t, err, domain.ErrLimitReached, "the two counted clients fill a bound of two")
	require.NoError(t, s.RegisterClient(t.Context(), domain.Client{ID: "third", CreatedAt: created}, 3))
}

// Whatever deletes a client keeps the count right: an operator's DELETE
// in psql as well as the sweep.
func TestTheCountFollowsEveryDeletion(t *testing.T) {
	url := pgtest.Schema(t)
	s := openStore(t, url)
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, id := range []string{"c1", "c2"} {
		require.NoError(t, s.RegisterClient(t.Context(), domain.Client{ID: id, CreatedAt: now}, 2))
	}
	require.ErrorIs(t, s.RegisterClient(t.Context(), domain.Client{ID: "c3", CreatedAt: now}, 2), domain.ErrLimitReached)
	pgtest.Exec(t, url, "DELETE FROM clients WHERE id = 'c1'")
	require.NoError(t, s.RegisterClient(t.Context(), domain.Client{ID: "c3", CreatedAt: now}, 2))
	pgtest.Exec(t, url, "TRUNCATE clients")
	for _, id := range []string{"c4", "c5"} {
		require.NoError(t, s.RegisterClient(t.Context(), domain.Client{ID: id, CreatedAt: now}, 2))
	}
	require.ErrorIs(t, s.RegisterClient(t.Context(), domain.Client{ID: "c6", CreatedAt: now}, 2), domain.ErrLimitReached)
}
