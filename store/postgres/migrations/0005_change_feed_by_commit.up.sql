-- +goose Up
-- The change feed, ordered by commit. changed_at, the clock_timestamp() of
-- the UPDATE, cannot tell when a change became visible: its transaction may
-- commit any time later, and a feed that reads changed_at less a margin
-- misses a change committed later than the margin. changed_xid is the ID of
-- the transaction that last changed the key's record (pg_current_xact_id(),
-- xid8: 64 bits, never wraps), NULL if the record never changed. A poll
-- takes the snapshot its own query reads (pg_current_snapshot()) as its
-- position; the next poll reports the rows whose changed_xid that snapshot
-- did not see as committed: every change exactly when it becomes visible,
-- however late its transaction commits, with no clock. Only the trigger
-- sets changed_xid, whatever an INSERT or UPDATE says.
--
-- changed_at is still stamped, and its index kept, for the instances of
-- earlier versions that poll by it during a rolling upgrade.
--
-- IF NOT EXISTS lets the owner of a large table add the column and build the
-- index beforehand (ADD COLUMN changed_xid xid8, then CREATE INDEX
-- CONCURRENTLY under this name and definition), rather than hold writes
-- while this migration builds it.
ALTER TABLE {{table}} ADD COLUMN IF NOT EXISTS changed_xid xid8;

CREATE INDEX IF NOT EXISTS {{name:changed_xid_idx}} ON {{table}} (changed_xid) WHERE changed_xid IS NOT NULL;

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION {{qname:stamp_change}}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.changed_at := NULL;
        NEW.changed_xid := NULL;
    ELSIF (NEW.name, NEW.scopes, NEW.metadata, NEW.expires_at, NEW.revoked_at, NEW.replaced_by, NEW.owner)
        IS DISTINCT FROM (OLD.name, OLD.scopes, OLD.metadata, OLD.expires_at, OLD.revoked_at, OLD.replaced_by, OLD.owner) THEN
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
    WHEN ((NEW.name, NEW.scopes, NEW.metadata, NEW.expires_at, NEW.revoked_at, NEW.replaced_by, NEW.owner, NEW.changed_at, NEW.changed_xid)
        IS DISTINCT FROM (OLD.name, OLD.scopes, OLD.metadata, OLD.expires_at, OLD.revoked_at, OLD.replaced_by, OLD.owner, OLD.changed_at, OLD.changed_xid))
    EXECUTE FUNCTION {{qname:stamp_change}}();

DROP TRIGGER {{name:stamp_insert}} ON {{table}};
CREATE TRIGGER {{name:stamp_insert}} BEFORE INSERT ON {{table}} FOR EACH ROW
    WHEN (NEW.changed_at IS NOT NULL OR NEW.changed_xid IS NOT NULL)
    EXECUTE FUNCTION {{qname:stamp_change}}();
