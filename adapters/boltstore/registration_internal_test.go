package boltstore

import (
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/oidcproxy/oidcproxy/domain"
)

// A file of schema 2 has neither the count of self-registered clients
// nor the index of unused ones. Opening it counts its clients and marks
// them used from their creation on: whether they were cannot be known,
// and a client in use must never be swept.
func TestASchemaTwoFileGetsItsClientsCountedAndNoneOfThemIsSwept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v2.db")
	s := openForMarks(t, path)
	created := markBase.Add(-72 * time.Hour)
	require.NoError(t, s.db.Update(func(tx *bolt.Tx) error {
		for _, c := range []domain.Client{
			{ID: "registered-1", CreatedAt: created},
			{ID: "registered-2", CreatedAt: created},
			{ID: "operator", Operator: true, CreatedAt: created},
		} {
			if err := putJSON(tx, bucketClients, c.ID, toClientRecord(c)); err != nil { // the schema 2 way
				return err
			}
		}
		if err := tx.Bucket(bucketMeta).Delete(metaRegistered); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(metaSchema, binary.BigEndian.AppendUint64(nil, 2))
	}))
	require.NoError(t, s.Close())

	s = openForMarks(t, path)
	defer s.Close()
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
		require.Equal(t, uint64(schemaVersion), binary.BigEndian.Uint64(tx.Bucket(bucketMeta).Get(metaSchema)))
		n, err := registeredCount(tx)
		require.NoError(t, err)
		require.Equal(t, uint64(2), n, "the operator's client is not counted")
		return nil
	}))
	c, err := s.GetClient(t.Context(), "registered-1")
	require.NoError(t, err)
	require.Equal(t, created, c.FirstGrantAt)

	n, err := s.SweepUnusedClients(t.Context(), markBase)
	require.NoError(t, err)
	require.Zero(t, n)
	require.ErrorIs(t, s.RegisterClient(t.Context(), domain.Client{ID: "third", CreatedAt: markBase}, 2), domain.ErrLimitReached,
		"the counted clients fill a bound of two")
}

// A swept client takes its index entry and its place in the count with
// it; a used client's entry went with its first grant.
func TestSweptAndUsedClientsLeaveNoIndexEntryBehind(t *testing.T) {
	s := openForMarks(t, filepath.Join(t.TempDir(), "hygiene.db"))
	defer s.Close()
	ctx := t.Context()
	for _, id := range []string{"unused", "used"} {
		require.NoError(t, s.RegisterClient(ctx, domain.Client{ID: id, CreatedAt: markBase}, 0))
	}
	g := domain.Grant{ID: "g1", ClientID: "used", Subject: "alice", CreatedAt: markBase, ExpiresAt: markBase.Add(time.Hour)}
	require.NoError(t, s.CreateGrant(ctx, g, domain.AuthorizationCode{Hash: "code-1", GrantID: "g1", ExpiresAt: markBase.Add(time.Minute)}))
	n, err := s.SweepUnusedClients(ctx, markBase.Add(time.Second))
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
		require.Zero(t, tx.Bucket(bucketUnused).Stats().KeyN)
		count, err := registeredCount(tx)
		require.NoError(t, err)
		require.Equal(t, uint64(1), count)
		return nil
	}))
}
