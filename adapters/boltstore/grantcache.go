package boltstore

import (
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/oidcproxy/oidcproxy/domain"
)

// grantCacheSize bounds the decoded-grant cache per generation.
const grantCacheSize = 4096

// grantCache keeps decoded grant records for GetGrant, which runs behind
// every bearer token the gateway checks: without it each request paid a
// read transaction and a JSON decode for a record that almost never
// changes.
//
// Revocation must still take effect at once, so every write transaction
// that changes or deletes a grant registers, through watchGrant, a commit
// hook that forgets the grant after the commit is durable and before the
// writer's caller returns. A reader that decoded the grant from a snapshot
// older than that commit must not put the stale value back: it notes the
// cache's epoch before its read transaction and stores the result only if
// no grant changed in between (fill). New grants need no hook: only grants
// that were found are cached.
//
// Only reads outside write transactions use the cache; a write transaction
// reads its own view, which may hold changes of the same group commit that
// have not been committed yet.
type grantCache struct {
	mu sync.RWMutex
	// epoch counts the forget calls; fill compares it.
	epoch    uint64
	cur, old map[string]domain.Grant
}

func newGrantCache() *grantCache {
	return &grantCache{cur: map[string]domain.Grant{}, old: map[string]domain.Grant{}}
}

// get returns a copy of the cached grant id.
func (c *grantCache) get(id string) (domain.Grant, bool) {
	c.mu.RLock()
	g, ok := c.cur[id]
	inOld := false
	if !ok {
		g, ok = c.old[id]
		inOld = ok
	}
	c.mu.RUnlock()
	if inOld {
		c.mu.Lock()
		if _, stillOld := c.old[id]; stillOld {
			c.insert(id, g)
		}
		c.mu.Unlock()
	}
	if !ok {
		return domain.Grant{}, false
	}
	// Callers get their own copy, except for the sealed upstream blob
	// (kilobytes, copied on every bearer check otherwise): sealed values
	// are replaced, never changed in place, and the clipped slice cannot
	// be appended into.
	sealed := g.SealedUpstream
	g.SealedUpstream = nil
	g = g.Clone()
	g.SealedUpstream = slices.Clip(sealed)
	return g, true
}

// snapshot returns the epoch a reader passes to fill.
func (c *grantCache) snapshot() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.epoch
}

// fill caches g, read in a transaction that began after snapshot returned
// epoch, unless some grant has changed since then.
func (c *grantCache) fill(epoch uint64, g domain.Grant) {
	g = g.Clone() // the caller keeps its own copy
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return
	}
	c.insert(g.ID, g)
}

// insert adds g under id; the caller holds mu. When the current map is
// full it becomes the old one, so entries read recently survive one
// turnover and memory stays within two maps of grantCacheSize.
func (c *grantCache) insert(id string, g domain.Grant) {
	if len(c.cur) >= grantCacheSize {
		c.old, c.cur = c.cur, make(map[string]domain.Grant, grantCacheSize)
	}
	c.cur[id] = g
	delete(c.old, id)
}

// forget drops id and moves the epoch on, so that reads already in flight
// cannot cache what they saw before the change.
func (c *grantCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	delete(c.cur, id)
	delete(c.old, id)
}

// grantCaches finds the cache of the store a transaction belongs to, so
// that the record helpers, which see only the transaction, can register
// their commit hooks (watchGrant). Open adds the store's cache, Close
// removes it.
var grantCaches sync.Map // *bolt.DB → *grantCache

// watchGrant makes the commit of tx forget grant id in its store's cache.
// Every helper that rewrites or deletes a grant record calls it.
func watchGrant(tx *bolt.Tx, id string) {
	v, ok := grantCaches.Load(tx.DB())
	if !ok {
		return // a store being closed: nothing reads its cache any more
	}
	c := v.(*grantCache)
	tx.OnCommit(func() { c.forget(id) })
}
