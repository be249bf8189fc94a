-- Change notifications, so that every instance sharing the database can
-- keep grants, clients and the signing key ring in memory and still see
-- every change within a moment (see the package's listen.go).
--
-- The triggers send them, not the store's statements: a notification
-- then goes out whichever statement makes the change, one of the store's,
-- one a later oidcproxy adds, or one an operator types (deleting a
-- user's grants by hand revokes them at every gateway too). pg_notify
-- inside a transaction is delivered when it commits, and never for one
-- that rolls back.
--
-- Every notification goes to the channel oidcproxy with a JSON object as
-- its payload: {"schema": the table's schema, "table": the table's name,
-- "id": the changed row's key}. Without "id" any row of the table may
-- have changed (TRUNCATE; a key too long to quote). Listeners ignore the
-- schemas that are not theirs: several oidcproxy deployments may share a
-- database in schemas of their own.
--
-- Committing a transaction that notified takes a lock that every other
-- notifying commit of the server waits for, until the commit is durable.
-- So grants notify only when a cached copy would be wrong: when a grant
-- is deleted, or changed in anything but a later expiry and its last use.
-- A refresh rotation, which extends the grant and records its use every
-- time, then notifies nothing (and commits in parallel with the others);
-- an instance that holds the grant with the earlier expiry reads it again
-- once that has passed, and no decision reads the last use.

-- The functions name nothing of this schema (OLD, NEW and TG_* describe
-- the row and table, pg_notify and json_build_object are built in), so
-- that they work whatever search_path the session that changes a row has.
-- Each sends one notification; a payload must stay within 8000 bytes, so
-- a key too long to quote is left out, which makes listeners forget the
-- whole table.

CREATE FUNCTION oidcproxy_grant_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    before record;
    payload text;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND NEW.expires_ns >= OLD.expires_ns THEN
        before := OLD;
        before.expires_ns := NEW.expires_ns;
        before.last_used_ns := NEW.last_used_ns;
        -- Compared as text: json has no equality operator.
        IF before::text = NEW::text THEN
            RETURN NULL;
        END IF;
    END IF;
    payload := json_build_object('schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME, 'id', OLD.id)::text;
    IF octet_length(payload) > 7900 THEN
        payload := json_build_object('schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME)::text;
    END IF;
    PERFORM pg_notify('oidcproxy', payload);
    RETURN NULL;
END $$;

CREATE FUNCTION oidcproxy_client_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    payload text;
BEGIN
    payload := json_build_object('schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME, 'id', OLD.id)::text;
    IF octet_length(payload) > 7900 THEN
        payload := json_build_object('schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME)::text;
    END IF;
    PERFORM pg_notify('oidcproxy', payload);
    RETURN NULL;
END $$;

CREATE FUNCTION oidcproxy_table_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('oidcproxy', json_build_object('schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME)::text);
    RETURN NULL;
END $$;

CREATE TRIGGER grants_notify AFTER UPDATE OR DELETE ON grants
    FOR EACH ROW EXECUTE FUNCTION oidcproxy_grant_changed();
CREATE TRIGGER grants_notify_truncate AFTER TRUNCATE ON grants
    FOR EACH STATEMENT EXECUTE FUNCTION oidcproxy_table_changed();

CREATE TRIGGER clients_notify AFTER UPDATE OR DELETE ON clients
    FOR EACH ROW EXECUTE FUNCTION oidcproxy_client_changed();
CREATE TRIGGER clients_notify_truncate AFTER TRUNCATE ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION oidcproxy_table_changed();

-- The key ring is small and read whole: any change reloads it.
CREATE TRIGGER signing_keys_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION oidcproxy_table_changed();
