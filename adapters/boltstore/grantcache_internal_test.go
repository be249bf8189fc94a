package boltstore

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
)

// A read that began before a change must not cache what it saw.
func TestGrantCacheRefusesFillsOlderThanAChange(t *testing.T) {
	c := newGrantCache()
	epoch := c.snapshot()
	c.forget("other") // any grant changed while the read ran
	c.fill(epoch, domain.Grant{ID: "g1"})
	_, ok := c.get("g1")
	require.False(t, ok, "a fill from before the change was kept")

	c.fill(c.snapshot(), domain.Grant{ID: "g1", Scopes: []string{"mcp"}})
	g, ok := c.get("g1")
	require.True(t, ok)
	g.Scopes[0] = "changed by a caller"
	again, _ := c.get("g1")
	require.Equal(t, []string{"mcp"}, again.Scopes, "callers get copies")

	c.forget("g1")
	_, ok = c.get("g1")
	require.False(t, ok)
}

// The cache stays within two generations of grantCacheSize.
func TestGrantCacheIsBounded(t *testing.T) {
	c := newGrantCache()
	for i := range 3*grantCacheSize + 7 {
		c.fill(c.snapshot(), domain.Grant{ID: string(rune('a'+i%26)) + string(rune(i))})
	}
	require.LessOrEqual(t, len(c.cur)+len(c.old), 2*grantCacheSize)
	require.NotEmpty(t, c.cur)
}
