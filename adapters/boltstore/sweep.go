package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"
)

// sweepBatch bounds the index entries one sweep transaction handles, so a
// large backlog never holds the write lock (and grows the dirty page set)
// for long: /token keeps committing between sweep transactions.
const sweepBatch = 1000

// Sweep removes every transaction, grant, code, refresh token and used
// assertion id expired at now (with the children of expired grants),
// walking the expiry index from its start, in transactions of at most
// sweepBatch index entries. It reports how many records it removed, also
// when it stops on an error.
func (s *Store) Sweep(ctx context.Context, now time.Time) (int, error) {
	const op = "sweep"
	total := 0
	for {
		var removed, seen int
		err := s.write(ctx, op, false, func(tx *bolt.Tx) error {
			var err error
			removed, seen, err = s.sweepOnce(tx, now)
			return err
		})
		if err != nil {
			return total, err
		}
		total += removed
		if seen < sweepBatch {
			return total, nil
		}
	}
}

// sweepOnce handles up to sweepBatch expired index entries and reports how
// many records it removed and how many entries it saw.
func (s *Store) sweepOnce(tx *bolt.Tx, now time.Time) (removed, seen int, err error) {
	limit := binary.BigEndian.AppendUint64(nil, sortableTime(now))
	var entries [][]byte
	c := tx.Bucket(bucketExpiry).Cursor()
	for k, _ := c.First(); k != nil && len(entries) < sweepBatch; k, _ = c.Next() {
		if len(k) >= 8 && bytes.Compare(k[:8], limit) > 0 {
			break
		}
		entries = append(entries, bytes.Clone(k))
	}
	for _, entry := range entries {
		n, err := s.sweepEntry(tx, entry, now)
		if err != nil {
			return removed, len(entries), err
		}
		removed += n
	}
	return removed, len(entries), nil
}

// sweepEntry removes the record an expiry index entry points at, if it is
// still there and expired, then the entry itself. A record already gone
// (a grant's cascade took it) or no longer expired (its expiry moved and
// a newer entry covers it) counts nothing.
func (s *Store) sweepEntry(tx *bolt.Tx, entry []byte, now time.Time) (int, error) {
	_, k, key, ok := parseExpiryKey(entry)
	if !ok {
		// An entry this code never writes: drop it rather than stall every
		// future sweep on it.
		return 0, tx.Bucket(bucketExpiry).Delete(entry)
	}
	n := 0
	switch k {
	case kindTransaction:
		t, found, err := loadTransaction(tx, key)
		if err != nil {
			return 0, err
		}
		if found && t.Expired(now) {
			if err := deleteTransaction(tx, t); err != nil {
				return 0, err
			}
			n = 1
		}
	case kindGrant:
		g, found, err := loadGrant(tx, key)
		if err != nil {
			return 0, err
		}
		if found && g.Expired(now) {
			if n, err = s.deleteGrantTree(tx, key); err != nil {
				return 0, err
			}
		}
	case kindCode:
		c, found, err := loadCode(tx, key)
		if err != nil {
			return 0, err
		}
		if found && expired(now, c.ExpiresAt) {
			if err := deleteCode(tx, c); err != nil {
				return 0, err
			}
			n = 1
		}
	case kindAssertion:
		var err error
		if n, err = sweepAssertion(tx, key, now); err != nil {
			return 0, err
		}
	case kindRefresh:
		t, found, err := loadToken(tx, key)
		if err != nil {
			return 0, err
		}
		if found && expired(now, t.ExpiresAt) {
			if err := deleteToken(tx, t); err != nil {
				return 0, err
			}
			n = 1
		}
	}
	return n, tx.Bucket(bucketExpiry).Delete(entry)
}
