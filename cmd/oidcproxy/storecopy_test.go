package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/oidcproxy/oidcproxy/test/idp"
	"github.com/oidcproxy/oidcproxy/test/pgtest"
)

// storeCopyRun runs `oidcproxy store copy` with env and returns its exit
// code and both outputs.
func storeCopyRun(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(t.Context(), append([]string{"store", "copy"}, args...), envOf(env), &out, &errOut)
	return code, out.String(), errOut.String()
}

// keysOf runs `oidcproxy keys list` with env.
func keysOf(t *testing.T, env map[string]string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	require.Equal(t, 0, run(t.Context(), []string{"keys", "list"}, envOf(env), &out, &errOut), errOut.String())
	return out.String()
}

// A deployment grows from one server on its bbolt file to PostgreSQL and
// back with `oidcproxy store copy`, and the user signed in before the
// first copy refreshes after each one, without signing in again.
func TestStoreCopyMovesAServersStoreToPostgreSQLAndBackWithoutASignInAgain(t *testing.T) {
	f := idp.NewFaulty(t, idp.FaultyOptions{ClientID: "proxy", ClientSecret: "proxy-secret"})
	dir := t.TempDir()
	boltEnv := serveEnv(t, f.ConfigURL, filepath.Join(dir, "oidcproxy.db"))
	db := pgtest.Database(t)
	pgEnv := postgresEnv(t, f.ConfigURL, db)
	pgEnv["OIDC_PROXY_ENCRYPTION_KEY"] = boltEnv["OIDC_PROXY_ENCRYPTION_KEY"]
	pgEnv["OIDC_PROXY_LISTEN_ADDR"], pgEnv["OIDC_PROXY_BASE_URL"] = boltEnv["OIDC_PROXY_LISTEN_ADDR"], boltEnv["OIDC_PROXY_BASE_URL"]
	base := boltEnv["OIDC_PROXY_BASE_URL"]
	copyEnv := map[string]string{"OIDC_PROXY_ENCRYPTION_KEY": boltEnv["OIDC_PROXY_ENCRYPTION_KEY"]}

	stop := serveUntil(t, boltEnv)
	tok, cfg := loginAt(t, base)
	code, out, errOut := storeCopyRun(t, copyEnv, "--from", boltEnv["OIDC_PROXY_STORE_PATH"], "--to", db)
	require.Equal(t, 1, code, out)
	require.Contains(t, errOut, "A running server holds the source file: stop it and copy again.")
	require.Contains(t, errOut, "Nothing was copied")
	stop()
	keys := keysOf(t, boltEnv)

	code, out, errOut = storeCopyRun(t, copyEnv, "--from", boltEnv["OIDC_PROXY_STORE_PATH"], "--to", db)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "copied 1 client, 1 signing key, 1 grant, 1 authorization code, 1 refresh token\n")
	require.Contains(t, out, "from the bbolt file "+boltEnv["OIDC_PROXY_STORE_PATH"])
	require.Contains(t, out, "to the PostgreSQL database 127.0.0.1:5432/")
	require.Contains(t, out, "the destination holds exactly the source's live records")
	require.Equal(t, keys, keysOf(t, pgEnv), "the signing keys moved")

	// The same copy again finds the database in use.
	code, _, errOut = storeCopyRun(t, copyEnv, "--from", boltEnv["OIDC_PROXY_STORE_PATH"], "--to", db)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "the store is not empty: it holds 1 client, 1 signing key, 1 grant, 1 authorization code, 1 refresh token")
	require.Contains(t, errOut, "The destination must be empty.")

	stop = serveUntil(t, pgEnv)
	refresh := func() {
		t.Helper()
		next, err := cfg.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
		require.NoError(t, err, "the refresh token issued before the copy works after it")
		tok = next
	}
	refresh()
	back := filepath.Join(dir, "back.db")
	code, _, errOut = storeCopyRun(t, copyEnv, "--from", db, "--to", back)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "oidcproxy instances are connected to the database")
	require.Contains(t, errOut, "Stop every instance")
	_, err := os.Stat(back)
	require.ErrorIs(t, err, os.ErrNotExist)
	stop()

	code, out, errOut = storeCopyRun(t, copyEnv, "--from", db, "--to", back)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "copied 1 client, 1 signing key, 1 grant, 1 authorization code, 2 refresh tokens\n",
		"the rotated token and its successor: reuse stays detectable")
	code, _, errOut = storeCopyRun(t, copyEnv, "--from", db, "--to", back)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "The destination file exists")

	boltEnv["OIDC_PROXY_STORE_PATH"] = back
	require.Equal(t, keys, keysOf(t, boltEnv))
	serveUntil(t, boltEnv)
	refresh()
}

// A server started without ENCRYPTION_KEY sealed its store with a key file
// it generated next to it. The copy needs that key and says so; with it
// (or with any other wrong key) it says what to do.
func TestStoreCopyExplainsTheGeneratedKeyFile(t *testing.T) {
	f := idp.NewFaulty(t, idp.FaultyOptions{ClientID: "proxy", ClientSecret: "proxy-secret"})
	path := filepath.Join(t.TempDir(), "oidcproxy.db")
	env := serveEnv(t, f.ConfigURL, path)
	delete(env, "OIDC_PROXY_ENCRYPTION_KEY")
	serveUntil(t, env)()
	dst := filepath.Join(t.TempDir(), "copy.db")

	code, _, errOut := storeCopyRun(t, nil, "--from", path, "--to", dst)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "OIDC_PROXY_ENCRYPTION_KEY (or OIDC_PROXY_ENCRYPTION_KEY_FILE) is required")
	require.Contains(t, errOut, "OIDC_PROXY_ENCRYPTION_KEY_FILE="+path+".key")

	other := make([]byte, 32)
	_, _ = rand.Read(other)
	code, _, errOut = storeCopyRun(t, map[string]string{"OIDC_PROXY_ENCRYPTION_KEY": base64.StdEncoding.EncodeToString(other)}, "--from", path, "--to", dst)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "the encryption key cannot open the source's sealed values: it does not open the private half of signing key")
	require.Contains(t, errOut, "OIDC_PROXY_ENCRYPTION_KEY_FILE="+path+".key")
	_, err := os.Stat(dst)
	require.ErrorIs(t, err, os.ErrNotExist)

	code, out, errOut := storeCopyRun(t, map[string]string{"OIDC_PROXY_ENCRYPTION_KEY_FILE": path + ".key"}, "--from", path, "--to", dst)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "copied 1 signing key")
}

func TestStoreCopyNeverShowsTheDatabasePassword(t *testing.T) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	env := map[string]string{"OIDC_PROXY_ENCRYPTION_KEY": base64.StdEncoding.EncodeToString(key)}
	src := filepath.Join(t.TempDir(), "missing.db")
	refusing := pgtest.PasswordRefusingServer(t)
	for _, dst := range []string{
		"postgres://oidcproxy:s3cret-Pa55word@127.0.0.1:1/oidcproxy?sslmode=disable",
		"postgres://oidcproxy:s3cret-Pa55word@" + refusing + "/oidcproxy?sslmode=disable",
	} {
		code, out, errOut := storeCopyRun(t, env, "--from", src, "--to", dst, "--database-timeout", "2s")
		require.Equal(t, 1, code)
		require.NotContains(t, out+errOut, "s3cret-Pa55word")
		require.Contains(t, errOut, "PostgreSQL database ")
	}
}

func TestStoreCopyNeedsBothStores(t *testing.T) {
	for _, args := range [][]string{nil, {"--from", "a.db"}, {"--to", "b.db"}, {"--from", "a.db", "--to", "b.db", "extra"}} {
		code, _, errOut := storeCopyRun(t, nil, args...)
		require.Equal(t, 2, code, args)
		require.Contains(t, errOut, "usage: oidcproxy store copy --from SOURCE --to DESTINATION")
	}
	code, out, _ := storeCopyRun(t, nil, "-h")
	require.Equal(t, 0, code)
	require.Contains(t, out, "The destination must be empty")
	code, _, errOut := storeCopyRun(t, map[string]string{"OIDC_PROXY_ENCRYPTION_KEY": base64.StdEncoding.EncodeToString(make([]byte, 32))},
		"--from", filepath.Join(t.TempDir(), "none.db"), "--to", filepath.Join(t.TempDir(), "b.db"))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "there is no oidcproxy store there: no file at")
}
