package cimd

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"
)

// entryOverhead is what an entry costs beyond its key and document, so that
// cached failures (no document) count against the byte bound too.
const entryOverhead = 256

// cache is a bounded LRU of fetched values (documents, key sets) and
// failures, with one fetch in flight per URL (a hand-written singleflight:
// a few lines here beat a new direct dependency).
type cache[V any] struct {
	opts Options

	mu       sync.Mutex
	lru      *list.List // of *entry[V], most recently used first
	entries  map[string]*list.Element
	bytes    int64
	inflight map[string]*call[V]
}

type entry[V any] struct {
	key     string
	doc     V
	err     error
	size    int64
	fetched time.Time
	expires time.Time
}

// call is one fetch in progress; done closes when doc and err are set.
type call[V any] struct {
	done chan struct{}
	doc  V
	err  error
}

// loader fetches a value: the value, its size, how long it may be cached,
// or an error.
type loader[V any] func(ctx context.Context) (V, int64, time.Duration, error)

func newCache[V any](opts Options) *cache[V] {
	return &cache[V]{
		opts:     opts,
		lru:      list.New(),
		entries:  map[string]*list.Element{},
		inflight: map[string]*call[V]{},
	}
}

// get answers from the cache while the entry is fresh, and otherwise joins
// or starts the one fetch for key; before it starts one it asks admit
// (when set), whose error it returns without caching anything. The fetch
// runs detached from ctx (bounded by the fetcher's timeout), so a caller
// that gives up does not fail the others waiting on the same fetch; each
// caller stops waiting when its own ctx ends. refetchAfter, when positive,
// also counts an entry fetched at least that long ago as stale (a forced
// refresh, rate-limited by it).
func (c *cache[V]) get(ctx context.Context, key string, refetchAfter time.Duration, admit func(context.Context) error, load loader[V]) (V, error) {
	c.mu.Lock()
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*entry[V])
		now := c.opts.Now()
		if now.Before(e.expires) && (refetchAfter <= 0 || now.Sub(e.fetched) < refetchAfter) {
			c.lru.MoveToFront(el)
			c.mu.Unlock()
			return e.doc, e.err
		}
		c.remove(el)
	}
	cl, ok := c.inflight[key]
	if !ok {
		if admit != nil {
			if err := admit(ctx); err != nil {
				c.mu.Unlock()
				var zero V
				return zero, err
			}
		}
		cl = &call[V]{done: make(chan struct{})}
		c.inflight[key] = cl
		go c.run(context.WithoutCancel(ctx), key, cl, load)
	}
	c.mu.Unlock()

	select {
	case <-cl.done:
		return cl.doc, cl.err
	case <-ctx.Done():
		var zero V
		return zero, context.Cause(ctx)
	}
}

// run performs the fetch, stores its outcome and releases the waiters.
func (c *cache[V]) run(ctx context.Context, key string, cl *call[V], load loader[V]) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	doc, size, ttl, err := load(ctx)
	if err != nil {
		ttl = c.opts.NegativeTTL
		size = 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Stored before the waiters are released, so that its expiry counts
	// from the fetch, not from whenever this goroutine gets to run after
	// them (a test clock advanced in between made an entry outlive its
	// TTL). A refusal by the fetch limits says nothing about the URL and
	// is not stored: the next request may fetch it.
	if !errors.Is(err, ErrBusy) {
		now := c.opts.Now()
		c.store(&entry[V]{
			key:     key,
			doc:     doc,
			err:     err,
			size:    int64(len(key)) + size + entryOverhead,
			fetched: now,
			expires: now.Add(ttl),
		})
	}
	cl.doc, cl.err = doc, err
	delete(c.inflight, key)
	close(cl.done)
}

// store adds e and evicts least recently used entries beyond the bounds.
// Called with c.mu held.
func (c *cache[V]) store(e *entry[V]) {
	if old, ok := c.entries[e.key]; ok {
		c.remove(old)
	}
	if e.size > c.opts.MaxCacheBytes {
		return
	}
	c.entries[e.key] = c.lru.PushFront(e)
	c.bytes += e.size
	for c.lru.Len() > c.opts.MaxEntries || c.bytes > c.opts.MaxCacheBytes {
		c.remove(c.lru.Back())
	}
}

// remove drops one entry. Called with c.mu held.
func (c *cache[V]) remove(el *list.Element) {
	e := el.Value.(*entry[V])
	c.lru.Remove(el)
	delete(c.entries, e.key)
	c.bytes -= e.size
}
