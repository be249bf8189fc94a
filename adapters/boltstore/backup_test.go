package boltstore_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/boltstore"
	"github.com/oidcproxy/oidcproxy/domain"
)

func TestABackupIsAStoreFileWithEverything(t *testing.T) {
	dir := t.TempDir()
	s, err := boltstore.Open(boltstore.Options{Path: filepath.Join(dir, "live.db")})
	require.NoError(t, err)
	defer s.Close()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	client := domain.Client{ID: "c1", Name: "Backup test", RedirectURIs: []string{"http://127.0.0.1/cb"},
		ApplicationType: domain.ApplicationNative, TokenEndpointAuthMethod: domain.AuthNone,
		GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"}, CreatedAt: now}
	require.NoError(t, s.CreateClient(t.Context(), client))
	grant := domain.Grant{ID: "g1", ClientID: "c1", Subject: "u1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	code := domain.AuthorizationCode{Hash: "h1", ClientID: "c1", GrantID: "g1", IssuedAt: now, ExpiresAt: now.Add(time.Minute)}
	require.NoError(t, s.CreateGrant(t.Context(), grant, code))

	var buf bytes.Buffer
	n, err := s.Backup(t.Context(), &buf)
	require.NoError(t, err)
	require.Equal(t, int64(buf.Len()), n)

	copyPath := filepath.Join(dir, "copy.db")
	require.NoError(t, os.WriteFile(copyPath, buf.Bytes(), 0o600))
	restored, err := boltstore.Open(boltstore.Options{Path: copyPath})
	require.NoError(t, err)
	defer restored.Close()
	got, err := restored.GetClient(t.Context(), "c1")
	require.NoError(t, err)
	require.Equal(t, "Backup test", got.Name)
	g, err := restored.GetGrant(t.Context(), "g1", now)
	require.NoError(t, err)
	require.Equal(t, "u1", g.Subject)
}
