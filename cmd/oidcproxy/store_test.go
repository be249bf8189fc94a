package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/boltstore"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/test/idp"
)

// fillAndSweep writes n authorizations that expire and sweeps them, as a
// flood of abandoned flows leaves a store: large, and mostly free pages.
func fillAndSweep(t *testing.T, path string, n int) {
	t.Helper()
	s, err := boltstore.Open(boltstore.Options{Path: path, NoSync: true})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	now := time.Now()
	for i := range n {
		require.NoError(t, s.CreateTransaction(t.Context(), domain.Transaction{
			ID: domain.HashToken(fmt.Sprintf("tx-%d", i)), ClientID: "client", RedirectURI: "http://127.0.0.1/callback",
			State: strings.Repeat("s", 512), CodeChallenge: domain.HashToken("verifier"), Scopes: []string{"openid"},
			CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(-time.Minute),
		}))
	}
	removed, err := s.Sweep(t.Context(), now)
	require.NoError(t, err)
	require.Equal(t, n, removed)
}

// `oidcproxy store compact` refuses a store a running server holds, with a
// message that says what to do, and leaves the file alone; once the
// server has stopped it compacts, reports both sizes, and the server
// starts again from the compacted file. The server runs in this process:
// bbolt's lock (flock) treats every open of the file on its own, so it
// holds the file against the subcommand as a server process does
// (boltstore's tests hold it from a child process).
func TestStoreCompactRefusesARunningServersStoreAndCompactsAStoppedOne(t *testing.T) {
	f := idp.NewFaulty(t, idp.FaultyOptions{ClientID: "proxy", ClientSecret: "proxy-secret"})
	path := filepath.Join(t.TempDir(), "oidcproxy.db")
	env := serveEnv(t, f.ConfigURL, path)
	stop := serveUntil(t, env)
	stop()
	var keys bytes.Buffer
	require.Equal(t, 0, run(t.Context(), []string{"keys", "list"}, envOf(env), &keys, &keys), keys.String())
	fillAndSweep(t, path, 3000)
	before, err := os.Stat(path)
	require.NoError(t, err)

	stop = serveUntil(t, env) // a server holds the file again
	var out, errOut bytes.Buffer
	require.Equal(t, 1, run(t.Context(), []string{"store", "compact"}, envOf(env), &out, &errOut))
	require.Contains(t, errOut.String(), "in use by another process, most likely a running server")
	require.Contains(t, errOut.String(), "stop the server, compact, start it again")
	require.Empty(t, out.String())
	held, err := os.Stat(path)
	require.NoError(t, err)
	require.True(t, os.SameFile(before, held), "the held file was not replaced")
	require.Equal(t, before.Size(), held.Size())
	stop()

	out.Reset()
	errOut.Reset()
	require.Equal(t, 0, run(t.Context(), []string{"store", "compact"}, envOf(env), &out, &errOut), errOut.String())
	after, err := os.Stat(path)
	require.NoError(t, err)
	require.Less(t, after.Size(), before.Size())
	require.Contains(t, out.String(), "compacted "+path)
	require.Contains(t, out.String(), fmt.Sprintf("before: %s", size(before.Size())))
	require.Contains(t, out.String(), fmt.Sprintf("after:  %s", size(after.Size())))

	// The signing key the first start created survives, and the server
	// starts from the compacted file.
	out.Reset()
	require.Equal(t, 0, run(t.Context(), []string{"keys", "list"}, envOf(env), &out, &errOut), errOut.String())
	require.Equal(t, keys.String(), out.String())
	serveUntil(t, env)
}

func TestStoreNeedsASubcommand(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 2, run(t.Context(), []string{"store"}, envOf(nil), &out, &errOut))
	require.Contains(t, errOut.String(), "usage: oidcproxy store compact")
	require.Equal(t, 2, run(t.Context(), []string{"store", "shrink"}, envOf(nil), &out, &errOut))
	require.Equal(t, 0, run(t.Context(), []string{"store", "-h"}, envOf(nil), &out, &errOut))
	require.Contains(t, out.String(), "offline")
}
