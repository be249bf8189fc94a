package boltstore_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/boltstore"
	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/test/storetest"
)

func TestBoltstorePassesTheCopyConformanceSuite(t *testing.T) {
	storetest.RunCopy(t, func(t *testing.T) storetest.CopyStore { return openStore(t, boltstore.Options{}) })
}

// filled returns a closed store file holding storetest.Fill's records, and
// those records as exported.
func filled(t *testing.T) (string, []ports.Record) {
	t.Helper()
	path := dbPath(t)
	s, err := boltstore.Open(boltstore.Options{Path: path})
	require.NoError(t, err)
	storetest.Fill(t, s, nil)
	records := storetest.Exported(t, s, storetest.FillTime)
	require.NoError(t, s.Close())
	return path, records
}

func TestImportFileWritesANewStoreFileOnlyWhenTheWholeCopySucceeded(t *testing.T) {
	src, records := filled(t)
	s, err := boltstore.Open(boltstore.Options{Path: src})
	require.NoError(t, err)
	defer s.Close()

	dir := t.TempDir()
	dst := filepath.Join(dir, "copy.db")
	counts, err := boltstore.ImportFile(t.Context(), dst, s.Export(t.Context(), storetest.FillTime))
	require.NoError(t, err)
	require.Equal(t, len(records), counts.Total())
	info, err := os.Stat(dst)
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o600), info.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left beside the copy")

	c, err := boltstore.Open(boltstore.Options{Path: dst})
	require.NoError(t, err)
	require.Equal(t, records, storetest.Exported(t, c, storetest.FillTime))
	require.NoError(t, c.Close())

	t.Run("an existing file is never replaced", func(t *testing.T) {
		before, err := os.ReadFile(dst)
		require.NoError(t, err)
		_, err = boltstore.ImportFile(t.Context(), dst, s.Export(t.Context(), storetest.FillTime))
		require.ErrorIs(t, err, fs.ErrExist)
		after, err := os.ReadFile(dst)
		require.NoError(t, err)
		require.Equal(t, before, after)
	})

	t.Run("a source that fails midway leaves no file", func(t *testing.T) {
		broken := errors.New("the source went away")
		failing := func(yield func(ports.Record, error) bool) {
			for i, r := range records {
				if i == len(records)/2 {
					yield(ports.Record{}, broken)
					return
				}
				if !yield(r, nil) {
					return
				}
			}
		}
		dir := t.TempDir()
		_, err := boltstore.ImportFile(t.Context(), filepath.Join(dir, "copy.db"), failing)
		require.Equal(t, broken, err, "the source's error comes back as it is")
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Empty(t, entries)
	})
}
