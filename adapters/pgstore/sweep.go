package pgstore

import (
	"context"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// sweepBatch bounds the rows one sweep statement deletes, so that a large
// backlog never holds many row locks, or one long transaction, at once:
// requests keep committing between the statements.
const sweepBatch = 1000

// Sweep removes every transaction, code, refresh token, used assertion id
// and grant expired
// at now (a grant with whatever still hangs on it), in statements of at
// most sweepBatch rows each, and reports how many records it removed, also
// when it stops on an error.
//
// One instance sweeps at a time: Sweep holds a session advisory lock of
// its schema (sweepLockKey) on the connection that runs the statements,
// and when another instance holds it, Sweep returns 0 at once: that
// instance removes the same rows. The lock goes with the session, so an
// instance that dies while sweeping leaves nothing locked.
func (s *Store) Sweep(ctx context.Context, now time.Time) (int, error) {
	const op = "sweep"
	if err := ctx.Err(); err != nil {
		return 0, fail(op, err)
	}
	conn, err := s.acquire(ctx)
	if err != nil {
		return 0, fail(op, err)
	}
	defer conn.Release()
	locked, err := s.trySweepLock(ctx, conn)
	if err != nil {
		return 0, fail(op, err)
	}
	if !locked {
		return 0, nil
	}
	defer s.sweepUnlock(conn)

	total := 0
	for _, q := range []string{sqlSweepTransactions, sqlSweepCodes, sqlSweepRefreshTokens, sqlSweepAssertionIDs} {
		for {
			n, err := s.sweepOnce(ctx, conn, q, now)
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
		grants, removed, err := s.sweepGrants(ctx, conn, now)
		total += removed
		if err != nil {
			return total, fail(op, err)
		}
		if grants < sweepBatch {
			return total, nil
		}
	}
}

// sweepLockKey is the advisory lock key of the sweeper of a schema: a
// hash of its name, so that deployments in different schemas of one
// database sweep independently (advisory locks are per database).
func sweepLockKey(schema string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("oidcproxy sweep\x00" + schema))
	return int64(h.Sum64())
}

// trySweepLock takes the sweep lock on conn's session without waiting.
func (s *Store) trySweepLock(ctx context.Context, conn *pgxpool.Conn) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var locked bool
	err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", sweepLockKey(s.schema)).Scan(&locked)
	return locked, err
}

// sweepUnlock releases the sweep lock, on a deadline of its own so that a
// cancelled sweep still unlocks. If that fails, the connection is closed
// instead of going back to the pool: the session's end releases the lock,
// which must not stay with a pooled connection.
func (s *Store) sweepUnlock(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", sweepLockKey(s.schema)); err != nil {
		_ = conn.Conn().Close(ctx)
	}
}

func (s *Store) sweepOnce(ctx context.Context, conn *pgxpool.Conn, query string, now time.Time) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	tag, err := conn.Exec(ctx, query, ns(now), sweepBatch)
	return int(tag.RowsAffected()), err
}

// sweepGrants deletes a batch of expired grants with their codes and
// refresh tokens, and forgets them in this instance's cache at once (the
// others hear of it from the trigger), so that a grant the sweep removed
// is never read back from memory.
func (s *Store) sweepGrants(ctx context.Context, conn *pgxpool.Conn, now time.Time) (grants, removed int, err error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var ids []string
	err = conn.QueryRow(ctx, sqlSweepGrants, ns(now), sweepBatch).Scan(&ids, &removed)
	s.forgetGrants(ids, err)
	return len(ids), removed, err
}

// acquire takes a connection of the pool for work that runs longer than
// one store call (a sweep, a copy), waiting for it no longer than the
// store's timeout; the work itself is bounded by ctx and its own limits.
func (s *Store) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.pool.Acquire(ctx)
}
