-- Registration hygiene: a client that registered itself (not an
-- operator's) and never completes a grant is swept after a while, and the
-- number of such clients is bounded.

-- first_grant_ns is when the client's first grant was stored; NULL: never.
-- Clients registered before this migration count as used from their
-- creation on: whether they were cannot be known, and a client in use must
-- never be swept.
ALTER TABLE clients ADD COLUMN first_grant_ns bigint;
UPDATE clients SET first_grant_ns = created_ns;

-- The sweep's candidates, oldest first.
CREATE INDEX clients_unused ON clients (created_ns) WHERE first_grant_ns IS NULL AND NOT operator;

-- The number of self-registered clients, in one row that a trigger keeps
-- right in the transaction of every insert and delete of a client (and
-- every change of its operator flag, and a TRUNCATE), whatever statement
-- makes it: the bound is checked by reading one row, never by counting.
CREATE TABLE client_counts (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    registered bigint  NOT NULL CHECK (registered >= 0)
);
INSERT INTO client_counts (registered) SELECT count(*) FROM clients WHERE NOT operator;

-- SET search_path FROM CURRENT: the trigger updates this schema's
-- client_counts whatever the search path of the session that deletes a
-- client.
CREATE FUNCTION oidcproxy_count_registered_clients() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE client_counts SET registered = 0;
        RETURN NULL;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        IF NOT NEW.operator THEN
            UPDATE client_counts SET registered = registered + 1;
        END IF;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        IF NOT OLD.operator THEN
            UPDATE client_counts SET registered = registered - 1;
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER clients_count_registered
    AFTER INSERT OR DELETE OR UPDATE OF operator ON clients
    FOR EACH ROW EXECUTE FUNCTION oidcproxy_count_registered_clients();

CREATE TRIGGER clients_count_truncated
    AFTER TRUNCATE ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION oidcproxy_count_registered_clients();
