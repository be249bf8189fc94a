package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oidcproxy/oidcproxy/domain"
)

// CreateTransaction stores a new transaction; domain.ErrAlreadyExists on a
// duplicate id (expired or not: the sweeper removes expired ones).
func (s *Store) CreateTransaction(ctx context.Context, t domain.Transaction) error {
	return s.insertOnce(ctx, "create transaction", t.ID, sqlInsertTransaction, transactionArgs(t))
}

// UpdateTransaction applies fn to the stored transaction, locked, and saves
// the result in the same transaction. fn's error rolls back and is
// returned as is; fn may not change the id.
func (s *Store) UpdateTransaction(ctx context.Context, id string, now time.Time, fn func(*domain.Transaction) error) error {
	const op = "update transaction"
	if err := ctx.Err(); err != nil {
		return fail(op, err)
	}
	if !validKey(id) {
		return fail(op, domain.ErrNotFound)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var r transactionRow
	tx, found, err := s.begin(ctx, sqlLockTransaction, []any{id, ns(now)}, r.dest()...)
	if err != nil {
		return fail(op, err)
	}
	defer tx.rollback()
	if !found {
		return fail(op, domain.ErrNotFound)
	}
	next := r.domain()
	if err := fn(&next); err != nil {
		return err
	}
	if next.ID != id {
		return fail(op, errors.New("the update changed the transaction id"))
	}
	b := &pgx.Batch{}
	b.Queue(sqlUpdateTransaction, transactionArgs(next)...)
	if err := tx.commit(ctx, b); err != nil {
		return fail(op, err)
	}
	return nil
}

// ConsumeTransaction deletes the transaction and returns it, in one
// statement. A check error still deletes it (single use) and is returned
// as is.
func (s *Store) ConsumeTransaction(ctx context.Context, id string, now time.Time, check func(domain.Transaction) error) (domain.Transaction, error) {
	const op = "consume transaction"
	if err := ctx.Err(); err != nil {
		return domain.Transaction{}, fail(op, err)
	}
	if !validKey(id) {
		return domain.Transaction{}, fail(op, domain.ErrNotFound)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var r transactionRow
	if err := s.pool.QueryRow(ctx, sqlConsumeTransaction, id, ns(now)).Scan(r.dest()...); err != nil {
		return domain.Transaction{}, fail(op, notFound(err))
	}
	t := r.domain()
	if check != nil {
		if err := check(t.Clone()); err != nil {
			return domain.Transaction{}, err
		}
	}
	return t, nil
}

// ReplaceTransaction consumes oldID and stores the transaction check
// returns, which it also returns. A check error burns oldID (commits the
// deletion) and is returned as is. A replacement without a usable id, or
// whose id is taken, rolls everything back.
func (s *Store) ReplaceTransaction(ctx context.Context, oldID string, now time.Time, check func(domain.Transaction) (domain.Transaction, error)) (domain.Transaction, error) {
	const op = "replace transaction"
	if err := ctx.Err(); err != nil {
		return domain.Transaction{}, fail(op, err)
	}
	if !validKey(oldID) {
		return domain.Transaction{}, fail(op, domain.ErrNotFound)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var r transactionRow
	tx, found, err := s.begin(ctx, sqlConsumeTransaction, []any{oldID, ns(now)}, r.dest()...)
	if err != nil {
		return domain.Transaction{}, fail(op, err)
	}
	defer tx.rollback()
	if !found {
		return domain.Transaction{}, fail(op, domain.ErrNotFound)
	}
	next, err := check(r.domain())
	if err != nil {
		if cerr := tx.commit(ctx, nil); cerr != nil {
			return domain.Transaction{}, fail(op, cerr)
		}
		return domain.Transaction{}, err
	}
	if !validKey(next.ID) {
		return domain.Transaction{}, fail(op, errInvalidKey)
	}
	b := &pgx.Batch{}
	b.Queue(sqlInsertNewTransaction, transactionArgs(next)...)
	if err := tx.commit(ctx, b); err != nil {
		return domain.Transaction{}, fail(op, alreadyExists(err))
	}
	return normalTransaction(next), nil
}

// normalTransaction is t as a read would return it: times in UTC at the
// stored precision, no slice shared with the caller.
func normalTransaction(t domain.Transaction) domain.Transaction {
	t = t.Clone()
	t.CreatedAt = fromNS(ns(t.CreatedAt))
	t.ExpiresAt = fromNS(ns(t.ExpiresAt))
	return t
}
