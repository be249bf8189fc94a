// Package pgstore is the ports.Store on PostgreSQL (14 or later, plain SQL,
// no extensions), for deployments where several oidcproxy instances share
// one store. It passes the same conformance suite as boltstore
// (test/storetest), with every guarantee kept in the database rather than
// in process memory, so that it holds across instances.
//
// Schema. One table per entity (migrations/0001_initial.sql), with columns
// rather than encoded records, so that conditions, indexes and operators
// can see the fields. Codes and refresh tokens reference their grant with
// ON DELETE CASCADE: revoking a grant is one DELETE, and nothing can be
// stored for a grant that is gone. Times are bigint nanoseconds since the
// epoch, because the store's expiry rule (a record is dead from its
// ExpiresAt on, and alive a nanosecond before) is evaluated inside SQL
// conditions, where timestamptz's microseconds would misjudge it; they
// also round-trip exactly. Indexes: the primary keys (ids, hashes), the
// grant id of codes and refresh tokens (cascade, sweep), and the expiry
// of every expiring table (sweep). Only hashes and sealed blobs of secrets
// reach the database, as with boltstore; the client's state is bytea
// because it is echoed byte for byte and text refuses NUL.
//
// Atomicity and isolation. Simple operations are one statement each
// (CreateGrant inserts the grant and its code in one; ConsumeTransaction
// is a DELETE … RETURNING, whose row lock lets exactly one of concurrent
// consumers have the row). A token request's redemption of a code
// (RedeemCode with a domain.CodeRedemption) is one statement too in the
// usual cases, a redemption or a replay (sqlClaimCode): the request's
// rule is a condition of the UPDATE that claims the code, whose row lock
// lets exactly one of concurrent claims match, and the refresh token is
// inserted by the same statement. So is a refresh_token request's usual
// rotation (RotateRefreshToken with a plain domain.Rotation: a live token
// presented by its client; sqlRotatePlain). Concurrent claims, and
// concurrent plain rotations, are sent in pipelined batches (batcher):
// one round trip and one commit for every statement queued while the
// batches in flight committed, each statement deciding for its own
// request as it would alone. The operations whose decision
// runs a caller's callback — RedeemCode and RotateRefreshToken otherwise
// (a burn, a retry, a reuse, a rotation that renews the upstream session),
// UpdateTransaction, ReplaceTransaction — are a READ COMMITTED transaction
// that locks the rows
// it reads (SELECT … FOR UPDATE and its weaker modes), lets the callback
// decide on the locked rows, and writes and commits: two network round
// trips, BEGIN pipelined with the read and the writes with COMMIT (see
// rwTx). Concurrent callers for the same record wait for the lock and then
// decide on the latest committed row, so exactly one reaches the callback,
// whichever instance it runs on; a replayed or burned code and a reused
// refresh token are recognised on the locked row, and the revocation they
// demand commits in the same transaction. Rows are always locked grant
// first, the order RevokeGrant's cascade takes, and the grant exclusively,
// so that neither a revocation nor a waiting caller can deadlock with the
// transaction that holds them.
//
// Caches and notifications (Options.Listen, which a server sets). Grants
// and clients are kept in memory, so that the gateway's bearer check and
// the client lookup of the token endpoint cost no round trip. Triggers
// (migrations/0004_notify.sql, and 0007 for updates of a grant) NOTIFY
// every change that could make a cached copy wrong, in the changing
// transaction, so a notification goes out when and only when the change
// commits, whichever statement made it;
// each store LISTENs on a connection of its own and forgets what was
// changed (listen.go), and forgets its own changes when they commit. A
// cached record is served only while that connection is up, and for at
// most Options.CacheTTL: a lost notification can never keep a revoked
// grant usable longer (cache.go). Requests that miss one record together
// (as all those in flight do when a hot client or grant ages out) share
// one read of it (reads.go). The same notifications tell
// KeyRingChanges' reader that the signing key ring changed.
//
// Sweeping. One instance sweeps at a time, under an advisory lock of the
// schema; the others skip. Expired rows go in statements of at most
// sweepBatch rows (sweep.go).
//
// Failures. Every call is bounded by Options.Timeout on the client and by
// statement_timeout and idle_in_transaction_session_timeout on the server.
// Errors that mean the database is unreachable or too slow wrap
// ports.ErrUnavailable; the pool replaces broken connections by itself,
// and the listener reconnects by itself. Connection problems at Open are
// *ConnectionError, one line without the password.
//
// Migrations are embedded and applied by Open under an advisory lock (see
// migrate.go). There is no Backup method: pg_dump is the tool for a
// PostgreSQL database.
package pgstore
