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
		pgtest.Exec(t, url, truncateAll)
		return s
	})
}

// The same suite on stores that cache grants and clients and listen for
// changes, as a server's store does: the caches must change nothing any
// method's contract says (an instance reads its own writes at once).
func TestPgstoreWithCachesPassesTheStoreConformanceSuite(t *testing.T) {
	url := pgtest.Schema(t) + "&synchronous_commit=off"
	storetest.Run(t, func(t *testing.T) ports.Store {
		s := openStoreWith(t, pgstore.Options{URL: url, Listen: true})
		pgtest.Exec(t, url, truncateAll)
		return s
	})
}

// truncateAll empties every table of the store between subtests.
const truncateAll = "TRUNCATE clients, transactions, grants, codes, refresh_tokens, signing_keys, assertion_ids"

// openStore opens a store on url and closes it when the test ends.
func openStore(t testing.TB, url string) *pgstore.Store {
	t.Helper()
	return openStoreWith(t, pgstore.Options{URL: url})
}

// openStoreWith opens a store with opts and closes it when the test ends.
func openStoreWith(t testing.TB, opts pgstore.Options) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(t.Context(), opts)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}
