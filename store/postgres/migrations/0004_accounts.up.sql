-- +goose Up
-- Accounts: every key belongs to an owner, carries metadata, links to the key
-- it replaces and the key replacing it, and keeps the digests of the
-- idempotent request that created it.
--
-- owner: the application's account ID (apikey.ValidOwner: 1 to 128 printable
-- ASCII characters other than space). Keys that existed before owners get
-- apikey.DefaultOwner, 'default'; the default is then dropped, so that every
-- new row must name its owner.
ALTER TABLE {{table}}
    ADD COLUMN owner text NOT NULL DEFAULT 'default' CONSTRAINT {{name:owner_check}}
        CHECK (octet_length(owner) <= 128 AND owner ~ '^[!-~]+$'),
    ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}' CONSTRAINT {{name:metadata_check}}
        CHECK (jsonb_typeof(metadata) = 'object'
            AND NOT jsonb_path_exists(metadata, '$.* ? (@.type() != "string")')),
    ADD COLUMN replaces uuid CONSTRAINT {{name:replaces_check}} CHECK (replaces <> id),
    ADD COLUMN replaced_by uuid CONSTRAINT {{name:replaced_by_check}} CHECK (replaced_by <> id),
    -- SHA-256 digests of the client's idempotency key and of the request's
    -- parameters (store.Idempotency): both set, or neither.
    ADD COLUMN idempotency_key bytea,
    ADD COLUMN idempotency_request bytea,
    ADD CONSTRAINT {{name:idempotency_check}} CHECK ((idempotency_key IS NULL) = (idempotency_request IS NULL)
        AND coalesce(octet_length(idempotency_key), 32) = 32
        AND coalesce(octet_length(idempotency_request), 32) = 32);
ALTER TABLE {{table}} ALTER COLUMN owner DROP DEFAULT;

-- Listing is per owner, newest first, with keyset pagination on
-- (created_at, id). IF NOT EXISTS lets the owner of a large table build it
-- beforehand with CREATE INDEX CONCURRENTLY, under this name and definition,
-- rather than hold a write lock while this migration builds it.
CREATE INDEX IF NOT EXISTS {{name:owner_created_idx}} ON {{table}} (owner, created_at DESC, id DESC);
-- The list order over every owner has no reader any more: every listing is
-- one owner's, which the index above serves.
DROP INDEX {{qname:created_at_id_idx}};

-- An idempotency key is unique per owner.
CREATE UNIQUE INDEX {{name:idempotency_key}} ON {{table}} (owner, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- The guard, widened. For any role, an UPDATE may not change a key's identity
-- (id, owner, hash, prefix, mode, created_at, replaces, the idempotency
-- digests); may move expires_at only earlier (never to NULL); may only shrink
-- scopes, never to none; may not set replaced_by back to NULL; and may change
-- nothing of a revoked key but last_used_at (changed_at is the database's).
-- TRUNCATE and the DELETE of a revoked key stay refused.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION {{qname:guard}}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'keyward: % cannot be truncated: revocation is final', TG_TABLE_NAME
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        IF OLD.revoked_at IS NOT NULL THEN
            RAISE EXCEPTION 'keyward: revoked key % cannot be deleted: revocation is final', OLD.id
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF NEW.id <> OLD.id OR NEW.owner <> OLD.owner OR NEW.hash <> OLD.hash
        OR NEW.prefix <> OLD.prefix OR NEW.mode <> OLD.mode OR NEW.created_at <> OLD.created_at
        OR NEW.replaces IS DISTINCT FROM OLD.replaces
        OR NEW.idempotency_key IS DISTINCT FROM OLD.idempotency_key
        OR NEW.idempotency_request IS DISTINCT FROM OLD.idempotency_request THEN
        RAISE EXCEPTION 'keyward: the id, owner, hash, prefix, mode, creation time, replaced key and idempotency digests of key % never change', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.revoked_at IS NOT NULL AND (NEW.revoked_at IS DISTINCT FROM OLD.revoked_at
        OR NEW.name <> OLD.name OR NEW.scopes <> OLD.scopes OR NEW.metadata <> OLD.metadata
        OR NEW.expires_at IS DISTINCT FROM OLD.expires_at
        OR NEW.replaced_by IS DISTINCT FROM OLD.replaced_by) THEN
        RAISE EXCEPTION 'keyward: key % is revoked: revocation is final, and a revoked key never changes', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.expires_at IS NOT NULL AND (NEW.expires_at IS NULL OR NEW.expires_at > OLD.expires_at) THEN
        RAISE EXCEPTION 'keyward: the expiry of key % can only move earlier', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NOT (NEW.scopes <@ OLD.scopes) OR cardinality(NEW.scopes) = 0 THEN
        RAISE EXCEPTION 'keyward: the scopes of key % can only be narrowed, to at least one', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.replaced_by IS NOT NULL AND NEW.replaced_by IS NULL THEN
        RAISE EXCEPTION 'keyward: key % stays linked to its replacement', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd

-- The WHEN condition is the disjunction of the function's refusals: rows it
-- does not select, such as last-used updates, run no PL/pgSQL at all.
DROP TRIGGER {{name:guard}} ON {{table}};
CREATE TRIGGER {{name:guard}} BEFORE UPDATE ON {{table}} FOR EACH ROW
    WHEN (NEW.id <> OLD.id OR NEW.owner <> OLD.owner OR NEW.hash <> OLD.hash
        OR NEW.prefix <> OLD.prefix OR NEW.mode <> OLD.mode OR NEW.created_at <> OLD.created_at
        OR NEW.replaces IS DISTINCT FROM OLD.replaces
        OR NEW.idempotency_key IS DISTINCT FROM OLD.idempotency_key
        OR NEW.idempotency_request IS DISTINCT FROM OLD.idempotency_request
        OR OLD.revoked_at IS NOT NULL AND (NEW.revoked_at IS DISTINCT FROM OLD.revoked_at
            OR NEW.name <> OLD.name OR NEW.scopes <> OLD.scopes OR NEW.metadata <> OLD.metadata
            OR NEW.expires_at IS DISTINCT FROM OLD.expires_at
            OR NEW.replaced_by IS DISTINCT FROM OLD.replaced_by)
        OR OLD.expires_at IS NOT NULL AND (NEW.expires_at IS NULL OR NEW.expires_at > OLD.expires_at)
        OR NOT (NEW.scopes <@ OLD.scopes) OR cardinality(NEW.scopes) = 0
        OR OLD.replaced_by IS NOT NULL AND NEW.replaced_by IS NULL)
    EXECUTE FUNCTION {{qname:guard}}();

-- The change feed, widened: changed_at is stamped on any change of a key's
-- record but its last use: name, scopes, metadata, expiry, revocation,
-- rotation link, and owner (which only the table's owner can change, with
-- the guard disabled).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION {{qname:stamp_change}}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.changed_at := NULL;
    ELSIF (NEW.name, NEW.scopes, NEW.metadata, NEW.expires_at, NEW.revoked_at, NEW.replaced_by, NEW.owner)
        IS DISTINCT FROM (OLD.name, OLD.scopes, OLD.metadata, OLD.expires_at, OLD.revoked_at, OLD.replaced_by, OLD.owner) THEN
        NEW.changed_at := clock_timestamp();
    ELSE
        NEW.changed_at := OLD.changed_at;
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd

-- Rows whose record an UPDATE leaves alone but for last_used_at, such as
-- last-used updates, run no PL/pgSQL at all.
DROP TRIGGER {{name:stamp_change}} ON {{table}};
CREATE TRIGGER {{name:stamp_change}} BEFORE UPDATE ON {{table}} FOR EACH ROW
    WHEN ((NEW.name, NEW.scopes, NEW.metadata, NEW.expires_at, NEW.revoked_at, NEW.replaced_by, NEW.owner, NEW.changed_at)
        IS DISTINCT FROM (OLD.name, OLD.scopes, OLD.metadata, OLD.expires_at, OLD.revoked_at, OLD.replaced_by, OLD.owner, OLD.changed_at))
    EXECUTE FUNCTION {{qname:stamp_change}}();
