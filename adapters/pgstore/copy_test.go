package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/pgstore"
	"github.com/oidcproxy/oidcproxy/ports"

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

// An import into a database where a session is still writing (an
// instance that was not stopped) fails within the store's timeout instead
// of waiting for the session to end, and stores nothing.
func TestAnImportDoesNotWaitForAWriterThatHoldsTheTables(t *testing.T) {
	url := pgtest.Schema(t)
	s, err := pgstore.Open(t.Context(), pgstore.Options{URL: url, Timeout: 300 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	writer, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = writer.Close(context.Background()) })
	tx, err := writer.Begin(t.Context())
	require.NoError(t, err)
	_, err = tx.Exec(t.Context(), "LOCK TABLE grants IN ROW EXCLUSIVE MODE") // as an uncommitted write holds it
	require.NoError(t, err)

	start := time.Now()
	_, err = s.Import(t.Context(), func(yield func(ports.Record, error) bool) {})
	require.ErrorContains(t, err, "lock timeout")
	require.Less(t, time.Since(start), 5*time.Second)
	require.NoError(t, tx.Rollback(t.Context()))
	require.Empty(t, storetest.Exported(t, s, storetest.FillTime))
}
