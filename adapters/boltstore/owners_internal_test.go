package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// checkOwnerIndex reports whether the owner index holds exactly the
// entries of the stored grants: what every write must keep true.
func checkOwnerIndex(tx *bolt.Tx) error {
	want := map[string]bool{}
	c := tx.Bucket(bucketGrants).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var g grantKeys
		if err := json.Unmarshal(v, &g); err != nil {
			return err
		}
		o := g.owners(string(k))
		want[string(ownerKey(ownerSubject, o.subject, o.grantID))] = true
		want[string(ownerKey(ownerClient, o.clientID, o.grantID))] = true
	}
	idx := tx.Bucket(bucketOwners).Cursor()
	n := 0
	for k, _ := idx.First(); k != nil; k, _ = idx.Next() {
		if !want[string(k)] {
			return fmt.Errorf("stray owner index entry %q", bytes.Clone(k))
		}
		n++
	}
	if n != len(want) {
		return fmt.Errorf("the owner index has %d entries, the grants need %d", n, len(want))
	}
	return nil
}

func requireOwnerIndexExact(t *testing.T, s *Store, after string) {
	t.Helper()
	require.NoError(t, s.db.View(checkOwnerIndex), "after %s", after)
}

func ownerGrant(id, subject, client string) domain.Grant {
	return domain.Grant{ID: id, ClientID: client, Subject: subject, CreatedAt: markBase, ExpiresAt: markBase.Add(time.Hour)}
}

func ownerCode(grantID string) domain.AuthorizationCode {
	return domain.AuthorizationCode{Hash: "code-" + grantID, ClientID: "c", GrantID: grantID, IssuedAt: markBase, ExpiresAt: markBase.Add(time.Minute)}
}

// Every write that stores, rewrites or deletes a grant keeps the owner
// index equal to what the stored grants need: no entry missing (the
// grant would escape a revocation) and none left over.
func TestEveryGrantWriteKeepsTheOwnerIndexExact(t *testing.T) {
	s := openForMarks(t, filepath.Join(t.TempDir(), "owners.db"))
	defer s.Close()
	ctx := t.Context()
	for i, owner := range []struct{ subject, client string }{
		{"alice", "c1"}, {"alice", "c2"}, {"bob", "c1"}, {"al", "c"}, {"carol", "c3"}, {"dave", "c1"},
	} {
		id := fmt.Sprintf("g%d", i)
		require.NoError(t, s.CreateGrant(ctx, ownerGrant(id, owner.subject, owner.client), ownerCode(id)))
	}
	requireOwnerIndexExact(t, s, "CreateGrant")

	// A redemption stores a refresh token; a rotation rewrites the grant,
	// here with a new subject (a rotate callback may change any field but
	// the id).
	_, _, err := s.RedeemCode(ctx, "code-g0", markBase, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(c domain.AuthorizationCode, g domain.Grant) (*domain.RefreshToken, error) {
		return &domain.RefreshToken{Hash: "rt-0", GrantID: g.ID, ClientID: "c", IssuedAt: markBase, ExpiresAt: markBase.Add(time.Hour)}, nil
	}})

	require.NoError(t, err)
	rotate := func(old domain.RefreshToken, g *domain.Grant) (domain.RefreshToken, error) {
		g.Subject = "alice-renamed"
		return domain.RefreshToken{Hash: "rt-0b", GrantID: g.ID, ClientID: "c", IssuedAt: markBase, ExpiresAt: markBase.Add(time.Hour)}, nil
	}
	_, _, err = s.RotateRefreshToken(ctx, "rt-0", markBase, domain.RefreshUse{ClientID: "c"}, domain.RotateFunc(rotate))
	require.NoError(t, err)
	requireOwnerIndexExact(t, s, "RotateRefreshToken")
	got, err := s.ListGrants(ctx, ports.GrantFilter{Subject: "alice"}, ports.Page{Limit: 10}, markBase)
	require.NoError(t, err)
	require.Len(t, got, 1, "g0 moved to its new subject")

	// Reuse of the rotated token revokes the grant.
	_, _, err = s.RotateRefreshToken(ctx, "rt-0", markBase.Add(time.Second), domain.RefreshUse{ClientID: "c"}, domain.RotateFunc(rotate))
	require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
	requireOwnerIndexExact(t, s, "reuse detection")

	require.NoError(t, s.RevokeGrant(ctx, "g1"))
	requireOwnerIndexExact(t, s, "RevokeGrant")

	n, err := s.RevokeGrants(ctx, ports.GrantFilter{Subject: "al"})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	requireOwnerIndexExact(t, s, "RevokeGrants")

	require.NoError(t, s.CreateClient(ctx, domain.Client{ID: "c1", CreatedAt: markBase}))
	n, err = s.DeleteClient(ctx, "c1")
	require.NoError(t, err)
	require.Equal(t, 2, n, "bob's and dave's")
	requireOwnerIndexExact(t, s, "DeleteClient")

	_, err = s.Sweep(ctx, markBase.Add(2*time.Hour))
	require.NoError(t, err)
	requireOwnerIndexExact(t, s, "Sweep")
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
		require.Zero(t, tx.Bucket(bucketOwners).Stats().KeyN, "everything expired: the index is empty")
		return nil
	}))
}

// A file of schema 2 has no owner index: opening it builds one from the
// stored grants and marks the file schema 3, which a schema 2 binary
// refuses (ErrSchemaTooNew) instead of writing grants the index misses.
func TestOpeningASchemaTwoFileBuildsTheOwnerIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v2.db")
	s := openForMarks(t, path)
	ctx := t.Context()
	require.NoError(t, s.CreateGrant(ctx, ownerGrant("g1", "alice", "c1"), ownerCode("g1")))
	require.NoError(t, s.CreateGrant(ctx, ownerGrant("g2", "bob", "c1"), ownerCode("g2")))
	require.NoError(t, s.db.Update(func(tx *bolt.Tx) error {
		// What a schema 2 binary left behind.
		if err := tx.DeleteBucket(bucketOwners); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(metaSchema, binary.BigEndian.AppendUint64(nil, 2))
	}))
	require.NoError(t, s.Close())

	s = openForMarks(t, path)
	defer s.Close()
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
		require.Equal(t, uint64(schemaVersion), binary.BigEndian.Uint64(tx.Bucket(bucketMeta).Get(metaSchema)))
		return nil
	}))
	requireOwnerIndexExact(t, s, "the migration")
	got, err := s.ListGrants(ctx, ports.GrantFilter{ClientID: "c1"}, ports.Page{Limit: 10}, markBase)
	require.NoError(t, err)
	require.Len(t, got, 2)
	n, err := s.RevokeGrants(ctx, ports.GrantFilter{Subject: "alice"})
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

// The gateway reads grants through the store's cache: a revocation by
// subject, by client or a client's deletion must reach it at once.
func TestAdminRevocationsForgetCachedGrants(t *testing.T) {
	s := openForMarks(t, filepath.Join(t.TempDir(), "cache.db"))
	defer s.Close()
	ctx := t.Context()
	require.NoError(t, s.CreateClient(ctx, domain.Client{ID: "c2", CreatedAt: markBase}))
	require.NoError(t, s.CreateGrant(ctx, ownerGrant("g1", "alice", "c1"), ownerCode("g1")))
	require.NoError(t, s.CreateGrant(ctx, ownerGrant("g2", "bob", "c2"), ownerCode("g2")))
	for _, id := range []string{"g1", "g2"} {
		_, err := s.GetGrant(ctx, id, markBase)
		require.NoError(t, err)
		_, cached := s.cache.cachedGrant(id)
		require.True(t, cached, "the read filled the cache")
	}
	_, err := s.RevokeGrants(ctx, ports.GrantFilter{Subject: "alice"})
	require.NoError(t, err)
	_, err = s.GetGrant(ctx, "g1", markBase)
	require.ErrorIs(t, err, domain.ErrNotFound)
	_, err = s.DeleteClient(ctx, "c2")
	require.NoError(t, err)
	_, err = s.GetGrant(ctx, "g2", markBase)
	require.ErrorIs(t, err, domain.ErrNotFound)
}
