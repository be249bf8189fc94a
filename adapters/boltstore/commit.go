package boltstore

import (
	"errors"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// committer is a leader-based group commit. Every write joins a queue; the
// first caller that finds no writer running becomes the writer and runs the
// queue (up to max calls) in one transaction. A batch closes when the
// writer starts it, not when a timer fires (bbolt's db.Batch), so every
// call that arrives while a commit and its fsync are in progress joins the
// very next commit: under load, one fsync serves many requests; alone, a
// call commits at once.
//
// A writer commits at most leaderBatches batches, its own first, then
// hands the next one to the first caller still queued and returns: a
// writer that drained the queue until it was empty kept its own request
// waiting for as many commits as the load sustained, which was the tail
// of /token's latency under fsync.
//
// Durability is unchanged: a caller returns only after the transaction
// holding its change has committed (and been synced, unless NoSync).
//
// A closure that returns an error rolls the shared transaction back; that
// call is then retried alone (its error and rollback are its own) and the
// rest run again together. So closures may run more than once, as the
// ports.Store contract says, and must report rejections through variables
// they reset at the start of every run.
type committer struct {
	db  *bolt.DB
	max int

	mu    sync.Mutex
	queue []pending
	// busy: a writer is running a batch or has been handed the next one.
	busy bool
}

type pending struct {
	fn   func(*bolt.Tx) error
	done chan error
	// lead tells the caller to write the next batch (its own is in it).
	lead chan struct{}
}

// leaderBatches is how many batches a writer commits before it hands the
// writing on. Measured (BenchmarkTokenAuthorizationCode, 6 interleaved
// A/B runs): draining until empty gave fsync 5.3k/s at p99 24.8 ms;
// handing on after every batch raised nosync even more than fsync
// (fsync/nosync 0.78); after two batches gave fsync 6.3k/s at p99 20.5 ms
// and fsync/nosync 0.84.
const leaderBatches = 2

// errAlone tells a caller that its closure failed inside a group and must
// run alone to get its own answer.
var errAlone = errors.New("boltstore: run alone")

// do runs fn in a committed transaction shared with concurrent callers.
func (c *committer) do(fn func(*bolt.Tx) error) error {
	call := pending{fn: fn, done: make(chan error, 1), lead: make(chan struct{}, 1)}
	c.mu.Lock()
	c.queue = append(c.queue, call)
	lead := !c.busy
	c.busy = true
	c.mu.Unlock()
	if lead {
		c.write()
	}
	for {
		select {
		case err := <-call.done:
			if errors.Is(err, errAlone) {
				err = c.db.Update(fn)
			}
			return err
		case <-call.lead:
			c.write()
		}
	}
}

// write commits the calls at the head of the queue (the writer's own among
// them: it is the first one queued) and, while calls keep coming, up to
// leaderBatches batches in all; then it hands the next batch to the first
// caller still queued, or leaves the committer idle.
func (c *committer) write() {
	for range leaderBatches {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.busy = false
			c.mu.Unlock()
			return
		}
		n := min(len(c.queue), c.max)
		batch := c.queue[:n:n]
		c.queue = append([]pending(nil), c.queue[n:]...)
		c.mu.Unlock()
		c.commit(batch)
	}
	c.mu.Lock()
	if len(c.queue) == 0 {
		c.busy = false
	} else {
		c.queue[0].lead <- struct{}{}
	}
	c.mu.Unlock()
}

func (c *committer) commit(calls []pending) {
	for len(calls) > 0 {
		failed := -1
		err := c.db.Update(func(tx *bolt.Tx) error {
			failed = -1
			for i, call := range calls {
				if err := call.fn(tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, call := range calls {
				call.done <- err
			}
			return
		}
		calls[failed].done <- errAlone
		calls = append(calls[:failed:failed], calls[failed+1:]...)
	}
}
