package boltstore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// compactTxSize bounds the bytes of keys and values one transaction of the
// copy writes, so that compacting a large file never holds it all in
// memory as dirty pages.
const compactTxSize = 4 << 20

// Compaction reports what Compact did.
type Compaction struct {
	// Before and After are the file's sizes in bytes.
	Before, After int64
}

// Compact rewrites the store file at opts.Path without its free pages.
// bbolt reuses the pages that deleted records leave behind but never gives
// them back to the file system, so a file grown by a flood of
// registrations or abandoned authorizations stays large after the sweeper
// removed them.
//
// It works offline: it takes the file's lock, waiting at most
// opts.Timeout, and fails with ErrLocked while a server holds it. It copies
// every bucket, key and value (bbolt's Compact; the schema version is
// copied like any other key, so the layout is unchanged) into a temporary
// file in the same directory with mode 0600 and the original's owner,
// checks that the copy holds exactly the same records, syncs it, and
// renames it over the original while still holding the lock; a failure
// at any step leaves the original as it was. Open notices when the file
// it waited for was replaced this way and opens the new one.
func Compact(opts Options) (Compaction, error) {
	if opts.Path == "" {
		return Compaction{}, errors.New("boltstore: compact: empty path")
	}
	opts = opts.withDefaults()
	res, err := compact(opts.Path, opts.Timeout)
	if err != nil {
		return Compaction{}, fmt.Errorf("boltstore: compact %s: %w", opts.Path, err)
	}
	return res, nil
}

func compact(path string, timeout time.Duration) (res Compaction, err error) {
	// A store path that is a symbolic link is compacted where it points,
	// so that the rename replaces the file, not the link.
	path, err = filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Compaction{}, fmt.Errorf("no store file: %w", err) // and none is created
	}
	if err != nil {
		return Compaction{}, err
	}
	info, err := os.Stat(path)
	if err != nil {
		return Compaction{}, err
	}
	res.Before = info.Size()
	src, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, berrors.ErrTimeout) {
		return Compaction{}, fmt.Errorf("%w (waited %s); stop the server first", ErrLocked, timeout)
	}
	if err != nil {
		return Compaction{}, err
	}
	defer func() {
		if cerr := src.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	if err := src.View(checkSchema); err != nil {
		return Compaction{}, err
	}

	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".compact-*")
	if err != nil {
		return Compaction{}, err
	}
	tmpPath := tmp.Name()
	renamed := false
	defer func() {
		if !renamed {
			_ = os.Remove(tmpPath)
		}
	}()
	if err := tmp.Close(); err != nil {
		return Compaction{}, err
	}
	if err := copyCompacted(src, tmpPath); err != nil {
		return Compaction{}, err
	}
	if err := matchOwner(tmpPath, info); err != nil {
		return Compaction{}, err
	}
	// Replace the original while holding its lock, so that no server
	// starts on it in between, then make the rename itself durable.
	if err := os.Rename(tmpPath, path); err != nil {
		return Compaction{}, err
	}
	renamed = true
	if err := syncDir(filepath.Dir(path)); err != nil {
		return Compaction{}, err
	}
	after, err := os.Stat(path)
	if err != nil {
		return Compaction{}, err
	}
	res.After = after.Size()
	return res, nil
}

// checkSchema refuses files that are not oidcproxy stores, and stores of a
// newer schema, which this binary leaves untouched as Open does.
func checkSchema(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return ErrNotAStore
	}
	_, err := schemaOf(meta)
	return err
}

// copyCompacted writes src, compacted, into the empty file at path, checks
// the copy record by record and syncs it. The copy is written without
// fsync per transaction and synced once at the end: until the rename,
// nothing depends on it.
func copyCompacted(src *bolt.DB, path string) error {
	dst, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return err
	}
	if err := bolt.Compact(dst, src, compactTxSize); err != nil {
		_ = dst.Close()
		return err
	}
	if err := sameRecords(src, dst); err != nil {
		_ = dst.Close()
		return err
	}
	if err := dst.Sync(); err != nil {
		_ = dst.Close()
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// sameRecords checks that a and b hold the same buckets with the same keys
// and values, in one read transaction each.
func sameRecords(a, b *bolt.DB) error {
	return a.View(func(ta *bolt.Tx) error {
		return b.View(func(tb *bolt.Tx) error {
			n := 0
			err := ta.ForEach(func(name []byte, ba *bolt.Bucket) error {
				n++
				bb := tb.Bucket(name)
				if bb == nil {
					return fmt.Errorf("the copy lacks bucket %q", name)
				}
				return sameBucket(name, ba, bb)
			})
			if err != nil {
				return err
			}
			m := 0
			_ = tb.ForEach(func([]byte, *bolt.Bucket) error { m++; return nil })
			if m != n {
				return fmt.Errorf("the copy has %d buckets, the original %d", m, n)
			}
			return nil
		})
	})
}

// sameBucket compares two buckets key by key, nested buckets included.
// Error text names buckets, never keys: keys are token hashes.
func sameBucket(name []byte, a, b *bolt.Bucket) error {
	ca, cb := a.Cursor(), b.Cursor()
	ka, va := ca.First()
	kb, vb := cb.First()
	for ; ka != nil || kb != nil; ka, va, kb, vb = nextPair(ca, cb) {
		if !bytes.Equal(ka, kb) || !bytes.Equal(va, vb) || (va == nil) != (vb == nil) {
			return fmt.Errorf("the copy of bucket %q differs from the original", name)
		}
		if va == nil { // a nested bucket
			if err := sameBucket(name, a.Bucket(ka), b.Bucket(kb)); err != nil {
				return err
			}
		}
	}
	return nil
}

func nextPair(ca, cb *bolt.Cursor) (ka, va, kb, vb []byte) {
	ka, va = ca.Next()
	kb, vb = cb.Next()
	return ka, va, kb, vb
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		_ = d.Close()
		return err
	}
	return d.Close()
}
