package boltstore

// registration.go keeps the self-registered clients bounded: their count
// in the meta bucket (metaRegistered), changed in the transaction of every
// create and delete of such a client, and the unused_clients index of
// those that never completed a grant, keyed by sortable creation time and
// id, which the first grant of the client clears and SweepUnusedClients
// walks from its start. Every create or delete of a client record goes
// through insertClient and deleteClient, which keep both right.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/oidcproxy/oidcproxy/domain"
)

// unusedKey is a client's unused_clients entry.
func unusedKey(createdAt time.Time, id string) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(id)), sortableTime(createdAt))
	return append(b, id...)
}

// registeredCount reads the number of self-registered clients.
func registeredCount(tx *bolt.Tx) (uint64, error) {
	raw := tx.Bucket(bucketMeta).Get(metaRegistered)
	if len(raw) != 8 {
		return 0, errors.New("malformed or missing registered client count")
	}
	return binary.BigEndian.Uint64(raw), nil
}

func putRegisteredCount(tx *bolt.Tx, n uint64) error {
	return tx.Bucket(bucketMeta).Put(metaRegistered, binary.BigEndian.AppendUint64(nil, n))
}

// insertClient stores a new client, counting and indexing it when it
// registered itself; limit, when positive, bounds those. It returns
// domain.ErrAlreadyExists or domain.ErrLimitReached, unwrapped, having
// changed nothing, or a storage error.
func insertClient(tx *bolt.Tx, c domain.Client, limit int) error {
	if exists(tx, bucketClients, c.ID) {
		return domain.ErrAlreadyExists
	}
	if !c.Operator {
		n, err := registeredCount(tx)
		if err != nil {
			return err
		}
		if limit > 0 && n >= uint64(limit) {
			return domain.ErrLimitReached
		}
		if err := putRegisteredCount(tx, n+1); err != nil {
			return err
		}
		if c.FirstGrantAt.IsZero() {
			if err := tx.Bucket(bucketUnused).Put(unusedKey(c.CreatedAt, c.ID), nil); err != nil {
				return err
			}
		}
	}
	return putJSON(tx, bucketClients, c.ID, toClientRecord(c))
}

// deleteClient removes client c's record, count and index entry. It is a
// method because the commit must drop the client from the store's cache.
func (s *Store) deleteClient(tx *bolt.Tx, c domain.Client) error {
	s.cache.forgetClientOnCommit(tx, c.ID)
	if err := tx.Bucket(bucketClients).Delete([]byte(c.ID)); err != nil {
		return err
	}
	if c.Operator {
		return nil
	}
	if err := tx.Bucket(bucketUnused).Delete(unusedKey(c.CreatedAt, c.ID)); err != nil {
		return err
	}
	n, err := registeredCount(tx)
	if err != nil {
		return err
	}
	return putRegisteredCount(tx, max(n, 1)-1)
}

// RegisterClient stores a client that registered itself, unless max (when
// positive) such clients are stored already.
func (s *Store) RegisterClient(ctx context.Context, c domain.Client, max int) error {
	const op = "register client"
	if err := checkKey(c.ID); err != nil {
		return fail(op, err)
	}
	return s.createClient(ctx, op, c, max)
}

// createClient runs insertClient in a transaction of its own.
func (s *Store) createClient(ctx context.Context, op string, c domain.Client, limit int) error {
	var outcome error
	err := s.write(ctx, op, false, func(tx *bolt.Tx) error {
		outcome = nil
		err := insertClient(tx, c, limit)
		if errors.Is(err, domain.ErrAlreadyExists) || errors.Is(err, domain.ErrLimitReached) {
			outcome = fail(op, err)
			return errNoChange
		}
		return err
	})
	if err != nil {
		return err
	}
	return outcome
}

// clientUse is the part of a client record that says whether the client
// was used: decoding only it keeps a grant's creation from decoding the
// whole client once the client has had its first grant.
type clientUse struct {
	Operator     bool      `json:"operator,omitempty"`
	CreatedAt    time.Time `json:"created_at,omitzero"`
	FirstGrantAt time.Time `json:"first_grant_at,omitzero"`
}

// markClientUsed records the first grant of a stored client, at: it sets
// the record's FirstGrantAt and clears its unused_clients entry. A client
// used before, or not stored (a client ID metadata document), is left
// alone.
func (s *Store) markClientUsed(tx *bolt.Tx, id string, at time.Time) error {
	var use clientUse
	found, err := getJSON(tx, bucketClients, id, &use)
	if err != nil || !found || !use.FirstGrantAt.IsZero() {
		return err
	}
	var r clientRecord
	if _, err := getJSON(tx, bucketClients, id, &r); err != nil {
		return err
	}
	r.FirstGrantAt = at.UTC()
	s.cache.forgetClientOnCommit(tx, id)
	if err := putJSON(tx, bucketClients, id, r); err != nil {
		return err
	}
	return tx.Bucket(bucketUnused).Delete(unusedKey(use.CreatedAt, id))
}

// SweepUnusedClients deletes the self-registered clients that never
// completed a grant and were created before createdBefore, walking the
// unused_clients index from its start, in transactions of at most
// sweepBatch entries. It runs every minute and nearly always finds nothing
// due: a read transaction tells, so that a write transaction (and its
// fsync) happens only when there is something to delete.
func (s *Store) SweepUnusedClients(ctx context.Context, createdBefore time.Time) (int, error) {
	const op = "sweep unused clients"
	limit := binary.BigEndian.AppendUint64(nil, sortableTime(createdBefore))
	due := false
	err := s.view(ctx, op, func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketUnused).Cursor().First()
		due = k != nil && (len(k) < 8 || bytes.Compare(k[:8], limit) < 0)
		return nil
	})
	if err != nil || !due {
		return 0, err
	}
	total := 0
	for {
		var removed, seen int
		err := s.write(ctx, op, false, func(tx *bolt.Tx) error {
			removed, seen = 0, 0
			var entries [][]byte
			c := tx.Bucket(bucketUnused).Cursor()
			for k, _ := c.First(); k != nil && len(entries) < sweepBatch; k, _ = c.Next() {
				if len(k) >= 8 && bytes.Compare(k[:8], limit) >= 0 {
					break
				}
				entries = append(entries, bytes.Clone(k))
			}
			seen = len(entries)
			for _, entry := range entries {
				n, err := s.sweepUnusedEntry(tx, entry)
				if err != nil {
					return err
				}
				removed += n
			}
			return nil
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

// sweepUnusedEntry deletes the client an unused_clients entry names if it
// is still unused, and the entry in any case.
func (s *Store) sweepUnusedEntry(tx *bolt.Tx, entry []byte) (int, error) {
	if len(entry) < 8 {
		// An entry this code never writes: drop it.
		return 0, tx.Bucket(bucketUnused).Delete(entry)
	}
	id := string(entry[8:])
	var r clientRecord
	found, err := getJSON(tx, bucketClients, id, &r)
	if err != nil {
		return 0, err
	}
	if !found || r.Operator || !r.FirstGrantAt.IsZero() {
		// An entry its client no longer needs: drop it rather than stall
		// every future sweep on it.
		return 0, tx.Bucket(bucketUnused).Delete(entry)
	}
	if err := s.deleteClient(tx, r.domain()); err != nil {
		return 0, err
	}
	return 1, tx.Bucket(bucketUnused).Delete(entry)
}

// countRegisteredClients upgrades a file to schema 4: it counts the
// self-registered clients, and marks every client without a first grant
// as used from its creation on, since whether it was cannot be known and a
// client in use must never be swept. A new file has no clients, and gets
// a count of zero.
func countRegisteredClients(tx *bolt.Tx) error {
	clients := tx.Bucket(bucketClients)
	var (
		n       uint64
		rewrite = map[string][]byte{}
	)
	err := clients.ForEach(func(k, v []byte) error {
		var r clientRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		if !r.Operator {
			n++
		}
		if r.FirstGrantAt.IsZero() {
			r.FirstGrantAt = r.CreatedAt
			raw, err := json.Marshal(r)
			if err != nil {
				return err
			}
			rewrite[string(k)] = raw
		}
		return nil
	})
	if err != nil {
		return err
	}
	for k, raw := range rewrite { // a bucket may not change while ForEach walks it
		if err := clients.Put([]byte(k), raw); err != nil {
			return err
		}
	}
	return putRegisteredCount(tx, n)
}
