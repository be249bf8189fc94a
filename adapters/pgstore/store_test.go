package pgstore_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/pgstore"
	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/test/pgtest"
	"github.com/oidcproxy/oidcproxy/test/storetest"
)

// The suite runs on a schema of its own on the real server, migrated by
// the first Open; every subtest then starts from emptied tables (creating
// and dropping a schema per subtest would cost a quarter of a second each).
// The sessions commit without waiting for the WAL flush
// (synchronous_commit off): that changes what a server crash may lose, not
// what any statement sees or locks, and it saves the suite thousands of
// fsyncs.
func TestPgstorePassesTheStoreConformanceSuite(t *testing.T) {
	url := pgtest.Schema(t) + "&synchronous_commit=off"
	storetest.Run(t, func(t *testing.T) ports.Store {
		s := openStore(t, url)
		pgtest.Exec(t, url, "TRUNCATE clients, transactions, grants, codes, refresh_tokens, signing_keys, assertion_ids")
		return s
	})
}

// openStore opens a store on url and closes it when the test ends.
func openStore(t testing.TB, url string) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(t.Context(), pgstore.Options{URL: url})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}
