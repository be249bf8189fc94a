package pgstore_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/pgstore"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/test/pgtest"
)

// propagation is the time the tests give a change to reach another
// instance: the target for a revocation to reach every gateway.
const propagation = time.Second

// listening opens a caching, listening store on url.
func listening(t testing.TB, url string) *pgstore.Store {
	t.Helper()
	return openStoreWith(t, pgstore.Options{URL: url, Listen: true})
}

// cachedGrant stores a grant through a and has b read it, so that b holds
// it in memory.
func cachedGrant(t *testing.T, a, b *pgstore.Store, id string) domain.Grant {
	t.Helper()
	g, code := benchGrant(id)
	require.NoError(t, a.CreateGrant(t.Context(), g, code))
	got, err := b.GetGrant(t.Context(), id, benchNow)
	require.NoError(t, err)
	return got
}

// gone polls s until grant id reads as not found and returns how long
// that took, failing after within.
func gone(t testing.TB, s *pgstore.Store, id string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		_, err := s.GetGrant(t.Context(), id, benchNow)
		if errors.Is(err, domain.ErrNotFound) {
			return time.Since(start)
		}
		require.NoError(t, err)
		if time.Since(start) > within {
			t.Fatalf("grant %s still readable %v after the change", id, within)
		}
		time.Sleep(time.Millisecond)
	}
}

// deleteUnnotified deletes a grant with the notification trigger disabled,
// in one transaction: a change whose notification is lost.
func deleteUnnotified(t *testing.T, url, id string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	defer conn.Close(t.Context())
	tx, err := conn.Begin(t.Context())
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(t.Context()) }()
	_, err = tx.Exec(t.Context(), "ALTER TABLE grants DISABLE TRIGGER USER")
	require.NoError(t, err)
	tag, err := tx.Exec(t.Context(), "DELETE FROM grants WHERE id = $1", id)
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected())
	_, err = tx.Exec(t.Context(), "ALTER TABLE grants ENABLE TRIGGER USER")
	require.NoError(t, err)
	require.NoError(t, tx.Commit(t.Context()))
}

func TestARevocationOnOneInstanceReachesAnothersCacheWithinASecond(t *testing.T) {
	url := pgtest.Schema(t)
	a, b := listening(t, url), listening(t, url)
	cachedGrant(t, a, b, "revoked")
	_, err := a.GetGrant(t.Context(), "revoked", benchNow)
	require.NoError(t, err)

	require.NoError(t, a.RevokeGrant(t.Context(), "revoked"))
	took := gone(t, b, "revoked", propagation)
	t.Logf("the revocation reached the other instance in %v", took)

	_, err = a.GetGrant(t.Context(), "revoked", benchNow)
	require.ErrorIs(t, err, domain.ErrNotFound, "the revoking instance reads its own write at once")
}

func TestAReuseRevocationInsideARotationReachesAnotherInstance(t *testing.T) {
	url := pgtest.Schema(t)
	a, b := listening(t, url), listening(t, url)
	g := cachedGrant(t, a, b, "reused")
	_, _, err := a.RedeemCode(t.Context(), "code-reused", benchNow, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: issueFor("rt-reused")})
	require.NoError(t, err)
	rotate := func(old domain.RefreshToken, g *domain.Grant) (domain.RefreshToken, error) {
		succ := old
		succ.Hash = "next-" + old.Hash
		return succ, nil
	}
	use := domain.RefreshUse{ClientID: g.ClientID}
	_, _, err = a.RotateRefreshToken(t.Context(), "rt-reused", benchNow, use, domain.RotateFunc(rotate))
	require.NoError(t, err)
	_, err = b.GetGrant(t.Context(), "reused", benchNow)
	require.NoError(t, err, "a rotation that only extends the grant leaves it in place")

	_, decision, err := a.RotateRefreshToken(t.Context(), "rt-reused", benchNow, use, domain.RotateFunc(rotate))
	require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
	require.Equal(t, domain.RefreshRevoke, decision)
	gone(t, b, "reused", propagation)
}

// The revocation a replayed or burned code makes inside RedeemCode is a
// deletion of the grant like any other: the trigger notifies it, and the
// other instances' caches forget the grant.
func TestARevocationInsideARedemptionReachesAnotherInstance(t *testing.T) {
	url := pgtest.Schema(t)
	a, b := listening(t, url), listening(t, url)

	cachedGrant(t, a, b, "replayed")
	_, _, err := a.RedeemCode(t.Context(), "code-replayed", benchNow, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: issueFor("rt-replayed")})
	require.NoError(t, err)
	_, err = b.GetGrant(t.Context(), "replayed", benchNow)
	require.NoError(t, err, "a redemption leaves the grant in place")
	_, _, err = a.RedeemCode(t.Context(), "code-replayed", benchNow, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: issueFor("rt-again")})
	require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
	took := gone(t, b, "replayed", propagation)
	t.Logf("a replay's revocation reached the other instance in %v", took)

	cachedGrant(t, a, b, "burned")
	_, _, err = a.RedeemCode(t.Context(), "code-burned", benchNow, domain.CodeUseFuncs{CheckFunc: stranger, IssueFunc: issueFor("rt-burned")})
	require.Error(t, err)
	took = gone(t, b, "burned", propagation)
	t.Logf("a burn's revocation reached the other instance in %v", took)
}

// A rotation that changes what a grant holds (refreshed upstream tokens)
// must reach the other instances' caches; one that only extends it is
// not notified, and an instance holding the earlier expiry must not take
// the grant for gone when that passes.
func TestGrantChangesReachOtherInstancesAndExtensionsAreReadAgain(t *testing.T) {
	url := pgtest.Schema(t)
	a, b := listening(t, url), listening(t, url)
	g, code := benchGrant("changed")
	g.ExpiresAt = benchNow.Add(time.Minute)
	require.NoError(t, a.CreateGrant(t.Context(), g, code))
	_, _, err := a.RedeemCode(t.Context(), code.Hash, benchNow, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: issueFor("rt-0")})
	require.NoError(t, err)
	_, err = b.GetGrant(t.Context(), "changed", benchNow)
	require.NoError(t, err)
	rotation := 0
	rotate := func(change func(*domain.Grant)) {
		t.Helper()
		rotation++
		_, _, err := a.RotateRefreshToken(t.Context(), fmt.Sprintf("rt-%d", rotation-1), benchNow, domain.RefreshUse{ClientID: g.ClientID}, domain.RotateFunc(
			func(old domain.RefreshToken, g *domain.Grant) (domain.RefreshToken, error) {
				change(g)
				succ := old
				succ.Hash = fmt.Sprintf("rt-%d", rotation)
				return succ, nil
			}))

		require.NoError(t, err)
	}

	rotate(func(g *domain.Grant) { g.ExpiresAt = benchNow.Add(time.Hour) })
	later := benchNow.Add(2 * time.Minute) // past the first expiry, within the extension
	got, err := b.GetGrant(t.Context(), "changed", later)
	require.NoError(t, err, "an extended grant is read again, not reported gone")
	require.Equal(t, benchNow.Add(time.Hour), got.ExpiresAt)

	fresh := bytes.Repeat([]byte{7}, 64)
	rotate(func(g *domain.Grant) { g.SealedUpstream = fresh })
	require.Eventually(t, func() bool {
		got, err := b.GetGrant(t.Context(), "changed", benchNow)
		return err == nil && bytes.Equal(got.SealedUpstream, fresh)
	}, propagation, time.Millisecond, "the new upstream tokens reach the other instance")
}

// An instance reads its own changes at once: it forgets what it changed
// when the change commits, without waiting for the notification (here:
// none comes, the trigger is disabled).
func TestAnInstanceReadsItsOwnChangesWithoutTheNotification(t *testing.T) {
	url := pgtest.Schema(t)
	a := listening(t, url)
	pgtest.Exec(t, url, "ALTER TABLE grants DISABLE TRIGGER USER")
	g, code := benchGrant("own")
	require.NoError(t, a.CreateGrant(t.Context(), g, code))
	_, _, err := a.RedeemCode(t.Context(), code.Hash, benchNow, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: issueFor("rt-own")})
	require.NoError(t, err)
	_, err = a.GetGrant(t.Context(), "own", benchNow)
	require.NoError(t, err)

	fresh := bytes.Repeat([]byte{9}, 32)
	_, _, err = a.RotateRefreshToken(t.Context(), "rt-own", benchNow, domain.RefreshUse{ClientID: g.ClientID}, domain.RotateFunc(
		func(old domain.RefreshToken, g *domain.Grant) (domain.RefreshToken, error) {
			g.SealedUpstream = fresh
			succ := old
			succ.Hash = "rt-own-next"
			return succ, nil
		}))

	require.NoError(t, err)
	got, err := a.GetGrant(t.Context(), "own", benchNow)
	require.NoError(t, err)
	require.Equal(t, fresh, got.SealedUpstream, "a rotation's grant")

	require.NoError(t, a.RevokeGrant(t.Context(), "own"))
	_, err = a.GetGrant(t.Context(), "own", benchNow)
	require.ErrorIs(t, err, domain.ErrNotFound, "a revocation")
}

func TestAClientDeletedByHandIsForgottenByEveryInstance(t *testing.T) {
	url := pgtest.Schema(t)
	a, b := listening(t, url), listening(t, url)
	c := domain.Client{ID: "client-1", Name: "one", RedirectURIs: []string{"http://127.0.0.1/cb"}, CreatedAt: benchNow}
	require.NoError(t, a.CreateClient(t.Context(), c))
	_, err := b.GetClient(t.Context(), c.ID)
	require.NoError(t, err)

	pgtest.Exec(t, url, "DELETE FROM clients WHERE id = $1", c.ID)
	require.Eventually(t, func() bool {
		_, err := b.GetClient(t.Context(), c.ID)
		return errors.Is(err, domain.ErrNotFound)
	}, propagation, time.Millisecond)
}

// A change whose notification never arrives (here: made with the trigger
// disabled) stays invisible to a cache for at most CacheTTL.
func TestALostNotificationLeavesAStaleGrantForAtMostTheCacheLifetime(t *testing.T) {
	url := pgtest.Schema(t)
	const ttl = 300 * time.Millisecond
	a := listening(t, url)
	b := openStoreWith(t, pgstore.Options{URL: url, Listen: true, CacheTTL: ttl})
	cachedGrant(t, a, b, "stale")

	deleteUnnotified(t, url, "stale")
	_, err := b.GetGrant(t.Context(), "stale", benchNow)
	require.NoError(t, err, "the cache serves the grant: nothing told it")
	took := gone(t, b, "stale", ttl+propagation)
	require.Less(t, took, ttl+100*time.Millisecond)
}

// recorder collects a store's listener events and log lines.
type recorder struct {
	down, up chan struct{}
	mu       sync.Mutex
	logs     bytes.Buffer
}

func newRecorder() *recorder {
	return &recorder{down: make(chan struct{}, 16), up: make(chan struct{}, 16)}
}

func (r *recorder) options(url string) pgstore.Options {
	return pgstore.Options{
		URL: url, Listen: true, Timeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(r, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Events: pgstore.ListenerEvents{
			Disconnected: func() { r.down <- struct{}{} },
			Reconnected:  func() { r.up <- struct{}{} },
		},
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.logs.Write(p)
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.logs.String()
}

func wait(t *testing.T, ch <-chan struct{}, within time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(within):
		t.Fatalf("no %s within %v", what, within)
	}
}

// While the listening connection is lost the cache is bypassed, so a
// change made meanwhile is seen at once although no notification could
// arrive; the loss is logged at Warn and reported; when the connection is
// back, the cache serves again, starting empty, and a key-ring reload is
// signalled (a rotation may have been missed).
func TestWhileTheListenerIsLostTheCacheIsBypassed(t *testing.T) {
	url := pgtest.Schema(t)
	_, proxy := pgtest.ProxyURL(t, url)
	rec := newRecorder()
	a := listening(t, url)
	b := openStoreWith(t, pgstore.WithListenerDial(rec.options(url), proxy.Dial))
	cachedGrant(t, a, b, "during")
	cachedGrant(t, a, b, "before")
	select { // the rotation signal of the start, if any, is not what is tested
	case <-b.KeyRingChanges():
	default:
	}

	proxy.Cut()
	wait(t, rec.down, propagation, "disconnection event")
	require.Contains(t, rec.String(), "level=WARN")
	require.Contains(t, rec.String(), "lost the notification connection")

	deleteUnnotified(t, url, "during")
	_, err := b.GetGrant(t.Context(), "during", benchNow)
	require.ErrorIs(t, err, domain.ErrNotFound, "a change made while the listener is down is seen at once")
	g, code := benchGrant("read-while-down")
	require.NoError(t, a.CreateGrant(t.Context(), g, code))
	_, err = b.GetGrant(t.Context(), g.ID, benchNow)
	require.NoError(t, err)
	deleteUnnotified(t, url, g.ID)
	_, err = b.GetGrant(t.Context(), g.ID, benchNow)
	require.ErrorIs(t, err, domain.ErrNotFound, "nothing read while the listener is down is served from memory")

	proxy.Restore()
	wait(t, rec.up, 10*time.Second, "reconnection event")
	wait(t, b.KeyRingChanges(), propagation, "key-ring reload signal")
	deleteUnnotified(t, url, "before")
	_, err = b.GetGrant(t.Context(), "before", benchNow)
	require.ErrorIs(t, err, domain.ErrNotFound, "the cache starts empty after a reconnection")

	cachedGrant(t, a, b, "after")
	require.NoError(t, a.RevokeGrant(t.Context(), "after"))
	gone(t, b, "after", propagation)
}

// A connection that stops carrying anything, without an error (a network
// partition), is noticed by the heartbeat.
func TestAStalledListenerIsNoticedByItsHeartbeat(t *testing.T) {
	url := pgtest.Schema(t)
	_, proxy := pgtest.ProxyURL(t, url)
	rec := newRecorder()
	b := openStoreWith(t, pgstore.WithListenerDial(rec.options(url), proxy.Dial))
	g, code := benchGrant("stalled")
	require.NoError(t, b.CreateGrant(t.Context(), g, code))
	_, err := b.GetGrant(t.Context(), "stalled", benchNow)
	require.NoError(t, err)

	proxy.Stall()
	start := time.Now()
	// One heartbeat interval (1 s) plus the heartbeat's bound, the store's
	// 1 s timeout.
	wait(t, rec.down, 4*time.Second, "disconnection event")
	t.Logf("the stalled connection was noticed after %v", time.Since(start))
	deleteUnnotified(t, url, "stalled")
	_, err = b.GetGrant(t.Context(), "stalled", benchNow)
	require.ErrorIs(t, err, domain.ErrNotFound)
	proxy.Restore()
	wait(t, rec.up, 10*time.Second, "reconnection event")
}

func TestAKeyStoredByOneInstanceIsAnnouncedToTheOthers(t *testing.T) {
	url := pgtest.Schema(t)
	a, b := listening(t, url), listening(t, url)
	elsewhere := listening(t, pgtest.Schema(t))
	require.NoError(t, a.PutKey(t.Context(), key("k1")))
	wait(t, b.KeyRingChanges(), propagation, "key-ring change on the other instance")
	wait(t, a.KeyRingChanges(), propagation, "key-ring change on the changing instance")
	select {
	case <-elsewhere.KeyRingChanges():
		t.Fatal("a store in another schema was told of the change")
	case <-time.After(200 * time.Millisecond):
	}
	require.Nil(t, openStore(t, url).KeyRingChanges(), "a store that does not listen announces nothing")
}

func TestOnlyOneInstanceSweepsAtATime(t *testing.T) {
	url := pgtest.Schema(t)
	a := openStore(t, url)
	for i := range 3 {
		g, code := benchGrant(fmt.Sprintf("old%d", i))
		g.ExpiresAt = benchNow.Add(-time.Second)
		require.NoError(t, a.CreateGrant(t.Context(), g, code))
	}
	var schema string
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	defer conn.Close(t.Context())
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT current_schema()").Scan(&schema))
	_, err = conn.Exec(t.Context(), "SELECT pg_advisory_lock($1)", pgstore.SweepLockKey(schema))
	require.NoError(t, err)

	n, err := a.Sweep(t.Context(), benchNow)
	require.NoError(t, err)
	require.Zero(t, n, "another session holds the sweep lock: this instance leaves the sweep to it")
	var left int
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*) FROM grants").Scan(&left))
	require.Equal(t, 3, left)

	_, err = conn.Exec(t.Context(), "SELECT pg_advisory_unlock($1)", pgstore.SweepLockKey(schema))
	require.NoError(t, err)
	n, err = a.Sweep(t.Context(), benchNow)
	require.NoError(t, err)
	require.Equal(t, 6, n, "three grants and their codes")

	var free bool
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT pg_try_advisory_lock($1)", pgstore.SweepLockKey(schema)).Scan(&free))
	require.True(t, free, "the sweep released its lock")
}
