package boltstore

import (
	"context"
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/oidcproxy/oidcproxy/domain"
)

// CreateTransaction stores a new transaction; domain.ErrAlreadyExists on a duplicate id.
func (s *Store) CreateTransaction(ctx context.Context, t domain.Transaction) error {
	const op = "create transaction"
	if err := checkKey(t.ID); err != nil {
		return fail(op, err)
	}
	var outcome error
	err := s.write(ctx, op, false, func(tx *bolt.Tx) error {
		outcome = nil
		if exists(tx, bucketTransactions, t.ID) {
			outcome = fail(op, domain.ErrAlreadyExists)
			return errNoChange
		}
		return insertTransaction(tx, t)
	})
	if err != nil {
		return err
	}
	return outcome
}

// UpdateTransaction applies fn to the stored transaction and saves the
// result in the same transaction. fn's error rolls back and is returned as
// is; fn may not change the id.
func (s *Store) UpdateTransaction(ctx context.Context, id string, now time.Time, fn func(*domain.Transaction) error) error {
	const op = "update transaction"
	var outcome error
	err := s.write(ctx, op, false, func(tx *bolt.Tx) error {
		outcome = nil
		old, ok, err := liveTransaction(tx, id, now)
		if err != nil {
			return err
		}
		if !ok {
			outcome = fail(op, domain.ErrNotFound)
			return errNoChange
		}
		next := old.Clone()
		if err := fn(&next); err != nil {
			outcome = err
			return errNoChange
		}
		if next.ID != id {
			outcome = fail(op, errors.New("the update changed the transaction id"))
			return errNoChange
		}
		if err := putJSON(tx, bucketTransactions, id, toTransactionRecord(next)); err != nil {
			return err
		}
		return moveExpiry(tx, old.ExpiresAt, next.ExpiresAt, kindTransaction, id)
	})
	if err != nil {
		return err
	}
	return outcome
}

// ConsumeTransaction deletes the transaction and returns it. A check error
// still deletes it (single use) and is returned as is.
func (s *Store) ConsumeTransaction(ctx context.Context, id string, now time.Time, check func(domain.Transaction) error) (domain.Transaction, error) {
	const op = "consume transaction"
	var (
		t       domain.Transaction
		outcome error
	)
	err := s.write(ctx, op, false, func(tx *bolt.Tx) error {
		t, outcome = domain.Transaction{}, nil
		found, ok, err := liveTransaction(tx, id, now)
		if err != nil {
			return err
		}
		if !ok {
			outcome = fail(op, domain.ErrNotFound)
			return errNoChange
		}
		var checkErr error
		if check != nil {
			// check gets its own copy so it cannot alter the value returned
			// to the caller.
			checkErr = check(found.Clone())
		}
		// Deleted whatever check said: a failed check burns the transaction.
		if err := deleteTransaction(tx, found); err != nil {
			return err
		}
		if checkErr != nil {
			outcome = checkErr
			return nil
		}
		t = found
		return nil
	})
	if err != nil {
		return domain.Transaction{}, err
	}
	return t, outcome
}

// ReplaceTransaction consumes oldID and stores the transaction check
// returns, which it also returns. A check error burns oldID and is returned
// as is. A replacement without a usable id, or whose id is taken, changes
// nothing.
func (s *Store) ReplaceTransaction(ctx context.Context, oldID string, now time.Time, check func(domain.Transaction) (domain.Transaction, error)) (domain.Transaction, error) {
	const op = "replace transaction"
	var (
		next    domain.Transaction
		outcome error
	)
	err := s.write(ctx, op, false, func(tx *bolt.Tx) error {
		next, outcome = domain.Transaction{}, nil
		old, ok, err := liveTransaction(tx, oldID, now)
		if err != nil {
			return err
		}
		if !ok {
			outcome = fail(op, domain.ErrNotFound)
			return errNoChange
		}
		candidate, err := check(old.Clone())
		if err != nil {
			outcome = err
			// Burn the original and commit: a rejected replace is single use.
			return deleteTransaction(tx, old)
		}
		if err := checkKey(candidate.ID); err != nil {
			outcome = fail(op, err)
			return errNoChange
		}
		if candidate.ID != oldID && exists(tx, bucketTransactions, candidate.ID) {
			outcome = fail(op, domain.ErrAlreadyExists)
			return errNoChange
		}
		if err := deleteTransaction(tx, old); err != nil {
			return err
		}
		if err := insertTransaction(tx, candidate); err != nil {
			return err
		}
		next = toTransactionRecord(candidate).domain()
		return nil
	})
	if err != nil {
		return domain.Transaction{}, err
	}
	return next, outcome
}
