// Package gencache is a bounded in-memory cache that forgets in two
// generations, for values that are expensive to produce (decoded store
// records, verified signatures) and read far more often than they change.
//
// A Cache holds at most two maps of Size entries. New entries go into the
// current generation; when it is full it becomes the old generation and the
// previous old one is dropped whole. Reading an entry of the old generation
// moves it into the current one, so what is read keeps its place and what
// nobody reads falls out within two turnovers. There is no per-entry
// bookkeeping (no list, no clock), so a hit costs one map lookup under a
// read lock.
//
// Invalidation. Forget and ForgetAll drop entries whose source changed.
// A value read from the source of truth must not be stored after such a
// change if the read may have begun before it: the reader would put the
// old value back. Epoch and Fill close that gap: a reader notes the epoch
// before it reads the source and fills with it; the fill is refused when
// anything was forgotten in between. This lives here, next to Forget, and
// not in each store, because every cache with invalidation (a commit hook,
// a database notification) has the same race, and an invalidation path
// that forgot to move the epoch on would reopen it.
//
// Values are stored and returned as they are given. A value holding
// slices or maps must be copied by the caller on the way in and out if
// callers may change it.
package gencache

import "sync"

// Epoch counts invalidations; see Cache.Epoch and Cache.Fill.
type Epoch uint64

// Cache maps K to V in two bounded generations. The zero value is not
// usable; call New. A Cache is safe for concurrent use.
type Cache[K comparable, V any] struct {
	size int

	mu       sync.RWMutex
	epoch    Epoch
	cur, old map[K]V
}

// New returns an empty cache whose generations hold at most size entries
// each (at least one), so at most 2*size in all.
func New[K comparable, V any](size int) *Cache[K, V] {
	return &Cache[K, V]{size: max(size, 1), cur: map[K]V{}, old: map[K]V{}}
}

// Get returns the value cached under key. A hit in the old generation is
// moved to the current one.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	c.mu.RLock()
	v, ok := c.cur[key]
	if ok {
		c.mu.RUnlock()
		return v, true
	}
	v, ok = c.old[key]
	c.mu.RUnlock()
	if ok {
		c.promote(key)
	}
	return v, ok
}

// promote moves key from the old generation to the current one, unless it
// left the old generation after Get saw it there (forgotten, replaced or
// promoted by another reader): a forgotten entry must not come back.
func (c *Cache[K, V]) promote(key K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.old[key]; ok {
		c.insert(key, v)
	}
}

// Put caches v under key. Use it for values whose source never changes
// under the key (or whose changes call Forget before any read of the new
// state can finish); otherwise read the source after Epoch and use Fill.
func (c *Cache[K, V]) Put(key K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.insert(key, v)
}

// Epoch returns the current epoch. A reader calls it before it reads the
// value from the source and passes it to Fill.
func (c *Cache[K, V]) Epoch() Epoch {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.epoch
}

// Fill caches v under key if nothing was forgotten since Epoch returned
// e, and reports whether it did. v must have been read from the source
// after that Epoch call.
func (c *Cache[K, V]) Fill(e Epoch, key K, v V) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != e {
		return false
	}
	c.insert(key, v)
	return true
}

// Forget drops key and starts a new epoch, so that reads of the source
// already under way cannot fill what they saw before the change.
func (c *Cache[K, V]) Forget(key K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	delete(c.cur, key)
	delete(c.old, key)
}

// ForgetAll drops every entry and starts a new epoch: for when changes may
// have been missed (a lost notification channel) or everything changed.
func (c *Cache[K, V]) ForgetAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	c.cur, c.old = map[K]V{}, map[K]V{}
}

// Len reports how many entries the cache holds, in both generations.
func (c *Cache[K, V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.cur) + len(c.old)
}

// insert stores v in the current generation; the caller holds mu for
// writing. A new key arriving at a full current generation turns the
// generations over first. The key leaves the old generation, so no key
// is counted twice and the bound of 2*size holds.
func (c *Cache[K, V]) insert(key K, v V) {
	if _, present := c.cur[key]; !present && len(c.cur) >= c.size {
		c.old, c.cur = c.cur, make(map[K]V, c.size)
	}
	c.cur[key] = v
	delete(c.old, key)
}
