package postgres_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/store/postgres"
)

// applyAsATool applies the files of Migrations for table from the one
// numbered first to the one numbered last, as goose and golang-migrate do:
// each file in a transaction of its own (golang-migrate runs the whole
// file; goose runs its Up section, which is the whole file), recording
// it in the tool's own version table, goose's here, in the table's
// schema.
func applyAsATool(t *testing.T, db *sql.DB, table string, first, last int) {
	t.Helper()
	ctx := context.Background()
	schema, _, _ := strings.Cut(table, ".")
	fsys, err := postgres.Migrations(postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+schema+`.goose_db_version (
		id serial PRIMARY KEY, version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	for v := first; v <= last; v++ {
		name := migrationFiles[v-1]
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, string(b)); err != nil {
			tx.Rollback()
			t.Fatalf("applying %s: %v", name, err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+schema+".goose_db_version (version_id, is_applied) VALUES ($1, true)", v); err != nil {
			tx.Rollback()
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

// recorded returns the versions of table's version table with the times
// they were recorded at.
func recorded(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), "SELECT version || ' ' || name || ' ' || applied_at FROM "+table+"_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// fingerprint describes every relation, column, constraint, trigger and
// function of a schema, with the functions' bodies, and the rows of
// goose's version table, one per line, in order, with the schema's name
// left out (of the bodies too, which may name the schema's tables).
func fingerprint(t *testing.T, db *sql.DB, schema string) string {
	t.Helper()
	var s string
	if err := db.QueryRowContext(context.Background(), `SELECT concat_ws(E'\n',
		(SELECT string_agg(c.relname || ' ' || c.relkind::text || coalesce(' ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ''), E'\n')
			FROM pg_class c LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
			WHERE c.relnamespace = $1::regnamespace),
		(SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), E'\n') FROM pg_constraint WHERE connamespace = $1::regnamespace),
		(SELECT string_agg(tgname || ' ' || pg_get_triggerdef(t.oid), E'\n') FROM pg_trigger t
			JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = $1::regnamespace AND NOT t.tgisinternal),
		(SELECT string_agg(proname || ' ' || md5(replace(prosrc, $1::regnamespace::text, '<schema>')), E'\n') FROM pg_proc WHERE pronamespace = $1::regnamespace),
		(SELECT string_agg(version_id::text, ',' ORDER BY id) FROM `+schema+`.goose_db_version))`, schema).Scan(&s); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.ReplaceAll(s, schema, "<schema>"), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// A schema made by goose or golang-migrate from the files of Migrations,
// whole or in part, is adopted by Migrate: it records the migrations
// applied, applies the others, and leaves the tool's version table alone;
// then Migrate has nothing left to do.
func TestMigrateAdoptsMigrationsAppliedByAnotherTool(t *testing.T) {
	tests := []struct {
		name         string
		applied      int    // migrations 1 to applied, by the tool
		versionTable bool   // keyward's version table exists, empty
		beforehand   string // SQL run after the tool's migrations, with %t for the table
	}{
		{name: "all", applied: len(migrationFiles)},
		{name: "all, keyward's version table empty", applied: len(migrationFiles), versionTable: true},
		{name: "0001 to 0004", applied: 4},
		{name: "0001 to 0004, 0005's column and index made beforehand", applied: 4,
			beforehand: "ALTER TABLE %t ADD COLUMN changed_xid xid8; CREATE INDEX api_keys_changed_xid_idx ON %t (changed_xid) WHERE changed_xid IS NOT NULL"},
		{name: "0001 only", applied: 1},
		{name: "0001 to 0007: Migrate applies the audit trail", applied: 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := pgtest.DB(t)
			schema := pgtest.Schema(t, db)
			table := schema + ".api_keys"
			ctx := context.Background()
			applyAsATool(t, db, table, 1, tc.applied)
			if tc.versionTable {
				if _, err := db.ExecContext(ctx, "CREATE TABLE "+table+"_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"); err != nil {
					t.Fatal(err)
				}
			}
			if tc.beforehand != "" {
				if _, err := db.ExecContext(ctx, strings.ReplaceAll(tc.beforehand, "%t", table)); err != nil {
					t.Fatal(err)
				}
			}
			var gooseBefore string
			if err := db.QueryRowContext(ctx, "SELECT string_agg(version_id::text, ',' ORDER BY id) FROM "+schema+".goose_db_version").Scan(&gooseBefore); err != nil {
				t.Fatal(err)
			}

			if err := postgres.Migrate(ctx, db, postgres.WithTable(table)); err != nil {
				t.Fatalf("Migrate over migrations 1 to %d applied by another tool: %v", tc.applied, err)
			}
			checkVersions(t, db, table)
			checkUsable(t, db, table)
			var gooseAfter string
			if err := db.QueryRowContext(ctx, "SELECT string_agg(version_id::text, ',' ORDER BY id) FROM "+schema+".goose_db_version").Scan(&gooseAfter); err != nil {
				t.Fatal(err)
			}
			if gooseAfter != gooseBefore {
				t.Errorf("goose's versions = %s after Migrate, want %s as before", gooseAfter, gooseBefore)
			}

			// A second Migrate is a no-op.
			before, print := recorded(t, db, table), fingerprint(t, db, schema)
			if err := postgres.Migrate(ctx, db, postgres.WithTable(table)); err != nil {
				t.Fatalf("second Migrate: %v", err)
			}
			if got := recorded(t, db, table); !slices.Equal(got, before) {
				t.Errorf("second Migrate changed the version table: %v, was %v", got, before)
			}
			if got := fingerprint(t, db, schema); got != print {
				t.Errorf("second Migrate changed the schema:\n%s\nwas\n%s", got, print)
			}
		})
	}
}

// The schema adoption gives is the one Migrate alone builds.
func TestMigrateAdoptionBuildsTheSameSchema(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	adopted, fresh := pgtest.Schema(t, db), pgtest.Schema(t, db)
	applyAsATool(t, db, adopted+".api_keys", 1, 3)
	if err := postgres.Migrate(ctx, db, postgres.WithTable(adopted+".api_keys")); err != nil {
		t.Fatal(err)
	}
	applyAsATool(t, db, fresh+".api_keys", 1, 0) // goose's table only
	if err := postgres.Migrate(ctx, db, postgres.WithTable(fresh+".api_keys")); err != nil {
		t.Fatal(err)
	}
	// goose's versions aside, the two schemas are alike.
	if _, err := db.ExecContext(ctx, "DELETE FROM "+adopted+".goose_db_version"); err != nil {
		t.Fatal(err)
	}
	if a, f := fingerprint(t, db, adopted), fingerprint(t, db, fresh); a != f {
		t.Errorf("the adopted schema differs from the one Migrate builds:\n%s\nwant\n%s", a, f)
	}
}

// A table that is not what keyward's migrations 1 to k leave, with no
// version recorded, is refused: Migrate names what it found and what is
// missing, and changes nothing.
func TestMigrateRefusesAnUnknownSchema(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, db *sql.DB, table string)
		want  []string // in the error
	}{
		{"a table made by hand", func(t *testing.T, db *sql.DB, table string) {
			execSQL(t, db, "CREATE TABLE "+table+" (id uuid PRIMARY KEY, name text NOT NULL)")
		}, []string{`0001_create_table.up.sql is partly applied`, `found column "id", column "name"`, `missing column "hash"`}},
		{"a table of the same name, of another kind", func(t *testing.T, db *sql.DB, table string) {
			execSQL(t, db, "CREATE TABLE "+table+" (key text)")
		}, []string{`0001_create_table.up.sql is not applied`, `missing column "id"`}},
		{"0003 without 0002", func(t *testing.T, db *sql.DB, table string) {
			applyAsATool(t, db, table, 1, 1)
			applyAsATool(t, db, table, 3, 3)
		}, []string{`0003_change_feed.up.sql is applied`, `but 0002_revocation_guard.up.sql is not`, `missing function`, `api_keys_guard"()`}},
		{"0006's objects without 0005's", func(t *testing.T, db *sql.DB, table string) {
			applyAsATool(t, db, table, 1, 6)
			execSQL(t, db, "CREATE OR REPLACE FUNCTION "+table+"_stamp_change() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'")
		}, []string{`0006_leaked_keys.up.sql is applied`, `but 0005_change_feed_by_commit.up.sql is not`, `api_keys_stamp_change"() setting changed_xid`}},
		{"0006 in part", func(t *testing.T, db *sql.DB, table string) {
			applyAsATool(t, db, table, 1, 5)
			execSQL(t, db, "ALTER TABLE "+table+" ADD COLUMN canary boolean NOT NULL DEFAULT false")
		}, []string{`0006_leaked_keys.up.sql is partly applied`, `found column "canary"`, `missing column "revoked_reason"`}},
		{"0008 in part", func(t *testing.T, db *sql.DB, table string) {
			applyAsATool(t, db, table, 1, 8)
			execSQL(t, db, "DROP FUNCTION "+table+"_audit_append(text, text[])")
		}, []string{`0008_audit_trail.up.sql is partly applied`, `found table`, `api_keys_audit"`,
			`missing function`, `api_keys_audit_append"(text, text[])`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := pgtest.DB(t)
			schema := pgtest.Schema(t, db)
			table := schema + ".api_keys"
			ctx := context.Background()
			applyAsATool(t, db, table, 1, 0) // goose's table, for the fingerprint
			tc.setup(t, db, table)
			before := fingerprint(t, db, schema)

			err := postgres.Migrate(ctx, db, postgres.WithTable(table))
			if err == nil {
				t.Fatal("Migrate = nil, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Migrate = %v, want an error containing %q", err, w)
				}
			}
			t.Log(err)
			if !strings.Contains(err.Error(), "nothing was changed") {
				t.Errorf("Migrate = %v, want an error saying nothing was changed", err)
			}
			if got := fingerprint(t, db, schema); got != before {
				t.Errorf("Migrate refused but changed the schema:\n%s\nwas\n%s", got, before)
			}
		})
	}
}

func execSQL(t *testing.T, db *sql.DB, query string) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), query); err != nil {
		t.Fatal(err)
	}
}

// newSchemaName returns the name of a schema that does not exist yet and
// is dropped, if it exists then, when t ends.
func newSchemaName(t *testing.T, db *sql.DB) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	name := "kwtest_new_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		if _, err := db.ExecContext(context.Background(), "DROP SCHEMA IF EXISTS "+name+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", name, err)
		}
	})
	return name
}

// asRole returns a pool whose connections act as a new role, which has no
// privilege but those of PUBLIC: in particular, no CREATE on the database.
// The role is dropped when t ends.
func asRole(t *testing.T, db *sql.DB) (string, *sql.DB) {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	role := "kwtest_migrator_" + hex.EncodeToString(b[:])
	if _, err := db.ExecContext(context.Background(), "CREATE ROLE "+role); err != nil {
		t.Skipf("cannot create a role on this server (%v): the test needs CREATEROLE", err)
	}
	t.Cleanup(func() {
		if _, err := db.ExecContext(context.Background(), "DROP OWNED BY "+role+"; DROP ROLE "+role); err != nil {
			t.Errorf("dropping role %s: %v", role, err)
		}
	})
	cfg, err := pgx.ParseConfig(pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	pool := stdlib.OpenDB(*cfg, stdlib.OptionAfterConnect(func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "SET ROLE "+role)
		return err
	}))
	t.Cleanup(func() { pool.Close() })
	return role, pool
}

// WithTable with a schema: Migrate creates the schema if it does not
// exist; a role that may not create it is told to create it first, and
// once it exists, with CREATE on it granted, that role migrates.
func TestMigrateCreatesTheSchema(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	schemaExists := func(name string) bool {
		t.Helper()
		var ok bool
		if err := db.QueryRowContext(ctx, "SELECT to_regnamespace($1) IS NOT NULL", name).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}

	t.Run("created", func(t *testing.T) {
		schema := newSchemaName(t, db)
		table := schema + ".api_keys"
		if err := postgres.Migrate(ctx, db, postgres.WithTable(table)); err != nil {
			t.Fatalf("Migrate into a schema that does not exist: %v", err)
		}
		if !schemaExists(schema) {
			t.Fatal("Migrate did not create the schema")
		}
		checkVersions(t, db, table)
		checkUsable(t, db, table)
	})

	t.Run("no privilege", func(t *testing.T) {
		schema := newSchemaName(t, db) // dropped before the role
		role, pool := asRole(t, db)
		table := schema + ".api_keys"
		short, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		err := postgres.Migrate(short, pool, postgres.WithTable(table))
		if err == nil || !strings.Contains(err.Error(), "create the schema first") || !strings.Contains(err.Error(), `"`+schema+`"`) {
			t.Fatalf("Migrate as a role without CREATE on the database = %v, want an error saying to create the schema %s first", err, schema)
		}
		t.Log(err)
		if schemaExists(schema) {
			t.Fatal("the failed Migrate left the schema")
		}

		// Created by another role, with CREATE granted: the role migrates,
		// though CREATE SCHEMA IF NOT EXISTS would still be refused to it.
		execSQL(t, db, "CREATE SCHEMA "+schema+"; GRANT USAGE, CREATE ON SCHEMA "+schema+" TO "+role)
		if _, err := pool.ExecContext(short, "CREATE SCHEMA IF NOT EXISTS "+schema); err == nil {
			t.Error("CREATE SCHEMA IF NOT EXISTS of an existing schema succeeded for a role without CREATE on the database; the test proves nothing")
		}
		if err := postgres.Migrate(short, pool, postgres.WithTable(table)); err != nil {
			t.Fatalf("Migrate as a role with CREATE on the existing schema: %v", err)
		}
		checkVersions(t, db, table)
		checkUsable(t, pool, table)
	})
}
