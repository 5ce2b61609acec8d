-- +goose Up
-- Policies: what a key may do beyond its scopes (apikey.Policy): a rate
-- limit, a quota, the client networks it works from.
--
-- policy: the key's policy as package apikey marshals it to JSON, such as
-- {"rate": {"requests": 100, "period": "1m0s", "burst": 20},
--  "quota": {"requests": 1000000, "per": "month"},
--  "networks": ["203.0.113.0/24", "2001:db8::/32"]},
-- or NULL if the key has none (most keys). The store reads it back strictly:
-- a field it does not know, or a policy that apikey.Policy.Validate refuses,
-- fails the read rather than give the application a wrong limit.
--
-- The check is NOT VALID: the column is new, NULL in every existing row,
-- which the check accepts, so there is nothing to validate, and ALTER TABLE
-- skips the scan of the whole table that it would otherwise make while it
-- holds the table's lock, which stops verifications too. It holds for every
-- row written from now on.
ALTER TABLE {{table}}
    ADD COLUMN policy jsonb,
    ADD CONSTRAINT {{name:policy_check}} CHECK (jsonb_typeof(policy) = 'object') NOT VALID;

-- The guard, widened: a policy may change freely while the key is not
-- revoked, and, as all of a revoked key, never after. The rest is 0006's.
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
        OR NEW.replaced_by IS DISTINCT FROM OLD.replaced_by
        OR NEW.policy IS DISTINCT FROM OLD.policy) THEN
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
-- rows it does not select, such as last-used updates and the policy
-- changes of keys not revoked, run no PL/pgSQL at all.
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
            OR NEW.replaced_by IS DISTINCT FROM OLD.replaced_by
            OR NEW.policy IS DISTINCT FROM OLD.policy)
        OR OLD.revoked_at IS NULL AND NEW.revoked_at IS NULL
            AND NEW.revoked_reason IS DISTINCT FROM OLD.revoked_reason
        OR OLD.exposed_at IS NOT NULL AND (NEW.exposed_at, NEW.exposed_source, NEW.exposed_url)
            IS DISTINCT FROM (OLD.exposed_at, OLD.exposed_source, OLD.exposed_url)
        OR OLD.expires_at IS NOT NULL AND (NEW.expires_at IS NULL OR NEW.expires_at > OLD.expires_at)
        OR NOT (NEW.scopes <@ OLD.scopes) OR cardinality(NEW.scopes) = 0
        OR OLD.replaced_by IS NOT NULL AND NEW.replaced_by IS NULL)
    EXECUTE FUNCTION {{qname:guard}}();

-- The change feed, widened: a policy is part of a key's record, which
-- verification caches hold, so setting, changing or removing it is a
-- change. (jsonb compares by value: the same policy written again, its keys
-- in another order, is no change.)
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION {{qname:stamp_change}}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.changed_at := NULL;
        NEW.changed_xid := NULL;
    ELSIF (NEW.name, NEW.scopes, NEW.metadata, NEW.expires_at, NEW.revoked_at, NEW.replaced_by, NEW.owner,
            NEW.revoked_reason, NEW.exposed_at, NEW.exposed_source, NEW.exposed_url, NEW.canary, NEW.policy)
        IS DISTINCT FROM (OLD.name, OLD.scopes, OLD.metadata, OLD.expires_at, OLD.revoked_at, OLD.replaced_by, OLD.owner,
            OLD.revoked_reason, OLD.exposed_at, OLD.exposed_source, OLD.exposed_url, OLD.canary, OLD.policy) THEN
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
            NEW.revoked_reason, NEW.exposed_at, NEW.exposed_source, NEW.exposed_url, NEW.canary, NEW.policy,
            NEW.changed_at, NEW.changed_xid)
        IS DISTINCT FROM (OLD.name, OLD.scopes, OLD.metadata, OLD.expires_at, OLD.revoked_at, OLD.replaced_by, OLD.owner,
            OLD.revoked_reason, OLD.exposed_at, OLD.exposed_source, OLD.exposed_url, OLD.canary, OLD.policy,
            OLD.changed_at, OLD.changed_xid))
    EXECUTE FUNCTION {{qname:stamp_change}}();
