package boltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/oidcproxy/oidcproxy/domain"
)

var markBase = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// rightful is a RedeemCode check that accepts every presenter.
func rightful(domain.AuthorizationCode) error { return nil }

// stranger is a RedeemCode check that refuses every presenter: a replay it
// refuses changes nothing.
func stranger(domain.AuthorizationCode) error { return errors.New("not the code's client") }

func openForMarks(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(Options{Path: path, NoSync: true})
	require.NoError(t, err)
	return s
}

func seedCode(t *testing.T, s *Store, grantID, codeHash string) {
	t.Helper()
	g := domain.Grant{ID: grantID, ClientID: "c", Subject: "alice", CreatedAt: markBase, ExpiresAt: markBase.Add(time.Hour)}
	c := domain.AuthorizationCode{Hash: codeHash, ClientID: "c", GrantID: grantID, IssuedAt: markBase, ExpiresAt: markBase.Add(time.Minute)}
	require.NoError(t, s.CreateGrant(t.Context(), g, c))
}

func childrenOf(t *testing.T, s *Store, grantID string) [][]byte {
	t.Helper()
	var keys [][]byte
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
		prefix := childPrefix(grantID)
		c := tx.Bucket(bucketChildren).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	}))
	return keys
}

// A file of schema 1 stored a redemption in the code record: it still
// reads as redeemed, and opening the file marks it with the current schema
// (2 or later) so that older binaries refuse it.
func TestASchemaOneRedemptionStillCountsAndTheFileMovesToTheCurrentSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	s := openForMarks(t, path)
	seedCode(t, s, "g1", "code-1")
	redeemedAt := markBase.Add(10 * time.Second)
	require.NoError(t, s.db.Update(func(tx *bolt.Tx) error {
		c, _, err := loadCode(tx, "code-1")
		if err != nil {
			return err
		}
		c.RedeemedAt = redeemedAt
		if err := putJSON(tx, bucketCodes, c.Hash, toCodeRecord(c)); err != nil { // the schema 1 way
			return err
		}
		return tx.Bucket(bucketMeta).Put(metaSchema, binary.BigEndian.AppendUint64(nil, 1))
	}))
	require.NoError(t, s.Close())

	s = openForMarks(t, path)
	defer s.Close()
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
		require.Equal(t, uint64(schemaVersion), binary.BigEndian.Uint64(tx.Bucket(bucketMeta).Get(metaSchema)))
		return nil
	}))
	code, _, err := s.RedeemCode(t.Context(), "code-1", markBase.Add(20*time.Second), domain.CodeUseFuncs{CheckFunc: stranger, IssueFunc: func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) {
		t.Fatal("a redeemed code reached issue")
		return nil, nil
	}})

	require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
	require.Equal(t, redeemedAt, code.RedeemedAt)
}

// A redemption is a children-index entry; revoking the grant or sweeping
// the code leaves none behind.
func TestRedemptionMarksGoWithTheirCodeAndGrant(t *testing.T) {
	s := openForMarks(t, filepath.Join(t.TempDir(), "marks.db"))
	defer s.Close()
	ctx := t.Context()
	issueNone := func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) { return nil, nil }

	seedCode(t, s, "g1", "code-1")
	at := markBase.Add(5 * time.Second)
	_, _, err := s.RedeemCode(ctx, "code-1", at, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: issueNone})
	require.NoError(t, err)
	require.Len(t, childrenOf(t, s, "g1"), 2, "the code's entry and its redemption mark")
	code, _, err := s.RedeemCode(ctx, "code-1", at.Add(time.Second), domain.CodeUseFuncs{CheckFunc: stranger, IssueFunc: issueNone})
	require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
	require.Equal(t, at, code.RedeemedAt, "the mark keeps the redemption time")
	require.NoError(t, s.RevokeGrant(ctx, "g1"))
	require.Empty(t, childrenOf(t, s, "g1"), "revocation removes the mark too")

	seedCode(t, s, "g2", "code-2")
	_, _, err = s.RedeemCode(ctx, "code-2", at, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: issueNone})
	require.NoError(t, err)
	_, err = s.Sweep(ctx, markBase.Add(2*time.Minute)) // the code expired, the grant did not
	require.NoError(t, err)
	require.Empty(t, childrenOf(t, s, "g2"), "sweeping the code removes its mark")
	_, err = s.GetGrant(ctx, "g2", markBase.Add(2*time.Minute))
	require.NoError(t, err)
}
