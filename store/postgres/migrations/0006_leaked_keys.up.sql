-- +goose Up
-- Leaked keys: why a key was revoked, where it was found exposed, canary
-- keys (tripwires) and the record of their uses.
--
-- revoked_reason: why the key was revoked (apikey.ValidReason: 1 to 200
-- bytes), set with revoked_at, or NULL if no reason was given.
-- exposed_at, exposed_source, exposed_url: the first report of the key found
-- in the open (apikey.Exposure): all three set, or all NULL; exposed_url is
-- '' for a report without a URL, and holds printable ASCII but space.
-- canary: the key is a tripwire, which never authorizes anything; fixed at
-- creation. Existing keys are not canaries.
--
-- The checks are NOT VALID: their columns are new, NULL in every existing
-- row, which every check accepts, so there is nothing to validate, and
-- ALTER TABLE skips the scan of the whole table that it would otherwise
-- make while it holds the table's lock, which stops verifications too.
-- They hold for every row written from now on.
ALTER TABLE {{table}}
    ADD COLUMN revoked_reason text,
    ADD COLUMN exposed_at timestamptz,
    ADD COLUMN exposed_source text,
    ADD COLUMN exposed_url text,
    ADD COLUMN canary boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT {{name:reason_check}} CHECK (revoked_reason IS NULL
        OR octet_length(revoked_reason) BETWEEN 1 AND 200 AND revoked_at IS NOT NULL) NOT VALID,
    ADD CONSTRAINT {{name:exposure_check}} CHECK ((exposed_at IS NULL) = (exposed_source IS NULL)
        AND (exposed_at IS NULL) = (exposed_url IS NULL)
        AND coalesce(octet_length(exposed_source) BETWEEN 1 AND 100, true)
        AND coalesce(octet_length(exposed_url) <= 2000 AND exposed_url ~ '^[!-~]*$', true)) NOT VALID;

-- The trips of canary keys: each use of one, newest first by at, then by
-- seq, the trip's number among its key's trips, from 1, in the order they
-- were recorded. The store keeps at least the newest 100 of each key
-- (store.MaxTrips), and at most 50 more: when a key's seq reaches 100 plus
-- a multiple of 50, RecordTrip deletes the 50 past its newest 100. A key's
-- trips go with it when it is deleted. The owner is the key's: queries
-- join on it.
CREATE TABLE {{qname:trips}} (
    key_id     uuid        NOT NULL,
    seq        bigint      NOT NULL,
    at         timestamptz NOT NULL,
    addr       text        NOT NULL,
    user_agent text        NOT NULL,
    route      text        NOT NULL,
    CONSTRAINT {{name:trips_pkey}} PRIMARY KEY (key_id, seq),
    CONSTRAINT {{name:trips_key_fkey}} FOREIGN KEY (key_id) REFERENCES {{table}} (id) ON DELETE CASCADE
);

-- A key's trips, newest first: Trips reads the first ones, RecordTrip
-- deletes those past the newest 100.
CREATE INDEX {{name:trips_at_idx}} ON {{qname:trips}} (key_id, at DESC, seq DESC);

-- The guard, widened. Besides the rules of 0004: canary never changes, as a
-- key's identity; revoked_reason is set only with revoked_at, by the UPDATE
-- that revokes the key, and, as all of a revoked key, never changes after;
-- the exposure may go from NULL to set on any key, a revoked one too, but
-- once set never changes nor goes back to NULL.
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
        OR NEW.idempotency_request IS DISTINCT FROM OLD.idempotency_request
        OR NEW.canary <> OLD.canary THEN
        RAISE EXCEPTION 'keyward: the id, owner, hash, prefix, mode, creation time, replaced key, idempotency digests and canary flag of key % never change', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.revoked_at IS NOT NULL AND (NEW.revoked_at IS DISTINCT FROM OLD.revoked_at
        OR NEW.revoked_reason IS DISTINCT FROM OLD.revoked_reason
        OR NEW.name <> OLD.name OR NEW.scopes <> OLD.scopes OR NEW.metadata <> OLD.metadata
        OR NEW.expires_at IS DISTINCT FROM OLD.expires_at
        OR NEW.replaced_by IS DISTINCT FROM OLD.replaced_by) THEN
        RAISE EXCEPTION 'keyward: key % is revoked: revocation is final, and a revoked key never changes but for its last use and a first report of its exposure', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.revoked_at IS NULL AND NEW.revoked_at IS NULL
        AND NEW.revoked_reason IS DISTINCT FROM OLD.revoked_reason THEN
        RAISE EXCEPTION 'keyward: the revocation reason of key % is set only when it is revoked', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.exposed_at IS NOT NULL AND (NEW.exposed_at, NEW.exposed_source, NEW.exposed_url)
        IS DISTINCT FROM (OLD.exposed_at, OLD.exposed_source, OLD.exposed_url) THEN
        RAISE EXCEPTION 'keyward: the exposure of key % stays as first reported', OLD.id
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

-- The WHEN condition is still the disjunction of the function's refusals:
-- rows it does not select, such as last-used updates, run no PL/pgSQL at
-- all, and neither does the first report of a key's exposure.
DROP TRIGGER {{name:guard}} ON {{table}};
CREATE TRIGGER {{name:guard}} BEFORE UPDATE ON {{table}} FOR EACH ROW
    WHEN (NEW.id <> OLD.id OR NEW.owner <> OLD.owner OR NEW.hash <> OLD.hash
        OR NEW.prefix <> OLD.prefix OR NEW.mode <> OLD.mode OR NEW.created_at <> OLD.created_at
        OR NEW.replaces IS DISTINCT FROM OLD.replaces
        OR NEW.idempotency_key IS DISTINCT FROM OLD.idempotency_key
        OR NEW.idempotency_request IS DISTINCT FROM OLD.idempotency_request
        OR NEW.canary <> OLD.canary
        OR OLD.revoked_at IS NOT NULL AND (NEW.revoked_at IS DISTINCT FROM OLD.revoked_at
            OR NEW.revoked_reason IS DISTINCT FROM OLD.revoked_reason
            OR NEW.name <> OLD.name OR NEW.scopes <> OLD.scopes OR NEW.metadata <> OLD.metadata
            OR NEW.expires_at IS DISTINCT FROM OLD.expires_at
            OR NEW.replaced_by IS DISTINCT FROM OLD.replaced_by)
        OR OLD.revoked_at IS NULL AND NEW.revoked_at IS NULL
            AND NEW.revoked_reason IS DISTINCT FROM OLD.revoked_reason
        OR OLD.exposed_at IS NOT NULL AND (NEW.exposed_at, NEW.exposed_source, NEW.exposed_url)
            IS DISTINCT FROM (OLD.exposed_at, OLD.exposed_source, OLD.exposed_url)
        OR OLD.expires_at IS NOT NULL AND (NEW.expires_at IS NULL OR NEW.expires_at > OLD.expires_at)
        OR NOT (NEW.scopes <@ OLD.scopes) OR cardinality(NEW.scopes) = 0
        OR OLD.replaced_by IS NOT NULL AND NEW.replaced_by IS NULL)
    EXECUTE FUNCTION {{qname:guard}}();

-- The change feed, widened: a revocation's reason, an exposure and the
-- canary flag are part of a key's record, which verification caches hold
-- (a canary never authorizes), so changing any of them is a change. Only
-- the table's owner, with the guard disabled, can change the reason of a
-- revoked key or the flag; an exposure is reported once.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION {{qname:stamp_change}}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.changed_at := NULL;
        NEW.changed_xid := NULL;
    ELSIF (NEW.name, NEW.scopes, NEW.metadata, NEW.expires_at, NEW.revoked_at, NEW.replaced_by, NEW.owner,
            NEW.revoked_reason, NEW.exposed_at, NEW.exposed_source, NEW.exposed_url, NEW.canary)
        IS DISTINCT FROM (OLD.name, OLD.scopes, OLD.metadata, OLD.expires_at, OLD.revoked_at, OLD.replaced_by, OLD.owner,
            OLD.revoked_reason, OLD.exposed_at, OLD.exposed_source, OLD.exposed_url, OLD.canary) THEN
        NEW.changed_at := clock_timestamp();
        -- The top-level transaction's ID, also from a subtransaction: its
        -- commit is what makes the change visible.
        NEW.changed_xid := pg_current_xact_id();
    ELSE
        NEW.changed_at := OLD.changed_at;
        NEW.changed_xid := OLD.changed_xid;
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd

-- Rows whose record an UPDATE leaves alone but for last_used_at, such as
-- last-used updates, still run no PL/pgSQL at all; an UPDATE that sets
-- changed_at or changed_xid runs the function, which puts them back.
DROP TRIGGER {{name:stamp_change}} ON {{table}};
CREATE TRIGGER {{name:stamp_change}} BEFORE UPDATE ON {{table}} FOR EACH ROW
    WHEN ((NEW.name, NEW.scopes, NEW.metadata, NEW.expires_at, NEW.revoked_at, NEW.replaced_by, NEW.owner,
            NEW.revoked_reason, NEW.exposed_at, NEW.exposed_source, NEW.exposed_url, NEW.canary,
            NEW.changed_at, NEW.changed_xid)
        IS DISTINCT FROM (OLD.name, OLD.scopes, OLD.metadata, OLD.expires_at, OLD.revoked_at, OLD.replaced_by, OLD.owner,
            OLD.revoked_reason, OLD.exposed_at, OLD.exposed_source, OLD.exposed_url, OLD.canary,
            OLD.changed_at, OLD.changed_xid))
    EXECUTE FUNCTION {{qname:stamp_change}}();
