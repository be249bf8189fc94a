package pgstore

import (
	"context"
	"time"
)

// sweepBatch bounds the rows one sweep statement deletes, so that a large
// backlog never holds many row locks, or one long transaction, at once:
// requests keep committing between the statements.
const sweepBatch = 1000

// Sweep removes every transaction, code, refresh token, used assertion id
// and grant expired at now (a grant with whatever still hangs on it), in
// statements of at most sweepBatch rows each, and reports how many records
// it removed, also when it stops on an error.
func (s *Store) Sweep(ctx context.Context, now time.Time) (int, error) {
	const op = "sweep"
	if err := ctx.Err(); err != nil {
		return 0, fail(op, err)
	}
	total := 0
	for _, q := range []string{sqlSweepTransactions, sqlSweepCodes, sqlSweepRefreshTokens, sqlSweepAssertionIDs} {
		for {
			n, err := s.sweepOnce(ctx, q, now)
			total += n
			if err != nil {
				return total, fail(op, err)
			}
			if n < sweepBatch {
				break
			}
		}
	}
	for {
		grants, removed, err := s.sweepGrants(ctx, now)
		total += removed
		if err != nil {
			return total, fail(op, err)
		}
		if grants < sweepBatch {
			return total, nil
		}
	}
}

func (s *Store) sweepOnce(ctx context.Context, query string, now time.Time) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, query, ns(now), sweepBatch)
	return int(tag.RowsAffected()), err
}

func (s *Store) sweepGrants(ctx context.Context, now time.Time) (grants, removed int, err error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	err = s.pool.QueryRow(ctx, sqlSweepGrants, ns(now), sweepBatch).Scan(&grants, &removed)
	return grants, removed, err
}
