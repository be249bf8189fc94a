package gencache

// Where reports, without moving anything, which generation of c holds key
// ("current", "old", or "" when neither) and its value there. Test builds
// only: the tables check where entries sit, and Get would move them.
func Where[K comparable, V any](c *Cache[K, V], key K) (V, string) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if v, ok := c.cur[key]; ok {
		return v, "current"
	}
	if v, ok := c.old[key]; ok {
		return v, "old"
	}
	var zero V
	return zero, ""
}
