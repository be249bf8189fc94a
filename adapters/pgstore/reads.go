package pgstore

import (
	"context"
	"errors"
	"sync"

	"github.com/oidcproxy/oidcproxy/internal/gencache"
)

// reads coalesces the cache misses of one record: of the callers that miss
// the same key in the same epoch while a read of it is in flight, only the
// first reads the database, and the others wait for its answer.
//
// Without it a hot record stampedes every Options.CacheTTL: the client
// every /token request of one application looks up, or the grant behind
// an agent's parallel tool calls, ages out of the cache for every request
// in flight at that moment at once, and each sends the same query, holding
// a pool connection of its own (opening new ones if the pool has none
// idle). Measured with bench's BenchmarkTokenAuthorizationCodePostgres
// (two instances, 50 clients, one client application): the slices that
// began with the client's entry aged out had a p99 of 51 to 137 ms, the
// others 23 to 44 ms; with the misses coalesced, every slice stayed
// within 22 to 44 ms.
//
// A caller joins only a read of its own epoch. A read that began before a
// change was forgotten may answer with the record as it was before the
// change: its own callers asked before the forget, and may have that
// answer (its fill is refused by the epoch rule), but a caller that
// misses after the forget starts a read of its own.
//
// The first caller reads on its own goroutine and its own context, so
// that a panic stays a panic of the request that caused it and a read
// never outlives its request's deadline. When that caller goes away
// before its read is done, the others start over rather than fail with
// a cancellation that is not theirs.
type reads[T any] struct {
	mu      sync.Mutex
	flights map[readKey]*flight[T]
}

// readKey is a record's key in one cache epoch.
type readKey struct {
	id    string
	epoch gencache.Epoch
}

// flight is one read in progress. value and err are written before done is
// closed and only read after.
type flight[T any] struct {
	done  chan struct{}
	value T
	err   error
	// abandoned: the caller that read went away first; the answer is its
	// cancellation, not the record's.
	abandoned bool
	// waiters counts the callers that joined, for tests.
	waiters int
}

// errReadAborted answers the callers that waited for a read that panicked.
var errReadAborted = errors.New("the read this request waited for was aborted")

// do returns read's answer for id in epoch: read runs once for every
// caller that asks while it is in flight. Callers share the value, so
// they must copy what they may change.
func (r *reads[T]) do(ctx context.Context, id string, epoch gencache.Epoch, read func(context.Context) (T, error)) (T, error) {
	key := readKey{id: id, epoch: epoch}
	for {
		f, lead := r.join(key)
		if lead {
			return r.lead(ctx, key, f, read)
		}
		select {
		case <-f.done:
			if f.abandoned && ctx.Err() == nil {
				continue
			}
			return f.value, f.err
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
	}
}

// join returns key's flight, and whether the caller must lead it.
func (r *reads[T]) join(key readKey) (f *flight[T], lead bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.flights[key]; ok {
		f.waiters++
		return f, false
	}
	if r.flights == nil {
		r.flights = make(map[readKey]*flight[T])
	}
	f = &flight[T]{done: make(chan struct{})}
	r.flights[key] = f
	return f, true
}

// lead runs read for f's waiters and answers them, also when read panics.
func (r *reads[T]) lead(ctx context.Context, key readKey, f *flight[T], read func(context.Context) (T, error)) (T, error) {
	finished := false
	defer func() {
		if !finished {
			f.err = errReadAborted
		}
		r.mu.Lock()
		delete(r.flights, key)
		r.mu.Unlock()
		close(f.done)
	}()
	f.value, f.err = read(ctx)
	f.abandoned = f.err != nil && ctx.Err() != nil
	finished = true
	return f.value, f.err
}

// waiting reports how many callers wait for a read of id, for tests.
func (r *reads[T]) waiting(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for k, f := range r.flights {
		if k.id == id {
			n += f.waiters
		}
	}
	return n
}
