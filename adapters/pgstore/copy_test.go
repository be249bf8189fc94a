package pgstore_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/test/pgtest"
	"github.com/oidcproxy/oidcproxy/test/storetest"
)

// Every store of the suite is a schema of its own (a copy needs two),
// committing without waiting for the WAL flush, as in the store suite.
func TestPgstorePassesTheCopyConformanceSuite(t *testing.T) {
	storetest.RunCopy(t, func(t *testing.T) storetest.CopyStore {
		return openStore(t, pgtest.Schema(t)+"&synchronous_commit=off")
	})
}

// bbolt and the memory store order keys by their bytes; a database whose
// collation is a language's ("a" before "B") must export in the same
// order, or two stores holding the same records would not export the
// same sequence.
func TestAnExportOrdersKeysByTheirBytesWhateverTheDatabasesCollation(t *testing.T) {
	s := openStore(t, pgtest.CollatedDatabase(t, "en-US"))
	storetest.Fill(t, s, nil)
	var clients []string
	for _, r := range storetest.Exported(t, s, storetest.FillTime) {
		if r.Client != nil {
			clients = append(clients, r.Client.ID)
		}
	}
	require.Equal(t, []string{"B-client", "a-client"}, clients)
}
