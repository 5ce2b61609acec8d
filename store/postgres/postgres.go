package postgres

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/store"
)

// DB is what the store runs its queries on: a [*sql.DB], a [*sql.Tx] or a
// [*sql.Conn] all satisfy it. Through a *sql.Tx, the store's changes
// commit or roll back with the caller's transaction.
//
// The methods that change keys ([Store.Create], [Store.Update],
// [Store.Rotate], [Store.Revoke], [Store.RevokeAll], [Store.Expose]), each
// with the statement of its audit entry, and [Store.RecordTrip] run
// several statements that must apply together: on a DB with a BeginTx
// method (*sql.DB, *sql.Conn) they begin a transaction of their own; on a
// transaction, one with Commit and Rollback methods (*sql.Tx), they run
// inside it. On any other DB they return an error and change nothing.
type DB interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// DefaultTable is the name of the table when [WithTable] is not given.
const DefaultTable = "api_keys"

// DefaultChangeMargin was how far back [Store.Changes] looked before the
// position it was given.
//
// Deprecated: the change feed is ordered by commit and needs no margin;
// see [WithChangeMargin].
const DefaultChangeMargin = time.Minute

// An Option configures [New], [Migrate] and [Migrations].
type Option func(*config) error

type config struct {
	table table
}

// WithTable names the table that holds the keys: "name" or "schema.name",
// each part a lowercase SQL identifier ([a-z_][a-z0-9_]*, at most 45 bytes
// for the name and 63 for the schema, as it must leave room for the names
// of indexes and triggers). An unqualified name is found through the
// connection's search_path. The default is [DefaultTable], "api_keys".
//
// Migrate and New must be given the same table.
func WithTable(name string) Option {
	return func(c *config) error {
		t, err := parseTable(name)
		if err != nil {
			return err
		}
		c.table = t
		return nil
	}
}

// WithChangeMargin has no effect. It set how far back [Store.Changes]
// looked before its position, when positions were times: a change whose
// transaction committed later than the margin after its UPDATE was missed.
// Positions are now snapshots of which transactions have committed (see
// "Change feed" in the package documentation), so every change is reported
// when it commits, however late, and no margin is needed.
//
// Deprecated: remove the option; it is ignored, whatever d.
func WithChangeMargin(d time.Duration) Option {
	return func(*config) error { return nil }
}

func newConfig(opts []Option) (config, error) {
	t, _ := parseTable(DefaultTable)
	c := config{table: t}
	for _, opt := range opts {
		if err := opt(&c); err != nil {
			return config{}, err
		}
	}
	return c, nil
}

// A table is a validated table name, with the SQL that names it.
type table struct {
	schema, name string // unquoted; schema is "" if unqualified
	qualified    string // quoted, and qualified if schema is set
}

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// maxNameLen leaves room, in PostgreSQL's 63 bytes, for the longest
// suffix of an object named after the table: "_created_at_id_idx"
// (migration 0001; "_owner_created_idx", "_replaced_by_check" and
// "_idempotency_check" of migration 0004 are as long, and those of later
// migrations, such as "_trips_key_fkey", shorter).
const maxNameLen = 63 - len("_created_at_id_idx")

func parseTable(s string) (table, error) {
	schema, name, qualified := strings.Cut(s, ".")
	if !qualified {
		schema, name = "", s
	}
	switch {
	case !identifier.MatchString(name) || len(name) > maxNameLen:
		return table{}, fmt.Errorf("postgres: invalid table name %q: want a lowercase identifier of at most %d bytes", s, maxNameLen)
	case qualified && (!identifier.MatchString(schema) || len(schema) > 63):
		return table{}, fmt.Errorf("postgres: invalid schema in table name %q: want a lowercase identifier", s)
	}
	t := table{schema: schema, name: name, qualified: quote(name)}
	if schema != "" {
		t.qualified = quote(schema) + "." + quote(name)
	}
	return t, nil
}

// object returns the quoted, unqualified name of an object named after the
// table, such as an index: <table>_<suffix>.
func (t table) object(suffix string) string { return quote(t.name + "_" + suffix) }

// qualifiedObject is object qualified with the table's schema, if it has
// one.
func (t table) qualifiedObject(suffix string) string {
	if t.schema == "" {
		return t.object(suffix)
	}
	return quote(t.schema) + "." + t.object(suffix)
}

// quote quotes a validated identifier.
func quote(id string) string { return `"` + id + `"` }

// Store keeps API key records in PostgreSQL. Create it with [New] on a
// database prepared by [Migrate]. It is safe for concurrent use, and any
// number of Stores, in any number of processes, may share one table.
type Store struct {
	db DB
	q  queries
	// beforeAppend, if set (by tests), runs in a change's transaction
	// between the statements of the change and that of its audit entry;
	// an error it returns fails the change there.
	beforeAppend func(ctx context.Context, tx DB, op string) error
}

var (
	_ store.Store      = (*Store)(nil)
	_ store.ChangeFeed = (*Store)(nil)
)

// New returns a store that keeps keys in the table of the options (default
// "api_keys"), through db. It does no I/O: the table must exist, made by
// [Migrate] or by the files of [Migrations].
func New(db DB, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, errors.New("postgres: New needs a database")
	}
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return &Store{db: db, q: newQueries(c.table)}, nil
}

// WithTx returns a store like s that runs its queries on tx, usually a
// [*sql.Tx]: keys created, updated, rotated or revoked through it are
// committed, or rolled back, with the transaction, and so are their audit
// entries. s is unchanged.
func (s *Store) WithTx(tx DB) *Store {
	c := *s
	c.db = tx
	return &c
}

// queries holds the SQL of a store, built once for its table.
type queries struct {
	create, getByIdempotency, get, lock, getByID, getByHash, list string
	update, link, revoke, revokeAll, expose, recordUses           string
	lockForTrip, insertTrip, pruneTrips, trips                    string
	changes, changesPosition                                      string
	appendAudit, auditPage, auditKeyPage, auditChain              string
	usage, pruneUsage                                             string
}

// columns are the columns of a record, in the order scanRecord reads them:
// what every read but the verification lookup selects (that one selects
// [lookupRow]).
//
// They are as few as the record allows: the pgx driver allocates for each
// column of a result, NULL or not, two or three times a query (five more
// columns cost every lookup 13 allocations more). So the fields that most
// keys leave empty, the metadata, those of leaked keys and the policy,
// share one column, [extras], which is NULL for most keys and scans
// without allocating.
const columns = `id, owner, hash, prefix, name, mode, array_to_string(scopes, ' '), ` + extras + `, ` +
	`created_at, last_used_at, revoked_at, expires_at, replaces, replaced_by`

// extras is the column of a record's metadata, of its fields for leaked
// keys (the revocation's reason, the exposure and the canary flag) and of
// its policy. It is NULL if the metadata is empty and the others are not
// set; the metadata, a JSON object, if only the others are not set; else an
// array of one JSON object of them all ([storedExtras]), null for what is
// not set.
const extras = `CASE WHEN ` + extrasUnset + ` THEN nullif(metadata, '{}')::text ELSE ` + extrasArray + `::text END`

// extrasUnset holds when the fields of [extras] other than the metadata
// are not set, and extrasArray is the array form of [extras], in JSON.
const (
	extrasUnset = `revoked_reason IS NULL AND exposed_at IS NULL AND NOT canary AND policy IS NULL`
	extrasArray = `json_build_array(json_build_object('m', nullif(metadata, '{}'), 'r', revoked_reason, ` +
		`'e', (extract(epoch FROM exposed_at) * 1000000)::bigint, 's', exposed_source, 'u', exposed_url, 'c', canary, ` +
		`'p', policy))`
)

// lookupRow is the one column of the verification lookup
// ([Store.GetByHash]): the record, but for its hash (the lookup's), as
// the text of a JSON array of lookupFields fields, which [scanLookup]
// reads. The stdlib driver of pgx allocates two or three times a query
// for each column of its result (the functions that convert it, made
// afresh for each query), NULL or not, and twice more for each value that
// is not NULL: read through [columns], the lookup of a plain key cost 71
// allocations; through this one column, 22 (pgx v5.13.0, Go 1.26). The
// server pays for it in building the JSON, about 2 µs a row.
//
// The array holds, in order: the ID, owner, prefix, name, mode and
// scopes (strings), the creation, last use, revocation and expiry times
// (microseconds since the Unix epoch, which no time zone or DateStyle
// changes; null if not set), the IDs of the keys replaced and replacing
// (strings or null) and the [extras] column as JSON (null, an object or
// an array), last, so that its text is read as it is.
const lookupRow = `json_build_array(id, owner, prefix, name, mode, array_to_string(scopes, ' '), ` +
	`(extract(epoch FROM created_at) * 1000000)::bigint, (extract(epoch FROM last_used_at) * 1000000)::bigint, ` +
	`(extract(epoch FROM revoked_at) * 1000000)::bigint, (extract(epoch FROM expires_at) * 1000000)::bigint, ` +
	`replaces, replaced_by, ` +
	`CASE WHEN ` + extrasUnset + ` THEN nullif(metadata, '{}')::json ELSE ` + extrasArray + ` END)::text`

// lookupFields is the number of fields of [lookupRow].
const lookupFields = 13

// storedExtras is the object of the array form of [extras].
type storedExtras struct {
	Metadata  apikey.Metadata `json:"m"` // checked as NewMetadata checks it
	Reason    string          `json:"r"`
	ExposedAt *int64          `json:"e"` // microseconds since the Unix epoch, which no time zone changes
	Source    string          `json:"s"`
	URL       string          `json:"u"`
	Canary    bool            `json:"c"`
	Policy    *storedPolicy   `json:"p"` // nil for null: no policy
}

// listOrder is the order of Store.List: newest first, then by ID.
const listOrder = ` ORDER BY created_at DESC, id DESC`

func newQueries(t table) queries {
	tbl, trips := t.qualified, t.qualifiedObject("trips")
	trail, usage := t.qualifiedObject("audit"), t.qualifiedObject("usage")
	return queries{
		// ON CONFLICT names the idempotency index alone: a duplicate ID or
		// hash is still a unique violation, and so is a duplicate for a
		// unique constraint the table's owner added, deferrable or not.
		// Without an idempotency key the arbiter never matches.
		create: `INSERT INTO ` + tbl + ` (id, owner, hash, prefix, name, mode, scopes, metadata, created_at,
	last_used_at, expires_at, replaces, idempotency_key, idempotency_request, canary, policy)
VALUES ($1, $2, $3, $4, $5, $6, string_to_array($7::text, ' '), $8::text::jsonb, $9, $10, $11, $12, $13, $14, $15, $16::text::jsonb)
ON CONFLICT (owner, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING ` + columns,
		getByIdempotency: `SELECT idempotency_request, ` + columns + ` FROM ` + tbl + ` WHERE owner = $1 AND idempotency_key = $2`,
		get:              `SELECT ` + columns + ` FROM ` + tbl + ` WHERE id = $1 AND owner = $2`,
		lock:             `SELECT ` + columns + ` FROM ` + tbl + ` WHERE id = $1 AND owner = $2 FOR UPDATE`,
		getByID:          `SELECT ` + columns + ` FROM ` + tbl + ` WHERE id = $1`,
		getByHash:        `SELECT ` + lookupRow + ` FROM ` + tbl + ` WHERE hash = $1`,
		list:             `SELECT ` + columns + ` FROM ` + tbl + ` WHERE owner = $1`,
		update: `UPDATE ` + tbl + ` SET name = $2, scopes = string_to_array($3::text, ' '), metadata = $4::text::jsonb, expires_at = $5,
	policy = $6::text::jsonb
WHERE id = $1 RETURNING ` + columns,
		link: `UPDATE ` + tbl + ` SET expires_at = $2, replaced_by = $3 WHERE id = $1 RETURNING ` + columns,
		// One statement, which returns one row: (true, the revoked record),
		// or (false, the record as it was) if it was revoked already. No
		// row: no such key of the owner. The second branch reads the
		// statement's snapshot, so a revocation that committed while the
		// UPDATE waited for the row is not visible there: it can only say
		// that the key exists, which, with the UPDATE not applied, means it
		// is revoked.
		revoke: `WITH updated AS (
	UPDATE ` + tbl + ` SET revoked_at = $3, revoked_reason = $4 WHERE id = $1 AND owner = $2 AND revoked_at IS NULL RETURNING *
)
SELECT true, ` + columns + ` FROM updated
UNION ALL
SELECT false, ` + columns + ` FROM ` + tbl + ` WHERE id = $1 AND owner = $2 AND NOT EXISTS (SELECT FROM updated)`,
		// The owner's active keys are locked in ID order first, as
		// recordUses locks them, so that an account's revocation and the
		// last-used batches of instances still serving its keys cannot
		// deadlock. A key changed meanwhile is checked again in its latest
		// version: one revoked or expired since is left alone.
		revokeAll: `WITH locked AS MATERIALIZED (
	SELECT id FROM ` + tbl + `
	WHERE owner = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)
	ORDER BY id
	FOR NO KEY UPDATE
), revoked AS (
	UPDATE ` + tbl + ` k SET revoked_at = $2, revoked_reason = $3
	FROM locked
	WHERE k.id = locked.id AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > $2)
	RETURNING k.*
)
SELECT ` + columns + ` FROM revoked`,
		// Run on the row Expose locked, with the values store.Expose
		// gave it.
		expose: `UPDATE ` + tbl + ` SET exposed_at = $2, exposed_source = $3, exposed_url = $4, revoked_at = $5, revoked_reason = $6
WHERE id = $1 RETURNING ` + columns,
		// RecordTrip's transaction: it locks the key, which stands for its
		// trips, so that the trips of one key are recorded one after the
		// other; inserts the trip, numbered after the last one (one probe
		// of the primary key, from its end); and, when a key's count
		// reaches a multiple of the slack, deletes what is past the newest
		// MaxTrips (one scan of the time index, of MaxTrips plus the slack
		// entries). FOR NO KEY UPDATE lets the foreign key's check, and
		// verification lookups, through.
		lockForTrip: `SELECT true FROM ` + tbl + ` WHERE id = $1 AND owner = $2 FOR NO KEY UPDATE`,
		insertTrip: `INSERT INTO ` + trips + ` (key_id, seq, at, addr, user_agent, route)
SELECT $1, coalesce(max(seq), 0) + 1, $2, $3, $4, $5 FROM ` + trips + ` WHERE key_id = $1
RETURNING seq`,
		pruneTrips: `DELETE FROM ` + trips + ` t
USING (SELECT seq FROM ` + trips + ` WHERE key_id = $1 ORDER BY at DESC, seq DESC OFFSET $2 LIMIT $3) AS old
WHERE t.key_id = $1 AND t.seq = old.seq AND t.seq <> $4`,
		// One row with NULLs for a key without trips; none for no such key
		// of the owner. The trips are those of key_id = $1, not of k.id:
		// planned for the value, a flooded key's trips are read in the
		// index's order, up to the limit, rather than all of its index
		// entries, those of trips deleted but not yet vacuumed too, read
		// and sorted.
		trips: `SELECT t.at, coalesce(t.addr, ''), coalesce(t.user_agent, ''), coalesce(t.route, '')
FROM ` + tbl + ` k LEFT JOIN LATERAL (
	SELECT at, seq, addr, user_agent, route FROM ` + trips + ` WHERE key_id = $1
	ORDER BY at DESC, seq DESC LIMIT $3
) AS t ON true
WHERE k.id = $1 AND k.owner = $2
ORDER BY t.at DESC, t.seq DESC`,
		// One statement for the whole batch, last-used times and counts
		// together: one round trip a flush. Keys' rows are locked in ID
		// order first, so that concurrent batches from several instances,
		// which often share keys, cannot deadlock, nor can a batch and
		// RevokeAll, which locks keys in the same order; a last-used time
		// only moves forward, and the latest time of a key listed twice
		// wins. The counts are added to the keys' rows of usage by the
		// WITH counted, which the main UPDATE does not read, so PostgreSQL
		// runs it after the UPDATE: the usage rows are locked after the
		// keys', in (key, hour) order, the same in every batch. A key
		// listed twice for an hour gets the sum; unknown keys are left
		// out by the join, which reads the key's owner.
		recordUses: `WITH uses AS MATERIALIZED (
	SELECT u.id, max(u.at) AS at
	FROM unnest($1::text::uuid[], $2::text::timestamptz[]) AS u(id, at)
	GROUP BY u.id
), locked AS MATERIALIZED (
	SELECT k.id FROM ` + tbl + ` k JOIN uses ON k.id = uses.id
	WHERE k.last_used_at IS NULL OR k.last_used_at < uses.at
	ORDER BY k.id
	FOR NO KEY UPDATE OF k
), counted AS (
	INSERT INTO ` + usage + ` AS u (key_id, owner, hour, verified, scope, mode, limited, network)
	SELECT c.id, k.owner, c.hour, sum(c.verified)::bigint, sum(c.scope)::bigint, sum(c.mode)::bigint,
		sum(c.limited)::bigint, sum(c.network)::bigint
	FROM unnest($3::text::uuid[], $4::text::timestamptz[], $5::text::bigint[], $6::text::bigint[],
		$7::text::bigint[], $8::text::bigint[], $9::text::bigint[]) AS c(id, hour, verified, scope, mode, limited, network)
	JOIN ` + tbl + ` k ON k.id = c.id
	GROUP BY c.id, k.owner, c.hour
	ORDER BY c.id, c.hour
	ON CONFLICT (key_id, hour) DO UPDATE SET verified = u.verified + EXCLUDED.verified,
		scope = u.scope + EXCLUDED.scope, mode = u.mode + EXCLUDED.mode,
		limited = u.limited + EXCLUDED.limited, network = u.network + EXCLUDED.network
)
UPDATE ` + tbl + ` k SET last_used_at = uses.at
FROM uses
WHERE k.id = uses.id AND k.id IN (SELECT id FROM locked)
	AND (k.last_used_at IS NULL OR k.last_used_at < uses.at)`,
		// The snapshot this statement reads, and the keys whose last change
		// it sees committed but the position's snapshot ($1) did not: one
		// scan of the index on changed_xid from the position's xmin (every
		// transaction the position did not see is from there on). The
		// one-row subquery gives the snapshot when no key changed.
		changesPosition: `SELECT pg_current_snapshot()::text`,
		// One statement appends a change's entries: the function locks
		// the owner's head, seals the entries in SQL (sha256) and moves
		// the head. See migration 0008.
		appendAudit: `SELECT ` + t.qualifiedObject("audit_append") + `($1, $2::text::text[])`,
		// Pages of the trail, newest first, with keyset pagination on
		// seq: a scan of the primary key (owner, seq), or of
		// <table>_audit_key_idx (key_id, seq) for one key's, that stops
		// after the page.
		auditPage: `SELECT ` + entryColumns + ` FROM ` + trail + ` WHERE owner = $1 AND seq < $2
ORDER BY seq DESC LIMIT $3`,
		auditKeyPage: `SELECT ` + entryColumns + ` FROM ` + trail + ` WHERE key_id = $4 AND owner = $1 AND seq < $2
ORDER BY seq DESC LIMIT $3`,
		auditChain: `SELECT ` + entryColumns + ` FROM ` + trail + ` WHERE owner = $1 AND seq > $2
ORDER BY seq LIMIT $3`,
		// The keys in the order asked, each key's hours in order: one
		// probe of the primary key (key_id, hour) per key, and one of the
		// keys' to check that the key is the owner's (a key deleted, or
		// given to another owner, has no usage).
		usage: `SELECT u.key_id, u.hour, u.verified, u.scope, u.mode, u.limited, u.network
FROM unnest($2::text::uuid[]) WITH ORDINALITY AS q(id, n)
JOIN ` + usage + ` u ON u.key_id = q.id AND u.hour >= $3 AND u.hour < $4
WHERE u.owner = $1 AND EXISTS (SELECT FROM ` + tbl + ` k WHERE k.id = q.id AND k.owner = $1)
ORDER BY q.n, u.hour`,
		pruneUsage: `DELETE FROM ` + usage + ` WHERE hour < $1`,
		changes: `SELECT p.snap::text, k.hash
FROM (SELECT pg_current_snapshot()) AS p(snap)
LEFT JOIN ` + tbl + ` k ON k.changed_xid >= pg_snapshot_xmin($1::text::pg_snapshot)
	AND NOT pg_visible_in_snapshot(k.changed_xid, $1::text::pg_snapshot)`,
	}
}

// Create adds a record, and returns it as stored. See [store.Store.Create].
//
// A unique violation (a duplicate ID or hash, or a duplicate for a unique
// constraint the table's owner added) returns [store.ErrDuplicate]; a check
// violation, an error wrapping [apikey.ErrInvalidRecord]. Through a
// transaction, either aborts it, as any failed statement does in
// PostgreSQL; a repeated idempotent create does not.
//
// It runs in a transaction (see [DB]): the INSERT, then the statement
// of the key's audit entry ([audit.CreatedEvent]).
//
// An idempotent create is one INSERT ... ON CONFLICT DO NOTHING on the
// owner's idempotency key and, when that inserts nothing, one SELECT of the
// key that holds it: a statement of its own, so that, at READ COMMITTED,
// it sees the concurrent create it lost to. It writes no entry.
func (s *Store) Create(ctx context.Context, rec apikey.Record, idem store.Idempotency) (apikey.Record, error) {
	if err := ctx.Err(); err != nil {
		return apikey.Record{}, err
	}
	if err := rec.Validate(); err != nil {
		return apikey.Record{}, err
	}
	rec = store.Normalize(rec)
	actor, err := store.Actor(ctx)
	if err != nil {
		return apikey.Record{}, err
	}
	var out apikey.Record
	err = s.inTx(ctx, "create", func(tx DB) error {
		// The key holding the idempotency key may be deleted between the
		// two statements (keys never revoked may be): then the INSERT is
		// tried again.
		for range 3 {
			created, inserted, err := s.insert(ctx, tx, rec, idem)
			if err != nil {
				return err
			}
			if inserted {
				out = created
				return s.appendEntries(ctx, tx, "create", audit.CreatedEvent(created, actor))
			}
			var request []byte
			existing, err := scanRecord(tx.QueryRowContext(ctx, s.q.getByIdempotency, rec.Owner, idem.Key[:]), &request)
			switch {
			case err == nil && bytes.Equal(request, idem.Request[:]):
				out = existing
				return store.ErrAlreadyCreated
			case err == nil:
				return store.ErrIdempotencyConflict
			case !errors.Is(err, sql.ErrNoRows) || ctx.Err() != nil:
				return failed(ctx, "create", err)
			}
		}
		return failed(ctx, "create", errIdempotencyVanished)
	})
	switch {
	case errors.Is(err, store.ErrAlreadyCreated):
		return out, err
	case err != nil:
		return apikey.Record{}, err
	}
	return out, nil
}

var (
	errIdempotencyVanished = errors.New("the key holding the idempotency key was deleted while it was read, three times")
	errNothingInserted     = errors.New("the INSERT inserted nothing")
)

// insert runs the INSERT of a normalized, valid record on db. It reports
// whether it inserted the record: it did not if the owner has a key with
// the idempotency key idem.Key.
func (s *Store) insert(ctx context.Context, db DB, rec apikey.Record, idem store.Idempotency) (apikey.Record, bool, error) {
	md, err := rec.Metadata.MarshalJSON()
	if err != nil {
		return apikey.Record{}, false, fmt.Errorf("%w: %w", apikey.ErrInvalidRecord, err)
	}
	policy, err := policyJSON(rec.Policy)
	if err != nil {
		return apikey.Record{}, false, err
	}
	var key, request any // NULL without an idempotency key
	if !idem.IsZero() {
		key, request = idem.Key[:], idem.Request[:]
	}
	created, err := scanRecord(db.QueryRowContext(ctx, s.q.create,
		rec.ID, rec.Owner, rec.Hash[:], rec.Prefix, rec.Name, rec.Mode.String(), rec.Scopes.String(), string(md),
		rec.CreatedAt, nullTime(rec.LastUsedAt), nullTime(rec.ExpiresAt), nullID(rec.Replaces), key, request, rec.Canary,
		policy))
	switch {
	case err == nil:
		return created, true, nil
	case errors.Is(err, sql.ErrNoRows) && ctx.Err() == nil:
		if idem.IsZero() {
			return apikey.Record{}, false, failed(ctx, "create", errNothingInserted)
		}
		return apikey.Record{}, false, nil
	}
	return apikey.Record{}, false, writeError(ctx, "create", err)
}

// Get returns the record with the given ID and owner. See
// [store.Store.Get].
func (s *Store) Get(ctx context.Context, owner string, id uuid.UUID) (apikey.Record, error) {
	if err := ctx.Err(); err != nil {
		return apikey.Record{}, err
	}
	rec, err := scanRecord(s.db.QueryRowContext(ctx, s.q.get, id, owner))
	if err != nil {
		return apikey.Record{}, readError(ctx, "get", err)
	}
	return rec, nil
}

// GetByHash returns the record with the given hash, of any owner, with one
// indexed query. See [store.Store.GetByHash].
func (s *Store) GetByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error) {
	if err := ctx.Err(); err != nil {
		return apikey.Record{}, err
	}
	// One column, read into a string: database/sql converts the driver's
	// string to a string destination without copying it.
	var row string
	if err := s.db.QueryRowContext(ctx, s.q.getByHash, h[:]).Scan(&row); err != nil {
		return apikey.Record{}, readError(ctx, "get by hash", err)
	}
	rec, err := scanLookup(row, h)
	if err != nil {
		return apikey.Record{}, failed(ctx, "get by hash", err)
	}
	return rec, nil
}

// readError maps sql.ErrNoRows to store.ErrNotFound, unless the context
// ended: then the absence of a row proves nothing.
func readError(ctx context.Context, op string, err error) error {
	if errors.Is(err, sql.ErrNoRows) && ctx.Err() == nil {
		return store.ErrNotFound
	}
	return failed(ctx, op, err)
}

// List returns a page of the owner's records, newest first, with keyset
// pagination on (created_at, id): one scan of the index on (owner,
// created_at DESC, id DESC), which stops after the page, whatever the
// number of the owner's keys. (When a page may hold all of them,
// PostgreSQL may instead read them through a bitmap scan of the same index
// and sort them, at no more cost.) See [store.Store.List].
func (s *Store) List(ctx context.Context, owner string, opts store.ListOptions) (store.Page, error) {
	if err := ctx.Err(); err != nil {
		return store.Page{}, err
	}
	query, args, limit, err := s.listQuery(owner, opts)
	if err != nil {
		return store.Page{}, err
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return store.Page{}, failed(ctx, "list", err)
	}
	defer rows.Close()
	var page store.Page
	sc := newRecordScanner()
	for rows.Next() {
		rec, err := sc.scan(rows)
		if err != nil {
			return store.Page{}, failed(ctx, "list", err)
		}
		page.Records = append(page.Records, rec)
	}
	if err := rows.Err(); err != nil {
		return store.Page{}, failed(ctx, "list", err)
	}
	if len(page.Records) > limit {
		page.Records = page.Records[:limit]
		page.Next = store.CursorAfter(page.Records[limit-1]).String()
	}
	return page, nil
}

// listQuery returns the query of a List call, its arguments, and the page
// size. The query asks for one more record than a page, which tells
// whether another page follows.
func (s *Store) listQuery(owner string, opts store.ListOptions) (string, []any, int, error) {
	opts, err := opts.Check()
	if err != nil {
		return "", nil, 0, err
	}
	var (
		query strings.Builder
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	query.WriteString(s.q.list) // WHERE owner = $1
	arg(owner)
	if opts.Cursor != "" {
		c, err := store.ParseCursor(opts.Cursor)
		if err != nil {
			return "", nil, 0, err
		}
		query.WriteString(" AND (created_at, id) < (" + arg(c.CreatedAt) + ", " + arg(c.ID) + ")")
	}
	if opts.Mode != 0 {
		query.WriteString(" AND mode = " + arg(opts.Mode.String()))
	}
	switch opts.Status {
	case apikey.Active:
		query.WriteString(" AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > " + arg(opts.Now) + ")")
	case apikey.Revoked:
		query.WriteString(" AND revoked_at IS NOT NULL")
	case apikey.Expired:
		query.WriteString(" AND revoked_at IS NULL AND expires_at <= " + arg(opts.Now))
	}
	query.WriteString(listOrder + " LIMIT " + arg(opts.Limit+1))
	return query.String(), args, opts.Limit, nil
}

// Update changes a key, in a transaction: it locks the key's row, applies
// u to it by the rules of [store.Update.Apply], and writes the result and
// its audit entry ([audit.UpdatedEvent]); if nothing changes, it writes
// neither. See [store.Store.Update] and [DB] for the transaction.
func (s *Store) Update(ctx context.Context, owner string, id uuid.UUID, u store.Update) (apikey.Record, error) {
	if err := ctx.Err(); err != nil {
		return apikey.Record{}, err
	}
	u, err := u.Check()
	if err != nil {
		return apikey.Record{}, err
	}
	actor, err := store.Actor(ctx)
	if err != nil {
		return apikey.Record{}, err
	}
	at := u.ChangeTime()
	var updated apikey.Record
	err = s.inTx(ctx, "update", func(tx DB) error {
		before, err := s.lock(ctx, tx, "update", owner, id)
		if err != nil {
			return err
		}
		rec := before
		if err := u.Apply(&rec); err != nil {
			return err
		}
		e, changed := audit.UpdatedEvent(before, rec, at, actor)
		if !changed {
			updated = rec
			return nil
		}
		md, err := rec.Metadata.MarshalJSON()
		if err != nil {
			return fmt.Errorf("%w: %w", apikey.ErrInvalidRecord, err)
		}
		policy, err := policyJSON(rec.Policy)
		if err != nil {
			return err
		}
		updated, err = scanRecord(tx.QueryRowContext(ctx, s.q.update,
			id, rec.Name, rec.Scopes.String(), string(md), nullTime(rec.ExpiresAt), policy))
		if err != nil {
			return writeError(ctx, "update", err)
		}
		if stored, ok := audit.UpdatedEvent(before, updated, at, actor); ok {
			e = stored // the record as the database stored it
		}
		return s.appendEntries(ctx, tx, "update", e)
	})
	if err != nil {
		return apikey.Record{}, err
	}
	return updated, nil
}

// Rotate stores a key's replacement and links the two, in a transaction:
// it locks the old key's row, reads its current replacement if it has one,
// applies [store.Rotation], inserts the replacement and updates the old
// key, and appends two audit entries: the replacement's
// ([audit.CreatedEvent]), then the old key's ([audit.RotatedEvent]).
// Concurrent rotations of one key wait for each other's lock, and each then
// reads the key as the other left it. See [store.Store.Rotate] and [DB] for
// the transaction.
func (s *Store) Rotate(ctx context.Context, owner string, id uuid.UUID, next apikey.Record, overlapEnd time.Time) (apikey.Record, apikey.Record, error) {
	if err := ctx.Err(); err != nil {
		return apikey.Record{}, apikey.Record{}, err
	}
	next, err := store.CheckRotation(owner, id, next)
	if err != nil {
		return apikey.Record{}, apikey.Record{}, err
	}
	actor, err := store.Actor(ctx)
	if err != nil {
		return apikey.Record{}, apikey.Record{}, err
	}
	var old, created apikey.Record
	err = s.inTx(ctx, "rotate", func(tx DB) error {
		cur, err := s.lock(ctx, tx, "rotate", owner, id)
		if err != nil {
			return err
		}
		// The current replacement, if any: a zero record if it is gone,
		// which refuses the rotation. It needs no lock: if it is revoked,
		// it stays revoked.
		var replacement apikey.Record
		if cur.ReplacedBy != uuid.Nil {
			replacement, err = scanRecord(tx.QueryRowContext(ctx, s.q.getByID, cur.ReplacedBy))
			if err != nil {
				if err := readError(ctx, "rotate", err); !errors.Is(err, store.ErrNotFound) {
					return err
				}
			}
		}
		linked, stored, err := store.Rotation(cur, replacement, next, overlapEnd)
		if err != nil {
			return err
		}
		if created, _, err = s.insert(ctx, tx, stored, store.Idempotency{}); err != nil {
			return err
		}
		old, err = scanRecord(tx.QueryRowContext(ctx, s.q.link, id, nullTime(linked.ExpiresAt), linked.ReplacedBy))
		if err != nil {
			return writeError(ctx, "rotate", err)
		}
		return s.appendEntries(ctx, tx, "rotate",
			audit.CreatedEvent(created, actor), audit.RotatedEvent(cur, old, created.CreatedAt, actor))
	})
	if err != nil {
		return apikey.Record{}, apikey.Record{}, err
	}
	return old, created, nil
}

// lock reads the owner's key with the given ID and locks its row until the
// transaction tx ends. At READ COMMITTED, a lock that had to wait for
// another transaction reads the row as that transaction committed it.
func (s *Store) lock(ctx context.Context, tx DB, op, owner string, id uuid.UUID) (apikey.Record, error) {
	rec, err := scanRecord(tx.QueryRowContext(ctx, s.q.lock, id, owner))
	if err != nil {
		return apikey.Record{}, readError(ctx, op, err)
	}
	return rec, nil
}

// A txBeginner begins transactions: *sql.DB and *sql.Conn.
type txBeginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// A transaction is a DB that is a transaction already: *sql.Tx.
type transaction interface {
	Commit() error
	Rollback() error
}

// inTx runs fn in a transaction, so that its statements apply together or
// not at all: the store's own, at READ COMMITTED, if its DB can begin one;
// the caller's if its DB is one (see [Store.WithTx]). An error of fn rolls
// back the store's own transaction. In the caller's, an answer of the
// contract leaves it usable, for the caller to decide; a failure aborts
// it ([abort]), as a failed statement does, so that a change whose audit
// entry was not written cannot commit.
func (s *Store) inTx(ctx context.Context, op string, fn func(tx DB) error) error {
	switch db := s.db.(type) {
	case txBeginner:
		tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
		if err != nil {
			return failed(ctx, op+": begin", err)
		}
		if err := fn(tx); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return failed(ctx, op+": commit", err)
		}
		return nil
	case transaction:
		err := fn(s.db)
		if err != nil && !store.IsAnswer(err) {
			abort(ctx, s.db)
		}
		return err
	}
	return fmt.Errorf("postgres: %s needs a transaction: the store's DB (%T) can neither begin one (BeginTx) nor is one (Commit, Rollback)", op, s.db)
}

// abort makes the caller's transaction tx fail at commit, after a failure
// of the store's statements in it: a failure that was no failed statement
// (the context ended between two statements, or a connection broke) may
// leave a change in tx without its audit entry, which must not commit. It
// runs a statement that fails, which aborts the transaction, as PostgreSQL
// does on any error: the commit then rolls it back. It does not wait for
// the caller's context, which may have ended, but at most [abortTimeout].
// If the statement cannot reach the server, the transaction is lost
// anyway.
func abort(ctx context.Context, tx DB) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	tx.ExecContext(ctx, abortStatement)
}

const (
	abortTimeout   = 5 * time.Second
	abortStatement = `DO $$BEGIN RAISE EXCEPTION 'keyward: a change failed in this transaction, which can only be rolled back' ` +
		`USING ERRCODE = 'transaction_rollback'; END$$`
)

// Revoke revokes the owner's key, in a transaction of two statements: the
// revocation, one statement that decides and writes, then its audit entry
// ([audit.RevokedEvent]). See [store.Store.Revoke] and [DB] for the
// transaction.
func (s *Store) Revoke(ctx context.Context, owner string, id uuid.UUID, r store.Revocation) (apikey.Record, error) {
	if err := ctx.Err(); err != nil {
		return apikey.Record{}, err
	}
	r, err := r.Check()
	if err != nil {
		return apikey.Record{}, err
	}
	actor, err := store.Actor(ctx)
	if err != nil {
		return apikey.Record{}, err
	}
	var rec apikey.Record
	err = s.inTx(ctx, "revoke", func(tx DB) error {
		var updated bool
		var err error
		rec, err = scanRecord(tx.QueryRowContext(ctx, s.q.revoke, id, owner, r.At, nullString(r.Reason)), &updated)
		switch {
		case err != nil:
			return readError(ctx, "revoke", err)
		case !updated:
			return store.ErrAlreadyRevoked
		}
		return s.appendEntries(ctx, tx, "revoke", audit.RevokedEvent(audit.Revoked, rec, actor))
	})
	if err != nil {
		return apikey.Record{}, err
	}
	return rec, nil
}

// RevokeAll revokes every active key of the owner, in a transaction. See
// [store.Store.RevokeAll].
//
// Its statement locks the owner's active keys in the order in which
// [Store.RecordUses] locks keys, so that the two never deadlock, and
// revokes them. A statement sees only the keys committed before it began:
// a key whose rotation commits while the statement waits for the key's
// lock ends revoked, but its replacement is not in the statement's view.
// So the statement runs again, in the same transaction, until it revokes
// nothing (at most [revokeAllPasses] times): each run sees the keys
// committed before it began, and the replacement of a rotation it waited
// for is revoked by the next. A key created after the last run began
// escapes, as one created after RevokeAll returns would.
//
// The audit entries of the keys revoked ([audit.RevokedEvent], of kind
// [audit.RevokedAll]), in List order, are appended after the last run, in
// one statement: the owner's head is locked after the keys, as every
// change locks it, so that RevokeAll never holds the head while it waits
// for a key.
func (s *Store) RevokeAll(ctx context.Context, owner string, r store.Revocation) ([]apikey.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := r.Check()
	if err != nil {
		return nil, err
	}
	actor, err := store.Actor(ctx)
	if err != nil {
		return nil, err
	}
	var revoked []apikey.Record
	err = s.inTx(ctx, "revoke all", func(tx DB) error {
		revoked = []apikey.Record{} // again, should the transaction be retried
		for range revokeAllPasses {
			n := len(revoked)
			var err error
			if revoked, err = s.revokeAllPass(ctx, tx, owner, r, revoked); err != nil {
				return err
			}
			if len(revoked) == n {
				break
			}
		}
		slices.SortFunc(revoked, func(a, b apikey.Record) int { // List order
			if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
				return c
			}
			return store.CompareIDs(b.ID, a.ID)
		})
		events := make([]audit.Event, len(revoked))
		for i, rec := range revoked {
			events[i] = audit.RevokedEvent(audit.RevokedAll, rec, actor)
		}
		return s.appendEntries(ctx, tx, "revoke all", events...)
	})
	if err != nil {
		return nil, err
	}
	return revoked, nil
}

// revokeAllPasses bounds the runs of RevokeAll's statement, should keys be
// created for the owner as fast as it revokes them.
const revokeAllPasses = 4

// revokeAllPass runs RevokeAll's statement once on tx, and appends the
// records it revoked to revoked.
func (s *Store) revokeAllPass(ctx context.Context, tx DB, owner string, r store.Revocation, revoked []apikey.Record) ([]apikey.Record, error) {
	rows, err := tx.QueryContext(ctx, s.q.revokeAll, owner, r.At, nullString(r.Reason))
	if err != nil {
		return revoked, failed(ctx, "revoke all", err)
	}
	defer rows.Close()
	sc := newRecordScanner()
	for rows.Next() {
		rec, err := sc.scan(rows)
		if err != nil {
			return revoked, failed(ctx, "revoke all", err)
		}
		revoked = append(revoked, rec)
	}
	if err := rows.Err(); err != nil {
		return revoked, failed(ctx, "revoke all", err)
	}
	return revoked, nil
}

// Expose marks the owner's key exposed, and revokes it if asked, in a
// transaction: it locks the key's row, applies [store.Expose] to it, the
// same Go code the memory store runs, and writes the result. Concurrent
// reports of one key wait for each other's lock, and each then reads the
// key as the other left it: the first sets the exposure, and the others
// return the key as it stands, with [store.ErrAlreadyExposed] unless they
// revoke it. A report that changes the key appends its audit entry
// ([audit.ExposedEvent]). See [store.Store.Expose] and [DB] for the
// transaction.
func (s *Store) Expose(ctx context.Context, owner string, id uuid.UUID, e apikey.Exposure, revoke bool) (apikey.Record, error) {
	if err := ctx.Err(); err != nil {
		return apikey.Record{}, err
	}
	e, err := store.CheckExposure(e)
	if err != nil {
		return apikey.Record{}, err
	}
	actor, err := store.Actor(ctx)
	if err != nil {
		return apikey.Record{}, err
	}
	var rec apikey.Record
	err = s.inTx(ctx, "expose", func(tx DB) error {
		cur, err := s.lock(ctx, tx, "expose", owner, id)
		if err != nil {
			return err
		}
		rec = cur
		if err := store.Expose(&rec, e, revoke); err != nil {
			return err // nothing changed: rec is the key as it stands
		}
		x := rec.Exposure
		rec, err = scanRecord(tx.QueryRowContext(ctx, s.q.expose,
			id, x.At, x.Source, x.URL, nullTime(rec.RevokedAt), nullString(rec.RevokedReason)))
		if err != nil {
			return writeError(ctx, "expose", err)
		}
		return s.appendEntries(ctx, tx, "expose", audit.ExposedEvent(cur, rec, e.At, actor))
	})
	switch {
	case errors.Is(err, store.ErrAlreadyExposed):
		return rec, err
	case err != nil:
		return apikey.Record{}, err
	}
	return rec, nil
}

// tripsSlack is how many trips of a key beyond [store.MaxTrips]
// RecordTrip lets accumulate before it deletes them, all at once: each
// time a key's count of trips since its first reaches MaxTrips plus a
// multiple of tripsSlack. A trip then costs a few index probes, and one
// in tripsSlack also reads MaxTrips+tripsSlack index entries and deletes
// tripsSlack rows, however many trips come.
const tripsSlack = store.MaxTrips / 2

// RecordTrip records a trip of the owner's key, in a transaction, and
// deletes the key's older trips once in a while. See
// [store.Store.RecordTrip] and [DB] for the transaction.
//
// The trips of one key are recorded one after the other: the transaction
// locks the key's row (FOR NO KEY UPDATE, which verification lookups, and
// last-used writes of other keys, do not wait for) and numbers the trip
// after the key's last one, so that the number counts the key's trips
// exactly. When it reaches MaxTrips plus a multiple of tripsSlack, the
// key holds exactly tripsSlack trips past its newest MaxTrips (by time,
// then number), and they are deleted: one scan of the time index that
// stops after them, whatever else of the key's trips deletions have left
// for vacuum. The trip just recorded is never deleted, even when it is
// older than the others (trips may arrive out of time order; the key then
// keeps one trip more): it holds the key's last number, which the next
// trip counts from. Text the database cannot hold (NUL characters, invalid
// UTF-8) fails the call: the lifecycle cleans trips ([apikey.Trip.Clean]).
//
// In a caller's transaction at REPEATABLE READ or SERIALIZABLE, a trip of
// the key recorded by another transaction since the snapshot fails the
// call (a unique violation on the trip's number): retry the transaction.
func (s *Store) RecordTrip(ctx context.Context, t apikey.Trip) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t, err := store.CheckTrip(t)
	if err != nil {
		return err
	}
	return s.inTx(ctx, "record trip", func(tx DB) error {
		var ok bool
		if err := tx.QueryRowContext(ctx, s.q.lockForTrip, t.KeyID, t.Owner).Scan(&ok); err != nil {
			return readError(ctx, "record trip", err)
		}
		var seq int64
		if err := tx.QueryRowContext(ctx, s.q.insertTrip, t.KeyID, t.At, t.Addr, t.UserAgent, t.Route).Scan(&seq); err != nil {
			return failed(ctx, "record trip", err)
		}
		if seq > store.MaxTrips && (seq-store.MaxTrips)%tripsSlack == 0 {
			if _, err := tx.ExecContext(ctx, s.q.pruneTrips, t.KeyID, store.MaxTrips, tripsSlack, seq); err != nil {
				return failed(ctx, "record trip: pruning", err)
			}
		}
		return nil
	})
}

// Trips returns the trips of the owner's key, newest first, in one
// statement: one probe of the keys' primary key, and the key's trips read
// through the trips' time index. See [store.Store.Trips].
func (s *Store) Trips(ctx context.Context, owner string, id uuid.UUID, limit int) ([]apikey.Trip, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit = store.TripsLimit(limit)
	rows, err := s.db.QueryContext(ctx, s.q.trips, id, owner, limit)
	if err != nil {
		return nil, failed(ctx, "trips", err)
	}
	defer rows.Close()
	trips := []apikey.Trip{}
	found := false
	for rows.Next() {
		found = true
		tr := apikey.Trip{KeyID: id, Owner: owner}
		var at sql.NullTime
		if err := rows.Scan(&at, &tr.Addr, &tr.UserAgent, &tr.Route); err != nil {
			return nil, failed(ctx, "trips", err)
		}
		if !at.Valid {
			continue // the key has no trips
		}
		tr.At = store.Time(at.Time)
		trips = append(trips, tr)
	}
	if err := rows.Err(); err != nil {
		return nil, failed(ctx, "trips", err)
	}
	if !found {
		return nil, readError(ctx, "trips", sql.ErrNoRows)
	}
	return trips, nil
}

// RecordUses records last-used times and usage counts, in one statement
// for the whole batch. See [store.Store.RecordUses].
func (s *Store) RecordUses(ctx context.Context, uses []store.Use) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Array literals, cast from text in SQL, work with any driver.
	var ids, times, counted, hours arrayLiteral
	var counts [5]arrayLiteral // verified, scope, mode, limited, network
	for _, u := range uses {
		if !u.At.IsZero() {
			ids.add(u.ID.String())
			times.addTime(store.Time(u.At))
		}
		if !u.Counts.IsZero() {
			c := u.Counts
			counted.add(u.ID.String())
			hours.addTime(store.Hour(u.Hour))
			for i, n := range [5]int64{c.Verified, c.Scope, c.Mode, c.Limited, c.Network} {
				counts[i].addInt(n)
			}
		}
	}
	if ids.n == 0 && counted.n == 0 {
		return nil
	}
	if _, err := s.db.ExecContext(ctx, s.q.recordUses, ids.String(), times.String(), counted.String(), hours.String(),
		counts[0].String(), counts[1].String(), counts[2].String(), counts[3].String(), counts[4].String()); err != nil {
		return failed(ctx, "record uses", err)
	}
	return nil
}

// An arrayLiteral builds the text form of a PostgreSQL array, such as
// {a,b,c}, from elements that need no quoting (see [quotedArray]).
type arrayLiteral struct {
	b strings.Builder
	n int
}

func (a *arrayLiteral) next() {
	if a.n == 0 {
		a.b.WriteByte('{')
	} else {
		a.b.WriteByte(',')
	}
	a.n++
}

func (a *arrayLiteral) add(s string) {
	a.next()
	a.b.WriteString(s)
}

func (a *arrayLiteral) addTime(t time.Time) {
	a.next()
	var buf [len(timeLiteral) + 8]byte
	a.b.Write(t.AppendFormat(buf[:0], timeLiteral))
}

func (a *arrayLiteral) addInt(n int64) {
	a.next()
	var buf [20]byte
	a.b.Write(strconv.AppendInt(buf[:0], n, 10))
}

// String returns the literal, {} if it has no element.
func (a *arrayLiteral) String() string {
	if a.n == 0 {
		return "{}"
	}
	return a.b.String() + "}"
}

// quotedArray returns the text form of a PostgreSQL text array of elems,
// each quoted: any text, but NUL.
func quotedArray(elems []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, e := range elems {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for j := 0; j < len(e); j++ {
			if c := e[j]; c == '"' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(e[j])
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// appendEntries appends the entries of events, all of one owner, to the
// owner's audit trail, in the transaction tx of their change: one
// statement, whatever the number of events, in which the database locks
// the owner's head and computes the entries' hashes. It does nothing
// without events. Its failure fails the change: never an answer of the
// contract, even a unique violation (the trail's primary key, should the
// head have been tampered with).
func (s *Store) appendEntries(ctx context.Context, tx DB, op string, events ...audit.Event) error {
	if len(events) == 0 {
		return nil
	}
	if s.beforeAppend != nil {
		if err := s.beforeAppend(ctx, tx, op); err != nil {
			return err
		}
	}
	bodies := make([]string, len(events))
	for i, e := range events {
		bodies[i] = string(e.Body())
	}
	if _, err := tx.ExecContext(ctx, s.q.appendAudit, events[0].Owner, quotedArray(bodies)); err != nil {
		return failed(ctx, op+": appending to the audit trail", err)
	}
	return nil
}

// entryColumns are the columns of an audit entry, as scanEntry reads them.
const entryColumns = `seq, owner, key_id, at, kind, body, prev, hash`

// scanEntry reads an audit entry: its event as its body says, and its
// number and hashes as stored. A body that is not one (edited by hand)
// gives the event of the entry's other columns, which its hash does not
// seal: [audit.Checker] then reports the entry.
func scanEntry(sc scanner) (audit.Entry, error) {
	var (
		e          audit.Entry
		owner      string
		keyID      uuid.UUID
		at         time.Time
		kind       string
		body       []byte
		prev, hash []byte
	)
	if err := sc.Scan(&e.Seq, &owner, &keyID, &at, &kind, &body, &prev, &hash); err != nil {
		return audit.Entry{}, err
	}
	ev, err := audit.ParseBody(body)
	if err != nil {
		ev = audit.Event{Kind: audit.Kind(kind), Owner: owner, KeyID: keyID, At: at.UTC()}
	}
	e.Event = ev
	copy(e.Prev[:], prev)
	copy(e.Hash[:], hash)
	return e, nil
}

// readEntries runs a query of entries and reads them all.
func (s *Store) readEntries(ctx context.Context, op, query string, args ...any) ([]audit.Entry, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, failed(ctx, op, err)
	}
	defer rows.Close()
	entries := []audit.Entry{}
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, failed(ctx, op, err)
		}
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, failed(ctx, op, err)
	}
	return entries, nil
}

// Audit returns a page of the owner's audit trail, newest first, in one
// statement: a scan of the trail's primary key, or of its index of a
// key's entries, that stops after the page. See [store.Store.Audit].
func (s *Store) Audit(ctx context.Context, owner string, opts store.AuditOptions) (store.AuditPage, error) {
	if err := ctx.Err(); err != nil {
		return store.AuditPage{}, err
	}
	limit, before, err := opts.Resolve()
	if err != nil {
		return store.AuditPage{}, err
	}
	// One entry more than the page tells whether another page follows.
	query, args := s.q.auditPage, []any{owner, before, limit + 1}
	if opts.KeyID != uuid.Nil {
		query, args = s.q.auditKeyPage, append(args, opts.KeyID)
	}
	entries, err := s.readEntries(ctx, "audit", query, args...)
	if err != nil {
		return store.AuditPage{}, err
	}
	page := store.AuditPage{Entries: entries}
	if len(entries) > limit {
		page.Entries = entries[:limit]
		page.Next = store.AuditCursor(page.Entries[limit-1].Seq)
	}
	return page, nil
}

// AuditChain returns the owner's entries after a sequence number, oldest
// first, in one statement: a scan of the trail's primary key. See
// [store.Store.AuditChain].
func (s *Store) AuditChain(ctx context.Context, owner string, after int64, limit int) ([]audit.Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit, err := store.ChainLimit(limit)
	if err != nil {
		return nil, err
	}
	return s.readEntries(ctx, "audit chain", s.q.auditChain, owner, after, limit)
}

// Usage returns the counts of the owner's keys, in one statement. See
// [store.Store.Usage].
func (s *Store) Usage(ctx context.Context, owner string, q store.UsageQuery) ([]store.HourUsage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q, err := q.Check()
	if err != nil {
		return nil, err
	}
	out := []store.HourUsage{}
	if len(q.Keys) == 0 {
		return out, nil
	}
	var keys arrayLiteral
	for _, id := range q.Keys {
		keys.add(id.String())
	}
	rows, err := s.db.QueryContext(ctx, s.q.usage, owner, keys.String(), q.From, q.To)
	if err != nil {
		return nil, failed(ctx, "usage", err)
	}
	defer rows.Close()
	for rows.Next() {
		var u store.HourUsage
		c := &u.Counts
		if err := rows.Scan(&u.KeyID, &u.Hour, &c.Verified, &c.Scope, &c.Mode, &c.Limited, &c.Network); err != nil {
			return nil, failed(ctx, "usage", err)
		}
		u.Hour = u.Hour.UTC()
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, failed(ctx, "usage", err)
	}
	return out, nil
}

// PruneUsage deletes the counts of the hours before a time, in one
// statement: a scan of the index on hour. See [store.Store.PruneUsage].
func (s *Store) PruneUsage(ctx context.Context, before time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Hours are stored on the hour: those before "before" are those
	// before the first hour that starts at it or after.
	cut := store.Hour(before)
	if cut.Before(before) {
		cut = cut.Add(time.Hour)
	}
	if _, err := s.db.ExecContext(ctx, s.q.pruneUsage, cut); err != nil {
		return failed(ctx, "prune usage", err)
	}
	return nil
}

// timeLiteral formats a UTC time, to the microsecond, as PostgreSQL reads
// a timestamptz.
const timeLiteral = "2006-01-02T15:04:05.000000Z07:00"

// A scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// scanRecord reads the columns of a record, after any leading columns
// given in before.
func scanRecord(sc scanner, before ...any) (apikey.Record, error) {
	return newRecordScanner(before...).scan(sc)
}

// A recordScanner reads records: the destinations of their columns are
// allocated once, for all the rows of a query, rather than once a row.
type recordScanner struct {
	rec                          apikey.Record
	hash, extras                 []byte
	mode, scopes                 string
	lastUsed, revoked, expiresAt sql.NullTime
	replaces, replacedBy         uuid.NullUUID
	dest                         []any
	buf                          [16]any
}

// newRecordScanner returns a scanner of the columns of a record, after any
// leading columns given in before.
func newRecordScanner(before ...any) *recordScanner {
	r := new(recordScanner)
	r.dest = append(append(r.buf[:0], before...), &r.rec.ID, &r.rec.Owner, &r.hash, &r.rec.Prefix, &r.rec.Name,
		&r.mode, &r.scopes, &r.extras, &r.rec.CreatedAt, &r.lastUsed, &r.revoked, &r.expiresAt, &r.replaces, &r.replacedBy)
	return r
}

// scan reads the current row of sc.
func (r *recordScanner) scan(sc scanner) (apikey.Record, error) {
	if err := sc.Scan(r.dest...); err != nil {
		return apikey.Record{}, err
	}
	rec := r.rec
	if len(r.hash) != len(rec.Hash) {
		return apikey.Record{}, fmt.Errorf("stored hash of key %s has %d bytes, want %d", rec.ID, len(r.hash), len(rec.Hash))
	}
	copy(rec.Hash[:], r.hash)
	var err error
	if rec.Mode, err = apikey.ParseMode(r.mode); err != nil {
		return apikey.Record{}, fmt.Errorf("stored mode of key %s: %w", rec.ID, err)
	}
	if rec.Scopes, err = scopeSets.set(r.scopes); err != nil {
		return apikey.Record{}, fmt.Errorf("stored scopes of key %s: %w", rec.ID, err)
	}
	policy, err := scanExtrasColumn(&rec, r.extras)
	if err != nil {
		return apikey.Record{}, err
	}
	rec.Replaces, rec.ReplacedBy = r.replaces.UUID, r.replacedBy.UUID
	rec.LastUsedAt, rec.RevokedAt, rec.ExpiresAt = r.lastUsed.Time, r.revoked.Time, r.expiresAt.Time
	return finishRecord(rec, policy), nil
}

// finishRecord returns rec, read from the database, as the store returns
// it: in store precision and UTC, with the policy read from its extras.
func finishRecord(rec apikey.Record, policy *apikey.Policy) apikey.Record {
	// Drivers return times in the session's or the process's zone: the
	// contract wants UTC.
	rec = store.Normalize(rec)
	// The policy is set after Normalize, which would copy it (two
	// allocations a lookup, and keys with a policy are verified as often as
	// any): it was just decoded, is not zero, and nothing else holds it.
	rec.Policy = policy
	return rec
}

// scanExtrasColumn reads the [extras] column, nil for NULL, into rec and
// returns the policy, nil if the key has none.
func scanExtrasColumn(rec *apikey.Record, extras []byte) (*apikey.Policy, error) {
	switch {
	case extras == nil: // NULL: empty metadata, nothing of leaked keys, no policy
	case extras[0] == '[':
		policy, err := scanExtras(rec, extras)
		if err != nil {
			return nil, fmt.Errorf("stored metadata, revocation reason, exposure, canary flag or policy of key %s: %w", rec.ID, err)
		}
		return policy, nil
	default:
		if err := scanMetadata(rec, extras); err != nil {
			return nil, fmt.Errorf("stored metadata of key %s: %w", rec.ID, err)
		}
	}
	return nil, nil
}

// scanLookup reads the record of the key of hash h from row, the text of
// [lookupRow]. The owner, prefix and name are copied, in one allocation,
// out of row, which the record does not keep; the scopes are interned
// ([scopeSets]).
func scanLookup(row string, h apikey.Hash) (apikey.Record, error) {
	var f [lookupFields]jsonField
	if err := splitJSONArray(row, f[:]); err != nil {
		return apikey.Record{}, fmt.Errorf("stored record of a key: %w", err)
	}
	var rec apikey.Record
	var err error
	if rec.ID, err = f[0].uuid(false); err != nil {
		return apikey.Record{}, fmt.Errorf("stored ID of a key: %w", err)
	}
	for i, name := range [...]string{"owner", "prefix", "name", "mode", "scopes"} {
		if f[1+i].kind != jsonString {
			return apikey.Record{}, fmt.Errorf("stored %s of key %s: not a string", name, rec.ID)
		}
	}
	owner, prefix, name := f[1].text, f[2].text, f[3].text
	var b strings.Builder
	b.Grow(len(owner) + len(prefix) + len(name))
	b.WriteString(owner)
	b.WriteString(prefix)
	b.WriteString(name)
	text := b.String()
	rec.Owner = text[:len(owner)]
	rec.Prefix = text[len(owner) : len(owner)+len(prefix)]
	rec.Name = text[len(owner)+len(prefix):]
	if rec.Mode, err = apikey.ParseMode(f[4].text); err != nil {
		return apikey.Record{}, fmt.Errorf("stored mode of key %s: %w", rec.ID, err)
	}
	if rec.Scopes, err = scopeSets.set(f[5].text); err != nil {
		return apikey.Record{}, fmt.Errorf("stored scopes of key %s: %w", rec.ID, err)
	}
	rec.Hash = h
	if rec.CreatedAt, err = f[6].time(false); err != nil {
		return apikey.Record{}, fmt.Errorf("stored creation time of key %s: %w", rec.ID, err)
	}
	if rec.LastUsedAt, err = f[7].time(true); err != nil {
		return apikey.Record{}, fmt.Errorf("stored last use of key %s: %w", rec.ID, err)
	}
	if rec.RevokedAt, err = f[8].time(true); err != nil {
		return apikey.Record{}, fmt.Errorf("stored revocation time of key %s: %w", rec.ID, err)
	}
	if rec.ExpiresAt, err = f[9].time(true); err != nil {
		return apikey.Record{}, fmt.Errorf("stored expiry of key %s: %w", rec.ID, err)
	}
	if rec.Replaces, err = f[10].uuid(true); err != nil {
		return apikey.Record{}, fmt.Errorf("stored replaced key of key %s: %w", rec.ID, err)
	}
	if rec.ReplacedBy, err = f[11].uuid(true); err != nil {
		return apikey.Record{}, fmt.Errorf("stored replacement of key %s: %w", rec.ID, err)
	}
	var extras []byte // NULL
	if f[12].kind != jsonNull {
		extras = []byte(f[12].text)
	}
	policy, err := scanExtrasColumn(&rec, extras)
	if err != nil {
		return apikey.Record{}, err
	}
	return finishRecord(rec, policy), nil
}

// A jsonField is a field of a JSON array read by [splitJSONArray].
type jsonField struct {
	kind jsonKind
	// text is a string's content, unescaped; a number's digits; or, for
	// the last field of the array, its JSON text.
	text string
}

// jsonKind is the kind of a [jsonField].
type jsonKind uint8

const (
	jsonNull   jsonKind = iota
	jsonString          // a string
	jsonNumber          // an integer
	jsonRaw             // the JSON text of the last field, not null
)

var errJSONArray = errors.New("not the JSON array of the record's fields")

// splitJSONArray reads s, a JSON array of len(fields) values as
// PostgreSQL writes it, into fields: each but the last a string, an
// integer or null, the last any JSON value, whose text it does not check.
// Strings without escapes are parts of s, which is not copied; those with
// escapes (a quote or a control character in a name, say) are decoded
// into new strings.
func splitJSONArray(s string, fields []jsonField) error {
	p := skipSpace(s, 0)
	if p == len(s) || s[p] != '[' {
		return errJSONArray
	}
	p++
	for i := range fields {
		p = skipSpace(s, p)
		if i > 0 {
			if p == len(s) || s[p] != ',' {
				return errJSONArray
			}
			p = skipSpace(s, p+1)
		}
		if p == len(s) {
			return errJSONArray
		}
		if i == len(fields)-1 {
			end := strings.LastIndexByte(s, ']')
			if end < p || skipSpace(s, end+1) != len(s) {
				return errJSONArray
			}
			raw := strings.TrimRight(s[p:end], " \t\n\r")
			switch raw {
			case "":
				return errJSONArray
			case "null":
				fields[i] = jsonField{}
			default:
				fields[i] = jsonField{kind: jsonRaw, text: raw}
			}
			return nil
		}
		switch c := s[p]; {
		case c == '"':
			text, n, err := jsonStringAt(s[p:])
			if err != nil {
				return err
			}
			fields[i] = jsonField{kind: jsonString, text: text}
			p += n
		case strings.HasPrefix(s[p:], "null"):
			fields[i] = jsonField{}
			p += len("null")
		case c == '-' || '0' <= c && c <= '9':
			n := 1
			for p+n < len(s) && '0' <= s[p+n] && s[p+n] <= '9' {
				n++
			}
			fields[i] = jsonField{kind: jsonNumber, text: s[p : p+n]}
			p += n
		default:
			return errJSONArray
		}
	}
	return errJSONArray // no fields
}

// skipSpace returns the position of the first byte of s from p on that is
// not JSON white space, or len(s).
func skipSpace(s string, p int) int {
	for p < len(s) && (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r') {
		p++
	}
	return p
}

// jsonStringAt reads the JSON string at the start of s: it returns its
// content and the length of its JSON text.
func jsonStringAt(s string) (string, int, error) {
	escaped := false
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '"':
			if !escaped {
				return s[1:i], i + 1, nil
			}
			var text string
			if err := json.Unmarshal([]byte(s[:i+1]), &text); err != nil {
				return "", 0, err
			}
			return text, i + 1, nil
		case '\\':
			escaped = true
			i++ // the escaped byte; the four hex digits of \u need no skipping
		}
	}
	return "", 0, errJSONArray
}

// uuid returns the UUID that f holds, or uuid.Nil for null if nullable.
func (f jsonField) uuid(nullable bool) (uuid.UUID, error) {
	switch {
	case f.kind == jsonNull && nullable:
		return uuid.Nil, nil
	case f.kind != jsonString:
		return uuid.Nil, errors.New("not a UUID")
	}
	return uuid.Parse(f.text)
}

// time returns the time that f holds, in microseconds since the Unix
// epoch, in UTC; or the zero time for null if nullable.
func (f jsonField) time(nullable bool) (time.Time, error) {
	switch {
	case f.kind == jsonNull && nullable:
		return time.Time{}, nil
	case f.kind != jsonNumber:
		return time.Time{}, errors.New("not a time")
	}
	us, err := strconv.ParseInt(f.text, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMicro(us).UTC(), nil
}

// scanMetadata reads metadata, a JSON object, into rec. It is checked as
// NewMetadata checks it: metadata that breaks its limits fails the read
// rather than reach the application.
//
// It decodes into a variable of its own, not into rec: rec would then
// escape, and its caller's record be allocated on the heap on every read,
// metadata or not.
func scanMetadata(rec *apikey.Record, text []byte) error {
	var m apikey.Metadata
	if err := json.Unmarshal(text, &m); err != nil {
		return err
	}
	rec.Metadata = m
	return nil
}

// scanExtras reads the array form of the [extras] column into rec (the
// metadata, the revocation's reason, the exposure and the canary flag) and
// returns the policy, nil if the key has none. The policy is read strictly
// ([storedPolicy]).
func scanExtras(rec *apikey.Record, text []byte) (*apikey.Policy, error) {
	var x [1]storedExtras
	if err := json.Unmarshal(text, &x); err != nil {
		return nil, err
	}
	rec.Metadata, rec.RevokedReason, rec.Canary = x[0].Metadata, x[0].Reason, x[0].Canary
	if x[0].ExposedAt != nil {
		rec.Exposure = &apikey.Exposure{At: time.UnixMicro(*x[0].ExposedAt).UTC(), Source: x[0].Source, URL: x[0].URL}
	}
	if x[0].Policy == nil {
		return nil, nil
	}
	return x[0].Policy.policy()
}

// nullTime is t in store precision, or NULL if t is zero.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return store.Time(t)
}

// nullString is s, or NULL if it is empty.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullID is id, or NULL if it is the zero UUID.
func nullID(id uuid.UUID) any {
	if id == uuid.Nil {
		return nil
	}
	return id
}

// writeError maps the error of a statement that writes a record: a unique
// violation is store.ErrDuplicate, a check violation an invalid record;
// anything else is a failure.
func writeError(ctx context.Context, op string, err error) error {
	switch sqlState(err) {
	case "23505": // unique_violation
		return fmt.Errorf("%w: %w", store.ErrDuplicate, err)
	case "23514": // check_violation
		return fmt.Errorf("%w: %w", apikey.ErrInvalidRecord, err)
	}
	return failed(ctx, op, err)
}

// failed wraps an error of the database. If the context ended, the error
// also wraps the context's error, whatever the driver made of it, so that
// errors.Is(err, context.Canceled) or context.DeadlineExceeded holds.
// Callers treat any such error as "the store could not answer".
func failed(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("postgres: %s: %w (%w)", op, ctxErr, err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// sqlState returns the SQLSTATE code of a PostgreSQL error, or "". Drivers
// expose it through a SQLState method (pgx's *pgconn.PgError, lib/pq's
// *pq.Error), so the store needs no driver import.
func sqlState(err error) string {
	var e interface{ SQLState() string }
	if errors.As(err, &e) {
		return e.SQLState()
	}
	return ""
}
