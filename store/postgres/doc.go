// Package postgres is a [store.Store] that keeps API keys in PostgreSQL, for
// production servers, including several application instances sharing one
// database. It passes the same conformance suite as the memory store.
//
// It uses database/sql only and imports no driver: open the database with
// the driver of your choice (the tests use pgx's, github.com/jackc/pgx/v5/stdlib,
// registered as "pgx"), run [Migrate] once at start-up, and hand the store
// to keyward.New:
//
//	db, err := sql.Open("pgx", os.Getenv("DATABASE_URL"))
//	...
//	if err := postgres.Migrate(ctx, db); err != nil { ... }
//	st, err := postgres.New(db)
//	...
//	keys, err := keyward.New(st)
//
// New does no I/O and never migrates.
//
// Size the pool. database/sql opens connections without limit by default,
// and keeps only 2 idle: a busy server then opens and closes connections
// all the time (each a new PostgreSQL process), and a flood can take every
// connection the server allows. Set the two together, to one number:
//
//	db.SetMaxOpenConns(16)
//	db.SetMaxIdleConns(16) // as many as open, so that none is closed and reopened
//
// Open: above the lifecycle's bound on verification lookups in flight
// (keyward.WithMaxLookups, 10 by default), with room for management calls,
// last-used writes and a cache's feed; 16 is a good start. Then check it
// against the server: the number of instances times SetMaxOpenConns must
// stay within max_connections, less superuser_reserved_connections (3 by
// default; and reserved_connections from PostgreSQL 16) and every other
// client (migrations, operators, replicas, monitoring). With the default
// max_connections of 100, that is 5 instances of 16, a dozen connections to
// spare; more instances need smaller pools or a larger max_connections.
// Leave SetConnMaxIdleTime unset: idle connections are the point. Set
// SetConnMaxLifetime only if something needs connections recycled (a
// failover behind DNS, rotated credentials, a load balancer), to minutes
// rather than seconds.
//
// A call whose context is cancelled (an HTTP client that disconnects
// cancels its request's context) returns at once with the context's
// error, and pgx, by default, closes the connection of the cancelled
// query, which the pool then reopens. To keep it, have pgx send the
// server a cancel request instead, as examples/checkout does:
//
//	pgcfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
//		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: time.Second}
//	}
//
// # Transactions
//
// The store runs its queries on a [DB]: a *sql.DB, a *sql.Tx or a
// *sql.Conn. To create a key inside your own transaction, so that it exists
// only if the rest of your work commits, use [Store.WithTx]:
//
//	tx, err := db.BeginTx(ctx, nil)
//	...
//	rec, err = st.WithTx(tx).Create(ctx, rec, store.Idempotency{})
//
// A duplicate returns [store.ErrDuplicate] and, like any failed
// statement in PostgreSQL, aborts the transaction; so does any failure:
// one that is no failed statement (the context ended between two of the
// store's statements, say) makes the store run one that fails, so that a
// change whose audit entry was not written can never commit. The store's
// other answers ([store.ErrWidening], [store.ErrAlreadyRevoked], a
// repeated idempotent create, ...) are decided without a failed statement
// and leave the transaction usable.
//
// Every change of a key, [Store.Create], [Store.Update], [Store.Rotate],
// [Store.Revoke], [Store.RevokeAll] and [Store.Expose], runs its
// statements and then the one of its audit entry (see "Audit trail"): on
// a *sql.DB or a *sql.Conn, in a transaction of their own at READ
// COMMITTED; through WithTx, inside the caller's. On a [DB] that is
// neither, they refuse to run. [Store.Update] and [Store.Rotate] lock the
// key's row (SELECT ... FOR UPDATE), apply the rules of
// [store.Update.Apply] or [store.Rotation] to it, the same Go code the
// memory store runs, and write the result, so that concurrent changes of
// one key apply one after the other, each to the key as the other left
// it. In a caller's transaction at REPEATABLE READ or SERIALIZABLE, a key
// changed by another transaction since the snapshot fails the call with a
// serialization failure, and so does a change of an owner whose audit
// trail moved since: retry the transaction. [Store.Expose] does the same
// with the rules of [store.Expose]: of concurrent reports of one key, the
// first sets the exposure and the others see it. [Store.Revoke] is one
// statement that decides and revokes, then its entry's. [Store.RevokeAll]
// reruns its statement so that a rotation it waited for leaves no active
// replacement (see its documentation), and [Store.RecordTrip] runs in a
// transaction so that the trips of a key are counted exactly (see
// "Canaries and their trips"). Every other method, [Store.RecordUses]
// included, is one statement.
//
// The changes of one owner's keys are appended to one chain, so they
// commit one after the other: from its audit entry until its transaction
// ends, a change holds its owner's head (below), and the changes of the
// owner's other keys wait for it at their own entry. Keep transactions
// that change keys short; changes of different owners never wait for each
// other. Every change locks its keys' rows first and the head last, so
// that the store's own transactions cannot deadlock; a caller's
// transaction that changes several keys of one owner, while others change
// them too, may (PostgreSQL then fails one of them, to retry).
//
// # Schema
//
// The table, "api_keys" unless [WithTable] names another (optionally
// schema-qualified), holds one row per key:
//
//	id                  uuid        PRIMARY KEY
//	owner               text        NOT NULL: the account, 1 to 128 printable ASCII characters but space (apikey.ValidOwner)
//	hash                bytea       NOT NULL, 32 bytes: SHA-256 of the raw key; UNIQUE index <table>_hash_key
//	prefix              text        NOT NULL: the display prefix, such as ck_live_abc123
//	name                text        NOT NULL
//	mode                text        NOT NULL: 'live' or 'test'
//	scopes              text[]      NOT NULL, not empty
//	metadata            jsonb       NOT NULL, default '{}': an object of strings
//	created_at          timestamptz NOT NULL
//	last_used_at        timestamptz: NULL if never used
//	revoked_at          timestamptz: NULL unless revoked
//	expires_at          timestamptz: NULL if the key does not expire
//	replaces            uuid: the key this one was rotated from, or NULL
//	replaced_by         uuid: the key this one was rotated to, or NULL
//	idempotency_key     bytea, 32 bytes: digest of the idempotency key it was created with, or NULL
//	idempotency_request bytea, 32 bytes: digest of that create's parameters; NULL exactly when idempotency_key is
//	changed_at          timestamptz: set by the database, for the change feed of earlier versions
//	changed_xid         xid8: set by the database, for the change feed
//	revoked_reason      text: why the key was revoked, 1 to 200 bytes (apikey.ValidReason); NULL if not revoked or no reason given
//	exposed_at          timestamptz: when the key was first reported exposed, or NULL
//	exposed_source      text: who found it, 1 to 100 bytes; NULL exactly when exposed_at is
//	exposed_url         text: where, up to 2,000 printable ASCII characters but space, '' if unknown; NULL exactly when exposed_at is
//	canary              boolean     NOT NULL, default false: the key is a tripwire
//	policy              jsonb: the key's policy (apikey.Policy), a JSON object as package apikey marshals it; NULL if it has none
//
// with these indexes besides the primary key and <table>_hash_key:
//
//	<table>_owner_created_idx  (owner, created_at DESC, id DESC): an owner's keys, newest first
//	<table>_idempotency_key    UNIQUE (owner, idempotency_key) WHERE idempotency_key IS NOT NULL
//	<table>_changed_xid_idx    (changed_xid) WHERE changed_xid IS NOT NULL
//	<table>_changed_at_idx     (changed_at) WHERE changed_at IS NOT NULL
//
// A second table, <table>_trips, holds the uses of canary keys, one row
// per trip (see "Canaries and their trips"):
//
//	key_id      uuid        NOT NULL: the canary key; foreign key <table>_trips_key_fkey to <table>, ON DELETE CASCADE
//	seq         bigint      NOT NULL: the trip's number among its key's trips, from 1, in the order they were recorded
//	at          timestamptz NOT NULL: when the key was presented
//	addr        text        NOT NULL: the client's address
//	user_agent  text        NOT NULL: its User-Agent
//	route       text        NOT NULL: the route or method it called
//
// with the primary key <table>_trips_pkey (key_id, seq) and the index
// <table>_trips_at_idx (key_id, at DESC, seq DESC): a key's trips, newest
// first. It has no owner column: every query joins on the key's.
//
// <table>_audit holds the audit trail, one row per entry (see "Audit
// trail"):
//
//	owner   text        NOT NULL: the owner whose chain the entry is in
//	seq     bigint      NOT NULL: the entry's number in its owner's chain, from 1, without gaps
//	key_id  uuid        NOT NULL: the key changed (as the body says)
//	at      timestamptz NOT NULL: when (as the body says)
//	kind    text        NOT NULL: what happened, such as key.revoked (as the body says)
//	body    text        NOT NULL: the event, exactly as audit.Event.Body wrote it: what the hash seals
//	prev    bytea       NOT NULL, 32 bytes: the hash of the entry before, zeros for the first
//	hash    bytea       NOT NULL, 32 bytes: audit.Seal(prev, seq, body)
//
// with the primary key <table>_audit_pkey (owner, seq), an owner's chain
// in order, and the index <table>_audit_key_idx (key_id, seq), a key's
// entries. <table>_audit_heads (owner, seq, hash), primary key owner,
// holds the newest entry of each owner's chain, whose row each append
// locks and moves.
//
// <table>_usage holds the usage of keys, one row per key and hour (see
// "Usage"):
//
//	key_id    uuid        NOT NULL: the key
//	owner     text        NOT NULL: its owner
//	hour      timestamptz NOT NULL: the UTC hour the counts are of, on the hour
//	verified  bigint      NOT NULL: successful verifications (store.Counts.Verified)
//	scope     bigint      NOT NULL: requests then refused for a missing scope
//	mode      bigint      NOT NULL: ... for the key's mode
//	limited   bigint      NOT NULL: ... by the key's rate limit or quota
//	network   bigint      NOT NULL: ... for the client's network
//
// with the primary key <table>_usage_pkey (key_id, hour) and the index
// <table>_usage_hour_idx (hour), for retention. Neither table has a
// foreign key to the keys: a key never revoked may be deleted, and its
// entries are never removed; its usage is left for [Store.PruneUsage],
// and [Store.Usage] no longer reports it.
//
// The verification lookup, [Store.GetByHash], is one probe of the hash
// index, whatever the owner. [Store.List] is one scan of the owner index
// that stops after the page (keyset pagination on created_at and id), so a
// page costs the same for an owner of a thousand keys as for one of a
// million. (For an owner whose keys may all fit in the page, PostgreSQL may
// read them through a bitmap scan of that index and sort them instead.)
// The links replaces and replaced_by are not foreign keys, since a key
// never revoked may be deleted; but a replacement deleted rather than
// revoked leaves its old key linked to a key that is gone, and the old key
// can then never be rotated again.
//
// The raw key is never stored nor sent to the database: only its hash,
// which is also the verification lookup, and its display prefix. Neither
// is the client's idempotency key: only a digest ([store.Idempotency]).
// Times are microseconds; the store returns them in UTC, whatever the
// session's or the process's time zone. Metadata read back is checked as
// [apikey.NewMetadata] checks it: a row whose metadata breaks its limits
// (written in raw SQL) fails the read rather than reach the application.
// So does a row whose policy has a field the store does not know, at any
// depth, a value of another type, or limits that [apikey.Policy.Validate]
// refuses: the key is refused as the store unavailable, never verified
// under a limit other than the one stored.
//
// A policy is stored as package apikey marshals it to JSON, leaving out
// what it does not set, such as
//
//	{"rate": {"requests": 100, "period": "1m0s", "burst": 20}, "quota": {"requests": 1000000, "per": "month"},
//	 "networks": ["203.0.113.0/24", "2001:db8::/32"]}
//
// and a key without one, or with the zero Policy, has NULL. Reads of
// records take it in the same column of their result as the metadata and
// the fields of leaked keys, NULL for a key that has none of them; the
// verification lookup, which reads the whole record as one JSON array
// (the pgx driver allocates for every column of a result), takes that
// column as the array's last field, null for such a key: a key without a
// policy costs no more to verify than before policies existed.
//
// # Migrations
//
// The schema is a sequence of numbered SQL files embedded in the package.
// [Migrate] applies those not yet applied, in one transaction, under a
// transaction-level advisory lock, so application instances starting
// together do not race, and records them in <table>_migrations. Teams that
// run goose, golang-migrate or atlas take the same files from
// [Migrations], rendered for their table name; the files are named like
// "0001_create_table.up.sql" and carry goose annotations. A released file
// never changes.
//
// Migrate's version table is its own, <table>_migrations
// ("api_keys_migrations" by default, in the table's schema), with the
// columns version, name and applied_at. It does not clash with the version
// tables of goose (goose_db_version) or golang-migrate
// (schema_migrations), whose names differ, and Migrate never reads nor
// writes them, so an application may keep its own migrations in goose or
// golang-migrate and call Migrate for keyward's.
//
// A team that applied keyward's migrations with goose or golang-migrate may
// keep doing so, or switch to Migrate at any time: Migrate, finding the
// table but no version in <table>_migrations, adopts the schema. It looks
// for the objects each migration creates (columns, indexes, constraints,
// functions, triggers, the table <table>_trips), records the migrations
// found, 1 to k, without running them again, and applies k+1 onwards, all
// in its one transaction under its lock. If what it finds is not
// migrations 1 to k, each whole (a migration in part, a gap, a table of
// that name made by hand), it changes nothing and fails with an error
// naming the objects it found and those missing. To switch, call Migrate
// at start-up and stop giving keyward's files to the tool: remove them
// from its source (the tool's version table keeps their rows, which are
// harmless; golang-migrate, which keeps only its latest version, may need
// its version set back to that of the application's own migrations). Do
// not run both on the same table afterwards: the tool would try to apply
// the later files again.
//
// With [WithTable] naming a schema ("auth.api_keys"), Migrate creates the
// schema if it does not exist. That needs CREATE on the database; a role
// without it gets an error saying to create the schema first: then
// CREATE SCHEMA as a role that may, and grant the migrating role USAGE and
// CREATE on it.
//
// Migration 0004 adds owners, metadata, rotation links and idempotency. It
// builds <table>_owner_created_idx, which holds writes to the table while
// it runs: on a large table, its owner may build the index beforehand with
// CREATE INDEX CONCURRENTLY, under that name and definition, and 0004 keeps
// it. It drops the index on (created_at DESC, id DESC) of migration 0001,
// which no query reads any more: every listing is one owner's.
//
// Migration 0005 orders the change feed by commit (see "Change feed"). It
// adds the column changed_xid, which is instant, and builds
// <table>_changed_xid_idx, which reads the whole table and holds writes to
// it meanwhile: on a large table, its owner may add the column (ADD COLUMN
// changed_xid xid8) and build the index with CREATE INDEX CONCURRENTLY
// beforehand, under that name and definition, and 0005 keeps them.
//
// Migration 0006 is for leaked keys: it adds the columns revoked_reason,
// exposed_at, exposed_source, exposed_url and canary, creates
// <table>_trips, and widens the guard and the change feed to the new
// columns. It is instant whatever the size of the table: the new columns
// are NULL, or false by default, in existing rows, and their checks,
// <table>_reason_check and <table>_exposure_check, are added NOT VALID,
// so that ALTER TABLE does not read the whole table under its lock, which
// would stop verifications too. They hold for every row written after; the
// rows before 0006 pass them (their new columns are NULL), which the
// table's owner may confirm at any time with ALTER TABLE ... VALIDATE
// CONSTRAINT, which reads the table without holding writes. Keys existing
// before it have no revocation reason, are not exposed and are not
// canaries.
//
// Migration 0007 adds policies: the column policy, its check
// <table>_policy_check (a JSON object, or NULL), and widens the guard (a
// revoked key's policy never changes) and the change feed (setting,
// changing or removing a policy is a change) to it. It is instant whatever
// the size of the table, as 0006 is: the column is NULL in existing rows,
// which the check, added NOT VALID, accepts; the table's owner may
// confirm it with ALTER TABLE ... VALIDATE CONSTRAINT. Keys existing
// before it have no policy.
//
// Migration 0008 adds the audit trail and usage: the tables
// <table>_audit, <table>_audit_heads and <table>_usage, the trail's
// trigger <table>_audit_append_only (and its function
// <table>_audit_refuse) and the function <table>_audit_append, whose
// search_path is set to its own schema, where it finds its tables whatever
// the caller's. It touches nothing of the keys' table and is instant. Keys created before it have
// no entry for their creation; an owner's chain starts with the first
// change after it.
//
// # Keys made before owners
//
// Migration 0004 gives every key already in the table the owner "default"
// ([apikey.DefaultOwner]), empty metadata and no links, and then drops the
// column's default, so that every new key names its owner. An application
// with a single account keeps using "default" (keyward.DefaultOwner). One
// with several assigns the existing keys to their accounts: a key's owner
// never changes otherwise, so it is done by the table's owner, who alone
// can disable the guard, in one transaction:
//
//	BEGIN;
//	ALTER TABLE api_keys DISABLE TRIGGER api_keys_guard;
//	UPDATE api_keys SET owner = 'acct_123' WHERE owner = 'default' AND id IN (...);
//	-- ... one UPDATE per account ...
//	ALTER TABLE api_keys ENABLE TRIGGER api_keys_guard;
//	COMMIT;
//
// Other sessions never see the guard disabled: ALTER TABLE holds a lock
// that makes every other write to the table wait until the transaction
// ends (keep it short), and if the transaction fails, nothing of it
// applies. Disable the guard alone, not ALL triggers: the change-feed
// trigger then reports each key given an owner, so that verification
// caches in running instances learn its new owner within their bound.
//
// # The database guards the rules
//
// Triggers installed by the migrations refuse, for any role, any change
// that breaks a rule of the [store.Store] contract, however it is made:
//
//   - A key's identity never changes: its id, owner, hash, prefix, mode,
//     created_at, replaces and idempotency digests.
//   - Revocation is final: revoked_at, once set, never changes nor goes back
//     to NULL, and a revoked key changes no more at all (its policy
//     neither), but for last_used_at, a first report of its exposure
//     (below), and changed_at and changed_xid, which the database sets. A
//     revoked key cannot be deleted (deleting it and inserting its hash
//     again would revive it), and the table cannot be truncated (TRUNCATE
//     alone fails on the trips' foreign key, SQLSTATE 0A000; with CASCADE,
//     the guard refuses it).
//   - A revocation's reason is part of it: revoked_reason is set only by
//     the UPDATE that sets revoked_at, and never changes after.
//   - An exposure stays as first reported: exposed_at, exposed_source and
//     exposed_url may go from NULL to set, on any key, a revoked or expired
//     one too, but once set never change nor go back to NULL.
//   - A canary stays a canary, and a plain key plain: canary never changes.
//   - An expiry only moves earlier: expires_at, once set, never moves later
//     nor goes back to NULL.
//   - Scopes only shrink: the new scopes are a subset of the old ones, never
//     empty.
//   - A rotated key stays linked: replaced_by never goes back to NULL. (It
//     may name another key: a key rotated again once its replacement was
//     revoked.)
//
// The error is SQLSTATE 23000 (integrity_constraint_violation), with a
// message starting "keyward:". Keys never revoked may be deleted, and
// their trips with them. Checks refuse malformed values (an owner that is
// not 1 to 128 printable ASCII characters, metadata that is not an object
// of strings, a key that replaces itself, one idempotency digest without
// the other, a reason without revocation or over 200 bytes, an exposure
// with some of its columns and not all, a source or a URL past its limit,
// a URL with a space or a character that is not printable ASCII, a policy
// that is not a JSON object) with SQLSTATE 23514. Updates of last_used_at
// alone, the writes of every verification, run no PL/pgSQL: the triggers'
// WHEN conditions leave them out; so does the guard's for the first report
// of an exposure and for a change of the policy of a key not revoked.
//
// The table's owner, or a superuser, can disable or drop triggers. So run
// [Migrate] as an owner role and the application as a role that does not
// own the tables and holds only what the store needs:
//
//	GRANT USAGE ON SCHEMA public TO app; -- the tables' schema
//	GRANT SELECT, INSERT, UPDATE ON api_keys TO app;
//	GRANT SELECT, INSERT, DELETE ON api_keys_trips TO app;
//	GRANT SELECT, INSERT ON api_keys_audit TO app;
//	GRANT SELECT, INSERT, UPDATE ON api_keys_audit_heads TO app;
//	GRANT SELECT, INSERT, UPDATE, DELETE ON api_keys_usage TO app;
//
// (the functions of the migrations run with the caller's privileges;
// PostgreSQL lets every role call them by default). Then even SQL run
// through the application's role can neither undo a revocation, nor widen
// a key, nor move it to another owner, nor hide an exposure, nor disarm a
// canary, nor change or remove an entry of the audit trail. Without INSERT
// on api_keys_audit, the role can change no key at all: every change
// fails with its entry.
//
// # Audit trail
//
// Every change of a key, through the store, appends its entry to the
// owner's audit trail, <table>_audit, in the transaction of the change:
// the change commits with its entry or not at all, and a change that
// fails, or changes nothing, writes none. The entry is the event package
// audit makes of the change ([audit.CreatedEvent], [audit.UpdatedEvent],
// [audit.RotatedEvent], [audit.RevokedEvent], [audit.ExposedEvent]), with
// the actor of the call's context ([audit.WithActor]); an actor that
// [audit.Actor.Validate] refuses fails the change before the store sends
// anything. A rotation appends two entries, the replacement's creation
// then the old key's rotation; RevokeAll one per key, in List order. SQL
// run by hand on the keys' table writes no entry: only the store does.
//
// The entries of an owner form a hash chain (package audit): entry seq
// holds the hash of entry seq-1 and is sealed by its own,
// SHA-256("keyward audit v1", a zero byte, prev, seq as 8 big-endian
// bytes, body), which the database computes (its sha256) from the body
// the store sends, the event's canonical bytes ([audit.Event.Body]). The
// append is one statement, a call of <table>_audit_append: it locks the
// owner's row of <table>_audit_heads (creating it for the first entry),
// seals the entries after the head, inserts them and moves the head, so
// that appends of one owner follow one another, without gaps nor forks;
// the primary key (owner, seq) refuses a second entry with a number in any
// case. No statement of its own reads the head: a change costs the
// statements it always did, one more for its entries, and, for Create and
// Revoke, which were one statement, the BEGIN and COMMIT of their
// transaction.
//
// The trail is append-only: a statement trigger refuses UPDATE, DELETE
// (even of no row) and TRUNCATE of <table>_audit, for every role, with
// SQLSTATE 23000 and a message starting "keyward:". The table's owner, or
// a superuser, can still get around it, by disabling the trigger or with
// session_replication_role = replica; what it does then shows:
// [Store.AuditChain] returns the entries as stored, and an
// [audit.Checker] walking them reports the first that was edited,
// removed or moved. What a chain cannot show alone is the removal of its
// newest entries, or a chain rewritten whole by someone able to seal it
// again: keep the head of a walk ([audit.Checker.Head]) out of the
// database's reach, and compare it later. The application's role, which
// appends, could append false entries; it cannot change or remove true
// ones.
//
// [Store.Audit] pages through an owner's trail newest first, or a key's,
// with keyset pagination on seq: one scan of <table>_audit_pkey, or of
// <table>_audit_key_idx, that stops after the page. [Store.AuditChain]
// reads the chain oldest first from a number on, through the primary key.
// The store reads each event from its body; the columns key_id, at and
// kind, which the hash does not seal, are for queries.
//
// # Usage
//
// [Store.RecordUses] writes a flush of the lifecycle's uses, last-used
// times and counts, in one statement: the keys' rows are locked in ID
// order, as before, and their last-used times moved forward; then the
// counts are added to the keys' rows of <table>_usage for their hours
// (INSERT ... ON CONFLICT DO UPDATE, in key and hour order, the same in
// every flush, so that instances flushing the same keys at once cannot
// deadlock). A flush of N verifications of K keys in one hour writes K
// rows of keys and K rows of usage, whatever N. [Store.Usage] reads a
// key's hours through <table>_usage_pkey.
//
// Usage grows by a row per key used per hour. Its retention is the
// application's: call [Store.PruneUsage] now and then (daily, say) with
// the start of the oldest hour to keep; it deletes the hours before it,
// through <table>_usage_hour_idx. Nothing else deletes usage.
//
// # Canaries and their trips
//
// [Store.RecordTrip] keeps a canary's trips in <table>_trips, at least the
// newest 100 of each key ([store.MaxTrips], newest by time, then by
// number), and at most 50 more, whatever the number of trips: a flood of
// uses of one canary costs the same for each trip and does not grow the
// table. Its transaction locks the key's row (FOR NO KEY UPDATE, which
// neither verification lookups nor the key's foreign key wait for), so
// that the trips of one key are recorded one after the other, checks the
// owner on the way, and inserts the trip numbered after the key's last one
// (one probe of the primary key, from its end). Each time a key's number
// reaches 100 plus a multiple of 50, the key holds exactly 50 trips past
// its newest 100 (unless some were deleted otherwise), which the same
// transaction deletes: one scan of <table>_trips_at_idx that stops after
// them, before the rows deleted earlier, which wait for vacuum. Between
// those times a trip costs three index probes (the key, its last number,
// the foreign key's check) and an insert.
//
// [Store.Trips] is one statement: the key, by its primary key and owner,
// joined to its trips, read through <table>_trips_at_idx.
//
// # Change feed
//
// Store implements [store.ChangeFeed], so that a verification cache in one
// instance learns of the changes made through another by polling
// [Store.Changes], one indexed query a poll. The feed is ordered by
// commit: a change is reported by the first poll that begins after its
// transaction commits, however long after the UPDATE that is, and not
// before; no clock is read, and there is no margin to choose.
//
// A trigger sets changed_xid to the ID of the transaction that changes a
// key's record but for its last use (its name, scopes, metadata,
// expires_at, revoked_at, revoked_reason, replaced_by, exposure, canary
// flag, policy, or its owner; not its trips, which are not part of it),
// through the store or in raw SQL, from a subtransaction too
// (pg_current_xact_id(): 64 bits, never wraps), and ignores any value an
// INSERT or UPDATE gives it. A position is the snapshot that the poll's
// query read (pg_current_snapshot()): the transactions it saw committed, as
// xmin, xmax and the list of those in progress between them. The next poll
// reads the keys whose changed_xid that snapshot did not see committed and
// its own snapshot does: those from the position's xmin on, through
// <table>_changed_xid_idx, less those the position saw
// (pg_visible_in_snapshot). So a change is reported exactly when its commit
// becomes visible: a change in a transaction that stays open, that waits
// for a stalled synchronous standby, or that is prepared for a two-phase
// commit, is reported by the first poll after it commits, and a key changed
// once is reported once. A change rolled back is never reported. Positions
// are a few bytes more for each transaction in progress when they were
// taken, and valid with any Store on the database.
//
// What the feed costs grows with the oldest transaction that writes: a
// transaction in progress holds back the xmin of every snapshot, so each
// poll scans the index from the oldest writing transaction still open, in
// any database of the cluster: the keys changed since it began, read and
// left out again, until it ends. The caches pay nothing for it (nothing
// is reported twice), and read-only transactions hold nothing back; a
// transaction left open for hours holds back vacuum as well, and is a
// problem of its own. Positions are opaque: those not made by this store,
// and those of the time-based format of earlier versions, which no process
// of this version ever made, return [store.ErrInvalidCursor], and so does
// a position later than the database's current snapshot (the database was
// restored into another cluster, whose transaction IDs start again, or
// failed over to a standby that lacks commits the position saw): a
// verification cache then starts again from an empty cache, rather than
// miss a change. Call Changes outside any transaction: in one at
// REPEATABLE READ, every poll would read the transaction's first snapshot.
//
// Earlier versions read changed_at, the clock_timestamp() of the UPDATE,
// less a margin ([WithChangeMargin], now without effect): a change whose
// transaction committed later than the margin after its UPDATE was never
// reported, and caches accepted a revoked key until their max age. The
// trigger still stamps changed_at, and its index is kept, so that
// instances of earlier versions still running during a rolling upgrade
// keep their feed.
//
// Why not the alternatives. Commit timestamps (pg_xact_commit_timestamp)
// need track_commit_timestamp, a server setting that takes a restart and
// that managed services do not always offer, and they are no order either:
// a transaction's commit timestamp is taken before its commit becomes
// visible, so a feed by commit timestamp needs a margin again. LISTEN and
// NOTIFY deliver at commit, but only to a session listening at that
// moment: a notification sent while an instance's connection is down, or
// through a pooler in transaction mode, which LISTEN does not survive, is
// lost, so polling would still have to be the truth, while database/sql
// has no way to listen without importing a driver. Transaction IDs and
// snapshots need nothing but the table, work through any pooler and any
// driver, are the database's own notion of "committed before", and lose
// nothing while a connection is down: the next poll reads from the last
// position.
//
// # Errors
//
// A missing key, or another owner's, returns [store.ErrNotFound]; a unique
// violation (a duplicate ID or hash), [store.ErrDuplicate]; a record
// refused by a check of the table, an error wrapping
// [apikey.ErrInvalidRecord]. Every other failure (the server unreachable, a
// connection dropped, a deadline or a cancellation, a commit that fails) is
// returned wrapped, and wraps the context's error whenever the context
// ended, whatever the driver made of it; a read that found no row after its
// context ended reports the context's error, not ErrNotFound. The lifecycle
// in package keyward reports all of these as keyward.ErrStoreUnavailable
// (503), never as an invalid key.
package postgres
