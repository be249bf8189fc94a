-- One authorization-code redemption as pgstore performs it for a token
-- request (RedeemCode with a domain.CodeRedemption; sqlClaimCode in
-- adapters/pgstore/sql.go): the same single statement, in one round trip
-- and one commit. It locks the grant, claims the code if the request
-- meets it (client, redirect URI, PKCE challenge, resource), stores the
-- refresh token with it, and would revoke the grant of a replayed code.
-- Each transaction redeems the next seeded code (bench_code, drawn once in
-- k), so no two collide; that lookup, and the request's values written as
-- literals, are the only differences from pgstore's statement, which
-- takes them as parameters.
\set now 1767225700000000000
WITH k AS MATERIALIZED (SELECT nextval('bench_code') AS n), live AS (
	SELECT * FROM grants
	 WHERE id = (SELECT grant_id FROM codes
	              WHERE hash = (SELECT 'c' || n FROM k) AND redeemed_ns IS NULL AND expires_ns > :now AND client_id = 'client' AND redirect_uri = 'http://127.0.0.1:5555/callback'
	                AND code_challenge = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM' AND resource = ALL('{https://mcp.example.com/mcp}'::text[]))
	   AND expires_ns > :now
	   AND (has_upstream_refresh OR upstream_expiry_ns IS NULL OR upstream_expiry_ns > :now)
	   FOR NO KEY UPDATE
), claimed AS (
	UPDATE codes c SET redeemed_ns = :now
	  FROM live g
	 WHERE c.hash = (SELECT 'c' || n FROM k) AND c.redeemed_ns IS NULL AND c.expires_ns > :now AND g.id = c.grant_id
	   AND c.client_id = 'client' AND c.redirect_uri = 'http://127.0.0.1:5555/callback' AND c.code_challenge = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM' AND c.resource = ALL('{https://mcp.example.com/mcp}'::text[])
	RETURNING c.hash, c.grant_id, c.client_id AS code_client_id, c.redirect_uri, c.code_challenge,
	          c.scopes AS code_scopes, c.resource AS code_resource, c.issued_ns, c.expires_ns AS code_expires_ns,
	          c.redeemed_ns, g.id, g.client_id, g.subject, g.identity, g.scopes, g.resource,
	g.sealed_upstream, g.upstream_expiry_ns, g.has_upstream_refresh, g.created_ns, g.expires_ns, g.last_used_ns, machine
), token AS (
	INSERT INTO refresh_tokens (hash, grant_id, client_id, scopes, issued_ns, expires_ns,
	rotated_ns, successor_hash)
	SELECT (SELECT 'r' || n FROM k), grant_id, 'client', code_scopes, :now, LEAST(4102444800000000000, expires_ns), NULL, '' FROM claimed
	RETURNING expires_ns
), revoked AS (
	DELETE FROM grants g USING codes c
	 WHERE c.hash = (SELECT 'c' || n FROM k) AND c.redeemed_ns IS NOT NULL AND c.expires_ns > :now
	   AND g.id = c.grant_id AND g.expires_ns > :now
	   AND c.client_id = 'client' AND c.redirect_uri = 'http://127.0.0.1:5555/callback' AND c.code_challenge = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM' AND c.resource = ALL('{https://mcp.example.com/mcp}'::text[])
	RETURNING g.id
)
SELECT true, false, claimed.*, token.expires_ns FROM claimed LEFT JOIN token ON true
UNION ALL
SELECT false, EXISTS (SELECT FROM revoked), c.hash, c.grant_id, c.client_id, c.redirect_uri, c.code_challenge, c.scopes,
	c.resource, c.issued_ns, c.expires_ns, c.redeemed_ns, g.id, g.client_id, g.subject, g.identity, g.scopes, g.resource,
	g.sealed_upstream, g.upstream_expiry_ns, g.has_upstream_refresh, g.created_ns, g.expires_ns, g.last_used_ns, machine, NULL
  FROM grants g JOIN codes c ON c.grant_id = g.id
 WHERE c.hash = (SELECT 'c' || n FROM k) AND c.expires_ns > :now AND g.expires_ns > :now AND NOT EXISTS (SELECT FROM claimed);
