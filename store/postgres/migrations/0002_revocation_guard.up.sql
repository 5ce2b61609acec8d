-- +goose Up
-- Revocation is final, even for SQL run through the application's role: once
-- revoked_at is set it never changes nor goes back to NULL, and a revoked key
-- cannot be deleted (deleting it and inserting its hash again would bring it
-- back). A key's identity (id, hash, prefix, mode, created_at) never changes.
-- Only the table's owner, or a superuser, can disable or drop these triggers.
-- +goose StatementBegin
CREATE FUNCTION {{qname:guard}}() RETURNS trigger
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
    IF OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
        RAISE EXCEPTION 'keyward: key % is revoked: revocation is final', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.id <> OLD.id OR NEW.hash <> OLD.hash OR NEW.prefix <> OLD.prefix
        OR NEW.mode <> OLD.mode OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'keyward: the id, hash, prefix, mode and creation time of key % never change', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd

-- The WHEN conditions say when the function refuses; rows they do not
-- select, such as last-used updates, run no PL/pgSQL at all.
CREATE TRIGGER {{name:guard}} BEFORE UPDATE ON {{table}} FOR EACH ROW
    WHEN (OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at
        OR NEW.id <> OLD.id OR NEW.hash <> OLD.hash OR NEW.prefix <> OLD.prefix
        OR NEW.mode <> OLD.mode OR NEW.created_at <> OLD.created_at)
    EXECUTE FUNCTION {{qname:guard}}();

CREATE TRIGGER {{name:guard_delete}} BEFORE DELETE ON {{table}} FOR EACH ROW
    WHEN (OLD.revoked_at IS NOT NULL)
    EXECUTE FUNCTION {{qname:guard}}();

CREATE TRIGGER {{name:guard_truncate}} BEFORE TRUNCATE ON {{table}}
    FOR EACH STATEMENT EXECUTE FUNCTION {{qname:guard}}();
