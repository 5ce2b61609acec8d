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
// New does no I/O and never migrates. Give the pool enough idle
// connections for the verifications in flight (db.SetMaxIdleConns; the
// default of 2 makes a busy server open and close connections all the
// time).
//
// # Transactions
//
// The store runs its queries on a [DB]: a *sql.DB, a *sql.Tx or a
// *sql.Conn. To create a key inside your own transaction, so that it exists
// only if the rest of your work commits, use [Store.WithTx]:
//
//	tx, err := db.BeginTx(ctx, nil)
//	...
//	err = st.WithTx(tx).Create(ctx, rec)
//
// A duplicate returns [store.ErrDuplicate] and, like any failed
// statement in PostgreSQL, aborts the transaction.
//
// # Schema
//
// The table, "api_keys" unless [WithTable] names another (optionally
// schema-qualified), holds one row per key:
//
//	id           uuid        PRIMARY KEY
//	hash         bytea       NOT NULL, 32 bytes: SHA-256 of the raw key; UNIQUE index <table>_hash_key
//	prefix       text        NOT NULL: the display prefix, such as ck_live_abc123
//	name         text        NOT NULL
//	mode         text        NOT NULL: 'live' or 'test'
//	scopes       text[]      NOT NULL, not empty
//	created_at   timestamptz NOT NULL; index <table>_created_at_id_idx (created_at DESC, id DESC)
//	last_used_at timestamptz: NULL if never used
//	revoked_at   timestamptz: NULL unless revoked
//	expires_at   timestamptz: NULL if the key does not expire
//	changed_at   timestamptz: set by the database, for the change feed; partial index <table>_changed_at_idx
//
// The raw key is never stored nor sent to the database: only its hash,
// which is also the verification lookup, and its display prefix. Times are
// microseconds; the store returns them in UTC, whatever the session's or
// the process's time zone.
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
// # Revocation is final, in the database
//
// Triggers installed by the migrations refuse, for any role, any UPDATE
// that changes revoked_at once it is set (to NULL or to another time), any
// change of a key's id, hash, prefix, mode or created_at, the DELETE of a
// revoked key (deleting it and inserting its hash again would revive it)
// and TRUNCATE. The error is SQLSTATE 23000 (integrity_constraint_violation),
// with a message starting "keyward:". Keys never revoked may be deleted.
//
// The table's owner, or a superuser, can disable or drop triggers. So run
// [Migrate] as an owner role and the application as a role that does not
// own the table and holds only what the store needs:
//
//	GRANT SELECT, INSERT, UPDATE ON api_keys TO app; -- and USAGE on its schema
//
// Then even SQL run through the application's role cannot undo a
// revocation.
//
// # Change feed
//
// Store implements [store.ChangeFeed], so that a verification cache in one
// instance learns of revocations and expiry changes made through another
// by polling [Store.Changes], one indexed query a poll.
//
// A trigger sets changed_at to the database's clock_timestamp() whenever
// revoked_at or expires_at changes, through the store or in raw SQL, and
// ignores any value an INSERT or UPDATE gives it. A position is the
// database's now() at the poll that returned it; a poll reports the keys
// whose changed_at is later than its position less a margin
// ([DefaultChangeMargin], one minute; [WithChangeMargin]). The margin is
// there because changed_at is stamped when the row is updated, while the
// change becomes visible only when its transaction commits: a change is
// reported as long as its transaction commits within the margin after
// updating the row. The store's own Revoke and SetExpiry are single
// statements that commit at once; a revocation made through
// [Store.WithTx] in a transaction that stays open longer than the margin,
// a commit delayed longer by a stalled synchronous standby, or the
// database's clock stepping back by more than the margin may be missed.
// Changes made within the margin before a position are reported again:
// delivery is at least once. Only the database's clock is used, never the
// application's, so positions from one instance are valid in all.
//
// # Errors
//
// A missing key returns [store.ErrNotFound]; a unique violation (a
// duplicate ID or hash), [store.ErrDuplicate]; a record refused by a check
// of the table, an error wrapping [apikey.ErrInvalidRecord]. Every other
// failure (the server unreachable, a connection dropped, a deadline or a
// cancellation) is returned wrapped, and wraps the context's error
// whenever the context ended, whatever the driver made of it; a read that
// found no row after its context ended reports the context's error, not
// ErrNotFound. The lifecycle in package keyward reports all of these as
// keyward.ErrStoreUnavailable (503), never as an invalid key.
package postgres
