package boltstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/oidcproxy/oidcproxy/ports"
)

// schemaVersion is the layout this code reads and writes. Bump it, with a
// migration in Open, whenever a bucket or record format changes
// incompatibly.
//
//   - 1: the first layout.
//   - 2: a code's redemption is a grant_children entry (markRedeemed)
//     instead of a field of the code record. Files of schema 1 are read
//     as they are (their redeemed codes keep the field) and marked 2 on
//     open, so that an older binary, which would take a marked code for
//     unredeemed, refuses the file instead of accepting a replayed code.
//   - 3: the owner index (bucket grant_owners, owners.go) finds grants by
//     subject and by client. Opening a file of schema 1 or 2 builds it
//     from the stored grants and marks the file 3, so that an older
//     binary, which would store and delete grants without index entries
//     (and so hide them from the operator's listings and revocations, or
//     leave entries naming deleted grants), refuses the file.
//   - 4: the meta bucket counts the clients that registered themselves,
//     and the unused_clients index lists those that never completed a
//     grant, by creation time (registration.go). Files of schemas 1 to 3 get
//     both on open: the count from their clients, and their clients
//     marked used from their creation on (whether they were cannot be
//     known), so that no client from before the upgrade is swept. An
//     older binary, which would neither count nor index, refuses the
//     file.
const schemaVersion = 4

// Defaults for Options. MaxBatchSize only caps a group commit: batches
// form from whatever queued during the previous commit (see committer); on
// a 2-core machine with 50 concurrent redeemers 32 and 256 measured the
// same.
const (
	DefaultTimeout      = time.Second
	DefaultMaxBatchSize = 64
)

// Bucket names and meta keys.
var (
	bucketMeta         = []byte("meta")
	bucketClients      = []byte("clients")
	bucketTransactions = []byte("transactions")
	bucketGrants       = []byte("grants")
	bucketCodes        = []byte("codes")
	bucketRefresh      = []byte("refresh")
	bucketKeys         = []byte("keys")
	bucketExpiry       = []byte("expiry")
	bucketChildren     = []byte("grant_children")
	bucketOwners       = []byte("grant_owners")
	bucketUnused       = []byte("unused_clients")
	// bucketAssertions holds used assertion ids (domain.AssertionReplayKey
	// → sortable expiry); added without a schema change: Open creates it
	// in older files, and older binaries ignore it (their sweep drops the
	// index entries of a kind they do not know).
	bucketAssertions = []byte("assertions")

	allBuckets = [][]byte{
		bucketMeta, bucketClients, bucketTransactions, bucketGrants, bucketCodes,
		bucketRefresh, bucketKeys, bucketExpiry, bucketChildren, bucketOwners, bucketUnused,
		bucketAssertions,
	}

	metaSchema     = []byte("schema")
	metaRegistered = []byte("registered_clients")
)

// Errors Open reports, so that the command line can explain them.
var (
	// ErrLocked: another process (or another Store in this one) holds the
	// file open; bbolt allows one writer per file.
	ErrLocked = errors.New("store file is locked by another process")
	// ErrSchemaTooNew: the file was written by a newer oidcproxy whose
	// layout this binary does not understand; it is left untouched.
	ErrSchemaTooNew = errors.New("store file has a newer schema than this binary supports")
	// ErrNotAStore: the file is a bbolt database that oidcproxy did not create.
	ErrNotAStore = errors.New("file is not an oidcproxy store")
)

// errEmptyKey refuses records without a key: they could never be read back.
var errEmptyKey = errors.New("empty key")

// Options configure Open.
type Options struct {
	// Path of the database file; created with mode 0600 if absent.
	Path string
	// NoSync skips the fsync after each commit. For tests and benchmarks
	// only: a machine crash or power loss can then lose committed records
	// or corrupt the file.
	NoSync bool
	// Timeout bounds the wait for the file lock (default DefaultTimeout).
	Timeout time.Duration
	// MaxBatchSize is how many writes one group commit holds at most
	// (default DefaultMaxBatchSize); 1 commits every write alone. A
	// tuning knob for benchmarks, which production leaves at the
	// default: BenchmarkBatchTuning in bench searches for the best cap,
	// and the store's own benchmarks set 1 to measure what grouping buys.
	MaxBatchSize int
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxBatchSize <= 0 {
		o.MaxBatchSize = DefaultMaxBatchSize
	}
	return o
}

// Store is a ports.Store on a bbolt file. It is safe for concurrent use.
type Store struct {
	db     *bolt.DB
	commit *committer
	cache  caches
}

var _ ports.Store = (*Store)(nil)

// Open opens (or creates, mode 0600) the store file, waiting at most
// opts.Timeout for the file lock, and checks or writes the schema version.
// An existing file readable by others is tightened to 0600. Close releases
// it.
func Open(opts Options) (*Store, error) {
	if opts.Path == "" {
		return nil, errors.New("boltstore: open: empty path")
	}
	opts = opts.withDefaults()
	if err := restrictMode(opts.Path); err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", opts.Path, err)
	}
	db, err := openLocked(opts.Path, bolt.Options{Timeout: opts.Timeout, NoSync: opts.NoSync, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("boltstore: open %s: %w (waited %s)", opts.Path, ErrLocked, opts.Timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", opts.Path, err)
	}
	if err := db.Update(initSchema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("boltstore: open %s: %w", opts.Path, err)
	}
	return &Store{db: db, commit: &committer{db: db, max: opts.MaxBatchSize}, cache: newCaches()}, nil
}

// openLocked opens path with bbolt, which locks the file it opened, and
// makes sure that file is still the one at path once the lock is held.
// Compact renames a new file over the store while it holds the old one's
// lock: a server that opened the old file and waited for its lock would
// otherwise run on a file that no longer has a name, and lose everything
// it writes. Such an open is retried on the new file within the same
// timeout.
func openLocked(path string, opts bolt.Options) (*bolt.DB, error) {
	deadline := time.Now().Add(opts.Timeout)
	for {
		var file *os.File
		opts.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		}
		db, err := bolt.Open(path, 0o600, &opts)
		if err != nil {
			return nil, err
		}
		same, err := stillAt(file, path)
		if err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("check the locked file: %w", err)
		}
		if same {
			return db, nil
		}
		if err := db.Close(); err != nil {
			return nil, err
		}
		if opts.Timeout = time.Until(deadline); opts.Timeout <= 0 {
			return nil, berrors.ErrTimeout
		}
	}
}

// stillAt reports whether path still names the open file f.
func stillAt(f *os.File, path string) (bool, error) {
	open, err := f.Stat()
	if err != nil {
		return false, err
	}
	named, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return os.SameFile(open, named), nil
}

// restrictMode tightens an existing store file to 0600: it holds hashed
// secrets and sealed upstream tokens, and a file created by hand or under a
// loose umask must not stay readable by other users. New files are created
// with 0600 by bbolt.
func restrictMode(path string) error {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if info.Mode().Perm()&0o077 == 0 {
		return nil
	}
	return os.Chmod(path, 0o600)
}

// initSchema creates the buckets of a new file, or checks that an existing
// file is an oidcproxy store of a schema this binary understands.
func initSchema(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		foreign := false
		_ = tx.ForEach(func([]byte, *bolt.Bucket) error {
			foreign = true
			return nil
		})
		if foreign {
			return ErrNotAStore
		}
		var err error
		if meta, err = tx.CreateBucket(bucketMeta); err != nil {
			return err
		}
		if err := meta.Put(metaSchema, binary.BigEndian.AppendUint64(nil, schemaVersion)); err != nil {
			return err
		}
		if err := putRegisteredCount(tx, 0); err != nil {
			return err
		}
	}
	v, err := schemaOf(meta)
	if err != nil {
		return err
	}
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	if v < 3 {
		// Schemas 1 and 2 have no owner index; everything else of theirs
		// is readable as it is (see schemaVersion).
		if err := buildOwnerIndex(tx); err != nil {
			return fmt.Errorf("migrate to schema 3: %w", err)
		}
	}
	if v < schemaVersion {
		if err := meta.Put(metaSchema, binary.BigEndian.AppendUint64(nil, schemaVersion)); err != nil {
			return err
		}
	}
	if v < 4 {
		return countRegisteredClients(tx)
	}
	return nil
}

// schemaOf reads the schema version from a store's meta bucket and
// refuses a version this binary cannot read.
func schemaOf(meta *bolt.Bucket) (uint64, error) {
	raw := meta.Get(metaSchema)
	if len(raw) != 8 {
		return 0, fmt.Errorf("%w: missing or malformed schema version", ErrNotAStore)
	}
	switch v := binary.BigEndian.Uint64(raw); {
	case v > schemaVersion:
		return 0, fmt.Errorf("%w: file has schema %d, this binary supports up to %d; upgrade oidcproxy", ErrSchemaTooNew, v, schemaVersion)
	case v < 1:
		return 0, fmt.Errorf("%w: schema version %d", ErrNotAStore, v)
	default:
		return v, nil
	}
}

// Close releases the file. A transaction in progress finishes first; calls
// made after Close fail.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("boltstore: close: %w", err)
	}
	return nil
}

// Ping checks that the file is open, writable and holds the store's
// buckets, with one read transaction: cheap enough for every readiness
// probe, and it fails once Close has run.
func (s *Store) Ping(ctx context.Context) error {
	return s.view(ctx, "ping", func(tx *bolt.Tx) error {
		if s.db.IsReadOnly() {
			return errors.New("store is open read-only")
		}
		if tx.Bucket(bucketMeta) == nil {
			return ErrNotAStore
		}
		return nil
	})
}

func fail(op string, err error) error { return fmt.Errorf("boltstore: %s: %w", op, err) }

// wrapErr wraps a non-nil err with the operation's name.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return fail(op, err)
}

// errNoChange is what a write closure returns when it rejected the call
// before writing anything. For a batched write, write turns it into an
// empty share of the group commit (an error would roll the whole group
// back and run it again); otherwise it rolls the call back, alone.
var errNoChange = errors.New("no change")

// view runs fn in a read transaction. Errors are wrapped with op.
func (s *Store) view(ctx context.Context, op string, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fail(op, err)
	}
	if err := s.db.View(fn); err != nil {
		return fail(op, err)
	}
	return nil
}

// write runs fn in a committed read-write transaction. Hot paths
// (batched) join a group commit and report rejections through variables fn
// resets at the start of each run, so that a rejection does not roll back
// the shared transaction. Other writes also join the group commit; when fn
// rejects (errNoChange or a caller's error) it is rerun alone, so it still
// gets its own rollback.
func (s *Store) write(ctx context.Context, op string, batched bool, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fail(op, err)
	}
	var err error
	switch {
	case batched:
		err = s.commit.do(func(tx *bolt.Tx) error {
			if err := fn(tx); !errors.Is(err, errNoChange) {
				return err
			}
			return nil
		})
	default:
		err = s.commit.do(fn)
	}
	if err != nil && !errors.Is(err, errNoChange) {
		return fail(op, err)
	}
	return nil
}
