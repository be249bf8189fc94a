-- One authorization-code redemption as pgstore performs it (see RedeemCode
-- and sql.go in adapters/pgstore): the same statements, in the same two
-- network round trips. The first pipeline opens the transaction and reads
-- and locks the code and its grant; the application then runs the use
-- case's checks in between; the second pipeline marks the code redeemed,
-- stores the refresh token and commits. Each transaction redeems the next
-- seeded code (bench_code), so no two collide; that lookup is the only
-- difference from pgstore's statements, which take the hash as a
-- parameter. Needs -M prepared (or extended) for the pipelines.
\set now 1767225700000000000
\startpipeline
BEGIN ISOLATION LEVEL READ COMMITTED;
SELECT c.hash, c.grant_id, c.client_id, c.redirect_uri, c.code_challenge, c.scopes,
       c.resource, c.issued_ns, c.expires_ns, c.redeemed_ns,
       g.id, g.client_id, g.subject, g.identity, g.scopes, g.resource,
       g.sealed_upstream, g.upstream_expiry_ns, g.has_upstream_refresh, g.created_ns, g.expires_ns, g.last_used_ns, g.machine
  FROM grants g JOIN codes c ON c.grant_id = g.id
 WHERE c.hash = (SELECT 'c' || nextval('bench_code')) AND c.expires_ns > :now AND g.expires_ns > :now
   FOR NO KEY UPDATE OF g, c;
\endpipeline
\startpipeline
UPDATE codes SET redeemed_ns = :now WHERE hash = (SELECT 'c' || currval('bench_code'));
INSERT INTO refresh_tokens (hash, grant_id, client_id, scopes, issued_ns, expires_ns, rotated_ns, successor_hash)
VALUES ((SELECT 'r' || currval('bench_code')), (SELECT 'g' || currval('bench_code')), 'client',
        '{openid,offline_access}', :now, 4102444800000000000, NULL, '');
COMMIT;
\endpipeline
