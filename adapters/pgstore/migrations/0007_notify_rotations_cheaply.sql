-- A refresh rotation slides its grant's expiry and records its use:
-- sqlRotatePlain sets expires_ns and last_used_ns and nothing else. 0004's
-- grants_notify still ran for every such UPDATE, and found that it had
-- nothing to notify only by rendering the whole grant (its sealed upstream
-- tokens included) as text, before and after. bench/pgbench/rotate.sql on
-- fresh seeds, without that call: 4,490-4,550 rotations/s against
-- 4,170-4,320 with it (8 clients), 2,300-2,390 against 2,170-2,330 (50).
--
-- The triggers' own definitions now state the rule, and PostgreSQL applies
-- them without calling anything: an UPDATE calls oidcproxy_grant_changed
-- (unchanged, and still the judge of whether anything changed) when it sets
-- any column but expires_ns and last_used_ns, or when it makes expires_ns
-- earlier. An UPDATE that sets only those two, the expiry not earlier,
-- fires nothing: the function would have returned without notifying. A
-- DELETE notifies as before. (An UPDATE that does both fires both; the
-- server sends a transaction's identical notifications once.)
--
-- A column added to grants later must be added to grants_notify_update's
-- list, or a change to that column alone would not reach the other
-- instances' caches; TestOnlyTheSlidingColumnsOfAGrantChangeWithoutANotification
-- in adapters/pgstore fails until it is.

DROP TRIGGER grants_notify ON grants;

CREATE TRIGGER grants_notify_delete AFTER DELETE ON grants
    FOR EACH ROW EXECUTE FUNCTION oidcproxy_grant_changed();

CREATE TRIGGER grants_notify_update
    AFTER UPDATE OF id, client_id, subject, identity, scopes, resource, sealed_upstream,
        upstream_expiry_ns, has_upstream_refresh, created_ns, machine
    ON grants
    FOR EACH ROW EXECUTE FUNCTION oidcproxy_grant_changed();

CREATE TRIGGER grants_notify_earlier AFTER UPDATE OF expires_ns ON grants
    FOR EACH ROW WHEN (NEW.expires_ns < OLD.expires_ns)
    EXECUTE FUNCTION oidcproxy_grant_changed();
