package boltstore

// layout.go holds the on-disk key layout (expiry and children indexes;
// the owner index is in owners.go) and the per-entity record operations
// every method composes inside one transaction.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/oidcproxy/oidcproxy/domain"
)

// kind tags an entity in the expiry and children indexes.
type kind byte

const (
	kindTransaction kind = 't'
	kindGrant       kind = 'g'
	kindCode        kind = 'c'
	kindRefresh     kind = 'r'
	kindAssertion   kind = 'a'
	// kindRedeemed tags a children-index entry only: code <key> of the
	// grant was redeemed at the entry's value (see markRedeemed).
	kindRedeemed kind = 'x'
)

// maxKeyLen bounds ids and hashes. Real ones are 43-byte hashes or short
// ids (a CIMD client id is a URL); the bound keeps index keys far below
// bbolt's 32 KiB key limit and hostile input from bloating the file.
const maxKeyLen = 4096

var errKeyTooLong = fmt.Errorf("key longer than %d bytes", maxKeyLen)

func checkKey(key string) error {
	switch {
	case key == "":
		return errEmptyKey
	case len(key) > maxKeyLen:
		return errKeyTooLong
	}
	return nil
}

// expired is the one expiry rule of the store, the same as
// domain.Transaction.Expired: a record is dead from its ExpiresAt on.
func expired(now, expiresAt time.Time) bool { return !now.Before(expiresAt) }

var (
	minNano = time.Unix(0, math.MinInt64)
	maxNano = time.Unix(0, math.MaxInt64)
)

// sortableTime maps t to a uint64 whose big-endian bytes sort like t:
// unix nanoseconds (clamped to the int64 range, so the zero time sorts
// first) with the sign bit flipped.
func sortableTime(t time.Time) uint64 {
	var n int64
	switch {
	case t.Before(minNano):
		n = math.MinInt64
	case t.After(maxNano):
		n = math.MaxInt64
	default:
		n = t.UnixNano()
	}
	return uint64(n) ^ 1<<63
}

// timeFromSortable is the inverse of sortableTime (for times inside the
// int64 nanosecond range), in UTC.
func timeFromSortable(u uint64) time.Time {
	return time.Unix(0, int64(u^1<<63)).UTC()
}

// expiryKey is the index key of a record: sortable expiry, kind, record key.
func expiryKey(at time.Time, k kind, key string) []byte {
	return expiryKeySorted(sortableTime(at), k, key)
}

func expiryKeySorted(at uint64, k kind, key string) []byte {
	b := make([]byte, 0, 9+len(key))
	b = binary.BigEndian.AppendUint64(b, at)
	b = append(b, byte(k))
	return append(b, key...)
}

// parseExpiryKey splits an index key; ok is false for a malformed key.
func parseExpiryKey(b []byte) (at uint64, k kind, key string, ok bool) {
	if len(b) < 10 {
		return 0, 0, "", false
	}
	return binary.BigEndian.Uint64(b), kind(b[8]), string(b[9:]), true
}

// childPrefix starts every children-index key of a grant. The length prefix
// keeps one grant id from being a prefix of another's keys.
func childPrefix(grantID string) []byte {
	b := make([]byte, 0, 2+len(grantID)+1)
	b = binary.BigEndian.AppendUint16(b, uint16(len(grantID)))
	return append(b, grantID...)
}

func childKey(grantID string, k kind, key string) []byte {
	b := append(childPrefix(grantID), byte(k))
	return append(b, key...)
}

// The record helpers below run inside a transaction and return storage
// errors only. Error text names the bucket, never a key: keys are token
// hashes.

func getJSON(tx *bolt.Tx, bucket []byte, key string, v any) (bool, error) {
	raw := tx.Bucket(bucket).Get([]byte(key))
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("decode %s record: %w", bucket, err)
	}
	return true, nil
}

func putJSON(tx *bolt.Tx, bucket []byte, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s record: %w", bucket, err)
	}
	return tx.Bucket(bucket).Put([]byte(key), raw)
}

func exists(tx *bolt.Tx, bucket []byte, key string) bool {
	return tx.Bucket(bucket).Get([]byte(key)) != nil
}

func putExpiry(tx *bolt.Tx, at time.Time, k kind, key string) error {
	return tx.Bucket(bucketExpiry).Put(expiryKey(at, k, key), nil)
}

func deleteExpiry(tx *bolt.Tx, at time.Time, k kind, key string) error {
	return tx.Bucket(bucketExpiry).Delete(expiryKey(at, k, key))
}

// moveExpiry re-indexes a record whose expiry changed.
func moveExpiry(tx *bolt.Tx, from, to time.Time, k kind, key string) error {
	if from.Equal(to) {
		return nil
	}
	if err := deleteExpiry(tx, from, k, key); err != nil {
		return err
	}
	return putExpiry(tx, to, k, key)
}

// Transactions.

func loadTransaction(tx *bolt.Tx, id string) (domain.Transaction, bool, error) {
	var r transactionRecord
	ok, err := getJSON(tx, bucketTransactions, id, &r)
	return r.domain(), ok, err
}

func liveTransaction(tx *bolt.Tx, id string, now time.Time) (domain.Transaction, bool, error) {
	t, ok, err := loadTransaction(tx, id)
	if err != nil || !ok || t.Expired(now) {
		return domain.Transaction{}, false, err
	}
	return t, true, nil
}

func insertTransaction(tx *bolt.Tx, t domain.Transaction) error {
	if err := putJSON(tx, bucketTransactions, t.ID, toTransactionRecord(t)); err != nil {
		return err
	}
	return putExpiry(tx, t.ExpiresAt, kindTransaction, t.ID)
}

func deleteTransaction(tx *bolt.Tx, t domain.Transaction) error {
	if err := tx.Bucket(bucketTransactions).Delete([]byte(t.ID)); err != nil {
		return err
	}
	return deleteExpiry(tx, t.ExpiresAt, kindTransaction, t.ID)
}

// Grants.

func loadGrant(tx *bolt.Tx, id string) (domain.Grant, bool, error) {
	var r grantRecord
	ok, err := getJSON(tx, bucketGrants, id, &r)
	return r.domain(), ok, err
}

func liveGrant(tx *bolt.Tx, id string, now time.Time) (domain.Grant, bool, error) {
	g, ok, err := loadGrant(tx, id)
	if err != nil || !ok || g.Expired(now) {
		return domain.Grant{}, false, err
	}
	return g, true, nil
}

func insertGrant(tx *bolt.Tx, g domain.Grant) error {
	if err := putJSON(tx, bucketGrants, g.ID, toGrantRecord(g)); err != nil {
		return err
	}
	if err := putExpiry(tx, g.ExpiresAt, kindGrant, g.ID); err != nil {
		return err
	}
	return indexOwners(tx, ownersOf(g))
}

// updateGrant saves next over prev, moving its expiry and owner index
// entries if they changed. It is a method because the commit must drop
// the grant from the store's cache.
func (s *Store) updateGrant(tx *bolt.Tx, prev, next domain.Grant) error {
	s.cache.forgetGrantOnCommit(tx, next.ID)
	if err := putJSON(tx, bucketGrants, next.ID, toGrantRecord(next)); err != nil {
		return err
	}
	if err := moveOwners(tx, ownersOf(prev), ownersOf(next)); err != nil {
		return err
	}
	return moveExpiry(tx, prev.ExpiresAt, next.ExpiresAt, kindGrant, next.ID)
}

// deleteGrantTree deletes a grant and every code and refresh token hanging
// on it, with their index entries, and returns how many records went. It
// is a method because the commit must drop the grant from the store's
// cache.
func (s *Store) deleteGrantTree(tx *bolt.Tx, id string) (int, error) {
	n := 0
	// Only the index keys are needed (to drop the entries): decoding just
	// those fields keeps the rest of the record, its sealed upstream
	// tokens above all, out of the single writer's time.
	var g grantKeys
	ok, err := getJSON(tx, bucketGrants, id, &g)
	if err != nil {
		return 0, err
	}
	if ok {
		s.cache.forgetGrantOnCommit(tx, id)
		if err := tx.Bucket(bucketGrants).Delete([]byte(id)); err != nil {
			return 0, err
		}
		if err := deleteExpiry(tx, g.ExpiresAt, kindGrant, id); err != nil {
			return 0, err
		}
		if err := unindexOwners(tx, g.owners(id)); err != nil {
			return 0, err
		}
		n++
	}
	children := tx.Bucket(bucketChildren)
	prefix := childPrefix(id)
	type child struct{ key, value []byte }
	var found []child
	c := children.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		found = append(found, child{bytes.Clone(k), bytes.Clone(v)})
	}
	for _, ch := range found {
		if len(ch.key) <= len(prefix) || len(ch.value) != 8 {
			return n, errors.New("malformed grant_children entry")
		}
		k, key := kind(ch.key[len(prefix)]), string(ch.key[len(prefix)+1:])
		if k == kindRedeemed {
			// A mark, not a record: its code has an entry of its own.
			if err := children.Delete(ch.key); err != nil {
				return n, err
			}
			continue
		}
		bucket := tx.Bucket(bucketCodes)
		if k == kindRefresh {
			bucket = tx.Bucket(bucketRefresh)
		}
		if bucket.Get([]byte(key)) != nil {
			if err := bucket.Delete([]byte(key)); err != nil {
				return n, err
			}
			n++
		}
		if err := tx.Bucket(bucketExpiry).Delete(expiryKeySorted(binary.BigEndian.Uint64(ch.value), k, key)); err != nil {
			return n, err
		}
		if err := children.Delete(ch.key); err != nil {
			return n, err
		}
	}
	return n, nil
}

// addChild records that a code or refresh token hangs on a grant; the value
// is the child's sortable expiry, so a cascade can drop its index entry
// without decoding it.
func addChild(tx *bolt.Tx, grantID string, k kind, key string, expiresAt time.Time) error {
	return tx.Bucket(bucketChildren).Put(childKey(grantID, k, key), binary.BigEndian.AppendUint64(nil, sortableTime(expiresAt)))
}

// Codes.

// loadCode reads a code. Its redemption lives beside its grant's other
// children (markRedeemed); records written by schema 1 carry it in the
// code record itself.
func loadCode(tx *bolt.Tx, hash string) (domain.AuthorizationCode, bool, error) {
	var r codeRecord
	ok, err := getJSON(tx, bucketCodes, hash, &r)
	if err != nil || !ok {
		return domain.AuthorizationCode{}, ok, err
	}
	c := r.domain()
	if c.RedeemedAt.IsZero() {
		if at, marked := redeemedMark(tx, c); marked {
			c.RedeemedAt = at
		}
	}
	return c, true, nil
}

// redeemedMark reads the redemption entry of code c.
func redeemedMark(tx *bolt.Tx, c domain.AuthorizationCode) (time.Time, bool) {
	v := tx.Bucket(bucketChildren).Get(childKey(c.GrantID, kindRedeemed, c.Hash))
	if len(v) != 8 {
		return time.Time{}, false
	}
	return timeFromSortable(binary.BigEndian.Uint64(v)), true
}

// markRedeemed records that code c was redeemed at c.RedeemedAt. It writes
// a children-index entry instead of rewriting the code record: the entry
// sits next to the refresh token's own entry under the same grant, so a
// redemption dirties one page of that index instead of also a page of the
// codes bucket, where random code hashes put every code on a page of its
// own. Under fsync the pages a commit writes are what /token waits for.
func markRedeemed(tx *bolt.Tx, c domain.AuthorizationCode) error {
	return tx.Bucket(bucketChildren).Put(childKey(c.GrantID, kindRedeemed, c.Hash), binary.BigEndian.AppendUint64(nil, sortableTime(c.RedeemedAt)))
}

// liveCode returns a code that has not expired and whose grant is live,
// with that grant.
func liveCode(tx *bolt.Tx, hash string, now time.Time) (domain.AuthorizationCode, domain.Grant, bool, error) {
	c, ok, err := loadCode(tx, hash)
	if err != nil || !ok || expired(now, c.ExpiresAt) {
		return domain.AuthorizationCode{}, domain.Grant{}, false, err
	}
	g, ok, err := liveGrant(tx, c.GrantID, now)
	if err != nil || !ok {
		return domain.AuthorizationCode{}, domain.Grant{}, false, err
	}
	return c, g, true, nil
}

func insertCode(tx *bolt.Tx, c domain.AuthorizationCode) error {
	if err := putJSON(tx, bucketCodes, c.Hash, toCodeRecord(c)); err != nil {
		return err
	}
	if err := putExpiry(tx, c.ExpiresAt, kindCode, c.Hash); err != nil {
		return err
	}
	return addChild(tx, c.GrantID, kindCode, c.Hash, c.ExpiresAt)
}

func deleteCode(tx *bolt.Tx, c domain.AuthorizationCode) error {
	if err := tx.Bucket(bucketCodes).Delete([]byte(c.Hash)); err != nil {
		return err
	}
	if err := deleteExpiry(tx, c.ExpiresAt, kindCode, c.Hash); err != nil {
		return err
	}
	children := tx.Bucket(bucketChildren)
	if err := children.Delete(childKey(c.GrantID, kindRedeemed, c.Hash)); err != nil {
		return err
	}
	return children.Delete(childKey(c.GrantID, kindCode, c.Hash))
}

// Refresh tokens.

func loadToken(tx *bolt.Tx, hash string) (domain.RefreshToken, bool, error) {
	var r refreshRecord
	ok, err := getJSON(tx, bucketRefresh, hash, &r)
	return r.domain(), ok, err
}

// liveToken returns a refresh token (rotated or not) that has not expired
// and whose grant is live, with that grant.
func liveToken(tx *bolt.Tx, hash string, now time.Time) (domain.RefreshToken, domain.Grant, bool, error) {
	t, ok, err := loadToken(tx, hash)
	if err != nil || !ok || expired(now, t.ExpiresAt) {
		return domain.RefreshToken{}, domain.Grant{}, false, err
	}
	g, ok, err := liveGrant(tx, t.GrantID, now)
	if err != nil || !ok {
		return domain.RefreshToken{}, domain.Grant{}, false, err
	}
	return t, g, true, nil
}

func insertToken(tx *bolt.Tx, t domain.RefreshToken) error {
	if err := putJSON(tx, bucketRefresh, t.Hash, toRefreshRecord(t)); err != nil {
		return err
	}
	if err := putExpiry(tx, t.ExpiresAt, kindRefresh, t.Hash); err != nil {
		return err
	}
	return addChild(tx, t.GrantID, kindRefresh, t.Hash, t.ExpiresAt)
}

// updateToken rewrites a token whose key fields did not change.
func updateToken(tx *bolt.Tx, t domain.RefreshToken) error {
	return putJSON(tx, bucketRefresh, t.Hash, toRefreshRecord(t))
}

func deleteToken(tx *bolt.Tx, t domain.RefreshToken) error {
	if err := tx.Bucket(bucketRefresh).Delete([]byte(t.Hash)); err != nil {
		return err
	}
	if err := deleteExpiry(tx, t.ExpiresAt, kindRefresh, t.Hash); err != nil {
		return err
	}
	return tx.Bucket(bucketChildren).Delete(childKey(t.GrantID, kindRefresh, t.Hash))
}
