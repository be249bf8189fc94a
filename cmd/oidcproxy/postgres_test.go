package main

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/pgstore"
	"github.com/oidcproxy/oidcproxy/test/idp"
	"github.com/oidcproxy/oidcproxy/test/pgtest"
)

// postgresEnv is serveEnv on the PostgreSQL database at dbURL.
func postgresEnv(t *testing.T, configURL, dbURL string) map[string]string {
	env := serveEnv(t, configURL, "")
	delete(env, "OIDC_PROXY_STORE_PATH")
	env["OIDC_PROXY_DATABASE_URL"] = dbURL
	env["OIDC_PROXY_DATABASE_TIMEOUT"] = "2s"
	return env
}

func TestCheckReportsTheDatabaseAndItsSchemaVersion(t *testing.T) {
	f := idp.NewFaulty(t, idp.FaultyOptions{ClientID: "proxy", ClientSecret: "proxy-secret"})
	dbURL := pgtest.Schema(t)
	env := postgresEnv(t, f.ConfigURL, dbURL)
	var out, errOut bytes.Buffer

	require.Equal(t, 0, run(t.Context(), []string{"check"}, envOf(env), &out, &errOut), errOut.String())
	latest := pgstore.LatestSchemaVersion()
	require.Regexp(t, fmt.Sprintf(`database: ok \(PostgreSQL [0-9.]+.*; empty: serve creates schema version %d\)`, latest), out.String())
	require.Contains(t, out.String(), "upstream: ok")

	// keys works on the database directly (and migrates it, as serve would).
	out.Reset()
	require.Equal(t, 0, run(t.Context(), []string{"keys", "rotate"}, envOf(env), &out, &errOut), errOut.String())
	out.Reset()
	require.Equal(t, 0, run(t.Context(), []string{"keys", "list"}, envOf(env), &out, &errOut), errOut.String())
	require.Equal(t, 2, strings.Count(out.String(), "ES256"), out.String())

	out.Reset()
	require.Equal(t, 0, run(t.Context(), []string{"check"}, envOf(env), &out, &errOut), errOut.String())
	require.Contains(t, out.String(), fmt.Sprintf("schema version %d, current", latest))

	pgtest.Exec(t, dbURL, "INSERT INTO oidcproxy_schema_version (version, name) VALUES (99, 'future')")
	out.Reset()
	require.Equal(t, 1, run(t.Context(), []string{"check"}, envOf(env), &out, &errOut))
	require.Contains(t, out.String(), fmt.Sprintf("database: FAILED\n  the schema version is 99, newer than this oidcproxy supports (%d): upgrade oidcproxy\n", latest))
}

// Each way a database URL can be wrong is one line under "database:
// FAILED", and the password appears nowhere in the output.
func TestCheckExplainsEachDatabaseProblemInOneLineWithoutThePassword(t *testing.T) {
	const password = "pg-Pa55word-not-to-print"
	server, err := url.Parse(pgtest.Schema(t))
	require.NoError(t, err)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedAddr := closed.Addr().String()
	require.NoError(t, closed.Close())
	withPassword := func(host, db string) string {
		u := *server
		u.User = url.UserPassword(server.User.Username(), password)
		if host != "" {
			u.Host = host
		}
		if db != "" {
			u.Path = "/" + db
		}
		return u.String()
	}

	for _, tc := range []struct{ name, url, want string }{
		{"unreachable host", withPassword(closedAddr, ""), "connection refused"},
		{"wrong password", withPassword(pgtest.PasswordRefusingServer(t), ""), "refused the credentials"},
		{"missing database", withPassword("", "oidcproxy_missing_db"), `database "oidcproxy_missing_db" does not exist`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := postgresEnv(t, "http://127.0.0.1:9/.well-known/openid-configuration", tc.url)
			var out, errOut bytes.Buffer
			require.Equal(t, 1, run(t.Context(), []string{"check"}, envOf(env), &out, &errOut))
			lines := strings.Split(out.String(), "\n")
			i := indexOf(lines, "database: FAILED")
			require.GreaterOrEqual(t, i, 0, out.String())
			require.Contains(t, lines[i+1], tc.want)
			require.True(t, strings.HasPrefix(lines[i+2], "upstream:"), "the problem is one line: %q", out.String())
			require.NotContains(t, out.String()+errOut.String(), password)
		})
	}
}

// A URL that does not parse is refused with the configuration, before any
// connection, without being quoted.
func TestCheckRefusesAMalformedDatabaseURLWithoutQuotingIt(t *testing.T) {
	const password = "pg-Pa55word-not-to-print"
	env := postgresEnv(t, "http://127.0.0.1:9/.well-known/openid-configuration", "postgres://app:"+password+"@db:port/x")
	var out, errOut bytes.Buffer
	require.Equal(t, 1, run(t.Context(), []string{"check"}, envOf(env), &out, &errOut))
	require.Contains(t, errOut.String(), "OIDC_PROXY_DATABASE_URL: must be a URL such as postgres://")
	require.NotContains(t, out.String()+errOut.String(), password)
}

func TestBackupOnPostgreSQLPointsToPgDump(t *testing.T) {
	env := postgresEnv(t, "http://127.0.0.1:9/.well-known/openid-configuration", "postgres://app:pw@127.0.0.1:1/oidcproxy")
	var out, errOut bytes.Buffer
	target := filepath.Join(t.TempDir(), "backup")
	require.Equal(t, 1, run(t.Context(), []string{"backup", "--out", target}, envOf(env), &out, &errOut))
	require.Contains(t, errOut.String(), "pg_dump")
	require.NoFileExists(t, target)
}

func indexOf(lines []string, s string) int {
	for i, l := range lines {
		if l == s {
			return i
		}
	}
	return -1
}
