-- One refresh-token rotation as pgstore performs it for a refresh_token
-- request (RotateRefreshToken with a plain domain.Rotation; sqlRotatePlain
-- in adapters/pgstore/sql.go): the same single statement, in one round
-- trip and one commit. It locks the grant, marks the live token rotated if
-- its client presents it and it is not rotated yet, stores the successor
-- and slides the grant's expiry. Each transaction rotates the next seeded
-- token (bench_rotation, drawn once in k), so no two collide; that lookup,
-- and the request's values written as literals, are the only differences
-- from pgstore's statement, which takes them as parameters.
\set now 1767225700000000000
WITH k AS MATERIALIZED (SELECT nextval('bench_rotation') AS n), live AS (
	SELECT * FROM grants
	 WHERE id = (SELECT grant_id FROM refresh_tokens
	              WHERE hash = (SELECT 't' || n FROM k) AND rotated_ns IS NULL AND expires_ns > :now AND client_id = 'client')
	   AND expires_ns > :now
	   FOR NO KEY UPDATE
), rotated AS (
	UPDATE refresh_tokens t SET rotated_ns = :now, successor_hash = (SELECT 'u' || n FROM k)
	  FROM live g
	 WHERE t.hash = (SELECT 't' || n FROM k) AND t.grant_id = g.id AND t.rotated_ns IS NULL AND t.expires_ns > :now AND t.client_id = 'client'
	RETURNING t.hash, t.grant_id, t.client_id AS token_client_id, t.scopes AS token_scopes, t.issued_ns,
	          t.expires_ns AS token_expires_ns, t.rotated_ns, t.successor_hash, g.id, g.client_id, g.subject, g.identity, g.scopes, g.resource,
	g.sealed_upstream, g.upstream_expiry_ns, g.has_upstream_refresh, g.created_ns, g.expires_ns, g.last_used_ns, machine
), successor AS (
	INSERT INTO refresh_tokens (hash, grant_id, client_id, scopes, issued_ns, expires_ns,
	rotated_ns, successor_hash)
	SELECT (SELECT 'u' || n FROM k), grant_id, 'client', token_scopes, :now, (:now + 86400000000000), NULL, '' FROM rotated
), saved AS (
	UPDATE grants SET expires_ns = (:now + 86400000000000), last_used_ns = :now WHERE id = (SELECT grant_id FROM rotated)
)
SELECT * FROM rotated;
