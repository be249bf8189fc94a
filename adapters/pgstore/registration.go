package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/oidcproxy/oidcproxy/domain"
)

// The number of self-registered clients lives in client_counts, kept by a
// trigger on clients (migration 5): every statement that inserts or
// deletes a client keeps it right in its own transaction.

// RegisterClient stores a client that registered itself, unless max (when
// positive) such clients are stored already. The count is read and locked
// in the transaction that inserts, so concurrent registrations on every
// instance take turns at the bound.
func (s *Store) RegisterClient(ctx context.Context, c domain.Client, max int) error {
	const op = "register client"
	if c.Operator || max <= 0 {
		return s.CreateClient(ctx, c) // nothing to bound
	}
	if err := ctx.Err(); err != nil {
		return fail(op, err)
	}
	if !validKey(c.ID) {
		return fail(op, errInvalidKey)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var n int64
	tx, found, err := s.begin(ctx, sqlLockClientCount, nil, &n)
	if err != nil {
		return fail(op, err)
	}
	defer tx.rollback()
	if !found {
		return fail(op, errors.New("the registered client count is missing"))
	}
	if n >= int64(max) {
		return fail(op, domain.ErrLimitReached)
	}
	inserted := false
	b := &pgx.Batch{}
	b.Queue(sqlInsertClient, clientArgs(c)...).Exec(func(tag pgconn.CommandTag) error {
		inserted = tag.RowsAffected() == 1
		return nil
	})
	if err := tx.commit(ctx, b); err != nil {
		return fail(op, err)
	}
	if !inserted {
		return fail(op, domain.ErrAlreadyExists)
	}
	return nil
}

// SweepUnusedClients deletes the self-registered clients that never
// completed a grant and were created before createdBefore, oldest first,
// in statements of at most sweepBatch rows; the trigger counts them down.
func (s *Store) SweepUnusedClients(ctx context.Context, createdBefore time.Time) (int, error) {
	const op = "sweep unused clients"
	if err := ctx.Err(); err != nil {
		return 0, fail(op, err)
	}
	conn, err := s.acquire(ctx)
	if err != nil {
		return 0, fail(op, err)
	}
	defer conn.Release()
	total := 0
	defer func() {
		// Other instances hear of the deletions from the trigger; this one
		// forgets its own copies at once.
		if total > 0 && s.cache != nil {
			s.cache.clients.ForgetAll()
		}
	}()
	for {
		n, err := s.sweepOnce(ctx, conn, sqlSweepUnusedClients, createdBefore)
		total += n
		if err != nil {
			return total, fail(op, err)
		}
		if n < sweepBatch {
			return total, nil
		}
	}
}
