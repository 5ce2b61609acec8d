package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// A migration is one numbered file of migrations/, rendered for a table.
type migration struct {
	version int
	name    string // file name, such as "0001_create_table.up.sql"
	sql     string
}

// placeholder matches the names in the migration files: {{table}}, the
// table; {{name:suffix}}, an object of the table's schema named after the
// table (indexes, triggers), unqualified; {{qname:suffix}}, the same,
// qualified with the table's schema if it has one (functions).
var placeholder = regexp.MustCompile(`\{\{(table|name:[a-z_]+|qname:[a-z_]+)\}\}`)

// migrations returns the migrations rendered for table t, in order.
func migrations(t table) ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("postgres: migration file %q has no version number", name)
		}
		text, err := fs.ReadFile(migrationFiles, path.Join("migrations", name))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: version, name: name, sql: t.render(string(text))})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	return out, nil
}

// render replaces the placeholders of a migration file.
func (t table) render(text string) string {
	return placeholder.ReplaceAllStringFunc(text, func(m string) string {
		m = strings.TrimSuffix(strings.TrimPrefix(m, "{{"), "}}")
		kind, suffix, _ := strings.Cut(m, ":")
		switch kind {
		case "name":
			return t.object(suffix)
		case "qname":
			return t.qualifiedObject(suffix)
		}
		return t.qualified
	})
}

// Migrations returns the schema migrations of the store as numbered SQL
// files, rendered for the table named by [WithTable] (default "api_keys"),
// for teams that apply migrations with their own tool rather than
// [Migrate]. The files are named like "0001_create_table.up.sql" and carry
// goose annotations, so goose and golang-migrate read them as they are; a
// file, once released, never changes, and later changes come as new files.
//
// Only the table option is used.
func Migrations(opts ...Option) (fs.FS, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	ms, err := migrations(c.table)
	if err != nil {
		return nil, err
	}
	files := make(memFS, len(ms))
	for _, m := range ms {
		files[m.name] = []byte(m.sql)
	}
	return files, nil
}

// Migrate creates or updates the store's tables, the keys',
// <table>_trips, <table>_audit, <table>_audit_heads and <table>_usage (see
// the package documentation for the schema), by
// applying, in order, each of [Migrations] not applied yet, and records
// them in the table <table>_migrations. It is idempotent, and safe to run
// from several processes at once: all of it runs in one transaction
// holding a transaction-level advisory lock, so a second instance starting
// at the same moment waits for the first and then finds nothing left to
// do. If the table has a schema, Migrate creates the schema if it does not
// exist; a role that may not (it needs CREATE on the database) is told to
// have the schema created first, and then needs only CREATE on the schema.
//
// If the table exists while <table>_migrations records no migration,
// because another tool applied the files of [Migrations], Migrate adopts
// it: it finds which migrations are applied by looking for the objects
// each creates, records them, without running them again, and applies the
// others. The applied ones must be the first k, each whole; otherwise
// Migrate changes nothing and fails, naming the objects it found and those
// missing. See "Migrations" in the package documentation.
//
// Migrate needs the privileges to create tables, functions and triggers;
// the store itself needs only SELECT, INSERT and UPDATE on the table,
// SELECT, INSERT and DELETE on <table>_trips, where it keeps the trips of
// canary keys, SELECT and INSERT on <table>_audit, the audit trail,
// SELECT, INSERT and UPDATE on <table>_audit_heads, and SELECT, INSERT,
// UPDATE and DELETE on <table>_usage. Run Migrate as the table's owner and
// the application as another role: the owner can disable the database
// guard that keeps revocation final, scopes narrowing, owners fixed and
// exposures as first reported, and the trigger that keeps the audit trail
// append-only (see the package documentation); other roles cannot.
//
// Only the table option is used.
func Migrate(ctx context.Context, db *sql.DB, opts ...Option) error {
	c, err := newConfig(opts)
	if err != nil {
		return err
	}
	ms, err := migrations(c.table)
	if err != nil {
		return err
	}
	t := c.table
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return failed(ctx, "migrate", err)
	}
	defer tx.Rollback() // after Commit, a no-op
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", t.lockKey()); err != nil {
		return failed(ctx, "migrate: taking the migration lock", err)
	}
	if err := createSchema(ctx, tx, t); err != nil {
		return err
	}
	versions := t.qualifiedObject("migrations")
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+versions+` (
		version    integer     PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return failed(ctx, "migrate: creating the migrations table", err)
	}
	applied, err := appliedVersions(ctx, tx, versions)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		var exists bool
		if err := tx.QueryRowContext(ctx, "SELECT to_regclass($1) IS NOT NULL", t.qualified).Scan(&exists); err != nil {
			return failed(ctx, "migrate: looking for the table", err)
		}
		if exists {
			if applied, err = adopt(ctx, tx, t, ms, versions); err != nil {
				return err
			}
		}
	}
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return failed(ctx, "migrate: applying "+m.name, err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+versions+" (version, name) VALUES ($1, $2)",
			m.version, m.name); err != nil {
			return failed(ctx, "migrate: recording "+m.name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return failed(ctx, "migrate: commit", err)
	}
	return nil
}

// createSchema creates the schema of the table if it has one and it does
// not exist. It looks first: CREATE SCHEMA IF NOT EXISTS needs the CREATE
// privilege on the database even when the schema exists.
func createSchema(ctx context.Context, tx *sql.Tx, t table) error {
	if t.schema == "" {
		return nil
	}
	var exists bool
	if err := tx.QueryRowContext(ctx, "SELECT to_regnamespace($1) IS NOT NULL", quote(t.schema)).Scan(&exists); err != nil {
		return failed(ctx, "migrate: looking for the schema "+quote(t.schema), err)
	}
	if exists {
		return nil
	}
	if _, err := tx.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+quote(t.schema)); err != nil {
		if sqlState(err) == "42501" { // insufficient_privilege
			return fmt.Errorf("postgres: migrate: the schema %s does not exist and this role may not create it: create the schema first (CREATE SCHEMA %s), as a role with CREATE on the database, and grant this role CREATE and USAGE on it: %w",
				quote(t.schema), quote(t.schema), err)
		}
		return failed(ctx, "migrate: creating the schema "+quote(t.schema), err)
	}
	return nil
}

func appliedVersions(ctx context.Context, tx *sql.Tx, versions string) (map[int]bool, error) {
	rows, err := tx.QueryContext(ctx, "SELECT version FROM "+versions)
	if err != nil {
		return nil, failed(ctx, "migrate: reading applied versions", err)
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, failed(ctx, "migrate: reading applied versions", err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, failed(ctx, "migrate: reading applied versions", err)
	}
	return applied, nil
}

// lockKey is the advisory lock key of Migrate for the table: the FNV-1a
// hash of "keyward/store/postgres.Migrate " and the qualified table name.
func (t table) lockKey() int64 {
	h := fnv.New64a()
	io.WriteString(h, "keyward/store/postgres.Migrate "+t.qualified)
	return int64(h.Sum64())
}

// memFS is a flat, read-only, in-memory [fs.FS] of rendered migrations.
type memFS map[string][]byte

var (
	_ fs.ReadDirFS  = memFS(nil)
	_ fs.ReadFileFS = memFS(nil)
)

func (m memFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		entries, _ := m.ReadDir(".")
		return &memDir{entries: entries}, nil
	}
	data, ok := m[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &memFile{info: memInfo{name: name, size: int64(len(data))}, r: strings.NewReader(string(data))}, nil
}

func (m memFS) ReadFile(name string) ([]byte, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: fs.ErrInvalid}
	}
	data, ok := m[name]
	if !ok {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: fs.ErrNotExist}
	}
	return slices.Clone(data), nil
}

func (m memFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if name != "." {
		if !fs.ValidPath(name) {
			return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
		}
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	entries := make([]fs.DirEntry, 0, len(m))
	for name, data := range m {
		entries = append(entries, fs.FileInfoToDirEntry(memInfo{name: name, size: int64(len(data))}))
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, nil
}

type memFile struct {
	info memInfo
	r    *strings.Reader
}

func (f *memFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *memFile) Read(b []byte) (int, error) { return f.r.Read(b) }
func (f *memFile) Close() error               { return nil }

type memDir struct {
	entries []fs.DirEntry
	off     int
}

func (d *memDir) Stat() (fs.FileInfo, error) { return memInfo{name: ".", dir: true}, nil }
func (d *memDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: ".", Err: errors.New("is a directory")}
}
func (d *memDir) Close() error { return nil }

func (d *memDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.off:]
	if n <= 0 {
		d.off = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	d.off += n
	return rest[:n], nil
}

type memInfo struct {
	name string
	size int64
	dir  bool
}

func (i memInfo) Name() string { return i.name }
func (i memInfo) Size() int64  { return i.size }
func (i memInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o555
	}
	return 0o444
}
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) Sys() any           { return nil }
