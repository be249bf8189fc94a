package pgstore

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/internal/gencache"
)

// With Options.Listen the store keeps grants and clients in memory, so
// that the gateway's bearer check (a GetGrant per proxied request) and the
// client lookup of every /token, /revoke and /authorize request cost no
// round trip to the database. A cached record is served only while three
// things hold:
//
//   - the listener is connected (caches.live). Every change that could
//     make a cached grant or client wrong is notified by a trigger in the
//     changing transaction (migrations/0004_notify.sql and 0007); the
//     listener forgets the record on arrival, within milliseconds of the
//     commit.
//     While the listener is disconnected nothing is served from memory or
//     put into it, and the caches are emptied when it is lost and again
//     when it is back: a notification missed in between cannot leave a
//     stale record behind.
//   - the entry is younger than Options.CacheTTL. This bounds what no
//     state can tell: a connection that died without an error, whose
//     notifications stop arriving before the heartbeat notices.
//   - for a grant, it has not expired at the caller's now. A grant that
//     a refresh extended elsewhere is not notified (see the migration);
//     the cached copy with the earlier expiry is then read again instead
//     of being reported gone.
//
// The store's own changes forget the record as soon as they commit, before
// the method returns, so an instance always reads its own writes; the
// notification that follows forgets it once more, harmlessly.
//
// The race between a read and a change is gencache's epoch rule: a
// reader notes the epoch before it queries the database and fills with
// it; if anything was forgotten in between (a notification, a local
// change, the listener's loss), the fill is refused, so a value read
// before a change never outlives its notification. The epoch is noted
// before live is checked, so a fill that saw the listener connected can
// only land if the listener was not lost since.

// Entries per generation of each cache (gencache keeps at most two).
const (
	grantCacheSize  = 4096
	clientCacheSize = 4096
)

// entry is a cached record and when it was read from the database.
type entry[T any] struct {
	value T
	read  time.Time
}

// caches are the store's grant and client caches.
type caches struct {
	ttl time.Duration
	// live is true while the listener is connected and listening.
	live    atomic.Bool
	grants  *gencache.Cache[string, entry[domain.Grant]]
	clients *gencache.Cache[string, entry[domain.Client]]
}

func newCaches(ttl time.Duration) *caches {
	return &caches{
		ttl:     ttl,
		grants:  gencache.New[string, entry[domain.Grant]](grantCacheSize),
		clients: gencache.New[string, entry[domain.Client]](clientCacheSize),
	}
}

// fresh reports whether an entry read at read may still be served.
func (c *caches) fresh(read time.Time) bool {
	return c.live.Load() && time.Since(read) < c.ttl
}

// grant returns a caller's copy of the cached grant id if it may be
// served and is live at now.
func (c *caches) grant(id string, now time.Time) (domain.Grant, bool) {
	e, ok := c.grants.Get(id)
	if !ok || !c.fresh(e.read) || e.value.Expired(now) {
		return domain.Grant{}, false
	}
	return grantCopy(e.value), true
}

// fillGrant caches g, read from the database after grants.Epoch returned
// epoch, unless the listener is down or anything was forgotten since.
func (c *caches) fillGrant(epoch gencache.Epoch, g domain.Grant) {
	if c.live.Load() {
		c.grants.Fill(epoch, g.ID, entry[domain.Grant]{value: g.Clone(), read: time.Now()})
	}
}

// client returns a caller's copy of the cached client id if it may be
// served.
func (c *caches) client(id string) (domain.Client, bool) {
	e, ok := c.clients.Get(id)
	if !ok || !c.fresh(e.read) {
		return domain.Client{}, false
	}
	return e.value.Clone(), true
}

// fillClient is fillGrant for a client.
func (c *caches) fillClient(epoch gencache.Epoch, cl domain.Client) {
	if c.live.Load() {
		c.clients.Fill(epoch, cl.ID, entry[domain.Client]{value: cl.Clone(), read: time.Now()})
	}
}

// forgetAll empties both caches and starts new epochs.
func (c *caches) forgetAll() {
	c.grants.ForgetAll()
	c.clients.ForgetAll()
}

// grantCopy copies a cached grant for a caller, except for the sealed
// upstream blob (kilobytes, copied on every bearer check otherwise):
// sealed values are replaced, never changed in place, and the clipped
// slice cannot be appended into.
func grantCopy(g domain.Grant) domain.Grant {
	sealed := g.SealedUpstream
	g.SealedUpstream = nil
	g = g.Clone()
	g.SealedUpstream = slices.Clip(sealed)
	return g
}
