package postgres_test

import (
	"context"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/needs"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/store/postgres"
)

// Versions of the migration tools the tests run; .ci/run installs them.
const (
	gooseModule   = "github.com/pressly/goose/v3/cmd/goose@v3.30.1"
	migrateModule = "github.com/golang-migrate/migrate/v4/cmd/migrate@v4.20.1 (with -tags postgres)"
)

// tool returns the path of a migration tool's binary, or skips the test
// (fails it under CI=true) if it is not installed.
func tool(t *testing.T, name, module string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		needs.Check(t, "postgres", name+" not installed; .ci/run installs it with go install "+module, nil)
	}
	return bin
}

// writeMigrations writes Migrations for table into a new directory, as an
// application keeps them beside its own.
func writeMigrations(t *testing.T, table string) string {
	t.Helper()
	fsys, err := postgres.Migrations(postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, path), b, 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// urlDSN returns the test server's DSN (key=value, a Unix socket) as the
// URL golang-migrate needs, with search_path set to schema.
func urlDSN(t *testing.T, schema string) string {
	t.Helper()
	params := map[string]string{}
	for _, kv := range strings.Fields(pgtest.DSN(t)) {
		k, v, _ := strings.Cut(kv, "=")
		params[k] = v
	}
	q := url.Values{}
	q.Set("host", params["host"])
	q.Set("port", params["port"])
	q.Set("sslmode", "disable")
	q.Set("search_path", schema)
	q.Set("x-migrations-table", "schema_migrations")
	return "postgres://" + params["user"] + "@/" + params["dbname"] + "?" + q.Encode()
}

// run runs a tool with a deadline and fails the test with its output if
// it fails.
func run(t *testing.T, bin string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args[:1], " "), err, out)
	}
}

// TestMigrateAfterRealTools applies keyward's migrations with the real
// goose and golang-migrate, as an application does beside its own, then
// switches to Migrate, which adopts them.
func TestMigrateAfterRealTools(t *testing.T) {
	for _, tc := range []struct {
		name  string
		apply func(t *testing.T, dir, schema string)
	}{
		{"goose", func(t *testing.T, dir, schema string) {
			run(t, tool(t, "goose", gooseModule), "-dir", dir, "-table", schema+".goose_db_version",
				"postgres", pgtest.SearchPath(pgtest.DSN(t), schema), "up")
		}},
		{"golang-migrate", func(t *testing.T, dir, schema string) {
			run(t, tool(t, "migrate", migrateModule), "-path", dir, "-database", urlDSN(t, schema), "up")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := pgtest.DB(t)
			schema := pgtest.Schema(t, db)
			table := schema + ".api_keys"
			tc.apply(t, writeMigrations(t, table), schema)

			// The tool made keyward's schema, and Migrate has recorded
			// nothing: what follows is an adoption.
			ctx := context.Background()
			var keysTable, versionTable bool
			if err := db.QueryRowContext(ctx, "SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL",
				table, table+"_migrations").Scan(&keysTable, &versionTable); err != nil {
				t.Fatal(err)
			}
			if !keysTable || versionTable {
				t.Fatalf("after %s: keys table %v, keyward's version table %v; want the first only", tc.name, keysTable, versionTable)
			}
			if err := postgres.Migrate(ctx, db, postgres.WithTable(table)); err != nil {
				t.Fatalf("Migrate after %s: %v", tc.name, err)
			}
			checkVersions(t, db, table)
			checkUsable(t, db, table)
			before := recorded(t, db, table)
			if err := postgres.Migrate(ctx, db, postgres.WithTable(table)); err != nil {
				t.Fatalf("second Migrate: %v", err)
			}
			if got := recorded(t, db, table); strings.Join(got, "\n") != strings.Join(before, "\n") {
				t.Errorf("a second Migrate changed the version table")
			}
		})
	}
}
