package boltstore

import (
	"sync"

	"github.com/oidcproxy/oidcproxy/domain"
)

// clientCacheSize bounds the decoded-client cache per generation. Every
// /token, /revoke and /authorize request reads its client; a client record
// never changes after registration (there is no update), so decoding it
// once per process is enough.
const clientCacheSize = 4096

// clientCache holds decoded clients in two generations: when the current
// one is full it becomes the old one (the previous old one is dropped); a
// hit in the old generation is promoted. Values are copied in and out, so
// callers never share slices with the cache.
type clientCache struct {
	mu       sync.RWMutex
	cur, old map[string]domain.Client
}

func newClientCache() *clientCache {
	return &clientCache{cur: map[string]domain.Client{}, old: map[string]domain.Client{}}
}

func (c *clientCache) get(id string) (domain.Client, bool) {
	c.mu.RLock()
	v, ok := c.cur[id]
	inOld := false
	if !ok {
		v, ok = c.old[id]
		inOld = ok
	}
	c.mu.RUnlock()
	if !ok {
		return domain.Client{}, false
	}
	if inOld {
		c.put(v)
	}
	return v.Clone(), true
}

func (c *clientCache) put(v domain.Client) {
	v = v.Clone()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cur) >= clientCacheSize {
		c.old, c.cur = c.cur, make(map[string]domain.Client, clientCacheSize)
	}
	c.cur[v.ID] = v
}
