package pgstore

// Every statement of the store, in one place so that their shapes (and
// bench/pgbench/redeem.sql and rotate.sql, which mirror the redemption and
// the rotation) can be read together. All are parameterised; pgx prepares each once per connection
// and reuses it. Column lists match the dest methods in records.go.

const (
	clientCols = `id, secret_hash, name, redirect_uris, application_type, token_endpoint_auth_method,
		grant_types, response_types, scope, client_uri, logo_uri, contacts,
		software_id, software_version, jwks, jwks_uri, operator, created_ns, first_grant_ns`
	transactionCols = `id, client_id, redirect_uri, state, code_challenge, scopes,
		resource, upstream_verifier, nonce, csrf_hash, approved, binding_hash,
		created_ns, expires_ns`
	grantCols = `id, client_id, subject, identity, scopes, resource,
		sealed_upstream, upstream_expiry_ns, has_upstream_refresh, created_ns, expires_ns, last_used_ns, machine`
	codeCols = `hash, grant_id, client_id, redirect_uri, code_challenge, scopes,
		resource, issued_ns, expires_ns, redeemed_ns`
	refreshCols = `hash, grant_id, client_id, scopes, issued_ns, expires_ns,
		rotated_ns, successor_hash`
	// The same lists qualified by the aliases the joins use.
	codeColsC = `c.hash, c.grant_id, c.client_id, c.redirect_uri, c.code_challenge, c.scopes,
		c.resource, c.issued_ns, c.expires_ns, c.redeemed_ns`
	grantColsG = `g.id, g.client_id, g.subject, g.identity, g.scopes, g.resource,
		g.sealed_upstream, g.upstream_expiry_ns, g.has_upstream_refresh, g.created_ns, g.expires_ns, g.last_used_ns, machine`
	refreshColsT = `t.hash, t.grant_id, t.client_id, t.scopes, t.issued_ns, t.expires_ns,
		t.rotated_ns, t.successor_hash`
	keyCols = `id, algorithm, sealed_private, public_jwk, created_ns, not_after_ns, remove_after_ns`
)

// sqlBegin opens the read-decide-write transactions (see tx.go). READ
// COMMITTED is named rather than inherited, so that a server whose
// default_transaction_isolation is stricter does not turn the row locks'
// waits into serialization failures.
const sqlBegin = `BEGIN ISOLATION LEVEL READ COMMITTED`

const (
	sqlInsertClient = `INSERT INTO clients (` + clientCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
		ON CONFLICT (id) DO NOTHING`
	sqlGetClient = `SELECT ` + clientCols + ` FROM clients WHERE id = $1`
	// sqlListClients pages in byte order, as the other stores do, whatever
	// the database's collation.
	sqlListClients = `SELECT ` + clientCols + ` FROM clients WHERE id COLLATE "C" > $1
		ORDER BY id COLLATE "C" LIMIT $2`
	sqlDeleteClient = `DELETE FROM clients WHERE id = $1`

	// sqlLockClientCount reads the number of self-registered clients and
	// locks it: concurrent registrations take turns, so none passes the
	// bound on a count another is about to raise.
	sqlLockClientCount = `SELECT registered FROM client_counts FOR UPDATE`
	// sqlSweepUnusedClients deletes a batch of never-used self-registered
	// clients created before $1. The conditions are repeated outside the
	// subquery so that a client whose first grant committed meanwhile is
	// re-checked on its locked row and kept.
	sqlSweepUnusedClients = `DELETE FROM clients WHERE id IN (
			SELECT id FROM clients WHERE first_grant_ns IS NULL AND NOT operator AND created_ns < $1
			ORDER BY created_ns LIMIT $2)
		AND first_grant_ns IS NULL AND NOT operator AND created_ns < $1`
)

const (
	sqlInsertTransaction = `INSERT INTO transactions (` + transactionCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		ON CONFLICT (id) DO NOTHING`
	// sqlInsertNewTransaction has no ON CONFLICT: in ReplaceTransaction a
	// taken id must abort the transaction, undoing the consumption.
	sqlInsertNewTransaction = `INSERT INTO transactions (` + transactionCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`
	sqlLockTransaction = `SELECT ` + transactionCols + ` FROM transactions
		WHERE id = $1 AND expires_ns > $2 FOR UPDATE`
	sqlUpdateTransaction = `UPDATE transactions SET client_id = $2, redirect_uri = $3, state = $4,
		code_challenge = $5, scopes = $6, resource = $7, upstream_verifier = $8, nonce = $9,
		csrf_hash = $10, approved = $11, binding_hash = $12, created_ns = $13, expires_ns = $14
		WHERE id = $1`
	// sqlConsumeTransaction is ConsumeTransaction whole: the row lock of
	// the DELETE lets one of concurrent consumers have the row; the others
	// wait, find it gone, and return nothing.
	sqlConsumeTransaction = `DELETE FROM transactions WHERE id = $1 AND expires_ns > $2
		RETURNING ` + transactionCols
)

const (
	// sqlCreateGrant stores a grant and its first code in one statement. A
	// taken grant id inserts nothing (so no code either); a taken code hash
	// fails the statement, undoing the grant.
	// The same statement records the client's first grant (the update
	// matches no row once it has one, or for a client ID metadata
	// document's client, which is not stored).
	sqlCreateGrant = `WITH g AS (
			INSERT INTO grants (` + grantCols + `)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
			ON CONFLICT (id) DO NOTHING
			RETURNING id, client_id, created_ns),
		used AS (
			UPDATE clients SET first_grant_ns = g.created_ns FROM g
			WHERE clients.id = g.client_id AND clients.first_grant_ns IS NULL)
		INSERT INTO codes (` + codeCols + `)
		SELECT $14, g.id, $15, $16, $17, $18, $19, $20, $21, $22 FROM g`
	// sqlCreateDirectGrant stores a grant that no code leads to.
	sqlCreateDirectGrant = `INSERT INTO grants (` + grantCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (id) DO NOTHING`
	sqlGetGrant    = `SELECT ` + grantCols + ` FROM grants WHERE id = $1 AND expires_ns > $2`
	sqlRevokeGrant = `DELETE FROM grants WHERE id = $1`

	// sqlLockCode reads a live code with its live grant and locks them:
	// the code for the update that redeems it, the grant against deletion
	// until the refresh token hanging on it is stored, and for the deletion
	// a burn or a replay makes. Rows are locked in FROM order, grant first,
	// the order RevokeGrant's cascade takes them in, so the two cannot
	// deadlock. The grant's lock is exclusive (as in sqlLockRefreshToken)
	// so that a concurrent redemption queues on the grant holding nothing:
	// a shared lock taken there while queueing for the code would block the
	// deletion that the transaction it waits for is making (a deadlock).
	// The waiter then re-reads the rows (READ COMMITTED): it sees
	// redeemed_ns set, or the rows gone.
	sqlLockCode = `SELECT ` + codeColsC + `, ` + grantColsG + `
		FROM grants g JOIN codes c ON c.grant_id = g.id
		WHERE c.hash = $1 AND c.expires_ns > $2 AND g.expires_ns > $2
		FOR NO KEY UPDATE OF g, c`
	// sqlClaimCode decides a token request (domain.CodeRedemption) for a
	// code in one statement, one round trip and at most one commit, when
	// the request meets the code's domain.CodeClaim (parameters $3 to $6):
	//   - a live code not yet redeemed, whose grant is live and its
	//     upstream session not ended (what Issue requires): the UPDATE
	//     marks it redeemed, and the INSERT stores the refresh token
	//     CodeRedemption.Issue builds ($7 its hash, none when empty,
	//     expiring at the earlier of $8 and the grant's expiry). Of
	//     concurrent claims exactly one matches: a claim that waited for
	//     the row lock re-checks redeemed_ns on the winner's version
	//     (READ COMMITTED) and matches nothing. The row: claimed.
	//   - a live code redeemed before: a replay by a presenter holding
	//     everything the client holds, so the DELETE revokes the grant
	//     (its codes and tokens go by the cascade, the trigger notifies)
	//     in this same statement. The row: revoked, with the code and
	//     grant as they were.
	// Any other row is the live code and its grant as the statement's
	// snapshot saw them, changed by nothing; no row means there is no live
	// code. The caller decides a replay the request does not meet (it
	// changes nothing) and leaves the rest to the locking transaction
	// (sqlLockCode): a code not yet redeemed that the request does not
	// meet, which it burns, or one redeemed by a concurrent claim after
	// this statement's snapshot was taken.
	//
	// Locks are taken grant first, as everywhere in the store: the first
	// CTE locks the grant of a code the request may claim (as the snapshot
	// shows it: anything else takes no lock, so a refused replay or a
	// made-up request writes nothing and costs no WAL flush), and the
	// UPDATE then the code it joins it with.
	// The grant's lock is the one sqlLockCode takes, so that the claim
	// and the locking transaction for the same code queue on the grant
	// holding nothing: a weaker lock there would let the claim go on to
	// wait for the code while holding up the transaction's deletion of
	// the grant (a deadlock).
	sqlClaimCode = `WITH live AS (
		SELECT * FROM grants
		 WHERE id = (SELECT grant_id FROM codes
		              WHERE hash = $1 AND redeemed_ns IS NULL AND expires_ns > $2 AND client_id = $3 AND redirect_uri = $4
		                AND code_challenge = $5 AND resource = ALL($6::text[]))
		   AND expires_ns > $2
		   AND (has_upstream_refresh OR upstream_expiry_ns IS NULL OR upstream_expiry_ns > $2)
		   FOR NO KEY UPDATE
	), claimed AS (
		UPDATE codes c SET redeemed_ns = $2
		  FROM live g
		 WHERE c.hash = $1 AND c.redeemed_ns IS NULL AND c.expires_ns > $2 AND g.id = c.grant_id
		   AND c.client_id = $3 AND c.redirect_uri = $4 AND c.code_challenge = $5 AND c.resource = ALL($6::text[])
		RETURNING c.hash, c.grant_id, c.client_id AS code_client_id, c.redirect_uri, c.code_challenge,
		          c.scopes AS code_scopes, c.resource AS code_resource, c.issued_ns, c.expires_ns AS code_expires_ns,
		          c.redeemed_ns, ` + grantColsG + `
	), token AS (
		INSERT INTO refresh_tokens (` + refreshCols + `)
		SELECT $7, grant_id, $3, code_scopes, $2, LEAST($8, expires_ns), NULL, '' FROM claimed WHERE $7 <> ''
		RETURNING expires_ns
	), revoked AS (
		DELETE FROM grants g USING codes c
		 WHERE c.hash = $1 AND c.redeemed_ns IS NOT NULL AND c.expires_ns > $2
		   AND g.id = c.grant_id AND g.expires_ns > $2
		   AND c.client_id = $3 AND c.redirect_uri = $4 AND c.code_challenge = $5 AND c.resource = ALL($6::text[])
		RETURNING g.id
	)
	SELECT true, false, claimed.*, token.expires_ns FROM claimed LEFT JOIN token ON true
	UNION ALL
	SELECT false, EXISTS (SELECT FROM revoked), ` + codeColsC + `, ` + grantColsG + `, NULL
	  FROM grants g JOIN codes c ON c.grant_id = g.id
	 WHERE c.hash = $1 AND c.expires_ns > $2 AND g.expires_ns > $2 AND NOT EXISTS (SELECT FROM claimed)`
	sqlRedeemCode = `UPDATE codes SET redeemed_ns = $2 WHERE hash = $1`

	sqlInsertRefreshToken = `INSERT INTO refresh_tokens (` + refreshCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`
	sqlGetRefreshToken = `SELECT ` + refreshColsT + `
		FROM refresh_tokens t JOIN grants g ON g.id = t.grant_id
		WHERE t.hash = $1 AND t.expires_ns > $2 AND g.expires_ns > $2`
	// sqlLockRefreshToken reads a live refresh token with its live grant
	// and locks both for the rotation, which rewrites the grant (or, on
	// reuse, deletes it): grant first, as in sqlLockCode.
	sqlLockRefreshToken = `SELECT ` + grantColsG + `, ` + refreshColsT + `
		FROM grants g JOIN refresh_tokens t ON t.grant_id = g.id
		WHERE t.hash = $1 AND t.expires_ns > $2 AND g.expires_ns > $2
		FOR NO KEY UPDATE OF g FOR UPDATE OF t`
	// sqlRotatePlain rotates a live refresh token presented by its client
	// in one statement, one round trip and one commit, for a
	// domain.Rotation that is Plain: every value it writes is the
	// rotation's ($3 the successor's hash, $4 the client, $5 the grant's
	// new expiry, the successor's too, $2 now). It locks the grant, then
	// marks the token rotated only if it is not yet (of concurrent
	// rotations exactly one matches: a waiter re-checks rotated_ns on the
	// winner's version), inserts the successor and slides the grant's
	// expiry. The row: the presented token as rotated and the grant as it
	// was. No row: the token is not live, not the presenter's, rotated
	// already, or its grant gone; the locking transaction decides those.
	// Locks are taken as sqlLockRefreshToken takes them, grant first, and
	// only for a token the snapshot shows the request may rotate.
	sqlRotatePlain = `WITH live AS (
		SELECT * FROM grants
		 WHERE id = (SELECT grant_id FROM refresh_tokens
		              WHERE hash = $1 AND rotated_ns IS NULL AND expires_ns > $2 AND client_id = $4)
		   AND expires_ns > $2
		   FOR NO KEY UPDATE
	), rotated AS (
		UPDATE refresh_tokens t SET rotated_ns = $2, successor_hash = $3
		  FROM live g
		 WHERE t.hash = $1 AND t.grant_id = g.id AND t.rotated_ns IS NULL AND t.expires_ns > $2 AND t.client_id = $4
		RETURNING t.hash, t.grant_id, t.client_id AS token_client_id, t.scopes AS token_scopes, t.issued_ns,
		          t.expires_ns AS token_expires_ns, t.rotated_ns, t.successor_hash, ` + grantColsG + `
	), successor AS (
		INSERT INTO refresh_tokens (` + refreshCols + `)
		SELECT $3, grant_id, $4, token_scopes, $2, $5, NULL, '' FROM rotated
	), saved AS (
		UPDATE grants SET expires_ns = $5, last_used_ns = $2 WHERE id = (SELECT grant_id FROM rotated)
	)
	SELECT * FROM rotated`
	sqlRotateRefreshToken = `UPDATE refresh_tokens SET rotated_ns = $2, successor_hash = $3 WHERE hash = $1`
	// sqlLockSuccessor reads and locks the successor a rotated token names,
	// when its second use may be a retry; the presented token is locked
	// already, so concurrent retries queue there first.
	sqlLockSuccessor = `SELECT ` + refreshCols + ` FROM refresh_tokens WHERE hash = $1 FOR UPDATE`
	// sqlWithdrawRefreshToken marks an unused successor rotated with no
	// successor of its own: presenting it later is reuse.
	sqlWithdrawRefreshToken = `UPDATE refresh_tokens SET rotated_ns = $2, successor_hash = '' WHERE hash = $1`
	// sqlRenameSuccessor points a rotated token at the token a retry
	// issued, keeping its rotation time.
	sqlRenameSuccessor = `UPDATE refresh_tokens SET successor_hash = $2 WHERE hash = $1`
	// sqlSaveGrant writes the grant back as rotate left it (its id
	// excepted, which rotate may not change).
	sqlSaveGrant = `UPDATE grants SET client_id = $2, subject = $3, identity = $4, scopes = $5, resource = $6,
		sealed_upstream = $7, upstream_expiry_ns = $8, has_upstream_refresh = $9, created_ns = $10, expires_ns = $11,
		last_used_ns = $12, machine = $13
		WHERE id = $1`
)

// sqlConsumeAssertionID is ConsumeAssertionID whole: the primary key makes
// one of concurrent inserts of a key win (the others wait on its row and
// then find it taken), and a row past its expiry, not yet swept, is taken
// over as if absent. It returns a row when the assertion was fresh, none
// on a replay. Inserts of different keys lock nothing in common.
const sqlConsumeAssertionID = `INSERT INTO assertion_ids (key, expires_ns) VALUES ($1, $2)
	ON CONFLICT (key) DO UPDATE SET expires_ns = EXCLUDED.expires_ns
	WHERE assertion_ids.expires_ns <= $3
	RETURNING 1`

const (
	sqlListKeys = `SELECT ` + keyCols + ` FROM signing_keys ORDER BY created_ns, id`
	sqlPutKey   = `INSERT INTO signing_keys (` + keyCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (id) DO UPDATE SET algorithm = EXCLUDED.algorithm, sealed_private = EXCLUDED.sealed_private,
		public_jwk = EXCLUDED.public_jwk, created_ns = EXCLUDED.created_ns, not_after_ns = EXCLUDED.not_after_ns,
		remove_after_ns = EXCLUDED.remove_after_ns`
	sqlDeleteKey = `DELETE FROM signing_keys WHERE id = $1`
)

// The sweep statements each delete at most $2 expired rows ($1 is now),
// oldest first. SKIP LOCKED passes over rows a request holds (a code being
// redeemed, a grant being rotated) instead of waiting behind it; the next
// sweep gets them.
const (
	sqlSweepTransactions = `DELETE FROM transactions WHERE id IN (
		SELECT id FROM transactions WHERE expires_ns <= $1 ORDER BY expires_ns LIMIT $2 FOR UPDATE SKIP LOCKED)`
	sqlSweepCodes = `DELETE FROM codes WHERE hash IN (
		SELECT hash FROM codes WHERE expires_ns <= $1 ORDER BY expires_ns LIMIT $2 FOR UPDATE SKIP LOCKED)`
	sqlSweepRefreshTokens = `DELETE FROM refresh_tokens WHERE hash IN (
		SELECT hash FROM refresh_tokens WHERE expires_ns <= $1 ORDER BY expires_ns LIMIT $2 FOR UPDATE SKIP LOCKED)`
	sqlSweepAssertionIDs = `DELETE FROM assertion_ids WHERE key IN (
		SELECT key FROM assertion_ids WHERE expires_ns <= $1 ORDER BY expires_ns LIMIT $2 FOR UPDATE SKIP LOCKED)`
	// sqlSweepGrants deletes expired grants and, explicitly so that they
	// are counted, the codes and refresh tokens hanging on them (the
	// foreign keys' cascade would delete them uncounted). It returns the
	// ids of the grants and the number of records removed in all.
	sqlSweepGrants = `WITH g AS (
			DELETE FROM grants WHERE id IN (
				SELECT id FROM grants WHERE expires_ns <= $1 ORDER BY expires_ns LIMIT $2 FOR UPDATE SKIP LOCKED)
			RETURNING id),
		c AS (DELETE FROM codes WHERE grant_id IN (SELECT id FROM g) RETURNING 1),
		t AS (DELETE FROM refresh_tokens WHERE grant_id IN (SELECT id FROM g) RETURNING 1)
		SELECT (SELECT coalesce(array_agg(id), '{}') FROM g), (SELECT count(*) FROM g) + (SELECT count(*) FROM c) + (SELECT count(*) FROM t)`
)
