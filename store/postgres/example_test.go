package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"log"
	"os"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/postgres"
)

// A server keeping its keys in PostgreSQL: migrate at start-up, then hand
// the store to the lifecycle.
func Example() {
	ctx := context.Background()
	db, err := sql.Open("pgx", os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	// At most 16 connections per instance (keep instances x 16 under the
	// server's max_connections), kept open rather than reopened: above
	// keyward's 10 verification lookups in flight (WithMaxLookups), with
	// room for management calls, last-used writes and a cache's feed.
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)

	if err := postgres.Migrate(ctx, db); err != nil {
		log.Fatal(err)
	}
	st, err := postgres.New(db)
	if err != nil {
		log.Fatal(err)
	}
	keys, err := keyward.New(st)
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()

	// Each account manages its own keys.
	sec, rec, err := keys.Owner("acct_123").Create(ctx, keyward.CreateParams{
		Name:   "Production server",
		Mode:   apikey.Live,
		Scopes: scope.NewSet(scope.SessionsWrite),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("show once:", sec.Reveal(), "stored as", rec.Prefix)
}

// Creating a key record in the caller's transaction: it exists only if the
// transaction commits.
func ExampleStore_WithTx() {
	ctx := context.Background()
	db, err := sql.Open("pgx", os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	st, err := postgres.New(db)
	if err != nil {
		log.Fatal(err)
	}

	sec, err := apikey.Generate(apikey.Test)
	if err != nil {
		log.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback()
	// ... the application's own writes in tx ...
	_, err = st.WithTx(tx).Create(ctx, apikey.Record{
		ID:        uuid.Must(uuid.NewV7()),
		Owner:     "acct_123",
		Name:      "WooCommerce plugin",
		Prefix:    sec.DisplayPrefix(),
		Mode:      apikey.Test,
		Scopes:    scope.NewSet(scope.LinksRead),
		Hash:      sec.Hash(),
		CreatedAt: time.Now(),
	}, store.Idempotency{})
	if err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}
}

// The migrations, for teams that apply them with goose, golang-migrate or
// atlas.
func ExampleMigrations() {
	fsys, err := postgres.Migrations(postgres.WithTable("auth.api_keys"))
	if err != nil {
		log.Fatal(err)
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		log.Fatal(err)
	}
	for _, name := range names {
		fmt.Println(name)
	}
	// Output:
	// 0001_create_table.up.sql
	// 0002_revocation_guard.up.sql
	// 0003_change_feed.up.sql
	// 0004_accounts.up.sql
	// 0005_change_feed_by_commit.up.sql
	// 0006_leaked_keys.up.sql
	// 0007_policies.up.sql
	// 0008_audit_trail.up.sql
}
