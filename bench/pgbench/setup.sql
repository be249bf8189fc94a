-- Seeds a database that holds pgstore's schema (apply
-- adapters/pgstore/migrations/*.sql first) with :codes live grants, each
-- with one unredeemed code, for redeem.sql, and one live refresh token, for
-- rotate.sql. Run with
--   psql -v codes=200000 -f bench/pgbench/setup.sql DATABASE
-- Grant g<n> has code c<n> and refresh token t<n>; redeem.sql takes n from
-- bench_code, rotate.sql from bench_rotation, so the two scripts can run on
-- one seed (a redemption's refresh token is r<n>, a rotation's successor
-- u<n>).
\set ON_ERROR_STOP on
TRUNCATE grants, codes, refresh_tokens;
DROP SEQUENCE IF EXISTS bench_code;
CREATE SEQUENCE bench_code;
DROP SEQUENCE IF EXISTS bench_rotation;
CREATE SEQUENCE bench_rotation;
-- Expiries far ahead, in nanoseconds like every time column, but for the
-- grants': a day after their creation, as the App's are (created with the
-- refresh-token lifetime), so that a rotation (rotate.sql: :now plus a day)
-- extends its grant as it does in the App. A grant expiring later would be
-- shortened by every rotation, which notifies the other instances (0004's
-- trigger), and notifying commits take turns on one lock of the server:
-- seeded that way, rotate.sql measured about half the rotations the App's
-- statement costs.
INSERT INTO grants (id, client_id, subject, identity, scopes, resource, sealed_upstream,
                    upstream_expiry_ns, has_upstream_refresh, created_ns, expires_ns)
SELECT 'g' || n, 'client', 'subject-' || n,
       '{"sub":"subject","iss":"https://idp.example.com","email":"user@example.com","claims":{"groups":["a","b"]}}',
       '{openid,email,offline_access}', 'https://mcp.example.com/mcp', decode(repeat('ab', 200), 'hex'),
       4102444800000000000, true, 1767225600000000000, 1767312000000000000
FROM generate_series(1, :codes) AS n;
INSERT INTO codes (hash, grant_id, client_id, redirect_uri, code_challenge, scopes, resource,
                   issued_ns, expires_ns, redeemed_ns)
SELECT 'c' || n, 'g' || n, 'client', 'http://127.0.0.1:5555/callback',
       'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', '{openid,email}', 'https://mcp.example.com/mcp',
       1767225600000000000, 4102444800000000000, NULL
FROM generate_series(1, :codes) AS n;
INSERT INTO refresh_tokens (hash, grant_id, client_id, scopes, issued_ns, expires_ns, rotated_ns, successor_hash)
SELECT 't' || n, 'g' || n, 'client', '{openid,offline_access}', 1767225600000000000, 4102444800000000000, NULL, ''
FROM generate_series(1, :codes) AS n;
VACUUM ANALYZE grants, codes, refresh_tokens;
