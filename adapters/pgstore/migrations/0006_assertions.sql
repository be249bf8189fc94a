-- Machines and enterprises: the ids of used JWT assertions (client
-- assertions of private_key_jwt, ID-JAGs of the jwt-bearer grant), each
-- accepted once across every instance, and the mark of a machine client's
-- grant (client_credentials).
--
-- key is domain.AssertionReplayKey(issuer, jti), a SHA-256: fixed size,
-- and no client's or IdP's value as readable text. The primary key makes
-- concurrent consumptions of one assertion race on one row while those of
-- unrelated assertions lock nothing in common; rows are swept after
-- expires_ns like every other expiring record.

CREATE TABLE assertion_ids (
    key        text PRIMARY KEY,
    expires_ns bigint NOT NULL
);
CREATE INDEX assertion_ids_expires ON assertion_ids (expires_ns);

ALTER TABLE grants ADD COLUMN machine boolean NOT NULL DEFAULT false;
