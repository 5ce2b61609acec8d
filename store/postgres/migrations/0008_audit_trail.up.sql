-- +goose Up
-- The audit trail and the usage counts.
--
-- <table>_audit holds every change of a key's record (creation, update,
-- rotation, revocation, exposure), one row per entry, each owner's entries
-- forming a hash chain (package audit): entry seq of an owner, from 1 with
-- no gap, links to the entry before it by prev, the hash of that entry (32
-- zero bytes for the first), and is sealed by hash, the SHA-256 of
-- 'keyward audit v1', a zero byte, prev, seq as 8 big-endian bytes and
-- body (audit.Seal). body is the event as package audit writes it
-- (audit.Event.Body), byte for byte: what the hash seals. key_id, at and
-- kind repeat what the body says, for queries. The store writes an entry
-- in the transaction of its change, through <table>_audit_append, which
-- computes the hash; nothing ever changes or removes an entry.
CREATE TABLE {{qname:audit}} (
    owner  text        NOT NULL,
    seq    bigint      NOT NULL,
    key_id uuid        NOT NULL,
    at     timestamptz NOT NULL,
    kind   text        NOT NULL,
    body   text        NOT NULL,
    prev   bytea       NOT NULL,
    hash   bytea       NOT NULL,
    CONSTRAINT {{name:audit_pkey}} PRIMARY KEY (owner, seq),
    CONSTRAINT {{name:audit_check}} CHECK (seq >= 1 AND octet_length(prev) = 32 AND octet_length(hash) = 32)
);

-- A key's entries, newest first (the primary key serves an owner's).
CREATE INDEX {{name:audit_key_idx}} ON {{qname:audit}} (key_id, seq);

-- The head of each owner's chain: the seq and hash of its newest entry.
-- Its row is the lock that puts an owner's appends one after the other, so
-- that the chain has neither gaps nor forks; the primary key of
-- <table>_audit refuses a second entry with a seq in any case.
CREATE TABLE {{qname:audit_heads}} (
    owner text   NOT NULL,
    seq   bigint NOT NULL,
    hash  bytea  NOT NULL,
    CONSTRAINT {{name:audit_heads_pkey}} PRIMARY KEY (owner)
) WITH (fillfactor = 50); -- room for HOT updates: each append moves a head

-- The trail is append-only, for every role: UPDATE, DELETE and TRUNCATE
-- are refused. Only the table's owner, or a superuser, can disable the
-- trigger (or skip it with session_replication_role); the hash chain shows
-- what was done then.
-- +goose StatementBegin
CREATE FUNCTION {{qname:audit_refuse}}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'keyward: % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;
-- +goose StatementEnd

CREATE TRIGGER {{name:audit_append_only}} BEFORE UPDATE OR DELETE OR TRUNCATE ON {{qname:audit}}
    FOR EACH STATEMENT EXECUTE FUNCTION {{qname:audit_refuse}}();

-- Appends the events of p_bodies (audit.Event.Body, each of p_owner), in
-- order, to p_owner's chain, and returns the seq of the last: one call, one
-- statement of the store. It locks the owner's head (creating it for the
-- first entry), so that appends of one owner wait for each other until
-- their transactions end, seals each entry after the one before, inserts
-- them and moves the head. In a transaction at REPEATABLE READ or
-- SERIALIZABLE, a head moved since the snapshot fails the call with a
-- serialization failure.
-- +goose StatementBegin
CREATE FUNCTION {{qname:audit_append}}(p_owner text, p_bodies text[]) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n        integer := coalesce(cardinality(p_bodies), 0);
    head_seq bigint;
    head     bytea;
    j        json;
    key_ids  uuid[];
    ats      timestamptz[];
    kinds    text[];
    prevs    bytea[];
    hashes   bytea[];
BEGIN
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    SELECT h.seq, h.hash INTO head_seq, head FROM {{qname:audit_heads}} h WHERE h.owner = p_owner FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO {{qname:audit_heads}} (owner, seq, hash)
            VALUES (p_owner, 0, decode(repeat('00', 32), 'hex'))
            ON CONFLICT (owner) DO NOTHING;
        SELECT h.seq, h.hash INTO STRICT head_seq, head FROM {{qname:audit_heads}} h WHERE h.owner = p_owner FOR UPDATE;
    END IF;
    FOR i IN 1 .. n LOOP
        j := p_bodies[i]::json;
        IF (j ->> 'owner') IS DISTINCT FROM p_owner THEN
            RAISE EXCEPTION 'keyward: an audit entry of % appended to the trail of %', j ->> 'owner', p_owner
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        key_ids[i] := (j ->> 'key_id')::uuid;
        ats[i] := (j ->> 'at')::timestamptz;
        kinds[i] := j ->> 'kind';
        prevs[i] := head;
        head := sha256(convert_to('keyward audit v1', 'UTF8') || decode('00', 'hex') || head || int8send(head_seq + i)
            || convert_to(p_bodies[i], 'UTF8'));
        hashes[i] := head;
    END LOOP;
    INSERT INTO {{qname:audit}} (owner, seq, key_id, at, kind, body, prev, hash)
        SELECT p_owner, head_seq + e.i, key_ids[e.i::integer], ats[e.i::integer], kinds[e.i::integer], e.body,
            prevs[e.i::integer], hashes[e.i::integer]
        FROM unnest(p_bodies) WITH ORDINALITY AS e(body, i);
    UPDATE {{qname:audit_heads}} SET seq = head_seq + n, hash = head WHERE owner = p_owner;
    RETURN head_seq + n;
END
$$;
-- +goose StatementEnd

-- The function names its tables as the migration names them: unqualified,
-- if the keys' table is. So that it finds them, whatever the search_path of
-- the session that calls it (a store given the table's qualified name, say),
-- its own search_path is the schema it was created in, which is theirs.
-- +goose StatementBegin
DO $$
DECLARE
    fn regprocedure := '{{qname:audit_append}}(text, text[])'::regprocedure;
BEGIN
    EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp', fn,
        (SELECT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.oid = fn));
END
$$;
-- +goose StatementEnd

-- The usage of keys, per key and UTC hour (store.Counts): successful
-- verifications, and the requests refused after verification, by why. The
-- store adds to them in the statement that writes last-used times, one per
-- flush of the lifecycle's batch, and deletes the hours past retention
-- (PruneUsage). The owner is the key's, as it was when the row was made.
CREATE TABLE {{qname:usage}} (
    key_id   uuid        NOT NULL,
    owner    text        NOT NULL,
    hour     timestamptz NOT NULL,
    verified bigint      NOT NULL DEFAULT 0,
    scope    bigint      NOT NULL DEFAULT 0,
    mode     bigint      NOT NULL DEFAULT 0,
    limited  bigint      NOT NULL DEFAULT 0,
    network  bigint      NOT NULL DEFAULT 0,
    CONSTRAINT {{name:usage_pkey}} PRIMARY KEY (key_id, hour)
);

-- The retention: PruneUsage deletes the hours before a time.
CREATE INDEX {{name:usage_hour_idx}} ON {{qname:usage}} (hour);
