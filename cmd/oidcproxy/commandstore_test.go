package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy"
	"github.com/oidcproxy/oidcproxy/adapters/boltstore"
	"github.com/oidcproxy/oidcproxy/test/idp"
)

// While a server holds the store file, keys rotate goes through its admin
// listener: the server's own key ring rotates, and it publishes both keys
// at once.
func TestKeysRotateWhileServingRotatesTheServersRing(t *testing.T) {
	f := idp.NewFaulty(t, idp.FaultyOptions{ClientID: "proxy", ClientSecret: "proxy-secret"})
	env := serveEnv(t, f.ConfigURL, filepath.Join(t.TempDir(), "p.db"))
	serveUntil(t, env)

	code, out, errOut := cli(t, env, "keys", "rotate")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "new active signing key")

	code, out, errOut = cli(t, env, "keys", "list")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, 2, strings.Count(out, "ES256"), out)
	require.Equal(t, 1, strings.Count(out, "active\n"), out)

	resp, err := http.Get(env["OIDC_PROXY_BASE_URL"] + "/jwks.json")
	require.NoError(t, err)
	defer resp.Body.Close()
	var jwks struct {
		Keys []json.RawMessage `json:"keys"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&jwks))
	require.Len(t, jwks.Keys, 2)
}

// The clients and grants commands build only the operator's use cases:
// on a store no server has run on, listing needs no encryption key and
// leaves behind neither a key file nor a signing key (a database that a
// store copy is to fill must stay empty).
func TestClientsListOnANewStoreNeedsNoKeyAndCreatesNone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	env := serveEnv(t, "http://127.0.0.1:9/.well-known/openid-configuration", path)
	delete(env, "OIDC_PROXY_ENCRYPTION_KEY")

	code, out, errOut := cli(t, env, "clients", "list")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "CLIENT ID")
	code, _, errOut = cli(t, env, "grants", "list")
	require.Equal(t, 0, code, errOut)

	_, err := os.Stat(oidcproxy.KeyFile(path))
	require.ErrorIs(t, err, os.ErrNotExist, "a key file was created")
	s, err := boltstore.Open(boltstore.Options{Path: path})
	require.NoError(t, err)
	defer s.Close()
	keys, err := s.ListKeys(t.Context())
	require.NoError(t, err)
	require.Empty(t, keys, "a signing key was created")
}
