package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/store"
)

// DB is what the store runs its queries on: a [*sql.DB], a [*sql.Tx] or a
// [*sql.Conn] all satisfy it. Through a *sql.Tx, the store's changes
// commit or roll back with the caller's transaction.
type DB interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// DefaultTable is the name of the table when [WithTable] is not given.
const DefaultTable = "api_keys"

// DefaultChangeMargin is how far back [Store.Changes] looks before the
// position it is given, unless [WithChangeMargin] says otherwise.
const DefaultChangeMargin = time.Minute

// An Option configures [New], [Migrate] and [Migrations].
type Option func(*config) error

type config struct {
	table  table
	margin time.Duration
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

// WithChangeMargin sets how far back [Store.Changes] looks before the
// position it is given, so that a change committed up to d after its row
// was updated is still reported; see "Change feed" in the package
// documentation. The default is [DefaultChangeMargin], one minute; d must
// be positive. A larger margin only repeats more changes.
func WithChangeMargin(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return errors.New("postgres: the change margin must be positive")
		}
		c.margin = d
		return nil
	}
}

func newConfig(opts []Option) (config, error) {
	t, _ := parseTable(DefaultTable)
	c := config{table: t, margin: DefaultChangeMargin}
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
// suffix of an object named after the table: "_created_at_id_idx".
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
	db     DB
	margin time.Duration
	q      queries
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
	return &Store{db: db, margin: c.margin, q: newQueries(c.table)}, nil
}

// WithTx returns a store like s that runs its queries on tx, usually a
// [*sql.Tx]: keys created through it are committed, or rolled back, with
// the transaction. s is unchanged.
func (s *Store) WithTx(tx DB) *Store {
	c := *s
	c.db = tx
	return &c
}

// queries holds the SQL of a store, built once for its table.
type queries struct {
	create, get, getByHash, list  string
	revoke, setExpiry, recordUses string
	changes, changesPosition      string
}

// columns are the columns of a record, in the order scanRecord reads them.
const columns = `id, hash, prefix, name, mode, array_to_string(scopes, ' '), created_at, last_used_at, revoked_at, expires_at`

func newQueries(t table) queries {
	tbl := t.qualified
	// updateOrExplain runs an UPDATE of one key that changes it only if it
	// is not revoked, and returns one row: (true, the updated record), or
	// (false, the record as it was) if it is revoked. No row: no such key.
	// The second branch reads the statement's snapshot, so a revocation
	// that committed while the UPDATE waited for the row is not visible
	// there: it can only say that the key exists, which, with the UPDATE
	// not applied, means it is revoked.
	updateOrExplain := func(set string) string {
		return `WITH updated AS (
	UPDATE ` + tbl + ` SET ` + set + ` WHERE id = $1 AND revoked_at IS NULL RETURNING *
)
SELECT true, ` + columns + ` FROM updated
UNION ALL
SELECT false, ` + columns + ` FROM ` + tbl + ` WHERE id = $1 AND NOT EXISTS (SELECT FROM updated)`
	}
	return queries{
		// A plain INSERT: a duplicate is a unique violation. (ON CONFLICT DO
		// NOTHING would keep a caller's transaction alive after a
		// duplicate, but fails outright on a table given a deferrable
		// unique constraint, and duplicates of random keys do not happen.)
		create: `INSERT INTO ` + tbl + ` (id, hash, prefix, name, mode, scopes, created_at, last_used_at, expires_at)
VALUES ($1, $2, $3, $4, $5, string_to_array($6::text, ' '), $7, $8, $9)`,
		get:       `SELECT ` + columns + ` FROM ` + tbl + ` WHERE id = $1`,
		getByHash: `SELECT ` + columns + ` FROM ` + tbl + ` WHERE hash = $1`,
		list:      `SELECT ` + columns + ` FROM ` + tbl,
		revoke:    updateOrExplain(`revoked_at = $2`),
		// LEAST ignores NULL: a key without expiry gets $2.
		setExpiry: updateOrExplain(`expires_at = LEAST(expires_at, $2)`),
		// One statement for the whole batch. Rows are locked in ID order
		// first, so that concurrent batches from several instances, which
		// often share keys, cannot deadlock; a last-used time only moves
		// forward, and the latest time of a key listed twice wins.
		recordUses: `WITH uses AS MATERIALIZED (
	SELECT u.id, max(u.at) AS at
	FROM unnest($1::text::uuid[], $2::text::timestamptz[]) AS u(id, at)
	GROUP BY u.id
), locked AS MATERIALIZED (
	SELECT k.id FROM ` + tbl + ` k JOIN uses ON k.id = uses.id
	WHERE k.last_used_at IS NULL OR k.last_used_at < uses.at
	ORDER BY k.id
	FOR NO KEY UPDATE OF k
)
UPDATE ` + tbl + ` k SET last_used_at = uses.at
FROM uses
WHERE k.id = uses.id AND k.id IN (SELECT id FROM locked)
	AND (k.last_used_at IS NULL OR k.last_used_at < uses.at)`,
		changesPosition: `SELECT now()`,
		changes: `SELECT p.now, k.hash
FROM (SELECT now()) AS p(now)
LEFT JOIN ` + tbl + ` k ON k.changed_at > $1`,
	}
}

// Create adds a record. See [store.Store.Create]. A unique violation (a
// duplicate ID or hash, or a duplicate for a unique constraint the table's
// owner added) returns [store.ErrDuplicate]; a check violation, an error
// wrapping [apikey.ErrInvalidRecord]. Through a transaction, either
// aborts it, as any failed statement does in PostgreSQL.
func (s *Store) Create(ctx context.Context, rec apikey.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := rec.Validate(); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, s.q.create,
		rec.ID, rec.Hash[:], rec.Prefix, rec.Name, rec.Mode.String(), rec.Scopes.String(),
		store.Time(rec.CreatedAt), nullTime(rec.LastUsedAt), nullTime(rec.ExpiresAt))
	switch sqlState(err) {
	case "":
	case "23505": // unique_violation
		return fmt.Errorf("%w: %v", store.ErrDuplicate, err)
	case "23514": // check_violation
		return fmt.Errorf("%w: %v", apikey.ErrInvalidRecord, err)
	}
	if err != nil {
		return failed(ctx, "create", err)
	}
	return nil
}

// Get returns the record with the given ID. See [store.Store.Get].
func (s *Store) Get(ctx context.Context, id uuid.UUID) (apikey.Record, error) {
	return s.getOne(ctx, "get", s.q.get, id)
}

// GetByHash returns the record with the given hash, with one indexed
// query. See [store.Store.GetByHash].
func (s *Store) GetByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error) {
	return s.getOne(ctx, "get by hash", s.q.getByHash, h[:])
}

func (s *Store) getOne(ctx context.Context, op, query string, arg any) (apikey.Record, error) {
	if err := ctx.Err(); err != nil {
		return apikey.Record{}, err
	}
	rec, err := scanRecord(s.db.QueryRowContext(ctx, query, arg))
	if err != nil {
		return apikey.Record{}, s.readError(ctx, op, err)
	}
	return rec, nil
}

// readError maps sql.ErrNoRows to store.ErrNotFound, unless the context
// ended: then the absence of a row proves nothing.
func (s *Store) readError(ctx context.Context, op string, err error) error {
	if errors.Is(err, sql.ErrNoRows) && ctx.Err() == nil {
		return store.ErrNotFound
	}
	return failed(ctx, op, err)
}

// List returns a page of records, newest first, with keyset pagination on
// (created_at, id). See [store.Store.List].
func (s *Store) List(ctx context.Context, opts store.ListOptions) (store.Page, error) {
	if err := ctx.Err(); err != nil {
		return store.Page{}, err
	}
	opts, err := opts.Check()
	if err != nil {
		return store.Page{}, err
	}
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if opts.Cursor != "" {
		c, err := store.ParseCursor(opts.Cursor)
		if err != nil {
			return store.Page{}, err
		}
		where = append(where, "(created_at, id) < ("+arg(c.CreatedAt)+", "+arg(c.ID)+")")
	}
	if opts.Mode != 0 {
		where = append(where, "mode = "+arg(opts.Mode.String()))
	}
	switch opts.Status {
	case apikey.Active:
		where = append(where, "revoked_at IS NULL AND (expires_at IS NULL OR expires_at > "+arg(opts.Now)+")")
	case apikey.Revoked:
		where = append(where, "revoked_at IS NOT NULL")
	case apikey.Expired:
		where = append(where, "revoked_at IS NULL AND expires_at <= "+arg(opts.Now))
	}
	query := s.q.list
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	// One more than a page tells whether another page follows.
	query += " ORDER BY created_at DESC, id DESC LIMIT " + arg(opts.Limit+1)

	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return store.Page{}, failed(ctx, "list", err)
	}
	defer rows.Close()
	var page store.Page
	for rows.Next() {
		rec, err := scanRecord(rows)
		if err != nil {
			return store.Page{}, failed(ctx, "list", err)
		}
		page.Records = append(page.Records, rec)
	}
	if err := rows.Err(); err != nil {
		return store.Page{}, failed(ctx, "list", err)
	}
	if len(page.Records) > opts.Limit {
		page.Records = page.Records[:opts.Limit]
		page.Next = store.CursorAfter(page.Records[opts.Limit-1]).String()
	}
	return page, nil
}

// Revoke revokes a key, in one statement. See [store.Store.Revoke].
func (s *Store) Revoke(ctx context.Context, id uuid.UUID, at time.Time) (apikey.Record, error) {
	if at.IsZero() {
		return apikey.Record{}, errors.New("postgres: revoke needs a time")
	}
	return s.updateOne(ctx, "revoke", s.q.revoke, id, store.Time(at))
}

// SetExpiry moves a key's expiry earlier, in one statement. See
// [store.Store.SetExpiry].
func (s *Store) SetExpiry(ctx context.Context, id uuid.UUID, at time.Time) (apikey.Record, error) {
	if at.IsZero() {
		return apikey.Record{}, errors.New("postgres: set expiry needs a time")
	}
	return s.updateOne(ctx, "set expiry", s.q.setExpiry, id, store.Time(at))
}

func (s *Store) updateOne(ctx context.Context, op, query string, id uuid.UUID, at time.Time) (apikey.Record, error) {
	if err := ctx.Err(); err != nil {
		return apikey.Record{}, err
	}
	var updated bool
	rec, err := scanRecord(s.db.QueryRowContext(ctx, query, id, at), &updated)
	switch {
	case err != nil:
		return apikey.Record{}, s.readError(ctx, op, err)
	case !updated:
		return apikey.Record{}, store.ErrAlreadyRevoked
	}
	return rec, nil
}

// RecordUses records last-used times, in one statement for the whole
// batch. See [store.Store.RecordUses].
func (s *Store) RecordUses(ctx context.Context, uses []store.Use) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Array literals, cast from text in SQL, work with any driver.
	var ids, times strings.Builder
	ids.WriteByte('{')
	times.WriteByte('{')
	n := 0
	for _, u := range uses {
		if u.At.IsZero() {
			continue // no time: nothing to record
		}
		if n > 0 {
			ids.WriteByte(',')
			times.WriteByte(',')
		}
		ids.WriteString(u.ID.String())
		times.WriteString(store.Time(u.At).Format(timeLiteral))
		n++
	}
	if n == 0 {
		return nil
	}
	ids.WriteByte('}')
	times.WriteByte('}')
	if _, err := s.db.ExecContext(ctx, s.q.recordUses, ids.String(), times.String()); err != nil {
		return failed(ctx, "record uses", err)
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
	var (
		rec                          apikey.Record
		hash                         []byte
		mode, scopes                 string
		lastUsed, revoked, expiresAt sql.NullTime
	)
	dest := append(before, &rec.ID, &hash, &rec.Prefix, &rec.Name, &mode, &scopes,
		&rec.CreatedAt, &lastUsed, &revoked, &expiresAt)
	if err := sc.Scan(dest...); err != nil {
		return apikey.Record{}, err
	}
	if len(hash) != len(rec.Hash) {
		return apikey.Record{}, fmt.Errorf("stored hash of key %s has %d bytes, want %d", rec.ID, len(hash), len(rec.Hash))
	}
	copy(rec.Hash[:], hash)
	var err error
	if rec.Mode, err = apikey.ParseMode(mode); err != nil {
		return apikey.Record{}, fmt.Errorf("stored mode of key %s: %w", rec.ID, err)
	}
	if err := rec.Scopes.UnmarshalText([]byte(scopes)); err != nil {
		return apikey.Record{}, fmt.Errorf("stored scopes of key %s: %w", rec.ID, err)
	}
	// Drivers return times in the session's or the process's zone: the
	// contract wants UTC.
	rec.CreatedAt = store.Time(rec.CreatedAt)
	rec.LastUsedAt = store.Time(lastUsed.Time)
	rec.RevokedAt = store.Time(revoked.Time)
	rec.ExpiresAt = store.Time(expiresAt.Time)
	return rec, nil
}

// nullTime is t in store precision, or NULL if t is zero.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return store.Time(t)
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
