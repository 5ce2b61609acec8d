package pgtest_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestServer(t *testing.T) {
	db := pgtest.DB(t)
	var version int
	if err := db.QueryRowContext(context.Background(), "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version < 150000 {
		t.Errorf("server_version_num = %d, want PostgreSQL 15 or later", version)
	}
}

func TestSchemaIsPrivateAndDropped(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	var a, b string
	t.Run("create", func(t *testing.T) {
		a = pgtest.Schema(t, db)
		b = pgtest.Schema(t, db)
		if a == b {
			t.Fatalf("two schemas share the name %q", a)
		}
		if _, err := db.ExecContext(ctx, "CREATE TABLE "+a+".t (x int)"); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRowContext(ctx,
			"SELECT count(*) FROM information_schema.tables WHERE table_schema = $1", b).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("a fresh schema holds %d tables, want 0", n)
		}
	})
	var n int
	if err := db.QueryRowContext(ctx,
		"SELECT count(*) FROM pg_namespace WHERE nspname IN ($1, $2)", a, b).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d schemas left after their test ended, want 0", n)
	}
}

func TestSecondPool(t *testing.T) {
	a, b := pgtest.DB(t), pgtest.Open(t)
	ctx := context.Background()
	var pa, pb int
	if err := a.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pa); err != nil {
		t.Fatal(err)
	}
	if err := b.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pb); err != nil {
		t.Fatal(err)
	}
	if pa == pb {
		t.Errorf("both pools use backend %d, want separate connections", pa)
	}
}

func TestSearchPath(t *testing.T) {
	db := pgtest.DB(t)
	schema := pgtest.Schema(t, db)
	ctx := context.Background()
	for _, tc := range []struct{ name, dsn string }{
		{"key=value", pgtest.DSN(t)},
		{"URL", "postgres://u:p@localhost:5432/db?sslmode=disable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := pgtest.SearchPath(tc.dsn, schema)
			if !strings.Contains(got, "search_path") || !strings.Contains(got, schema) {
				t.Fatalf("SearchPath(%q) = %q", tc.dsn, got)
			}
			if tc.name != "key=value" {
				return // no server there
			}
			db, err := sql.Open("pgx", got)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var path string
			if err := db.QueryRowContext(ctx, "SHOW search_path").Scan(&path); err != nil {
				t.Fatal(err)
			}
			if path != schema {
				t.Errorf("search_path = %q, want %q", path, schema)
			}
		})
	}
}
