package cimd

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/oidcproxy/oidcproxy/ports"
)

// entryOverhead is what an entry costs beyond its key and document, so that
// cached failures (no document) count against the byte bound too.
const entryOverhead = 256

// cache is a bounded LRU of documents and failures, with one fetch in
// flight per URL (a hand-written singleflight: a few lines here beat a new
// direct dependency).
type cache struct {
	opts Options

	mu       sync.Mutex
	lru      *list.List // of *entry, most recently used first
	entries  map[string]*list.Element
	bytes    int64
	inflight map[string]*call
}

type entry struct {
	key     string
	doc     ports.ClientMetadataDocument
	err     error
	size    int64
	expires time.Time
}

// call is one fetch in progress; done closes when doc and err are set.
type call struct {
	done chan struct{}
	doc  ports.ClientMetadataDocument
	err  error
}

// loader fetches a document: the document, its size, how long it may be
// cached, or an error.
type loader func(ctx context.Context) (ports.ClientMetadataDocument, int64, time.Duration, error)

func newCache(opts Options) *cache {
	return &cache{
		opts:     opts,
		lru:      list.New(),
		entries:  map[string]*list.Element{},
		inflight: map[string]*call{},
	}
}

// get answers from the cache while the entry is fresh, and otherwise joins
// or starts the one fetch for key; before it starts one it asks admit,
// whose error it returns without caching anything. The fetch runs
// detached from ctx (bounded by the fetcher's timeout), so a caller that
// gives up does not fail the others waiting on the same fetch; each
// caller stops waiting when its own ctx ends.
func (c *cache) get(ctx context.Context, key string, admit func(context.Context) error, load loader) (ports.ClientMetadataDocument, error) {
	c.mu.Lock()
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*entry)
		if c.opts.Now().Before(e.expires) {
			c.lru.MoveToFront(el)
			c.mu.Unlock()
			return e.doc, e.err
		}
		c.remove(el)
	}
	cl, ok := c.inflight[key]
	if !ok {
		if err := admit(ctx); err != nil {
			c.mu.Unlock()
			return ports.ClientMetadataDocument{}, err
		}
		cl = &call{done: make(chan struct{})}
		c.inflight[key] = cl
		go c.run(context.WithoutCancel(ctx), key, cl, load)
	}
	c.mu.Unlock()

	select {
	case <-cl.done:
		return cl.doc, cl.err
	case <-ctx.Done():
		return ports.ClientMetadataDocument{}, context.Cause(ctx)
	}
}

// run performs the fetch, stores its outcome and releases the waiters.
func (c *cache) run(ctx context.Context, key string, cl *call, load loader) {
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
		c.store(&entry{
			key:     key,
			doc:     doc,
			err:     err,
			size:    int64(len(key)) + size + entryOverhead,
			expires: c.opts.Now().Add(ttl),
		})
	}
	cl.doc, cl.err = doc, err
	delete(c.inflight, key)
	close(cl.done)
}

// store adds e and evicts least recently used entries beyond the bounds.
// Called with c.mu held.
func (c *cache) store(e *entry) {
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
func (c *cache) remove(el *list.Element) {
	e := el.Value.(*entry)
	c.lru.Remove(el)
	delete(c.entries, e.key)
	c.bytes -= e.size
}
