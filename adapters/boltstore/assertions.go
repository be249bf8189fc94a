package boltstore

import (
	"context"
	"encoding/binary"
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/oidcproxy/oidcproxy/domain"
)

// errBornExpired refuses a record that would expire before it is stored:
// it could not guard against anything.
var errBornExpired = errors.New("expiry is not after now")

// ConsumeAssertionID records that the assertion (issuer, jti) was used, in
// the assertions bucket under domain.AssertionReplayKey with its expiry in
// the expiry index, as one write of the group commit: concurrent consumes
// of unrelated assertions share a commit (and its fsync) instead of
// waiting for each other's. An unexpired record of the same key, whether
// committed before or written earlier in the same group, is
// domain.ErrAlreadyConsumed.
func (s *Store) ConsumeAssertionID(ctx context.Context, issuer, jti string, now, expiresAt time.Time) error {
	const op = "consume assertion id"
	switch {
	case issuer == "" || jti == "":
		return fail(op, errEmptyKey)
	case expired(now, expiresAt):
		return fail(op, errBornExpired)
	}
	key := domain.AssertionReplayKey(issuer, jti)
	var outcome error
	err := s.write(ctx, op, true, func(tx *bolt.Tx) error {
		outcome = nil
		b := tx.Bucket(bucketAssertions)
		if v := b.Get([]byte(key)); len(v) == 8 {
			until := timeFromSortable(binary.BigEndian.Uint64(v))
			if !expired(now, until) {
				outcome = fail(op, domain.ErrAlreadyConsumed)
				return errNoChange
			}
			// Expired but not yet swept: its index entry goes with it.
			if err := deleteExpiry(tx, until, kindAssertion, key); err != nil {
				return err
			}
		}
		return putAssertion(tx, key, expiresAt)
	})
	if err != nil {
		return err
	}
	return outcome
}

// putAssertion stores the used assertion id key, as its expiry, with its
// entry in the expiry index.
func putAssertion(tx *bolt.Tx, key string, expiresAt time.Time) error {
	at := sortableTime(expiresAt)
	if err := tx.Bucket(bucketAssertions).Put([]byte(key), binary.BigEndian.AppendUint64(nil, at)); err != nil {
		return err
	}
	return tx.Bucket(bucketExpiry).Put(expiryKeySorted(at, kindAssertion, key), nil)
}

// sweepAssertion removes the used assertion id key if it expired at now.
func sweepAssertion(tx *bolt.Tx, key string, now time.Time) (int, error) {
	b := tx.Bucket(bucketAssertions)
	v := b.Get([]byte(key))
	if len(v) != 8 || !expired(now, timeFromSortable(binary.BigEndian.Uint64(v))) {
		return 0, nil
	}
	return 1, b.Delete([]byte(key))
}
