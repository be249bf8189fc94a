package boltstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/oidcproxy/oidcproxy/domain"
)

// grantCacheSize bounds the decoded-grant cache per generation.
const grantCacheSize = 2048

// grantCache remembers decoded grant records together with the exact bytes
// they were decoded from. A resource server checks the same grant on every
// request (GetGrant behind every bearer token), and decoding the JSON was
// most of that check's cost. The stored bytes are still read in every
// transaction and compared: a revoked (deleted) or rewritten grant never
// hits, so revocation stays immediate without any invalidation protocol.
type grantCache struct {
	mu       sync.RWMutex
	cur, old map[string]cachedGrant
}

type cachedGrant struct {
	raw   []byte
	grant domain.Grant
}

func newGrantCache() *grantCache {
	return &grantCache{cur: map[string]cachedGrant{}, old: map[string]cachedGrant{}}
}

// load returns the grant stored under id in tx, decoding it only when its
// bytes differ from the cached ones.
func (c *grantCache) load(tx *bolt.Tx, id string) (domain.Grant, bool, error) {
	raw := tx.Bucket(bucketGrants).Get([]byte(id))
	if raw == nil {
		return domain.Grant{}, false, nil
	}
	c.mu.RLock()
	e, ok := c.cur[id]
	promote := false
	if !ok {
		e, ok = c.old[id]
		promote = ok
	}
	c.mu.RUnlock()
	if ok && bytes.Equal(e.raw, raw) {
		if promote {
			c.put(id, e)
		}
		return e.grant.Clone(), true, nil
	}
	var r grantRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		return domain.Grant{}, false, fmt.Errorf("decode %s record: %w", bucketGrants, err)
	}
	g := r.domain()
	// raw belongs to the transaction; the cache keeps its own copy.
	c.put(id, cachedGrant{raw: bytes.Clone(raw), grant: g.Clone()})
	return g, true, nil
}

func (c *grantCache) put(id string, e cachedGrant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cur) >= grantCacheSize {
		c.old, c.cur = c.cur, make(map[string]cachedGrant, grantCacheSize)
	}
	c.cur[id] = e
}
