-- Clients that authenticate with private_key_jwt publish their keys, as a
-- JWK Set document (jwks) or a URL (jwks_uri); operator marks a client an
-- operator created rather than one that registered itself.

ALTER TABLE clients
    ADD COLUMN jwks     bytea,
    ADD COLUMN jwks_uri text    NOT NULL DEFAULT '',
    ADD COLUMN operator boolean NOT NULL DEFAULT false;
