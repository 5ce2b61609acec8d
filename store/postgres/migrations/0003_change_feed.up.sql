-- +goose Up
-- The change feed: changed_at is the database's clock_timestamp() of the last
-- change of revoked_at or expires_at, NULL if neither ever changed. Only this
-- trigger sets it, whatever an INSERT or UPDATE says, so that every change,
-- including one made in raw SQL, reaches the verification caches that poll
-- it.
ALTER TABLE {{table}} ADD COLUMN changed_at timestamptz;

CREATE INDEX {{name:changed_at_idx}} ON {{table}} (changed_at) WHERE changed_at IS NOT NULL;

-- +goose StatementBegin
CREATE FUNCTION {{qname:stamp_change}}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.changed_at := NULL;
    ELSIF NEW.revoked_at IS DISTINCT FROM OLD.revoked_at
        OR NEW.expires_at IS DISTINCT FROM OLD.expires_at THEN
        NEW.changed_at := clock_timestamp();
    ELSE
        NEW.changed_at := OLD.changed_at;
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd

-- Rows whose revoked_at, expires_at and changed_at an UPDATE leaves alone,
-- such as last-used updates, run no PL/pgSQL at all.
CREATE TRIGGER {{name:stamp_change}} BEFORE UPDATE ON {{table}} FOR EACH ROW
    WHEN (NEW.revoked_at IS DISTINCT FROM OLD.revoked_at
        OR NEW.expires_at IS DISTINCT FROM OLD.expires_at
        OR NEW.changed_at IS DISTINCT FROM OLD.changed_at)
    EXECUTE FUNCTION {{qname:stamp_change}}();

CREATE TRIGGER {{name:stamp_insert}} BEFORE INSERT ON {{table}} FOR EACH ROW
    WHEN (NEW.changed_at IS NOT NULL)
    EXECUTE FUNCTION {{qname:stamp_change}}();
