package pgstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/pgstore"
	"github.com/oidcproxy/oidcproxy/test/pgtest"
)

// A grant changes without a notification only where no cached copy can be
// wrong: its expiry made later and its last use (what a refresh rotation
// writes). Every other change notifies, whichever statement makes it: the
// store's or an operator's.
func TestAGrantChangeNotifiesUnlessOnlyItsExpiryGrowsOrItsLastUseMoves(t *testing.T) {
	url := pgtest.Schema(t)
	s := openStoreWith(t, pgstore.Options{URL: url})
	g, code := benchGrant("g")
	require.NoError(t, s.CreateGrant(t.Context(), g, code))
	listener, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = listener.Close(context.Background()) })
	_, err = listener.Exec(t.Context(), "LISTEN oidcproxy")
	require.NoError(t, err)
	next := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		n, err := listener.WaitForNotification(ctx)
		require.NoError(t, err)
		return n.Payload
	}

	for _, tc := range []struct {
		sql      string
		notifies bool
	}{
		{"UPDATE grants SET expires_ns = expires_ns + 1, last_used_ns = 42 WHERE id = 'g'", false},
		{"UPDATE grants SET last_used_ns = 43 WHERE id = 'g'", false},
		{"UPDATE grants SET expires_ns = expires_ns WHERE id = 'g'", false},
		{"UPDATE grants SET subject = subject, expires_ns = expires_ns + 1 WHERE id = 'g'", false},
		{"UPDATE grants SET expires_ns = expires_ns - 1 WHERE id = 'g'", true},
		{"UPDATE grants SET sealed_upstream = '\\x01'::bytea WHERE id = 'g'", true},
		{"UPDATE grants SET machine = NOT machine WHERE id = 'g'", true},
		{"UPDATE grants SET scopes = array_append(scopes, 'more'), last_used_ns = 44 WHERE id = 'g'", true},
		{"DELETE FROM grants WHERE id = 'g'", true},
	} {
		pgtest.Exec(t, url, tc.sql)
		// Notifications arrive in commit order: the marker comes after
		// whatever the change sent.
		pgtest.Exec(t, url, "SELECT pg_notify('oidcproxy', 'marker')")
		first := next()
		if !tc.notifies {
			require.Equal(t, "marker", first, "%s notified", tc.sql)
			continue
		}
		require.NotEqual(t, "marker", first, "%s did not notify", tc.sql)
		require.True(t, strings.Contains(first, `"grants"`) && strings.Contains(first, `"g"`), "%s notified %s", tc.sql, first)
		require.Equal(t, "marker", next(), "%s notified more than once", tc.sql)
	}
}

// The notifying UPDATE trigger lists the columns whose change it reports
// (0007_notify_rotations_cheaply.sql): every column of grants but the two a
// rotation slides. A column added later and left out of the list would
// change without reaching the other instances' caches.
func TestOnlyTheSlidingColumnsOfAGrantChangeWithoutANotification(t *testing.T) {
	url := pgtest.Schema(t)
	openStoreWith(t, pgstore.Options{URL: url})
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	rows, err := conn.Query(t.Context(), `
		SELECT attname::text FROM pg_attribute
		 WHERE attrelid = 'grants'::regclass AND attnum > 0 AND NOT attisdropped
		   AND attnum <> ALL ((SELECT tgattr FROM pg_trigger
		                        WHERE tgrelid = 'grants'::regclass AND tgname = 'grants_notify_update')::int2[])
		 ORDER BY attname`)
	require.NoError(t, err)
	unlisted, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"expires_ns", "last_used_ns"}, unlisted)
}
