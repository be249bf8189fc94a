package tokens

import (
	"crypto/ecdsa"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
)

// The cache is internal; these tests check the properties the security
// argument rests on: bounded, never past exp, never for a key that left the
// ring, and never shared mutable state with callers.

func cachedToken(kid string, exp time.Time) domain.AccessToken {
	return domain.AccessToken{KeyID: kid, ExpiresAt: exp, Scopes: []string{"a"}}
}

func TestTheVerifiedCacheNeverServesAnExpiredToken(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &ring{public: map[string]*ecdsa.PublicKey{"k1": nil}}
	c := newVerifiedCache(4)
	key := cacheKey("token")
	c.put(key, cachedToken("k1", now.Add(time.Minute)))
	_, ok := c.get(key, now, r)
	require.True(t, ok)
	_, ok = c.get(key, now.Add(time.Minute), r)
	require.False(t, ok, "at exp the entry is dead")
}

func TestTheVerifiedCacheForgetsTokensOfRemovedKeys(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newVerifiedCache(4)
	key := cacheKey("token")
	c.put(key, cachedToken("k1", now.Add(time.Hour)))
	_, ok := c.get(key, now, &ring{public: map[string]*ecdsa.PublicKey{"k2": nil}})
	require.False(t, ok)
}

func TestTheVerifiedCacheIsBoundedAndPromotesHits(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &ring{public: map[string]*ecdsa.PublicKey{"k1": nil}}
	c := newVerifiedCache(4)
	hot := cacheKey("hot")
	c.put(hot, cachedToken("k1", now.Add(time.Hour)))
	for i := range 100 {
		c.put(cacheKey(string(rune('a'+i))), cachedToken("k1", now.Add(time.Hour)))
		_, ok := c.get(hot, now, r)
		require.True(t, ok, "a token in use stays cached (round %d)", i)
		require.LessOrEqual(t, c.len(), 8, "two generations of at most 4")
	}
}

func TestTheVerifiedCacheDoesNotShareScopesWithCallers(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &ring{public: map[string]*ecdsa.PublicKey{"k1": nil}}
	c := newVerifiedCache(4)
	key := cacheKey("token")
	tok := cachedToken("k1", now.Add(time.Hour))
	c.put(key, tok)
	tok.Scopes[0] = "mutated"
	got, _ := c.get(key, now, r)
	got.Scopes[0] = "mutated again"
	again, _ := c.get(key, now, r)
	require.Equal(t, []string{"a"}, again.Scopes)
}
