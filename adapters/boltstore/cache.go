package boltstore

import (
	"encoding/json"
	"fmt"
	"hash/maphash"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/internal/gencache"
)

// The store keeps decoded clients and grants in memory (gencache: two
// bounded generations), because decoding JSON is the largest cost of the
// reads on the hot paths.
//
// Clients: every /token, /revoke and /authorize request reads its client,
// and a client record changes at most once (its first grant sets
// FirstGrantAt) and is deleted at most once (an unused one is swept, or an
// operator deletes it), so decoding it once per process is nearly always
// enough. Each of those commits drops the client from the cache
// (forgetClientOnCommit), and GetClient fills the cache with the epoch rule
// below.
//
// Grants: GetGrant runs behind every bearer token the gateway checks, and
// /token reads the grant of every code and refresh token. Revocation must
// still take effect at once, so every write transaction that rewrites or
// deletes a grant record registers a commit hook (forgetGrantOnCommit)
// that drops the grant after the commit is durable and before the
// writer's caller returns. bbolt runs commit hooks after the new state is
// visible to new read transactions, so two rules keep reads exact in the
// short time between the two:
//   - a reader fills the cache only with the epoch it noted before its
//     read transaction began (gencache.Fill), so a read of the state
//     before a change never puts it back after the hook ran;
//   - a grant decoded from bytes a transaction read (grantFromRead) is
//     taken from the cache only if the cached entry was decoded from the
//     same bytes (a keyed 64-bit hash of them), so a write decision is
//     never taken on a grant older than the bytes it checks.
//
// Only reads outside write transactions fill the cache; a write
// transaction reads its own view, which may hold changes of the same group
// commit that have not been committed yet.

// Entries per generation of each cache.
const (
	clientCacheSize = 4096
	grantCacheSize  = 4096
)

// grantEntry is a decoded grant and the hash of the bytes it was decoded
// from (Store.grantSum).
type grantEntry struct {
	grant domain.Grant
	sum   uint64
}

// caches are a Store's decoded records.
type caches struct {
	clients *gencache.Cache[string, domain.Client]
	grants  *gencache.Cache[string, grantEntry]
	// seed keys grantSum, so that nobody outside the process can make two
	// grant records hash alike.
	seed maphash.Seed
}

func newCaches() caches {
	return caches{
		clients: gencache.New[string, domain.Client](clientCacheSize),
		grants:  gencache.New[string, grantEntry](grantCacheSize),
		seed:    maphash.MakeSeed(),
	}
}

// cachedGrant returns a caller's copy of the cached grant id.
func (c caches) cachedGrant(id string) (domain.Grant, bool) {
	e, ok := c.grants.Get(id)
	if !ok {
		return domain.Grant{}, false
	}
	return grantCopy(e.grant), true
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

// grantFromRead decodes grant id from raw, its bytes as a read transaction
// saw them, and reports whether it is live at now. That transaction began
// after the grant cache's Epoch returned epoch. When the cache holds the
// grant decoded from the same bytes, nothing needs decoding (the cache
// serves every bearer check too, so a grant in use is usually in it).
func (c caches) grantFromRead(id string, raw []byte, epoch gencache.Epoch, now time.Time) (domain.Grant, bool, error) {
	sum := maphash.Bytes(c.seed, raw)
	var g domain.Grant
	if e, ok := c.grants.Get(id); ok && e.sum == sum {
		g = grantCopy(e.grant)
	} else {
		var r grantRecord
		if err := json.Unmarshal(raw, &r); err != nil {
			return domain.Grant{}, false, fmt.Errorf("decode %s record: %w", bucketGrants, err)
		}
		g = r.domain()
		c.grants.Fill(epoch, id, grantEntry{grant: g.Clone(), sum: sum}) // the caller keeps its own copy
	}
	if g.Expired(now) {
		return domain.Grant{}, false, nil
	}
	return g, true, nil
}

// forgetClientOnCommit makes the commit of tx drop client id from the
// cache; markClientUsed and deleteClient (a sweep or DeleteClient) call
// it.
func (c caches) forgetClientOnCommit(tx *bolt.Tx, id string) {
	clients := c.clients
	tx.OnCommit(func() { clients.Forget(id) })
}

// forgetGrantOnCommit makes the commit of tx drop grant id from the cache.
// Every helper that rewrites or deletes a grant record calls it
// (updateGrant, deleteGrantTree); a transaction that rolls back runs no
// hook, and a closure run again registers its hook again.
func (c caches) forgetGrantOnCommit(tx *bolt.Tx, id string) {
	grants := c.grants
	tx.OnCommit(func() { grants.Forget(id) })
}
