package boltstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// The operator's methods: rare, so they take plain transactions (no group
// commit) and decode whole records. Grants are found through the owner
// index (owners.go) and deleted through deleteGrantTree, whose commit
// hook makes the grant cache, and so the gateway, forget them at once.

// errEmptyFilter refuses a revocation that would select every grant.
var errEmptyFilter = errors.New("a revocation needs a subject, a client or a grant id")

// errBadLimit refuses a page without a positive size.
var errBadLimit = errors.New("page limit must be positive")

// ListClients returns up to page.Limit clients whose id sorts after
// page.After, in id order.
func (s *Store) ListClients(ctx context.Context, page ports.Page) ([]domain.Client, error) {
	const op = "list clients"
	if page.Limit <= 0 {
		return nil, fail(op, errBadLimit)
	}
	var out []domain.Client
	err := s.view(ctx, op, func(tx *bolt.Tx) error {
		out = nil
		c := tx.Bucket(bucketClients).Cursor()
		for k, v := c.Seek([]byte(page.After)); k != nil && len(out) < page.Limit; k, v = c.Next() {
			if string(k) <= page.After {
				continue
			}
			var r clientRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode %s record: %w", bucketClients, err)
			}
			out = append(out, r.domain())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteClient deletes a client and every grant of it in one transaction.
func (s *Store) DeleteClient(ctx context.Context, id string) (int, error) {
	const op = "delete client"
	if err := checkKey(id); err != nil {
		return 0, fail(op, err)
	}
	var (
		revoked int
		outcome error
	)
	err := s.write(ctx, op, false, func(tx *bolt.Tx) error {
		revoked, outcome = 0, nil
		var r clientRecord
		found, err := getJSON(tx, bucketClients, id, &r)
		if err != nil {
			return err
		}
		if !found {
			outcome = fail(op, domain.ErrNotFound)
			return errNoChange
		}
		// deleteClient keeps the registration count and the unused-client
		// index right, and drops the client from the cache on commit.
		if err := s.deleteClient(tx, r.domain()); err != nil {
			return err
		}
		revoked, err = s.revokeMatching(tx, ports.GrantFilter{ClientID: id})
		return err
	})
	if err != nil {
		return 0, err
	}
	return revoked, outcome
}

// ListGrants returns up to page.Limit live grants that match filter and
// whose id sorts after page.After, in id order. A subject or a client is
// looked up in the owner index, a grant id directly; only an empty filter
// walks the grants themselves.
func (s *Store) ListGrants(ctx context.Context, filter ports.GrantFilter, page ports.Page, now time.Time) ([]domain.Grant, error) {
	const op = "list grants"
	if page.Limit <= 0 {
		return nil, fail(op, errBadLimit)
	}
	var out []domain.Grant
	err := s.view(ctx, op, func(tx *bolt.Tx) error {
		out = nil
		return eachCandidate(tx, filter, page.After, func(id string) (bool, error) {
			g, ok, err := liveGrant(tx, id, now)
			if err != nil || !ok || !matches(g, filter) {
				return true, err
			}
			out = append(out, g)
			return len(out) < page.Limit, nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RevokeGrants deletes every grant that matches filter, with its codes and
// refresh tokens, in one transaction.
func (s *Store) RevokeGrants(ctx context.Context, filter ports.GrantFilter) (int, error) {
	const op = "revoke grants"
	if filter.IsEmpty() {
		return 0, fail(op, errEmptyFilter)
	}
	var revoked int
	err := s.write(ctx, op, false, func(tx *bolt.Tx) error {
		var err error
		revoked, err = s.revokeMatching(tx, filter)
		return err
	})
	if err != nil {
		return 0, err
	}
	return revoked, nil
}

// revokeMatching deletes the grants filter selects (expired or not) and
// reports how many.
func (s *Store) revokeMatching(tx *bolt.Tx, filter ports.GrantFilter) (int, error) {
	var ids []string
	err := eachCandidate(tx, filter, "", func(id string) (bool, error) {
		var k grantKeys
		ok, err := getJSON(tx, bucketGrants, id, &k)
		if err == nil && ok && matchesKeys(id, k, filter) {
			ids = append(ids, id)
		}
		return true, err
	})
	if err != nil {
		return 0, err
	}
	// Deleted after the walk: a cursor must not see its bucket change.
	for _, id := range ids {
		if _, err := s.deleteGrantTree(tx, id); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

// eachCandidate calls fn with the id of every grant after after, in id
// order, that filter may select, until fn returns false: the one grant
// its id names, the subject's or the client's grants from the owner
// index, or every grant. The caller still checks the other fields of the
// filter against each grant.
func eachCandidate(tx *bolt.Tx, filter ports.GrantFilter, after string, fn func(id string) (bool, error)) error {
	switch {
	case filter.GrantID != "":
		if filter.GrantID <= after {
			return nil
		}
		_, err := fn(filter.GrantID)
		return err
	case filter.Subject != "":
		return eachOwned(tx, ownerSubject, filter.Subject, after, fn)
	case filter.ClientID != "":
		return eachOwned(tx, ownerClient, filter.ClientID, after, fn)
	}
	c := tx.Bucket(bucketGrants).Cursor()
	for k, _ := c.Seek([]byte(after)); k != nil; k, _ = c.Next() {
		if string(k) <= after {
			continue
		}
		if more, err := fn(string(k)); err != nil || !more {
			return err
		}
	}
	return nil
}

// matches reports whether grant g is selected by filter.
func matches(g domain.Grant, f ports.GrantFilter) bool {
	return matchesKeys(g.ID, grantKeys{ClientID: g.ClientID, Subject: g.Subject}, f)
}

func matchesKeys(id string, k grantKeys, f ports.GrantFilter) bool {
	return (f.Subject == "" || k.Subject == f.Subject) &&
		(f.ClientID == "" || k.ClientID == f.ClientID) &&
		(f.GrantID == "" || id == f.GrantID)
}
