// Package boltstore is the default ports.Store: a single bbolt file.
//
// Layout. One bucket per entity (clients, transactions, grants, codes,
// refresh, keys) holding JSON records under their id or hash; a meta bucket
// with the schema version; an expiry index whose keys are the big-endian
// expiry time, the entity and the record key, so Sweep walks only what has
// expired; and a grant→children index so revoking or sweeping a grant
// deletes its codes and refresh tokens in the same transaction. Storage
// stays bounded by what is live.
//
// Atomicity. Every state change is one bbolt transaction. The hot paths of
// /token and the callback (RedeemCode, RotateRefreshToken, CreateGrant) use
// db.Batch, which commits many callers' closures with one fsync. bbolt may
// run a batch closure more than once, and re-runs the whole batch when one
// closure fails, so the closures here are idempotent, reset what they
// capture at the start of each run, and report a rejection (not found,
// already consumed, a caller's callback error) through a captured variable
// while returning nil: one caller's rejection never costs the others their
// commit. Only genuine storage errors make a closure fail.
//
// Callbacks passed in by callers receive freshly decoded values (copies)
// and may run more than once; the last run's result is the one committed
// and returned.
package boltstore
