package boltstore

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/oidcproxy/oidcproxy/domain"
)

// bbolt runs commit hooks after a commit is visible to new readers, so
// for a moment a read finds a grant's new bytes while the cache still
// holds the grant decoded from the old ones and no epoch has moved. A
// write that registers no hook stands for that moment here: RedeemCode
// must still decide on, and return, the grant the bytes hold.
func TestARedemptionNeverUsesACachedGrantOlderThanTheBytesItRead(t *testing.T) {
	s, err := Open(Options{Path: filepath.Join(t.TempDir(), "c.db"), NoSync: true})
	require.NoError(t, err)
	defer s.Close()
	ctx := t.Context()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	g := domain.Grant{ID: "g1", ClientID: "c", Subject: "alice", Scopes: []string{"mcp"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	require.NoError(t, s.CreateGrant(ctx, g, domain.AuthorizationCode{Hash: "code", ClientID: "c", GrantID: "g1", IssuedAt: now, ExpiresAt: now.Add(time.Minute)}))
	_, err = s.GetGrant(ctx, "g1", now) // now cached
	require.NoError(t, err)

	changed := g.Clone()
	changed.Scopes = []string{"mcp", "admin"}
	require.NoError(t, s.db.Update(func(tx *bolt.Tx) error {
		return putJSON(tx, bucketGrants, "g1", toGrantRecord(changed)) // committed, hook not yet run
	}))

	var issued domain.Grant
	_, got, err := s.RedeemCode(ctx, "code", now, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(_ domain.AuthorizationCode, g domain.Grant) (*domain.RefreshToken, error) {
		issued = g
		return nil, nil
	}})

	require.NoError(t, err)
	require.Equal(t, changed.Scopes, issued.Scopes, "issue saw a grant older than the stored one")
	require.Equal(t, changed.Scopes, got.Scopes, "RedeemCode returned a grant older than the stored one")
}
