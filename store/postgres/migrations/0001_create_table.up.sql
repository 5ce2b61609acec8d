-- +goose Up
-- The key records. Only the SHA-256 hash of a key is stored, never the key.
-- Free space in each page lets last-used updates be HOT (no index writes).
CREATE TABLE {{table}} (
    id           uuid        PRIMARY KEY,
    hash         bytea       NOT NULL CHECK (octet_length(hash) = 32),
    prefix       text        NOT NULL CHECK (prefix <> ''),
    name         text        NOT NULL CHECK (name <> ''),
    mode         text        NOT NULL CHECK (mode IN ('live', 'test')),
    scopes       text[]      NOT NULL CHECK (cardinality(scopes) > 0),
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    expires_at   timestamptz
) WITH (fillfactor = 80);

-- The verification lookup.
CREATE UNIQUE INDEX {{name:hash_key}} ON {{table}} (hash);

-- The list order, newest first, and its keyset pagination.
CREATE INDEX {{name:created_at_id_idx}} ON {{table}} (created_at DESC, id DESC);
