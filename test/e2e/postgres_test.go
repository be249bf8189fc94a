package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/test/pgtest"
)

// withPostgres points the proxy at a throw-away PostgreSQL schema instead
// of the bbolt file, and returns the schema's URL.
func withPostgres(t *testing.T) (proxyOption, string) {
	url := pgtest.Schema(t)
	return func(env map[string]string) {
		delete(env, "OIDC_PROXY_STORE_PATH")
		env["OIDC_PROXY_DATABASE_URL"] = url
	}, url
}

func TestAWholeFlowOnPostgreSQLSurvivesARestart(t *testing.T) {
	opt, _ := withPostgres(t)
	p, _ := startWithOP(t, opt)
	c := p.register(t, nil)
	tok, _ := p.login(t, c)

	p.restart()

	next, err := p.refresh(t, c, tok.RefreshToken)
	require.NoError(t, err, "the refresh token and the client are in the database")
	require.NotEmpty(t, next.AccessToken)
	last, err := p.refresh(t, c, next.RefreshToken)
	require.NoError(t, err, "the successor rotates in turn")
	// The first token's successor has been used, so presenting it again is
	// reuse, not a retry within the grace window.
	_, err = p.refresh(t, c, tok.RefreshToken)
	require.Equal(t, "invalid_grant", oauthErrorCode(err), "reuse of the rotated token is refused")
	_, err = p.refresh(t, c, last.RefreshToken)
	require.Equal(t, "invalid_grant", oauthErrorCode(err), "and it revoked the grant")
}

// The database holds hashes and sealed blobs only: every table, read as
// text, contains none of the secrets a flow handled.
func TestNoSecretReachesThePostgreSQLStore(t *testing.T) {
	opt, url := withPostgres(t)
	p, _ := startWithOP(t, opt)
	c := p.register(t, map[string]any{"token_endpoint_auth_method": "client_secret_post"})
	f := newFlow(t, c)
	redirect := p.authorize(t, f)
	code := redirect.Query().Get("code")
	tok, err := c.OAuth.Exchange(t.Context(), code, withVerifier(f.Verifier))
	require.NoError(t, err)
	next, err := p.refresh(t, c, tok.RefreshToken)
	require.NoError(t, err)
	// A second flow left mid-way: its code is in the database, unredeemed.
	f2 := newFlow(t, c)
	code2 := p.authorize(t, f2).Query().Get("code")
	p.stop()

	dump := dumpTables(t, url)
	require.Contains(t, dump, c.ID, "the dump reads the tables")
	for name, s := range map[string]string{
		"client secret":          c.Secret,
		"authorization code":     code,
		"pending code":           code2,
		"code verifier":          f.Verifier,
		"access token":           tok.AccessToken,
		"access token signature": strings.Split(tok.AccessToken, ".")[2],
		"refresh token":          tok.RefreshToken,
		"rotated refresh token":  next.RefreshToken,
		"upstream client secret": upstreamSecret,
	} {
		require.NotContains(t, dump, s, "%s in the database", name)
	}
}

// dumpTables renders every row of every table of the schema at url as
// JSON text.
func dumpTables(t *testing.T, url string) string {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.NotEmpty(t, tables)
	var b strings.Builder
	for _, table := range tables {
		rows, err := conn.Query(ctx, "SELECT row_to_json(t)::text FROM "+pgx.Identifier{table}.Sanitize()+" t")
		require.NoError(t, err)
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		for _, s := range texts {
			b.WriteString(s)
			b.WriteByte('\n')
		}
	}
	return b.String()
}
