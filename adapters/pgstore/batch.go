package pgstore

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// batcher runs concurrent executions of one single-statement write (a
// redemption's claim, a plain rotation) as pipelined batches: a batch is
// sent in one round trip and commits once, in one implicit transaction
// (pgx ends a batch with one Sync), instead of a round trip and a durable
// commit per statement. On a database whose CPU is the limit, those two
// are most of a statement's cost: measured with pgbench on a 2-core
// machine, eight claims per pipelined transaction redeemed about twice as
// many codes per second as single claims at their best concurrency.
//
// Batches form by themselves, without a timer: a call waits for one of
// slots batches to be free, and the call that gets one takes everything
// pending with it (up to max). Under light load every call runs alone, at
// once, as a plain statement; under heavy load calls queue while the
// batches in flight commit, and the next batch carries them all.
//
// Each statement decides for its own request alone, as it would run
// alone: its conditions, locks and result are its own, and a later
// statement of a batch sees the earlier ones' writes as those of a
// committed transaction. The batch adds only that they commit together.
// Two calls with one key (one code, one refresh token) never share a
// batch, so that a statement never finds its own request's twin already
// written in its transaction; and a batch takes no call whose key is in
// a batch in flight, except its leader, so that two batches never wait
// for each other's locks (their leaders' twins at most wait for the batch
// that has them, as they would alone).
//
// A batch whose statement fails with an error of the server (a deadlock
// with another transaction, a unique violation) was rolled back whole, so its
// calls run again, each alone, and get their own answers. Any other
// failure (the connection lost, the deadline passed) may have come after
// the commit, so every call of the batch gets it as it is: an answer that
// is not known is never guessed.
type batcher struct {
	pool *pgxpool.Pool
	sql  string
	// timeout bounds a batch without a deadline of its own.
	timeout time.Duration
	// max bounds the statements of one batch.
	max int
	// slots holds a token per batch in flight.
	slots chan struct{}

	mu      sync.Mutex
	pending []*batchCall
	// inFlight counts the calls of each key in the batches running.
	inFlight map[string]int
}

// batchCall is one execution of a batcher's statement: its arguments,
// where its row goes, and, once done is closed, its outcome.
type batchCall struct {
	ctx  context.Context
	key  string
	args []any
	dest []any

	done  chan struct{}
	found bool
	err   error
}

// newBatcher returns a batcher of sql on pool with slots batches in flight
// at most, of max statements each.
func newBatcher(pool *pgxpool.Pool, sql string, timeout time.Duration, slots, max int) *batcher {
	return &batcher{pool: pool, sql: sql, timeout: timeout, max: max, slots: make(chan struct{}, slots), inFlight: map[string]int{}}
}

// queryRow runs the statement with args, alone or in a batch, and scans
// its row, if it returns one, into dest; found reports whether it did.
// Calls with the same key run in different batches. ctx bounds the wait
// for a batch; once a batch carries the call, the call waits for its
// outcome, which the batch's deadline (the earliest of its calls') bounds.
func (b *batcher) queryRow(ctx context.Context, key string, args []any, dest ...any) (found bool, err error) {
	c := &batchCall{ctx: ctx, key: key, args: args, dest: dest, done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, c)
	b.mu.Unlock()
	select {
	case <-c.done:
	case b.slots <- struct{}{}:
		b.lead(c)
		<-c.done
	case <-ctx.Done():
		if b.withdraw(c) {
			return false, ctx.Err()
		}
		<-c.done
	}
	return c.found, c.err
}

// lead runs the batch c leads, when c is still queued (another batch may
// have taken it), and gives the slot back whatever happens.
func (b *batcher) lead(c *batchCall) {
	defer func() { <-b.slots }()
	if c.ctx.Err() != nil && b.withdraw(c) {
		// The slot and the end came together: a call that has ended
		// leads no batch.
		c.err = c.ctx.Err()
		close(c.done)
		return
	}
	if batch := b.take(c); batch != nil {
		b.run(batch)
	}
}

// take removes the calls of the next batch from the queue and marks their
// keys in flight: lead first, then the others in the order they came, up
// to max. It leaves a call for a later batch when its key is in this
// batch or in one in flight (so that two batches never wait for each
// other's locks), when its context has ended (its caller withdraws it),
// or when little of its time is left (it leads a batch of its own, whose
// deadline is its own). A lead with little time left goes alone. take
// returns nil when another batch has taken lead already.
func (b *batcher) take(lead *batchCall) []*batchCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := slices.Index(b.pending, lead)
	if i < 0 {
		return nil
	}
	batch := []*batchCall{lead}
	alone := b.late(lead)
	rest := b.pending[:0]
	for j, c := range b.pending {
		switch {
		case j == i:
		case !alone && len(batch) < b.max && c.ctx.Err() == nil && !b.late(c) && b.inFlight[c.key] == 0 &&
			!slices.ContainsFunc(batch, func(in *batchCall) bool { return in.key == c.key }):
			batch = append(batch, c)
		default:
			rest = append(rest, c)
		}
	}
	clear(b.pending[len(rest):])
	b.pending = rest
	for _, c := range batch {
		b.inFlight[c.key]++
	}
	return batch
}

// late reports whether less than half of the batcher's timeout is left
// to c: a batch runs until the earliest deadline of its calls, and one
// call that waited long must not cut the others' time short.
func (b *batcher) late(c *batchCall) bool {
	d, ok := c.ctx.Deadline()
	return ok && time.Until(d) < b.timeout/2
}

// landed unmarks the keys of a batch that has ended.
func (b *batcher) landed(batch []*batchCall) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range batch {
		if b.inFlight[c.key]--; b.inFlight[c.key] <= 0 {
			delete(b.inFlight, c.key)
		}
	}
}

// withdraw removes c from the queue and reports whether it was still
// there (no batch has taken it).
func (b *batcher) withdraw(c *batchCall) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := slices.Index(b.pending, c)
	if i < 0 {
		return false
	}
	b.pending = slices.Delete(b.pending, i, i+1)
	return true
}

// errBatchAborted is the outcome of the calls of a batch whose run ended
// in a panic: whether it committed is not known.
var errBatchAborted = errors.New("statement batch aborted")

// run executes batch and closes every call's done channel. It runs until
// the earliest deadline of its calls, and is not cancelled with any one
// of them: a client that goes away does not take the others' answers
// with it.
func (b *batcher) run(batch []*batchCall) {
	defer func() {
		r := recover()
		if r != nil {
			for _, c := range batch {
				c.found, c.err = false, errBatchAborted
			}
		}
		b.landed(batch)
		for _, c := range batch {
			close(c.done)
		}
		if r != nil {
			panic(r)
		}
	}()
	if len(batch) == 1 {
		b.single(batch[0])
		return
	}
	ctx, cancel := batchContext(batch[0].ctx, batch, b.timeout)
	defer cancel()
	err := b.pool.AcquireFunc(ctx, func(conn *pgxpool.Conn) error {
		var pb pgx.Batch
		for _, c := range batch {
			pb.Queue(b.sql, c.args...)
		}
		br := conn.SendBatch(ctx, &pb)
		var first error
		for _, c := range batch {
			c.found, c.err = scanRow(br.QueryRow(), c.dest)
			if first == nil {
				first = c.err
			}
		}
		if err := br.Close(); first == nil {
			first = err
		}
		return first
	})
	switch {
	case err == nil:
	case rolledBack(err):
		for _, c := range batch {
			b.single(c)
		}
	default:
		for _, c := range batch {
			c.found, c.err = false, err
		}
	}
}

// single runs c's statement alone, in a transaction of its own, until
// c's own deadline.
func (b *batcher) single(c *batchCall) {
	ctx, cancel := batchContext(c.ctx, []*batchCall{c}, b.timeout)
	defer cancel()
	c.found, c.err = scanRow(b.pool.QueryRow(ctx, b.sql, c.args...), c.dest)
}

// batchContext is the context statements of calls run in: the values of
// base (the leader's context: its trace), without its cancellation, and
// the earliest deadline of the calls', or timeout if none has one.
func batchContext(base context.Context, calls []*batchCall, timeout time.Duration) (context.Context, context.CancelFunc) {
	var deadline time.Time
	for _, c := range calls {
		if d, ok := c.ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
			deadline = d
		}
	}
	detached := context.WithoutCancel(base)
	if deadline.IsZero() {
		return context.WithTimeout(detached, timeout)
	}
	return context.WithDeadline(detached, deadline)
}

// scanRow scans row into dest: found is false, without an error, when the
// statement returned no row.
func scanRow(row pgx.Row, dest []any) (found bool, err error) {
	switch err := row.Scan(dest...); {
	case err == nil:
		return true, nil
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	default:
		return false, err
	}
}

// rolledBack reports whether err is the server refusing a statement of a
// transaction still open (severity ERROR): the server then rolls the
// transaction back, and nothing of it was committed. A FATAL or PANIC
// error ends the session, and a failure of the connection leaves unknown
// whether the commit happened.
func rolledBack(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	// Severity is in the server's language (lc_messages); the unlocalized
	// one is sent by every supported server, the other is the fallback.
	severity := pgErr.SeverityUnlocalized
	if severity == "" {
		severity = pgErr.Severity
	}
	return severity == "ERROR"
}

// maxBatch bounds the statements of one batch: more than the requests
// that queue behind the batches in flight at the concurrency one
// instance serves, few enough that a batch's locks are held briefly.
const maxBatch = 32

// batchSlots is how many batches of one statement may be in flight at
// once on a pool of maxConns connections: two, so that one forms while
// the other commits, and at most half the pool, so that other statements
// always find a connection. More batches in flight are smaller ones, each
// with its commit: measured on a 2-core machine with two instances under
// 50 token clients, five slots redeemed 15 % fewer codes per second than
// two, with a p99 half as long again.
func batchSlots(maxConns int) int {
	return min(2, max(1, maxConns/2))
}
