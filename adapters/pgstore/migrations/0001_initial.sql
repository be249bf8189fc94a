-- The first schema of oidcproxy's PostgreSQL store.
--
-- Times are bigint nanoseconds since the Unix epoch (UTC): conditions such
-- as "expires_ns > now" must hold to the nanosecond, which timestamptz
-- (microseconds) cannot. A column named *_ns that may be NULL holds an
-- optional time (NULL: not set); the others hold -9223372036854775808 for
-- an unset time. Read one as a timestamp with to_timestamp(x / 1e9).
--
-- Secrets never appear here in the clear: codes, refresh tokens,
-- transaction ids, CSRF and binding secrets are stored as SHA-256 hashes,
-- client secrets as hashes, upstream tokens and private keys sealed with
-- AES-256-GCM by the application.

CREATE TABLE clients (
    id                         text PRIMARY KEY,
    secret_hash                bytea,
    name                       text NOT NULL,
    redirect_uris              text[],
    application_type           text NOT NULL,
    token_endpoint_auth_method text NOT NULL,
    grant_types                text[],
    response_types             text[],
    scope                      text NOT NULL,
    client_uri                 text NOT NULL,
    logo_uri                   text NOT NULL,
    contacts                   text[],
    software_id                text NOT NULL,
    software_version           text NOT NULL,
    created_ns                 bigint NOT NULL
);

-- state is bytea: it is the client's value, echoed back byte for byte,
-- and may hold bytes that text refuses (NUL, invalid UTF-8).
CREATE TABLE transactions (
    id                text PRIMARY KEY,
    client_id         text NOT NULL,
    redirect_uri      text NOT NULL,
    state             bytea NOT NULL,
    code_challenge    text NOT NULL,
    scopes            text[],
    resource          text NOT NULL,
    upstream_verifier text NOT NULL,
    nonce             text NOT NULL,
    csrf_hash         text NOT NULL,
    approved          boolean NOT NULL,
    binding_hash      text NOT NULL,
    created_ns        bigint NOT NULL,
    expires_ns        bigint NOT NULL
);
CREATE INDEX transactions_expires ON transactions (expires_ns);

-- identity is json, not jsonb: jsonb refuses the \u0000 escape, which an
-- identity provider's claims may contain.
CREATE TABLE grants (
    id                   text PRIMARY KEY,
    client_id            text NOT NULL,
    subject              text NOT NULL,
    identity             json NOT NULL,
    scopes               text[],
    resource             text NOT NULL,
    sealed_upstream      bytea,
    upstream_expiry_ns   bigint,
    has_upstream_refresh boolean NOT NULL,
    created_ns           bigint NOT NULL,
    expires_ns           bigint NOT NULL
);
CREATE INDEX grants_expires ON grants (expires_ns);

-- Codes and refresh tokens hang on their grant: deleting the grant
-- deletes them (revocation), and none can be stored for a grant that is
-- gone.
CREATE TABLE codes (
    hash           text PRIMARY KEY,
    grant_id       text NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    client_id      text NOT NULL,
    redirect_uri   text NOT NULL,
    code_challenge text NOT NULL,
    scopes         text[],
    resource       text NOT NULL,
    issued_ns      bigint NOT NULL,
    expires_ns     bigint NOT NULL,
    redeemed_ns    bigint
);
CREATE INDEX codes_grant ON codes (grant_id);
CREATE INDEX codes_expires ON codes (expires_ns);

CREATE TABLE refresh_tokens (
    hash           text PRIMARY KEY,
    grant_id       text NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    client_id      text NOT NULL,
    scopes         text[],
    issued_ns      bigint NOT NULL,
    expires_ns     bigint NOT NULL,
    rotated_ns     bigint,
    successor_hash text NOT NULL
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_ns);

CREATE TABLE signing_keys (
    id              text PRIMARY KEY,
    algorithm       text NOT NULL,
    sealed_private  bytea,
    public_jwk      bytea,
    created_ns      bigint NOT NULL,
    not_after_ns    bigint,
    remove_after_ns bigint
);
