package boltstore_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/oidcproxy/oidcproxy/adapters/boltstore"
	"github.com/oidcproxy/oidcproxy/domain"
)

// floodSize is how many registrations and abandoned authorizations the
// compaction test writes: the flood that grew a real store to 50 MB.
const floodSize = 20_000

func floodClient(i int) domain.Client {
	return domain.Client{
		ID: fmt.Sprintf("client-%05d", i), Name: fmt.Sprintf("MCP client %d", i),
		RedirectURIs:    []string{"http://127.0.0.1/callback", "http://localhost/callback"},
		ApplicationType: domain.ApplicationNative, TokenEndpointAuthMethod: domain.AuthNone,
		GrantTypes:    []string{domain.GrantAuthorizationCode, domain.GrantRefreshToken},
		ResponseTypes: []string{domain.ResponseTypeCode}, Scope: "openid email profile offline_access",
		SoftwareID: "mcp-client", SoftwareVersion: "1.0.0", CreatedAt: base,
	}
}

func floodTransaction(i int) domain.Transaction {
	return domain.Transaction{
		ID: domain.HashToken(fmt.Sprintf("tx-%d", i)), ClientID: fmt.Sprintf("client-%05d", i),
		RedirectURI: "http://127.0.0.1/callback", State: strings.Repeat("s", 64),
		CodeChallenge: domain.HashToken("verifier"), Scopes: []string{"openid", "email", "profile", "offline_access"},
		Resource: "https://mcp.example.com/mcp", UpstreamVerifier: domain.HashToken(fmt.Sprintf("v-%d", i)),
		Nonce: domain.HashToken(fmt.Sprintf("n-%d", i)), CreatedAt: base, ExpiresAt: base.Add(10 * time.Minute),
	}
}

// parallel runs fn(0..n-1) on 64 goroutines, so that the writes share
// group commits and the flood takes seconds.
func parallel(t *testing.T, n int, fn func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 64 {
		wg.Go(func() {
			for i := g; i < n; i += 64 {
				if err := fn(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	require.NoError(t, <-errs)
}

// A flood of registrations and abandoned authorizations grows the file;
// the sweep frees the pages of the transactions but the file keeps its
// size until Compact. Compact gives the space back, and the compacted file
// holds exactly the records a backup taken before it holds, schema
// version included, with mode 0600, and opens as a store.
func TestCompactShrinksAFileGrownByAFloodAndKeepsEveryRecord(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "oidcproxy.db")
	s, err := boltstore.Open(boltstore.Options{Path: path, NoSync: true})
	require.NoError(t, err)
	ctx := t.Context()
	parallel(t, floodSize, func(i int) error { return s.CreateClient(ctx, floodClient(i)) })
	parallel(t, floodSize, func(i int) error { return s.CreateTransaction(ctx, floodTransaction(i)) })
	g := benchGrant("grant-kept")
	code := benchCode(codeHash(1), g.ID)
	code.ExpiresAt = base.Add(24 * time.Hour) // outlives the sweep
	require.NoError(t, s.CreateGrant(ctx, g, code))
	require.NoError(t, s.PutKey(ctx, domain.SigningKey{ID: "key-1", Algorithm: "ES256", SealedPrivate: []byte("sealed"), PublicJWK: []byte(`{}`), CreatedAt: base}))
	removed, err := s.Sweep(ctx, base.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, floodSize, removed, "the sweep removes the abandoned authorizations")
	backup := filepath.Join(dir, "before.db")
	f, err := os.Create(backup)
	require.NoError(t, err)
	_, err = s.Backup(ctx, f)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.NoError(t, s.Close())
	require.NoError(t, os.Chmod(path, 0o640)) // Compact writes 0600 whatever it found

	res, err := boltstore.Compact(boltstore.Options{Path: path})
	require.NoError(t, err)
	info, err := os.Stat(path)
	require.NoError(t, err)
	t.Logf("compacted %d → %d bytes", res.Before, res.After)
	require.Equal(t, info.Size(), res.After)
	require.Less(t, res.After, res.Before*3/4, "the freed pages went back to the file system")
	if runtime.GOOS != "windows" {
		require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	}
	leftovers, err := filepath.Glob(filepath.Join(dir, ".oidcproxy.db.compact-*"))
	require.NoError(t, err)
	require.Empty(t, leftovers)

	require.Equal(t, dump(t, backup), dump(t, path), "every bucket, key and value, the schema version among them")

	s, err = boltstore.Open(boltstore.Options{Path: path, NoSync: true})
	require.NoError(t, err)
	defer s.Close()
	for _, i := range []int{0, floodSize / 2, floodSize - 1} {
		c, err := s.GetClient(ctx, floodClient(i).ID)
		require.NoError(t, err)
		require.Equal(t, floodClient(i).Name, c.Name)
	}
	_, gotGrant, err := s.RedeemCode(ctx, codeHash(1), base, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(_ domain.AuthorizationCode, g domain.Grant) (*domain.RefreshToken, error) {
		rt := benchToken(tokenHash(1), g.ID)
		return &rt, nil
	}})

	require.NoError(t, err, "the compacted store takes writes")
	require.Equal(t, g.Subject, gotGrant.Subject)
	keys, err := s.ListKeys(ctx)
	require.NoError(t, err)
	require.Len(t, keys, 1)
}

// dump lists every bucket, key and value of a bbolt file, read with bbolt
// directly (not with the code under test), as "bucket/key=value" lines.
func dump(t *testing.T, path string) []string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	require.NoError(t, err)
	defer db.Close()
	var lines []string
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				lines = append(lines, fmt.Sprintf("%s/%x=%x", name, k, v))
				return nil
			})
		})
	}))
	require.NotEmpty(t, lines)
	return lines
}

// holdEnv makes the test binary, run again as a child process, hold a
// store open until its standard input closes (TestMain).
const holdEnv = "BOLTSTORE_TEST_HOLD"

func TestMain(m *testing.M) {
	if path := os.Getenv(holdEnv); path != "" {
		os.Exit(hold(path))
	}
	os.Exit(m.Run())
}

func hold(path string) int {
	s, err := boltstore.Open(boltstore.Options{Path: path, NoSync: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	fmt.Println("held")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	return 0
}

// holdInChild starts a process that holds the store at path, as a running
// server does, and returns when it holds it; the process ends with the
// test.
func holdInChild(t *testing.T, path string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Wait() // the process has ended: its stderr is complete
		t.Fatalf("the holding process failed: %v: %s", err, stderr.String())
	}
	require.Equal(t, "held\n", line)
}

func TestCompactRefusesAStoreAnotherProcessHolds(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "oidcproxy.db")
	s, err := boltstore.Open(boltstore.Options{Path: path, NoSync: true})
	require.NoError(t, err)
	require.NoError(t, s.CreateClient(t.Context(), floodClient(1)))
	require.NoError(t, s.Close())
	before := dump(t, path)

	holdInChild(t, path)
	_, err = boltstore.Compact(boltstore.Options{Path: path, Timeout: 200 * time.Millisecond})
	require.ErrorIs(t, err, boltstore.ErrLocked)
	require.Contains(t, err.Error(), "locked by another process")
	require.Contains(t, err.Error(), "stop the server first")

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left behind")
	require.Equal(t, before, dumpShared(t, path), "the file is untouched")
}

// dumpShared is dump for a file another process holds: a read-only open
// takes a shared lock, which waits for the holder, so it reads a copy.
func dumpShared(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	cp := filepath.Join(t.TempDir(), "copy.db")
	require.NoError(t, os.WriteFile(cp, raw, 0o600))
	return dump(t, cp)
}

func TestCompactRefusesWhatIsNotAStore(t *testing.T) {
	dir := t.TempDir()
	_, err := boltstore.Compact(boltstore.Options{Path: filepath.Join(dir, "absent.db")})
	require.ErrorIs(t, err, os.ErrNotExist)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "compacting a missing file creates nothing")

	foreign := filepath.Join(dir, "foreign.db")
	db, err := bolt.Open(foreign, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("someone-elses"))
		return err
	}))
	require.NoError(t, db.Close())
	_, err = boltstore.Compact(boltstore.Options{Path: foreign})
	require.ErrorIs(t, err, boltstore.ErrNotAStore)
}

// Compact renames the compacted file over the store while it holds the old
// file's lock. A server that started meanwhile opened the old file and
// waits for its lock: when it gets it, it must open the new file instead,
// or everything it writes would go to a file without a name.
func TestAnOpenThatWaitedThroughACompactionOpensTheNewFile(t *testing.T) {
	if _, err := os.ReadDir("/proc/self/fd"); err != nil {
		t.Skip("needs /proc/self/fd to see when the waiting open has the old file open")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "oidcproxy.db")
	s, err := boltstore.Open(boltstore.Options{Path: path, NoSync: true})
	require.NoError(t, err)
	require.NoError(t, s.CreateClient(t.Context(), floodClient(1)))
	require.NoError(t, s.Close())

	// The compaction: it holds the old file's lock...
	holder, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoFreelistSync: true})
	require.NoError(t, err)
	type opened struct {
		s   *boltstore.Store
		err error
	}
	waiter := make(chan opened, 1)
	go func() {
		s, err := boltstore.Open(boltstore.Options{Path: path, NoSync: true, Timeout: 20 * time.Second})
		waiter <- opened{s, err}
	}()
	require.Eventually(t, func() bool { return openCount(path) == 2 }, 10*time.Second, time.Millisecond,
		"the server's open has the old file open and waits for its lock")

	// ...writes the new file and renames it over the old one...
	next := filepath.Join(dir, "next.db")
	ns, err := boltstore.Open(boltstore.Options{Path: next, NoSync: true})
	require.NoError(t, err)
	require.NoError(t, ns.CreateClient(t.Context(), floodClient(2)))
	require.NoError(t, ns.Close())
	require.NoError(t, os.Rename(next, path))
	// ...and lets go of the old one.
	require.NoError(t, holder.Close())

	got := <-waiter
	require.NoError(t, got.err)
	require.NoError(t, got.s.CreateClient(t.Context(), floodClient(3)))
	require.NoError(t, got.s.Close())

	s, err = boltstore.Open(boltstore.Options{Path: path, NoSync: true})
	require.NoError(t, err)
	defer s.Close()
	for _, i := range []int{2, 3} {
		_, err := s.GetClient(t.Context(), floodClient(i).ID)
		require.NoError(t, err, "client %d is in the file at the store's path", i)
	}
}

// openCount reports how many of this process's file descriptors refer to
// path.
func openCount(path string) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == path {
			n++
		}
	}
	return n
}
