// Package boltstore is the default ports.Store: a single bbolt file.
//
// Layout. One bucket per entity (clients, transactions, grants, codes,
// refresh, keys) holding JSON records under their id or hash; a meta bucket
// with the schema version; an expiry index whose keys are the big-endian
// expiry time, the entity and the record key, so Sweep walks only what has
// expired; and a grant→children index so revoking or sweeping a grant
// deletes its codes and refresh tokens in the same transaction. Storage
// stays bounded by what is live; Compact gives the freed pages back to the
// file system.
//
// Atomicity. Every state change is one bbolt transaction, and every write
// goes through the store's own group commit (committer, commit.go): calls
// that arrive while a commit and its fsync are under way share the next
// read-write transaction and its one fsync. A closure that returns an
// error rolls that shared transaction back and is then run alone, so its
// failure is its own, while the others run again together; closures may
// therefore run more than once, and reset what they capture at the start
// of each run. A closure reports a rejection (not found, already
// consumed, a caller's callback error) through a captured variable; a
// rejection that still writes (a burned code, a consumed transaction)
// commits, one that writes nothing returns errNoChange. On the hot paths
// of /token and the callback (RedeemCode, RotateRefreshToken, CreateGrant:
// write's batched calls) errNoChange counts as success for the group, so
// that a rejection costs nobody a rerun; the other writes get their own
// rollback from it. Only genuine storage errors fail a hot-path closure.
//
// The single writer is what limits /token, so RedeemCode and
// RotateRefreshToken read and decode their records before they queue for
// it, and the write transaction only checks that the bytes are unchanged
// (see redeem.go). Decoded clients and grants are cached in memory, with
// revocation in force when RevokeGrant returns (see cache.go).
//
// Copies. Callbacks passed in by callers receive deep copies of the
// decoded records (the Clone methods of the domain types), so that
// nothing they do to their arguments reaches what is stored, cached or
// returned: cloning in memory is several times cheaper than decoding the
// JSON again. They may run more than once; the last run's result is the
// one committed and returned.
package boltstore
