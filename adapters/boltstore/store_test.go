package boltstore_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/oidcproxy/oidcproxy/adapters/boltstore"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/test/storetest"
)

// The suite runs with the production defaults (fsync on, group commit),
// so what it checks is what runs in production.
func TestBoltstorePassesTheStoreConformanceSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) ports.Store { return openStore(t, boltstore.Options{}) })
}

var base = time.Date(2026, 1, 1, 12, 0, 0, 123456789, time.UTC)

// rightful is a RedeemCode check that accepts every presenter.
func rightful(domain.AuthorizationCode) error { return nil }

// stranger is a RedeemCode check that refuses every presenter: a replay it
// refuses changes nothing.
func stranger(domain.AuthorizationCode) error { return errors.New("not the code's client") }

// openStore opens a store in a fresh temporary directory (opts.Path is
// filled in when empty) and closes it when the test ends.
func openStore(t testing.TB, opts boltstore.Options) *boltstore.Store {
	t.Helper()
	if opts.Path == "" {
		opts.Path = filepath.Join(t.TempDir(), "oidcproxy.db")
	}
	s, err := boltstore.Open(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func dbPath(t *testing.T) string { return filepath.Join(t.TempDir(), "oidcproxy.db") }

func TestTheStoreFileIsReadableByItsOwnerOnly(t *testing.T) {
	path := dbPath(t)
	openStore(t, boltstore.Options{Path: path})

	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
}

func TestAnExistingStoreFileReadableByOthersIsTightened(t *testing.T) {
	path := dbPath(t)
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	require.NoError(t, os.Chmod(path, 0o644)) // whatever the umask

	openStore(t, boltstore.Options{Path: path})

	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
}

func TestEveryRecordSurvivesARestart(t *testing.T) {
	path := dbPath(t)
	ctx := t.Context()
	s, err := boltstore.Open(boltstore.Options{Path: path})
	require.NoError(t, err)
	client := domain.Client{ID: "c1", Name: "Client", RedirectURIs: []string{"http://127.0.0.1/cb"}, CreatedAt: base}
	tx := domain.Transaction{ID: "t1", ClientID: "c1", Scopes: []string{"openid"}, CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	grant := domain.Grant{ID: "g1", ClientID: "c1", Subject: "sub", Scopes: []string{"openid"}, SealedUpstream: []byte{1, 2, 3}, CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	code := domain.AuthorizationCode{Hash: "code-1", GrantID: "g1", ClientID: "c1", IssuedAt: base, ExpiresAt: base.Add(time.Hour)}
	code2 := domain.AuthorizationCode{Hash: "code-2", GrantID: "g2", ClientID: "c1", IssuedAt: base, ExpiresAt: base.Add(time.Hour)}
	rt := domain.RefreshToken{Hash: "rt-1", GrantID: "g2", ClientID: "c1", IssuedAt: base, ExpiresAt: base.Add(time.Hour)}
	key := domain.SigningKey{ID: "k1", Algorithm: "ES256", SealedPrivate: []byte{4, 5}, PublicJWK: []byte(`{}`), CreatedAt: base}
	require.NoError(t, s.CreateClient(ctx, client))
	require.NoError(t, s.CreateTransaction(ctx, tx))
	require.NoError(t, s.CreateGrant(ctx, grant, code))
	g2 := grant
	g2.ID = "g2"
	require.NoError(t, s.CreateGrant(ctx, g2, code2))
	_, _, err = s.RedeemCode(ctx, "code-2", base, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) {
		return &rt, nil
	}})

	require.NoError(t, err)
	require.NoError(t, s.PutKey(ctx, key))
	require.NoError(t, s.Close())

	s = openStore(t, boltstore.Options{Path: path})

	gotClient, err := s.GetClient(ctx, "c1")
	require.NoError(t, err)
	client.FirstGrantAt = grant.CreatedAt // its first grant marked it used
	require.Equal(t, client, gotClient)
	gotTx, err := s.ConsumeTransaction(ctx, "t1", base, nil)
	require.NoError(t, err)
	require.Equal(t, tx, gotTx)
	gotGrant, err := s.GetGrant(ctx, "g1", base)
	require.NoError(t, err)
	require.Equal(t, grant, gotGrant)
	gotRT, err := s.GetRefreshToken(ctx, "rt-1", base)
	require.NoError(t, err)
	require.Equal(t, rt, gotRT)
	keys, err := s.ListKeys(ctx)
	require.NoError(t, err)
	require.Equal(t, []domain.SigningKey{key}, keys)
	gotCode, _, err := s.RedeemCode(ctx, "code-2", base, domain.CodeUseFuncs{CheckFunc: stranger, IssueFunc: func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) {
		t.Error("a code redeemed before the restart was redeemed again")
		return nil, nil
	}})

	require.ErrorIs(t, err, domain.ErrAlreadyConsumed, "single use survives a restart")
	require.Equal(t, base, gotCode.RedeemedAt)
	_, _, err = s.RedeemCode(ctx, "code-1", base, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) {
		return nil, nil
	}})

	require.NoError(t, err)
	n, err := s.Sweep(ctx, base.Add(2*time.Hour))
	require.NoError(t, err)
	require.Equal(t, 5, n, "the expiry index survives too: both grants, both codes, the token")
}

func TestASecondOpenOfALockedFileFailsWithinTheTimeout(t *testing.T) {
	path := dbPath(t)
	openStore(t, boltstore.Options{Path: path})

	start := time.Now()
	_, err := boltstore.Open(boltstore.Options{Path: path, Timeout: 100 * time.Millisecond})

	require.ErrorIs(t, err, boltstore.ErrLocked)
	require.Contains(t, err.Error(), path)
	require.Less(t, time.Since(start), 2*time.Second)
}

func TestAFileWithANewerSchemaIsRefusedAndLeftAlone(t *testing.T) {
	path := dbPath(t)
	s, err := boltstore.Open(boltstore.Options{Path: path})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	// Pretend a future oidcproxy wrote the file. The layout of the meta
	// bucket is the one contract a newer version must keep.
	withRawDB(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), binary.BigEndian.AppendUint64(nil, 99))
	})

	_, err = boltstore.Open(boltstore.Options{Path: path})

	require.ErrorIs(t, err, boltstore.ErrSchemaTooNew)
	require.Contains(t, err.Error(), "schema 99")
	withRawDB(t, path, func(tx *bolt.Tx) error {
		require.Equal(t, uint64(99), binary.BigEndian.Uint64(tx.Bucket([]byte("meta")).Get([]byte("schema"))))
		return nil
	})
}

func TestABoltFileThatIsNotAStoreIsRefused(t *testing.T) {
	path := dbPath(t)
	withRawDB(t, path, func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("someone-elses-data"))
		return err
	})

	_, err := boltstore.Open(boltstore.Options{Path: path})

	require.ErrorIs(t, err, boltstore.ErrNotAStore)
}

func TestOpenWithoutAPathFails(t *testing.T) {
	_, err := boltstore.Open(boltstore.Options{})
	require.Error(t, err)
}

func TestPingFailsOnceTheStoreIsClosed(t *testing.T) {
	s, err := boltstore.Open(boltstore.Options{Path: dbPath(t)})
	require.NoError(t, err)
	require.NoError(t, s.Ping(t.Context()))
	require.NoError(t, s.Close())

	require.Error(t, s.Ping(t.Context()))
}

// TestRevokedAndSweptRecordsLeaveNothingBehind checks bounded storage: once
// every grant is revoked or expired and a sweep ran, the entity buckets and
// both indexes are empty — no orphaned code, token or index entry.
func TestRevokedAndSweptRecordsLeaveNothingBehind(t *testing.T) {
	path := dbPath(t)
	ctx := t.Context()
	s, err := boltstore.Open(boltstore.Options{Path: path, NoSync: true})
	require.NoError(t, err)
	for i := range 20 {
		id := fmt.Sprintf("g%d", i)
		g := domain.Grant{ID: id, ExpiresAt: base.Add(time.Duration(i+1) * time.Hour)}
		code := domain.AuthorizationCode{Hash: "code-" + id, GrantID: id, ExpiresAt: base.Add(time.Minute)}
		require.NoError(t, s.CreateGrant(ctx, g, code))
		_, _, err := s.RedeemCode(ctx, code.Hash, base, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) {

			return &domain.RefreshToken{Hash: "rt-" + id, GrantID: id, ExpiresAt: base.Add(100 * time.Hour)}, nil
		}})

		require.NoError(t, err)
		_, _, err = s.RotateRefreshToken(ctx, "rt-"+id, base, domain.RefreshUse{}, domain.RotateFunc(func(old domain.RefreshToken, g *domain.Grant) (domain.RefreshToken, error) {
			return domain.RefreshToken{Hash: "rt2-" + id, GrantID: id, ExpiresAt: base.Add(100 * time.Hour)}, nil
		}))

		require.NoError(t, err)
		require.NoError(t, s.CreateTransaction(ctx, domain.Transaction{ID: "t-" + id, ExpiresAt: base.Add(time.Minute)}))
		if i%2 == 0 {
			require.NoError(t, s.RevokeGrant(ctx, id))
		}
	}
	require.NoError(t, s.CreateClient(ctx, domain.Client{ID: "c1"}))

	_, err = s.Sweep(ctx, base.Add(50*time.Hour))
	require.NoError(t, err)
	require.NoError(t, s.Close())

	withRawDB(t, path, func(tx *bolt.Tx) error {
		for _, name := range []string{"transactions", "grants", "codes", "refresh", "expiry", "grant_children"} {
			require.Zero(t, tx.Bucket([]byte(name)).Stats().KeyN, "bucket %s is not empty", name)
		}
		require.Equal(t, 1, tx.Bucket([]byte("clients")).Stats().KeyN)
		return nil
	})
}

// withRawDB opens the file with bbolt itself, the way an operator's tool
// or a future version would, and runs fn in a read-write transaction.
func withRawDB(t *testing.T, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	require.NoError(t, db.Update(fn))
}

const crashPathEnv = "BOLTSTORE_CRASH_CHILD_PATH"

// TestCommittedRecordsSurviveAKilledWriter is a crash-consistency check,
// and it is honest about its reach: it SIGKILLs a child process that is
// committing grants from eight goroutines (fsync on, group commit), then
// checks that the file passes bbolt's consistency check and holds every
// grant the child was told was committed. A killed process leaves the OS
// page cache intact, so this proves that a commit is complete when the
// call returns and that a torn transaction is invisible; it does not
// simulate power loss, which only fsync (NoSync=false) protects against.
func TestCommittedRecordsSurviveAKilledWriter(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	path := dbPath(t)
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashChildWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashPathEnv+"="+path)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())

	var committed []string
	lines := bufio.NewScanner(out)
	deadline := time.Now().Add(20 * time.Second)
	for len(committed) < 300 && time.Now().Before(deadline) && lines.Scan() {
		if id, ok := strings.CutPrefix(lines.Text(), "committed "); ok {
			committed = append(committed, id)
		}
	}
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	require.NotEmpty(t, committed, "the child committed nothing")

	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	require.NoError(t, err)
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}))
	require.NoError(t, db.Close())

	s := openStore(t, boltstore.Options{Path: path})
	for _, id := range committed {
		_, err := s.GetGrant(t.Context(), id, base)
		require.NoError(t, err, "grant %s was reported committed but is missing", id)
	}
	t.Logf("%d acknowledged commits all present after SIGKILL", len(committed))
}

// TestCrashChildWriter is the child of TestCommittedRecordsSurviveAKilledWriter;
// it does nothing unless that test started it.
func TestCrashChildWriter(t *testing.T) {
	path := os.Getenv(crashPathEnv)
	if path == "" {
		t.Skip("runs only as the child of TestCommittedRecordsSurviveAKilledWriter")
	}
	s, err := boltstore.Open(boltstore.Options{Path: path})
	require.NoError(t, err)
	var mu sync.Mutex
	var wg sync.WaitGroup
	stop := time.Now().Add(30 * time.Second) // in case the parent dies first
	for w := range 8 {
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				id := fmt.Sprintf("g-%d-%d", w, i)
				g := domain.Grant{ID: id, SealedUpstream: make([]byte, 512), ExpiresAt: base.Add(time.Hour)}
				code := domain.AuthorizationCode{Hash: "code-" + id, GrantID: id, ExpiresAt: base.Add(time.Minute)}
				if err := s.CreateGrant(t.Context(), g, code); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				fmt.Println("committed " + id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}
