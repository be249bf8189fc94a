-- The operator's views of grants (oidcproxy grants list|revoke and the
-- admin listener's /grants): each grant records when a refresh last used
-- it, and grants are found by subject and by client through an index
-- rather than by reading the whole table. The grant id ends each index
-- key, in byte order (COLLATE "C", whatever the database's collation), so
-- that a listing pages in the order the other stores use from the index
-- alone. Listings without a subject or client (every grant, every client)
-- are rare and read the table.

ALTER TABLE grants ADD COLUMN last_used_ns bigint;

CREATE INDEX grants_subject ON grants (subject, id COLLATE "C");
CREATE INDEX grants_client ON grants (client_id, id COLLATE "C");
