-- One refresh-token rotation as pgstore performs it (see
-- RotateRefreshToken and sql.go in adapters/pgstore): the same statements,
-- in the same two network round trips. The first pipeline opens the
-- transaction and reads and locks the live token and its grant; the
-- application then decides (domain.DecideRefresh) and builds the successor
-- and the grant's new state; the second pipeline marks the token rotated,
-- stores the successor, writes the grant back and commits. Each
-- transaction rotates the next seeded token (bench_rotation), so no two
-- collide; that lookup is the only difference from pgstore's statements,
-- which take the values as parameters. Needs -M prepared (or extended) for
-- the pipelines.
\set now 1767225700000000000
\startpipeline
BEGIN ISOLATION LEVEL READ COMMITTED;
SELECT g.id, g.client_id, g.subject, g.identity, g.scopes, g.resource,
       g.sealed_upstream, g.upstream_expiry_ns, g.has_upstream_refresh, g.created_ns, g.expires_ns,
       t.hash, t.grant_id, t.client_id, t.scopes, t.issued_ns, t.expires_ns,
       t.rotated_ns, t.successor_hash
  FROM grants g JOIN refresh_tokens t ON t.grant_id = g.id
 WHERE t.hash = (SELECT 't' || nextval('bench_rotation')) AND t.expires_ns > :now AND g.expires_ns > :now
   FOR NO KEY UPDATE OF g FOR UPDATE OF t;
\endpipeline
\startpipeline
UPDATE refresh_tokens SET rotated_ns = :now, successor_hash = (SELECT 'u' || currval('bench_rotation'))
 WHERE hash = (SELECT 't' || currval('bench_rotation'));
INSERT INTO refresh_tokens (hash, grant_id, client_id, scopes, issued_ns, expires_ns, rotated_ns, successor_hash)
VALUES ((SELECT 'u' || currval('bench_rotation')), (SELECT 'g' || currval('bench_rotation')), 'client',
        '{openid,offline_access}', :now, 4102444800000000000, NULL, '');
UPDATE grants SET client_id = 'client', subject = 'subject', identity = '{"sub":"subject","iss":"https://idp.example.com","email":"user@example.com","claims":{"groups":["a","b"]}}',
       scopes = '{openid,email,offline_access}', resource = 'https://mcp.example.com/mcp',
       sealed_upstream = decode(repeat('cd', 200), 'hex'), upstream_expiry_ns = 4102444800000000000,
       has_upstream_refresh = true, created_ns = 1767225600000000000, expires_ns = 4102444800000000000
 WHERE id = (SELECT 'g' || currval('bench_rotation'));
COMMIT;
\endpipeline
