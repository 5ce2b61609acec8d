package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/postgres"
	"github.com/keyward/keyward/store/storetest"
)

var migrationFiles = []string{
	"0001_create_table.up.sql",
	"0002_revocation_guard.up.sql",
	"0003_change_feed.up.sql",
}

// appliedVersions returns the versions recorded by Migrate for a table.
func appliedVersions(t *testing.T, db *sql.DB, table string) []int {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), "SELECT version FROM "+table+"_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func checkVersions(t *testing.T, db *sql.DB, table string) {
	t.Helper()
	got := appliedVersions(t, db, table)
	if len(got) != len(migrationFiles) {
		t.Fatalf("applied versions = %v, want 1 to %d, each once", got, len(migrationFiles))
	}
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("applied versions = %v, want 1 to %d, each once", got, len(migrationFiles))
		}
	}
}

// checkUsable fails unless a store on the table creates and reads a key.
func checkUsable(t *testing.T, db *sql.DB, table string) {
	t.Helper()
	s, err := postgres.New(db, postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecord(t)
	if err := s.Create(context.Background(), rec); err != nil {
		t.Fatalf("Create on the migrated table: %v", err)
	}
	if _, err := s.GetByHash(context.Background(), rec.Hash); err != nil {
		t.Fatalf("GetByHash on the migrated table: %v", err)
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	db := pgtest.DB(t)
	table := pgtest.Schema(t, db) + ".keys"
	for i := range 3 {
		if err := postgres.Migrate(context.Background(), db, postgres.WithTable(table)); err != nil {
			t.Fatalf("Migrate #%d: %v", i+1, err)
		}
	}
	checkVersions(t, db, table)
	checkUsable(t, db, table)
}

// Two instances starting at once both migrate: neither fails, and each
// migration is applied once.
func TestMigrateConcurrent(t *testing.T) {
	const instances = 8
	db := pgtest.DB(t)
	schema := pgtest.Schema(t, db)
	table := schema + ".api_keys"
	pools := make([]*sql.DB, instances)
	for i := range pools {
		pools[i] = pgtest.Open(t) // one pool per instance, as separate processes have
	}
	start := make(chan struct{})
	errs := make([]error, instances)
	var wg sync.WaitGroup
	for i, pool := range pools {
		wg.Go(func() {
			<-start
			errs[i] = postgres.Migrate(context.Background(), pool, postgres.WithTable(table))
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: Migrate = %v", i, err)
		}
	}
	checkVersions(t, db, table)
	checkUsable(t, db, table)
}

// Migrate waits for the advisory lock held by another instance, and
// changes nothing until it has it.
func TestMigrateWaitsForTheLock(t *testing.T) {
	db := pgtest.DB(t)
	table := pgtest.Schema(t, db) + ".api_keys"
	ctx := context.Background()

	holder, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", postgres.LockKey(table)); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	err = postgres.Migrate(short, db, postgres.WithTable(table))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Migrate while another instance holds the lock = %v, want it to wait until its deadline", err)
	}
	var exists bool
	if err := db.QueryRowContext(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatal("Migrate created the table without holding the lock")
	}

	if err := holder.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := postgres.Migrate(ctx, db, postgres.WithTable(table)); err != nil {
		t.Fatalf("Migrate after the lock was released: %v", err)
	}
	checkVersions(t, db, table)
}

// A migration that fails leaves nothing behind: Migrate runs in one
// transaction.
func TestMigrateIsAtomic(t *testing.T) {
	db := pgtest.DB(t)
	schema := pgtest.Schema(t, db)
	table := schema + ".api_keys"
	ctx := context.Background()
	// A function of the name migration 2 creates makes it fail.
	if _, err := db.ExecContext(ctx, "CREATE FUNCTION "+schema+".api_keys_guard() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'"); err != nil {
		t.Fatal(err)
	}
	err := postgres.Migrate(ctx, db, postgres.WithTable(table))
	if err == nil || !strings.Contains(err.Error(), "0002_revocation_guard.up.sql") {
		t.Fatalf("Migrate = %v, want an error naming the failed migration", err)
	}
	var tables int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = $1", schema).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("a failed Migrate left %d tables, want none", tables)
	}
}

func TestMigrationsFS(t *testing.T) {
	tests := []struct {
		name     string
		opts     []postgres.Option
		contains []string
	}{
		{"default table", nil, []string{`CREATE TABLE "api_keys"`, `"api_keys_hash_key"`, `FUNCTION "api_keys_guard"()`}},
		{"qualified table", []postgres.Option{postgres.WithTable("billing.keys")},
			[]string{`CREATE TABLE "billing"."keys"`, `INDEX "keys_hash_key" ON "billing"."keys"`, `FUNCTION "billing"."keys_guard"()`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys, err := postgres.Migrations(tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if err := fstest.TestFS(fsys, migrationFiles...); err != nil {
				t.Fatal(err)
			}
			entries, err := fs.ReadDir(fsys, ".")
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != len(migrationFiles) {
				t.Errorf("%d files, want %d", len(entries), len(migrationFiles))
			}
			var all strings.Builder
			for _, name := range migrationFiles {
				b, err := fs.ReadFile(fsys, name)
				if err != nil {
					t.Fatal(err)
				}
				text := string(b)
				if !strings.HasPrefix(text, "-- +goose Up\n") {
					t.Errorf("%s does not start with the goose annotation", name)
				}
				if strings.Contains(text, "{{") {
					t.Errorf("%s has an unrendered placeholder", name)
				}
				all.WriteString(text)
			}
			for _, want := range tc.contains {
				if !strings.Contains(all.String(), want) {
					t.Errorf("the migrations do not contain %q", want)
				}
			}
		})
	}
}

// A team applying the files of Migrations with its own tool, one file per
// transaction, gets a table the store keeps its whole contract on.
func TestMigrationsFSAppliedByHand(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db := pgtest.DB(t)
		table := pgtest.Schema(t, db) + ".api_keys"
		fsys, err := postgres.Migrations(postgres.WithTable(table))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range migrationFiles {
			b, err := fs.ReadFile(fsys, name)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(context.Background(), string(b)); err != nil {
				t.Fatalf("applying %s: %v", name, err)
			}
		}
		s, err := postgres.New(db, postgres.WithTable(table))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestWithTable(t *testing.T) {
	tests := []struct {
		name  string
		table string
		ok    bool
	}{
		{"default", "api_keys", true},
		{"qualified", "auth.api_keys", true},
		{"reserved word", "user", true},
		{"longest name", strings.Repeat("k", 45), true},
		{"name too long", strings.Repeat("k", 46), false},
		{"empty", "", false},
		{"uppercase", "ApiKeys", false},
		{"quote", `api"keys`, false},
		{"injection", "api_keys; DROP TABLE users", false},
		{"leading digit", "1keys", false},
		{"empty schema", ".keys", false},
		{"three parts", "db.auth.keys", false},
		{"space", "api keys", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := postgres.New((*sql.DB)(nil), postgres.WithTable(tc.table)) // no I/O
			if got := err == nil; got != tc.ok {
				t.Errorf("New(WithTable(%q)) error = %v, want ok = %v", tc.table, err, tc.ok)
			}
			_, err = postgres.Migrations(postgres.WithTable(tc.table))
			if got := err == nil; got != tc.ok {
				t.Errorf("Migrations(WithTable(%q)) error = %v, want ok = %v", tc.table, err, tc.ok)
			}
		})
	}
}

// Names that are SQL keywords are quoted everywhere.
func TestReservedWordTable(t *testing.T) {
	db := pgtest.DB(t)
	table := pgtest.Schema(t, db) + ".user"
	if err := postgres.Migrate(context.Background(), db, postgres.WithTable(table)); err != nil {
		t.Fatal(err)
	}
	checkUsable(t, db, table)
}
