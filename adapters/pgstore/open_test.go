package pgstore_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/pgstore"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/test/pgtest"
)

func TestTwoInstancesOpeningAnEmptyDatabaseAtOnceMigrateItOnce(t *testing.T) {
	url := pgtest.Database(t)
	const instances = 4
	errs := make([]error, instances)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range instances {
		wg.Go(func() {
			<-start
			s, err := pgstore.Open(t.Context(), pgstore.Options{URL: url})
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}

	st, err := pgstore.Inspect(t.Context(), pgstore.Options{URL: url})
	require.NoError(t, err)
	require.Equal(t, pgstore.LatestSchemaVersion(), st.SchemaVersion)
	require.Equal(t, st.LatestVersion, st.SchemaVersion)
	require.NotEmpty(t, st.Server)
}

func TestAStoreReopensItsMigratedDatabaseWithItsRecords(t *testing.T) {
	url := pgtest.Schema(t)
	s := openStore(t, url)
	require.NoError(t, s.PutKey(t.Context(), key("k1")))
	s.Close()

	again := openStore(t, url)
	keys, err := again.ListKeys(t.Context())
	require.NoError(t, err)
	require.Len(t, keys, 1)
}

func TestABinaryOlderThanTheSchemaRefusesToStart(t *testing.T) {
	url := pgtest.Schema(t)
	openStore(t, url).Close()
	newer := pgstore.LatestSchemaVersion() + 1
	pgtest.Exec(t, url, "INSERT INTO oidcproxy_schema_version (version, name) VALUES ($1, 'from_the_future')", newer)

	_, err := pgstore.Open(t.Context(), pgstore.Options{URL: url})
	require.ErrorIs(t, err, pgstore.ErrSchemaTooNew)
	require.Contains(t, err.Error(), "upgrade oidcproxy")

	st, err := pgstore.Inspect(t.Context(), pgstore.Options{URL: url})
	require.NoError(t, err)
	require.Equal(t, newer, st.SchemaVersion)
}

func TestInspectReportsAnEmptyDatabaseAsSchemaZeroAndChangesNothing(t *testing.T) {
	url := pgtest.Schema(t)
	st, err := pgstore.Inspect(t.Context(), pgstore.Options{URL: url})
	require.NoError(t, err)
	require.Zero(t, st.SchemaVersion)

	st, err = pgstore.Inspect(t.Context(), pgstore.Options{URL: url})
	require.NoError(t, err)
	require.Zero(t, st.SchemaVersion, "inspecting twice did not create the schema")
}

// A connection problem is one line that says which problem it is, and
// never quotes the password.
func TestConnectionProblemsAreOneClearLineWithoutThePassword(t *testing.T) {
	const password = "s3cret-Pa55:word"
	server := pgtest.Schema(t) // skips without a server; its host and port are reused below
	u, err := url.Parse(server)
	require.NoError(t, err)
	withPassword := func(host, db string) string {
		v := *u
		v.User = url.UserPassword(u.User.Username(), password)
		if host != "" {
			v.Host = host
		}
		if db != "" {
			v.Path = "/" + db
		}
		return v.String()
	}

	cases := []struct {
		name, url, want string
		unavailable     bool
	}{
		{
			name: "malformed URL",
			url:  "postgres://app:" + password + "@db.example.com:port/oidcproxy",
			want: "the database URL is malformed",
		},
		{
			name: "not a postgres URL",
			url:  "mysql://app:" + password + "@db.example.com/oidcproxy",
			want: "must start with postgres://",
		},
		{
			name:        "unreachable host",
			url:         withPassword(closedPort(t), ""),
			want:        "connection refused",
			unavailable: true,
		},
		{
			name:        "silent host",
			url:         withPassword(silentServer(t), ""),
			want:        "no answer from the database server",
			unavailable: true,
		},
		{
			name: "wrong password",
			url:  withPassword(pgtest.PasswordRefusingServer(t), ""),
			want: "refused the credentials",
		},
		{
			name: "missing database",
			url:  withPassword("", "oidcproxy_no_such_database"),
			want: `database "oidcproxy_no_such_database" does not exist`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := pgstore.Options{URL: tc.url, Timeout: time.Second}
			for name, call := range map[string]func() error{
				"Open": func() error {
					s, err := pgstore.Open(t.Context(), opts)
					if err == nil {
						s.Close()
					}
					return err
				},
				"Inspect": func() error {
					_, err := pgstore.Inspect(t.Context(), opts)
					return err
				},
			} {
				started := time.Now()
				err := call()
				require.Error(t, err, name)
				msg := err.Error()
				require.Contains(t, msg, tc.want, name)
				require.NotContains(t, msg, password, name)
				require.NotContains(t, msg, url.QueryEscape(password), name)
				require.NotContains(t, msg, "\n", "%s: one line", name)
				var ce *pgstore.ConnectionError
				require.ErrorAs(t, err, &ce, name)
				require.Equal(t, tc.unavailable, errors.Is(err, ports.ErrUnavailable), name)
				require.Less(t, time.Since(started), 5*time.Second, "%s: bounded by the timeout", name)
			}
		})
	}
}

func TestPingAnswersWhileTheDatabaseIsUp(t *testing.T) {
	s := openStore(t, pgtest.Schema(t))
	require.NoError(t, s.Ping(t.Context()))
}

// When the server ends the store's sessions (a restart, a failover), the
// next calls fail as unavailable, not as a store bug, and the pool
// reconnects by itself afterwards.
func TestTerminatedSessionsReadAsUnavailableAndThePoolRecovers(t *testing.T) {
	url := pgtest.Database(t)
	s := openStore(t, url)
	require.NoError(t, s.PutKey(t.Context(), key("k1")))
	db := strings.TrimPrefix(mustParse(t, url).Path, "/")

	pgtest.Exec(t, url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", db)

	_, err := s.ListKeys(t.Context())
	if err != nil {
		require.ErrorIs(t, err, ports.ErrUnavailable)
	}
	require.Eventually(t, func() bool {
		keys, err := s.ListKeys(t.Context())
		return err == nil && len(keys) == 1
	}, 10*time.Second, 50*time.Millisecond)
}

func TestACallThatOutlivesTheTimeoutIsUnavailable(t *testing.T) {
	url := pgtest.Schema(t)
	s, err := pgstore.Open(t.Context(), pgstore.Options{URL: url, Timeout: time.Second})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	require.NoError(t, s.PutKey(t.Context(), key("k1")))

	// Another session holds the key row; the store's write waits for it
	// past its timeout.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	holder, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer holder.Close(ctx)
	_, err = holder.Exec(ctx, "BEGIN")
	require.NoError(t, err)
	_, err = holder.Exec(ctx, "SELECT 1 FROM signing_keys WHERE id = 'k1' FOR UPDATE")
	require.NoError(t, err)

	started := time.Now()
	err = s.DeleteKey(t.Context(), "k1")
	require.ErrorIs(t, err, ports.ErrUnavailable)
	require.Less(t, time.Since(started), 5*time.Second)
	_, err = holder.Exec(ctx, "ROLLBACK")
	require.NoError(t, err)
}

// closedPort is an address on which nothing listens.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// silentServer accepts connections and never answers.
func silentServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

func mustParse(t *testing.T, raw string) *url.URL {
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u
}

// key is a signing key with the fields a round trip needs.
func key(id string) domain.SigningKey {
	return domain.SigningKey{ID: id, Algorithm: "ES256", SealedPrivate: []byte("sealed"), PublicJWK: []byte("{}"),
		CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 1, time.UTC)}
}
