package boltstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/oidcproxy/oidcproxy/ports"
)

var (
	_ ports.Exporter = (*Store)(nil)
	_ ports.Importer = (*Store)(nil)
)

// exportBuckets are the record buckets in export order (ports.Exporter).
var exportBuckets = []struct {
	kind   ports.RecordKind
	bucket []byte
}{
	{ports.KindClient, bucketClients},
	{ports.KindSigningKey, bucketKeys},
	{ports.KindTransaction, bucketTransactions},
	{ports.KindGrant, bucketGrants},
	{ports.KindCode, bucketCodes},
	{ports.KindRefreshToken, bucketRefresh},
	{ports.KindUsedAssertion, bucketAssertions},
}

// errStopped ends the read transaction of an export whose consumer
// stopped early; it is never returned.
var errStopped = errors.New("export stopped")

// Export yields the store's live records from one read transaction (see
// ports.Exporter), which writers do not wait for. Buckets are walked in
// key order, which is bytes order. A code's redemption is read from its
// mark (markRedeemed) as RedeemCode keeps it.
//
// The consumer runs inside the read transaction: it must not write to
// this store from the same goroutine (bbolt's rule for every read
// transaction).
func (s *Store) Export(ctx context.Context, now time.Time) iter.Seq2[ports.Record, error] {
	const op = "export"
	return func(yield func(ports.Record, error) bool) {
		stopped := false
		err := s.view(ctx, op, func(tx *bolt.Tx) error {
			live := map[string]struct{}{} // grants live at now
			for _, eb := range exportBuckets {
				c := tx.Bucket(eb.bucket).Cursor()
				for k, v := c.First(); k != nil; k, v = c.Next() {
					if err := ctx.Err(); err != nil {
						return err
					}
					r, ok, err := exportRecord(tx, eb.kind, k, v, now, live)
					if err != nil {
						return err
					}
					if !ok {
						continue
					}
					if !yield(r, nil) {
						stopped = true
						return errStopped
					}
				}
			}
			return nil
		})
		if err != nil && !stopped {
			yield(ports.Record{}, err)
		}
	}
}

// exportRecord decodes one stored record of the kind, under key, and
// reports whether it is live at now. Grants found live are added to live,
// which the codes and refresh tokens after them are judged by.
func exportRecord(tx *bolt.Tx, kind ports.RecordKind, key, raw []byte, now time.Time, live map[string]struct{}) (ports.Record, bool, error) {
	decode := func(v any) error {
		if err := json.Unmarshal(raw, v); err != nil {
			return fmt.Errorf("decode %s record: %w", kind, err)
		}
		return nil
	}
	switch kind {
	case ports.KindClient:
		var r clientRecord
		if err := decode(&r); err != nil {
			return ports.Record{}, false, err
		}
		c := r.domain()
		return ports.Record{Client: &c}, true, nil
	case ports.KindSigningKey:
		var r keyRecord
		if err := decode(&r); err != nil {
			return ports.Record{}, false, err
		}
		k := r.domain()
		return ports.Record{SigningKey: &k}, true, nil
	case ports.KindTransaction:
		var r transactionRecord
		if err := decode(&r); err != nil {
			return ports.Record{}, false, err
		}
		t := r.domain()
		return ports.Record{Transaction: &t}, !t.Expired(now), nil
	case ports.KindGrant:
		var r grantRecord
		if err := decode(&r); err != nil {
			return ports.Record{}, false, err
		}
		g := r.domain()
		if g.Expired(now) {
			return ports.Record{}, false, nil
		}
		live[g.ID] = struct{}{}
		return ports.Record{Grant: &g}, true, nil
	case ports.KindCode:
		var r codeRecord
		if err := decode(&r); err != nil {
			return ports.Record{}, false, err
		}
		c := r.domain()
		if _, ok := live[c.GrantID]; !ok || expired(now, c.ExpiresAt) {
			return ports.Record{}, false, nil
		}
		if at, marked := redeemedMark(tx, c); marked && c.RedeemedAt.IsZero() {
			c.RedeemedAt = at
		}
		return ports.Record{Code: &c}, true, nil
	case ports.KindRefreshToken:
		var r refreshRecord
		if err := decode(&r); err != nil {
			return ports.Record{}, false, err
		}
		t := r.domain()
		if _, ok := live[t.GrantID]; !ok || expired(now, t.ExpiresAt) {
			return ports.Record{}, false, nil
		}
		return ports.Record{RefreshToken: &t}, true, nil
	case ports.KindUsedAssertion:
		// Its value is its expiry alone (see ConsumeAssertionID).
		if len(raw) != 8 {
			return ports.Record{}, false, fmt.Errorf("decode %s record: %d bytes, not 8", kind, len(raw))
		}
		u := ports.UsedAssertion{Key: string(key), ExpiresAt: timeFromSortable(binary.BigEndian.Uint64(raw))}
		return ports.Record{UsedAssertion: &u}, !expired(now, u.ExpiresAt), nil
	}
	return ports.Record{}, false, fmt.Errorf("unknown record kind %d", kind)
}

// Import stores records into the empty store in one write transaction
// (see ports.Importer), reading the sequence inside it: a refusal, an
// error of the sequence or of the file rolls everything back. It bypasses
// the group commit, whose closures may run twice: a sequence can be read
// once only.
func (s *Store) Import(ctx context.Context, records iter.Seq2[ports.Record, error]) (ports.RecordCounts, error) {
	const op = "import"
	if err := ctx.Err(); err != nil {
		return nil, fail(op, err)
	}
	var (
		check  ports.ImportCheck
		source error // the sequence's own error, returned as it is
	)
	err := s.db.Update(func(tx *bolt.Tx) error {
		if holds := holdings(tx); holds.Total() > 0 {
			return &ports.NotEmptyError{Holds: holds}
		}
		for r, err := range records {
			if err != nil {
				source = err
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			kind, err := check.Next(r)
			if err != nil {
				return err
			}
			if err := importRecord(tx, kind, r); err != nil {
				return err
			}
		}
		return nil
	})
	switch {
	case source != nil:
		return nil, source
	case err != nil:
		return nil, fail(op, err)
	}
	return check.Counts(), nil
}

// importRecord stores one checked record with its index entries, as the
// store's own writes would have.
func importRecord(tx *bolt.Tx, kind ports.RecordKind, r ports.Record) error {
	if err := checkKey(r.Key()); err != nil {
		return err
	}
	switch kind {
	case ports.KindClient:
		return putJSON(tx, bucketClients, r.Client.ID, toClientRecord(*r.Client))
	case ports.KindSigningKey:
		return putJSON(tx, bucketKeys, r.SigningKey.ID, toKeyRecord(*r.SigningKey))
	case ports.KindTransaction:
		return insertTransaction(tx, *r.Transaction)
	case ports.KindGrant:
		return insertGrant(tx, *r.Grant)
	case ports.KindCode:
		// The redemption is a mark beside the grant's other children, as
		// RedeemCode writes it; the code record keeps none.
		c := *r.Code
		redeemed := c
		c.RedeemedAt = time.Time{}
		if err := insertCode(tx, c); err != nil {
			return err
		}
		if redeemed.Redeemed() {
			return markRedeemed(tx, redeemed)
		}
		return nil
	case ports.KindRefreshToken:
		return insertToken(tx, *r.RefreshToken)
	case ports.KindUsedAssertion:
		return putAssertion(tx, r.UsedAssertion.Key, r.UsedAssertion.ExpiresAt)
	}
	return fmt.Errorf("unknown record kind %d", kind)
}

// holdings counts the records of every record bucket, live or not.
func holdings(tx *bolt.Tx) ports.RecordCounts {
	out := ports.RecordCounts{}
	for _, eb := range exportBuckets {
		b := tx.Bucket(eb.bucket)
		if k, _ := b.Cursor().First(); k == nil {
			continue
		}
		out[eb.kind] = b.Stats().KeyN
	}
	return out
}

// ImportFile creates a store file at path holding records, atomically:
// the records are imported into a temporary file next to path, which is
// synced and then linked to path only once complete, so path never names
// a partial store and a failure leaves nothing behind. path must not
// exist (fs.ErrExist otherwise): a copy never replaces a store.
func ImportFile(ctx context.Context, path string, records iter.Seq2[ports.Record, error]) (ports.RecordCounts, error) {
	counts, err := importFile(ctx, path, records)
	if err != nil && !errors.Is(err, errSourceFailed) {
		return nil, fmt.Errorf("boltstore: import into %s: %w", path, err)
	}
	return counts, unwrapSource(err)
}

// errSourceFailed marks an error of the sequence, which ImportFile
// returns as it is.
var errSourceFailed = errors.New("the source failed")

type sourceError struct{ err error }

func (e sourceError) Error() string   { return e.err.Error() }
func (e sourceError) Unwrap() []error { return []error{errSourceFailed, e.err} }

func unwrapSource(err error) error {
	var se sourceError
	if errors.As(err, &se) {
		return se.err
	}
	return err
}

func importFile(ctx context.Context, path string, records iter.Seq2[ports.Record, error]) (ports.RecordCounts, error) {
	if path == "" {
		return nil, errors.New("empty path")
	}
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("the file exists, and a copy goes into a new file only: %w", fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".import-*")
	if err != nil {
		return nil, err
	}
	tmpPath := tmp.Name()
	defer func() { _ = os.Remove(tmpPath) }() // linked to path, or abandoned
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	s, err := Open(Options{Path: tmpPath})
	if err != nil {
		return nil, err
	}
	counts, err := s.Import(ctx, func(yield func(ports.Record, error) bool) {
		for r, err := range records {
			if err != nil {
				err = sourceError{err}
			}
			if !yield(r, err) {
				return
			}
		}
	})
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	// Every commit was synced; the link makes the file appear whole, and
	// fails if path was created meanwhile.
	if err := os.Link(tmpPath, path); err != nil {
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		return nil, err
	}
	return counts, nil
}
