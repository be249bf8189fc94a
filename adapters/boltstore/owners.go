package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/oidcproxy/oidcproxy/domain"
)

// The owner index (bucket grant_owners, schema 3) finds the grants of a
// subject and of a client without reading every grant: the operator's
// listings and revocations (admin.go) walk it. A grant has two entries,
//
//	's' | uint16 length | subject   | grant id
//	'c' | uint16 length | client id | grant id
//
// with empty values. The length prefix keeps one owner from being a
// prefix of another ("al" and "alice"); the grant id at the end keeps the
// entries of one owner in id order, which is creation order
// (domain.NewGrantID), so a listing pages by seeking. Every write that
// stores, rewrites or deletes a grant record keeps the index in step in
// the same transaction: insertGrant, updateGrant and deleteGrantTree (the
// one deletion path, used by revocation, reuse detection, sweeping and
// DeleteClient).

// Owner tags of the index keys.
const (
	ownerSubject byte = 's'
	ownerClient  byte = 'c'
)

// owners are the index keys of one grant.
type owners struct {
	grantID, subject, clientID string
}

func ownersOf(g domain.Grant) owners {
	return owners{grantID: g.ID, subject: g.Subject, clientID: g.ClientID}
}

// grantKeys is the part of a grant record the indexes are keyed by,
// decoded without the rest (the sealed upstream tokens above all).
type grantKeys struct {
	ClientID  string    `json:"client_id"`
	Subject   string    `json:"subject"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (k grantKeys) owners(id string) owners {
	return owners{grantID: id, subject: k.Subject, clientID: k.ClientID}
}

// ownerPrefix starts every index key of one owner.
func ownerPrefix(tag byte, owner string) []byte {
	b := make([]byte, 0, 3+len(owner))
	b = append(b, tag)
	b = binary.BigEndian.AppendUint16(b, uint16(len(owner)))
	return append(b, owner...)
}

func ownerKey(tag byte, owner, grantID string) []byte {
	return append(ownerPrefix(tag, owner), grantID...)
}

// checkOwner refuses an owner the length prefix cannot hold; real subjects
// and client ids are far shorter (domain.MaxSubjectLength,
// domain.MaxClientIDURLLength).
func checkOwner(owner string) error {
	if len(owner) > maxKeyLen {
		return errKeyTooLong
	}
	return nil
}

func indexOwners(tx *bolt.Tx, o owners) error {
	b := tx.Bucket(bucketOwners)
	if err := b.Put(ownerKey(ownerSubject, o.subject, o.grantID), nil); err != nil {
		return err
	}
	return b.Put(ownerKey(ownerClient, o.clientID, o.grantID), nil)
}

func unindexOwners(tx *bolt.Tx, o owners) error {
	b := tx.Bucket(bucketOwners)
	if err := b.Delete(ownerKey(ownerSubject, o.subject, o.grantID)); err != nil {
		return err
	}
	return b.Delete(ownerKey(ownerClient, o.clientID, o.grantID))
}

// moveOwners re-indexes a grant whose subject or client changed (a rotate
// callback may rewrite any field but the id).
func moveOwners(tx *bolt.Tx, from, to owners) error {
	if from == to {
		return nil
	}
	if err := unindexOwners(tx, from); err != nil {
		return err
	}
	return indexOwners(tx, to)
}

// eachOwned calls fn with the id of each grant of owner that sorts after
// after, in id order, until fn returns false.
func eachOwned(tx *bolt.Tx, tag byte, owner, after string, fn func(id string) (bool, error)) error {
	prefix := ownerPrefix(tag, owner)
	c := tx.Bucket(bucketOwners).Cursor()
	for k, _ := c.Seek(append(bytes.Clone(prefix), after...)); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		id := string(k[len(prefix):])
		if id <= after {
			continue
		}
		if more, err := fn(id); err != nil || !more {
			return err
		}
	}
	return nil
}

// buildOwnerIndex indexes every stored grant: the migration of a file of
// schema 1 or 2, which has no owner index, to schema 3.
func buildOwnerIndex(tx *bolt.Tx) error {
	c := tx.Bucket(bucketGrants).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var g grantKeys
		if err := json.Unmarshal(v, &g); err != nil {
			return fmt.Errorf("decode %s record: %w", bucketGrants, err)
		}
		if err := indexOwners(tx, g.owners(string(k))); err != nil {
			return err
		}
	}
	return nil
}
