package oidcproxy_test

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy"
	"github.com/oidcproxy/oidcproxy/adapters/boltstore"
	"github.com/oidcproxy/oidcproxy/adapters/pgstore"
	"github.com/oidcproxy/oidcproxy/adapters/seal"
	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/test/pgtest"
	"github.com/oidcproxy/oidcproxy/test/storetest"
)

// fixedClock is the copy's "now": storetest's records are live at
// storetest.FillTime, a fixed date.
type fixedClock struct{}

func (fixedClock) Now() time.Time { return storetest.FillTime }

// newKey is a fresh encryption key.
func newKey(t *testing.T) seal.MasterKey {
	t.Helper()
	key := make([]byte, 32)
	_, err := rand.Read(key)
	require.NoError(t, err)
	return key
}

// filledBolt writes storetest.Fill's records, sealed with key, into a new
// bbolt file and returns its path and what it exports.
func filledBolt(t *testing.T, key seal.MasterKey) (string, []ports.Record) {
	t.Helper()
	sealer, err := seal.NewFromMaster(key)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "oidcproxy.db")
	s, err := boltstore.Open(boltstore.Options{Path: path})
	require.NoError(t, err)
	storetest.Fill(t, s, sealer)
	records := storetest.Exported(t, s, storetest.FillTime)
	require.NoError(t, s.Close())
	return path, records
}

func exportedBolt(t *testing.T, path string) []ports.Record {
	t.Helper()
	s, err := boltstore.Open(boltstore.Options{Path: path})
	require.NoError(t, err)
	defer s.Close()
	return storetest.Exported(t, s, storetest.FillTime)
}

func exportedDatabase(t *testing.T, url string) []ports.Record {
	t.Helper()
	s, err := pgstore.Open(t.Context(), pgstore.Options{URL: url})
	require.NoError(t, err)
	defer s.Close()
	return storetest.Exported(t, s, storetest.FillTime)
}

func TestACopyFromBoltToPostgreSQLAndBackKeepsEveryFieldOfEveryRecord(t *testing.T) {
	key := newKey(t)
	bolt, records := filledBolt(t, key)
	db := pgtest.Database(t)

	res, err := oidcproxy.CopyStore(t.Context(), oidcproxy.StoreCopy{From: bolt, To: db, EncryptionKey: key, Clock: fixedClock{}})
	require.NoError(t, err)
	require.Equal(t, len(records), res.Copied.Total())
	require.Equal(t, records, exportedDatabase(t, db))

	back := filepath.Join(t.TempDir(), "back.db")
	res, err = oidcproxy.CopyStore(t.Context(), oidcproxy.StoreCopy{From: db, To: back, EncryptionKey: key, Clock: fixedClock{}})
	require.NoError(t, err)
	require.Equal(t, len(records), res.Copied.Total())
	require.Equal(t, records, exportedBolt(t, back))
	require.Equal(t, "bbolt file "+back, res.To)

	// The assertions used on the source before the first copy are used on
	// both copies: replayed on either, they are refused.
	pg, err := pgstore.Open(t.Context(), pgstore.Options{URL: db})
	require.NoError(t, err)
	defer pg.Close()
	storetest.RequireCopiedAssertionsRefused(t, pg)
	bb, err := boltstore.Open(boltstore.Options{Path: back})
	require.NoError(t, err)
	defer bb.Close()
	storetest.RequireCopiedAssertionsRefused(t, bb)
}

func TestACopyWithTheWrongKeyWritesNothing(t *testing.T) {
	bolt, _ := filledBolt(t, newKey(t))
	db := pgtest.Database(t)

	_, err := oidcproxy.CopyStore(t.Context(), oidcproxy.StoreCopy{From: bolt, To: db, EncryptionKey: newKey(t), Clock: fixedClock{}})
	require.ErrorIs(t, err, oidcproxy.ErrWrongEncryptionKey)
	require.Empty(t, exportedDatabase(t, db))

	dst := filepath.Join(t.TempDir(), "copy.db")
	_, err = oidcproxy.CopyStore(t.Context(), oidcproxy.StoreCopy{From: bolt, To: dst, EncryptionKey: newKey(t), Clock: fixedClock{}})
	require.ErrorIs(t, err, oidcproxy.ErrWrongEncryptionKey)
	_, statErr := os.Stat(dst)
	require.ErrorIs(t, statErr, os.ErrNotExist)
}

// The signing keys are checked before anything is read; a grant's sealed
// upstream tokens as the copy reaches them. A source whose keys open but
// whose grants were sealed under another key (a store assembled from two)
// is refused all the same, and the destination stays empty.
func TestACopyRefusesAGrantItsKeyCannotOpenAndWritesNothing(t *testing.T) {
	key, other := newKey(t), newKey(t)
	path := filepath.Join(t.TempDir(), "oidcproxy.db")
	s, err := boltstore.Open(boltstore.Options{Path: path})
	require.NoError(t, err)
	otherSealer, err := seal.NewFromMaster(other)
	require.NoError(t, err)
	storetest.Fill(t, s, otherSealer)
	// Re-seal the keys with the right key, leaving the grants as they are.
	sealer, err := seal.NewFromMaster(key)
	require.NoError(t, err)
	keys, err := s.ListKeys(t.Context())
	require.NoError(t, err)
	for _, k := range keys {
		k.SealedPrivate, err = sealer.Seal([]byte("private"), []byte(k.ID))
		require.NoError(t, err)
		require.NoError(t, s.PutKey(t.Context(), k))
	}
	require.NoError(t, s.Close())

	db := pgtest.Database(t)
	_, err = oidcproxy.CopyStore(t.Context(), oidcproxy.StoreCopy{From: path, To: db, EncryptionKey: key, Clock: fixedClock{}})
	require.ErrorIs(t, err, oidcproxy.ErrWrongEncryptionKey)
	require.ErrorContains(t, err, "upstream tokens of a grant")
	require.Empty(t, exportedDatabase(t, db))
}
