package tokens

import (
	"crypto/sha256"
	"sync"
	"time"
	"unsafe"

	"github.com/oidcproxy/oidcproxy/domain"
)

// verifiedCacheSize bounds the verified-signature cache (per generation):
// a resource server sees each token many times within its lifetime, and an
// ES256 verification (~80 µs here) would otherwise dominate every request.
const verifiedCacheSize = 8192

// verifiedCache remembers tokens whose signature and claims were verified,
// keyed by the SHA-256 of the whole token, so a tampered token never hits.
// It is bounded with two generations: when the current one is full it
// becomes the old one and the previous old one is dropped; a hit in the old
// generation is promoted. Entries are never served past their exp or after
// their key left the ring. Revocation is not this cache's business: the
// use case reads the grant on every request, from a store cache that
// forgets a grant the moment its revocation commits.
type verifiedCache struct {
	mu       sync.RWMutex
	cur, old map[[32]byte]domain.AccessToken
	max      int
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{cur: make(map[[32]byte]domain.AccessToken), old: map[[32]byte]domain.AccessToken{}, max: max}
}

// cacheKey hashes the token in place: converting it to a []byte copied
// every bearer token on the gateway's hot path. Sum256 only reads its
// argument and keeps nothing, so the string's bytes are never changed.
func cacheKey(token string) [32]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
}

// get returns a cached verification that is still usable at now with the
// given key ring.
func (c *verifiedCache) get(key [32]byte, now time.Time, ring *ring) (domain.AccessToken, bool) {
	c.mu.RLock()
	t, ok := c.cur[key]
	inOld := false
	if !ok {
		t, ok = c.old[key]
		inOld = ok
	}
	c.mu.RUnlock()
	if !ok {
		return domain.AccessToken{}, false
	}
	if !now.Before(t.ExpiresAt) {
		return domain.AccessToken{}, false
	}
	if _, live := ring.public[t.KeyID]; !live {
		return domain.AccessToken{}, false
	}
	if inOld {
		c.put(key, t)
	}
	return t.Clone(), true
}

func (c *verifiedCache) put(key [32]byte, t domain.AccessToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cur) >= c.max {
		c.old = c.cur
		c.cur = make(map[[32]byte]domain.AccessToken, c.max)
	}
	c.cur[key] = t.Clone() // the caller keeps its own copy
}

// len reports the number of cached entries (for tests).
func (c *verifiedCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.cur) + len(c.old)
}
