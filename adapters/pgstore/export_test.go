package pgstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/internal/gencache"
)

// WithListenerDial returns opts whose listening connection is made by
// dial, so that a test can cut it apart from the pool.
func WithListenerDial(opts Options, dial pgconn.DialFunc) Options {
	opts.dial = dial
	return opts
}

// SweepLockKey is the sweep's advisory lock key for a schema.
var SweepLockKey = sweepLockKey

// Claim runs the one-statement redemption alone, without falling back to
// the locking transaction; decided is false where only that can decide.
func (s *Store) Claim(ctx context.Context, hash string, now time.Time, use domain.CodeRedemption) (decided bool, err error) {
	c, ok := use.Claim()
	if !ok {
		return false, nil
	}
	_, _, decided, err = s.claim(ctx, hash, now, use, c)
	return decided, err
}

// RotatePlain runs the one-statement rotation alone, without falling back
// to the locking transaction; decided is false where only that can decide.
func (s *Store) RotatePlain(ctx context.Context, hash string, now time.Time, r domain.Rotation) (decided bool, err error) {
	_, decided, err = s.rotatePlain(ctx, hash, now, r)
	return decided, err
}

// The statements a test runs by hand, to see what they write.
const (
	ClaimCodeStatement   = sqlClaimCode
	RotatePlainStatement = sqlRotatePlain
)

// NS is the stored form of a time.
var NS = ns

// Batcher is a batcher of a test's own statement.
type Batcher struct{ b *batcher }

// NewBatcher returns a batcher of sql on the store's pool with slots
// batches in flight at most.
func (s *Store) NewBatcher(sql string, slots int) Batcher {
	return Batcher{newBatcher(s.pool, sql, s.timeout, slots, maxBatch)}
}

// QueryRow is queryRow.
func (b Batcher) QueryRow(ctx context.Context, key string, args []any, dest ...any) (bool, error) {
	return b.b.queryRow(ctx, key, args, dest...)
}

// Hold takes every slot, so that calls queue; each call of release gives
// one back.
func (b Batcher) Hold() (release func()) {
	for range cap(b.b.slots) {
		b.b.slots <- struct{}{}
	}
	return func() { <-b.b.slots }
}

// Pending is how many calls wait for a batch.
func (b Batcher) Pending() int {
	b.b.mu.Lock()
	defer b.b.mu.Unlock()
	return len(b.b.pending)
}

// RolledBack is rolledBack.
var RolledBack = rolledBack

// ErrBatchAborted is errBatchAborted.
var ErrBatchAborted = errBatchAborted

// Reads is a reads of strings, for a test's own read function.
type Reads struct{ r *reads[string] }

// NewReads returns an empty Reads.
func NewReads() Reads { return Reads{&reads[string]{}} }

// Do is reads.do.
func (r Reads) Do(ctx context.Context, id string, epoch uint64, read func(context.Context) (string, error)) (string, error) {
	return r.r.do(ctx, id, gencache.Epoch(epoch), read)
}

// Waiting is how many callers joined a read of id in flight.
func (r Reads) Waiting(id string) int { return r.r.waiting(id) }

// ErrReadAborted is errReadAborted.
var ErrReadAborted = errReadAborted

// WaitingReads is how many callers joined the store's read of client or
// grant id in flight.
func (s *Store) WaitingReads(id string) int {
	return s.clientReads.waiting(id) + s.grantReads.waiting(id)
}

// PoolAcquires is how many times the store took a connection of its pool.
func (s *Store) PoolAcquires() int64 { return s.pool.Stat().AcquireCount() }
