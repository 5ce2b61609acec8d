package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/postgres"
	"github.com/keyward/keyward/store/storetest"
)

var migrationFiles = []string{
	"0001_create_table.up.sql",
	"0002_revocation_guard.up.sql",
	"0003_change_feed.up.sql",
	"0004_accounts.up.sql",
	"0005_change_feed_by_commit.up.sql",
	"0006_leaked_keys.up.sql",
	"0007_policies.up.sql",
	"0008_audit_trail.up.sql",
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
	if _, err := s.Create(context.Background(), rec, store.Idempotency{}); err != nil {
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
		{"default table", nil, []string{`CREATE TABLE "api_keys"`, `"api_keys_hash_key"`, `FUNCTION "api_keys_guard"()`,
			`INDEX IF NOT EXISTS "api_keys_owner_created_idx" ON "api_keys"`, `DROP INDEX "api_keys_created_at_id_idx"`}},
		{"qualified table", []postgres.Option{postgres.WithTable("billing.keys")},
			[]string{`CREATE TABLE "billing"."keys"`, `INDEX "keys_hash_key" ON "billing"."keys"`, `FUNCTION "billing"."keys_guard"()`,
				`INDEX IF NOT EXISTS "keys_owner_created_idx" ON "billing"."keys"`, `DROP INDEX "billing"."keys_created_at_id_idx"`,
				`CONSTRAINT "keys_owner_check"`, `FUNCTION "billing"."keys_stamp_change"()`,
				`CREATE TABLE "billing"."keys_trips"`, `CONSTRAINT "keys_trips_key_fkey" FOREIGN KEY (key_id) REFERENCES "billing"."keys" (id) ON DELETE CASCADE`,
				`INDEX "keys_trips_at_idx" ON "billing"."keys_trips"`, `CONSTRAINT "keys_policy_check"`}},
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

// Keys stored before owners existed get the owner "default" from migration
// 0004, and work on: verification, listing, updates, rotation; a revoked
// one stays revoked. New rows must name their owner.
func TestMigrate0004KeepsExistingKeys(t *testing.T) {
	db := pgtest.DB(t)
	table := pgtest.Schema(t, db) + ".api_keys"
	ctx := context.Background()

	// The table as Migrate left it before 0004: files 0001 to 0003 applied
	// and recorded.
	fsys, err := postgres.Migrations(postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range migrationFiles[:3] {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, string(b)); err != nil {
			t.Fatalf("applying %s: %v", name, err)
		}
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE `+table+`_migrations (
		version    integer     PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		t.Fatal(err)
	}
	for i, name := range migrationFiles[:3] {
		if _, err := db.ExecContext(ctx, "INSERT INTO "+table+"_migrations (version, name) VALUES ($1, $2)", i+1, name); err != nil {
			t.Fatal(err)
		}
	}

	// Keys written as the store of that release wrote them.
	type oldKey struct {
		raw string
		rec apikey.Record
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Microsecond).UTC()
	var olds []oldKey
	for i, mode := range []apikey.Mode{apikey.Live, apikey.Live, apikey.Test} {
		sec, err := apikey.Generate(mode)
		if err != nil {
			t.Fatal(err)
		}
		rec := apikey.Record{
			ID: uuid.New(), Name: fmt.Sprintf("old key %d", i), Prefix: sec.DisplayPrefix(), Mode: mode,
			Scopes: scope.NewSet(scope.SessionsWrite, scope.LinksRead), Hash: sec.Hash(),
			CreatedAt: base.Add(time.Duration(i) * time.Second), LastUsedAt: base.Add(time.Minute),
			ExpiresAt: base.Add(48 * time.Hour),
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO `+table+` (id, hash, prefix, name, mode, scopes, created_at, last_used_at, expires_at)
VALUES ($1, $2, $3, $4, $5, string_to_array($6::text, ' '), $7, $8, $9)`,
			rec.ID, rec.Hash[:], rec.Prefix, rec.Name, rec.Mode.String(), rec.Scopes.String(), rec.CreatedAt, rec.LastUsedAt, rec.ExpiresAt); err != nil {
			t.Fatal(err)
		}
		olds = append(olds, oldKey{sec.Reveal(), rec})
	}
	revoked := &olds[1].rec
	revoked.RevokedAt = base.Add(2 * time.Minute)
	if _, err := db.ExecContext(ctx, "UPDATE "+table+" SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
		revoked.ID, revoked.RevokedAt); err != nil {
		t.Fatal(err)
	}

	if err := postgres.Migrate(ctx, db, postgres.WithTable(table)); err != nil {
		t.Fatalf("Migrate to 0004: %v", err)
	}
	checkVersions(t, db, table)
	var oldIndex, ownerIndex bool
	schema, _, _ := strings.Cut(table, ".")
	if err := db.QueryRowContext(ctx, "SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL",
		schema+".api_keys_created_at_id_idx", schema+".api_keys_owner_created_idx").Scan(&oldIndex, &ownerIndex); err != nil {
		t.Fatal(err)
	}
	if oldIndex || !ownerIndex {
		t.Errorf("after 0004: index on (created_at, id) exists = %v, on (owner, created_at, id) = %v; want false, true", oldIndex, ownerIndex)
	}

	s, err := postgres.New(db, postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	for _, old := range olds {
		want := old.rec
		want.Owner = apikey.DefaultOwner
		got, err := s.Get(ctx, apikey.DefaultOwner, want.ID)
		if err != nil {
			t.Fatalf("Get of an old key by the default owner: %v", err)
		}
		if d := diff(got, want); d != "" {
			t.Errorf("old key %q differs after 0004: %s", want.Name, d)
		}
		if _, err := s.Get(ctx, "acct_1", want.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get of an old key by another owner = %v, want ErrNotFound", err)
		}
	}
	page, err := s.List(ctx, apikey.DefaultOwner, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(page.Records); !slices.Equal(got, []uuid.UUID{olds[2].rec.ID, olds[1].rec.ID, olds[0].rec.ID}) {
		t.Errorf("List of the default owner = %v, want the old keys newest first", got)
	}

	// They verify, and change, as any key.
	keys, err := keyward.New(s)
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	if rec, err := keys.Verify(ctx, olds[0].raw); err != nil || rec.Owner != apikey.DefaultOwner {
		t.Errorf("Verify of an old key = %v, owner %q", err, rec.Owner)
	}
	if _, err := keys.Verify(ctx, olds[1].raw); !errors.Is(err, keyward.ErrRevoked) {
		t.Errorf("Verify of an old revoked key = %v, want ErrRevoked", err)
	}
	def := keys.Owner(keyward.DefaultOwner)
	if _, err := def.Update(ctx, olds[0].rec.ID, keyward.UpdateParams{Scopes: scope.NewSet(scope.LinksRead),
		Metadata: map[string]string{"migrated": "yes"}}); err != nil {
		t.Errorf("Update of an old key: %v", err)
	}
	if _, err := def.Update(ctx, olds[1].rec.ID, keyward.UpdateParams{Name: "revived"}); !errors.Is(err, keyward.ErrAlreadyRevoked) {
		t.Errorf("Update of an old revoked key = %v, want ErrAlreadyRevoked", err)
	}
	sec, next, err := def.Rotate(ctx, olds[2].rec.ID, keyward.RotateParams{Overlap: time.Minute})
	if err != nil {
		t.Fatalf("Rotate of an old key: %v", err)
	}
	if next.Owner != apikey.DefaultOwner || next.Replaces != olds[2].rec.ID {
		t.Errorf("the replacement of an old key: owner %q, replaces %s", next.Owner, next.Replaces)
	}
	if _, err := keys.Verify(ctx, sec.Reveal()); err != nil {
		t.Errorf("Verify of the replacement: %v", err)
	}
	if _, err := db.ExecContext(ctx, "UPDATE "+table+" SET revoked_at = NULL WHERE id = $1", olds[1].rec.ID); err == nil {
		t.Error("an old revoked key was un-revoked after 0004")
	}

	// New rows must name their owner: the default is gone.
	_, err = db.ExecContext(ctx, `INSERT INTO `+table+` (id, hash, prefix, name, mode, scopes, created_at)
VALUES (gen_random_uuid(), sha256('new'), 'ck_live_new000', 'new', 'live', '{links:read}', now())`)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23502" {
		t.Errorf("an INSERT without owner = %v, want not_null_violation", err)
	}
}

func ids(recs []apikey.Record) []uuid.UUID {
	out := make([]uuid.UUID, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

// migrateTo applies the first n migration files to table, as Migrate of
// the release that had n migrations did, and records them.
func migrateTo(t *testing.T, db *sql.DB, table string, n int) {
	t.Helper()
	ctx := context.Background()
	fsys, err := postgres.Migrations(postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE `+table+`_migrations (
		version    integer     PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		t.Fatal(err)
	}
	for i, name := range migrationFiles[:n] {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, string(b)); err != nil {
			t.Fatalf("applying %s: %v", name, err)
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO "+table+"_migrations (version, name) VALUES ($1, $2)", i+1, name); err != nil {
			t.Fatal(err)
		}
	}
}

// Migration 0005 during a rolling upgrade: instances of the release before
// it keep polling by changed_at, which the database still stamps, so they
// still learn of changes made after it; a position of theirs given to the
// new store is refused with ErrInvalidCursor, never misread; keys changed
// before it are not reported again. The owner of a large table may add
// the column and build its index beforehand: 0005 keeps them.
func TestMigrate0005RollingUpgrade(t *testing.T) {
	for _, prebuilt := range []bool{false, true} {
		t.Run(fmt.Sprint("prebuilt=", prebuilt), func(t *testing.T) {
			db := pgtest.DB(t)
			table := pgtest.Schema(t, db) + ".api_keys"
			ctx := context.Background()
			migrateTo(t, db, table, 4)
			raw := func(label string) apikey.Record {
				rec := newRecord(t)
				rec.Name = label
				if _, err := db.ExecContext(ctx, `INSERT INTO `+table+` (id, owner, hash, prefix, name, mode, scopes, created_at)
VALUES ($1, $2, $3, $4, $5, 'live', '{sessions:write}', now())`, rec.ID, rec.Owner, rec.Hash[:], rec.Prefix, rec.Name); err != nil {
					t.Fatal(err)
				}
				return rec
			}
			before, after := raw("revoked before 0005"), raw("revoked after 0005")
			if _, err := db.ExecContext(ctx, "UPDATE "+table+" SET revoked_at = now() WHERE id = $1", before.ID); err != nil {
				t.Fatal(err)
			}
			// An instance of the earlier release polls by changed_at: its
			// position is the database's time.
			var oldPos time.Time
			if err := db.QueryRowContext(ctx, "SELECT now()").Scan(&oldPos); err != nil {
				t.Fatal(err)
			}

			if prebuilt {
				schema, _, _ := strings.Cut(table, ".")
				for _, q := range []string{
					"ALTER TABLE " + table + " ADD COLUMN changed_xid xid8",
					"CREATE INDEX CONCURRENTLY api_keys_changed_xid_idx ON " + table + " (changed_xid) WHERE changed_xid IS NOT NULL",
				} {
					if _, err := db.ExecContext(ctx, q); err != nil {
						t.Fatalf("%s: %v", q, err)
					}
				}
				var n int
				if err := db.QueryRowContext(ctx, "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = 'api_keys_changed_xid_idx'", schema).Scan(&n); err != nil || n != 1 {
					t.Fatalf("the prebuilt index: %d, %v", n, err)
				}
			}
			if err := postgres.Migrate(ctx, db, postgres.WithTable(table)); err != nil {
				t.Fatalf("Migrate to 0005: %v", err)
			}
			checkVersions(t, db, table)
			var indexes int
			schema, _, _ := strings.Cut(table, ".")
			if err := db.QueryRowContext(ctx, "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexdef LIKE '%(changed_xid)%'", schema).Scan(&indexes); err != nil {
				t.Fatal(err)
			}
			if indexes != 1 {
				t.Errorf("%d indexes on changed_xid after 0005, want 1", indexes)
			}

			s, err := postgres.New(db, postgres.WithTable(table))
			if err != nil {
				t.Fatal(err)
			}
			chain := newChain(t, s)
			if _, err := s.Revoke(ctx, testOwner, after.ID, store.Revocation{At: time.Now()}); err != nil {
				t.Fatal(err)
			}
			// The earlier release's poll, as it ran it, still sees the change.
			rows, err := db.QueryContext(ctx, `SELECT k.hash FROM `+table+` k WHERE k.changed_at > $1::timestamptz - interval '1 minute'`, oldPos)
			if err != nil {
				t.Fatal(err)
			}
			var oldSaw []apikey.Hash
			for rows.Next() {
				var h []byte
				if err := rows.Scan(&h); err != nil {
					t.Fatal(err)
				}
				oldSaw = append(oldSaw, apikey.Hash(h))
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(oldSaw, after.Hash) {
				t.Error("an instance of the earlier release, polling by changed_at, missed a revocation made after 0005")
			}
			// Its position means nothing to the new store.
			if _, _, err := s.Changes(ctx, timePosition(oldPos)); !errors.Is(err, store.ErrInvalidCursor) {
				t.Errorf("Changes with a position of the earlier release = %v, want ErrInvalidCursor", err)
			}
			changed := chain.poll(t)
			if !slices.Contains(changed, after.Hash) || slices.Contains(changed, before.Hash) {
				t.Errorf("the new feed reported the revocation after 0005: %v, the one before: %v; want true, false",
					slices.Contains(changed, after.Hash), slices.Contains(changed, before.Hash))
			}
		})
	}
}

// Every object the migrations name after the table keeps its name, for the
// longest table name WithTable accepts: none is cut to PostgreSQL's 63
// bytes.
func TestMigrateLongestTableName(t *testing.T) {
	db := pgtest.DB(t)
	schema := pgtest.Schema(t, db)
	name := strings.Repeat("k", 45)
	table := schema + "." + name
	if err := postgres.Migrate(context.Background(), db, postgres.WithTable(table)); err != nil {
		t.Fatal(err)
	}
	checkUsable(t, db, table)
	var objects []string
	rows, err := db.QueryContext(context.Background(), `SELECT relname FROM pg_class WHERE relnamespace = $1::regnamespace
UNION ALL SELECT conname FROM pg_constraint WHERE connamespace = $1::regnamespace AND contype <> 'n'
UNION ALL SELECT tgname FROM pg_trigger JOIN pg_class c ON c.oid = tgrelid WHERE c.relnamespace = $1::regnamespace AND NOT tgisinternal
UNION ALL SELECT proname FROM pg_proc WHERE pronamespace = $1::regnamespace`, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			t.Fatal(err)
		}
		objects = append(objects, o)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "_hash_key", "_owner_created_idx", "_idempotency_key", "_changed_xid_idx",
		"_owner_check", "_idempotency_check", "_replaced_by_check", "_reason_check", "_exposure_check", "_policy_check",
		"_guard", "_stamp_change", "_trips", "_trips_pkey", "_trips_key_fkey", "_trips_at_idx", "_migrations",
		"_audit", "_audit_pkey", "_audit_check", "_audit_key_idx", "_audit_heads", "_audit_heads_pkey",
		"_audit_refuse", "_audit_append_only", "_audit_append", "_usage", "_usage_pkey", "_usage_hour_idx"} {
		if !slices.Contains(objects, name+suffix) {
			t.Errorf("no object named <table>%s", suffix)
		}
	}
	for _, o := range objects {
		if !strings.HasPrefix(o, name) && !strings.HasPrefix(o, "pg_toast") {
			t.Errorf("object %q is not named after the table", o)
		}
	}
}

// Keys stored before migration 0006 read back with no revocation reason,
// no exposure, and as plain keys, not canaries; they can be reported
// exposed, revoked ones too, and a key revoked before keeps its revocation
// and has no reason. The new checks, NOT VALID so that the migration
// does not read the whole table, hold for the rows already there.
func TestMigrate0006KeepsExistingKeys(t *testing.T) {
	db := pgtest.DB(t)
	table := pgtest.Schema(t, db) + ".api_keys"
	ctx := context.Background()
	migrateTo(t, db, table, 5)
	// Keys written by raw SQL, as the store of that release wrote them.
	base := time.Now().Add(-time.Hour).Truncate(time.Microsecond).UTC()
	var recs []apikey.Record
	for i := range 3 {
		rec := newRecord(t)
		rec.Name = fmt.Sprintf("key %d before 0006", i)
		rec.CreatedAt = base.Add(time.Duration(i) * time.Second)
		if _, err := db.ExecContext(ctx, `INSERT INTO `+table+` (id, owner, hash, prefix, name, mode, scopes, created_at)
VALUES ($1, $2, $3, $4, $5, 'live', '{sessions:write}', $6)`, rec.ID, rec.Owner, rec.Hash[:], rec.Prefix, rec.Name, rec.CreatedAt); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	recs[1].RevokedAt = base.Add(time.Minute)
	if _, err := db.ExecContext(ctx, "UPDATE "+table+" SET revoked_at = $2 WHERE id = $1", recs[1].ID, recs[1].RevokedAt); err != nil {
		t.Fatal(err)
	}

	if err := postgres.Migrate(ctx, db, postgres.WithTable(table)); err != nil {
		t.Fatalf("Migrate to 0006: %v", err)
	}
	checkVersions(t, db, table)
	s, err := postgres.New(db, postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range recs {
		got, err := s.Get(ctx, testOwner, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d := diff(got, want); d != "" {
			t.Errorf("key %q differs after 0006: %s", want.Name, d)
		}
	}
	e := apikey.Exposure{At: base.Add(time.Hour), Source: "github"}
	got, err := s.Expose(ctx, testOwner, recs[1].ID, e, true)
	if err != nil {
		t.Fatalf("Expose of a key revoked before 0006: %v", err)
	}
	if got.RevokedReason != "" || !got.RevokedAt.Equal(recs[1].RevokedAt) || got.Exposure == nil || got.Exposure.Source != "github" {
		t.Errorf("the key revoked before 0006, reported exposed = revoked at %v for %q, exposure %+v; want its revocation unchanged and the exposure",
			got.RevokedAt, got.RevokedReason, got.Exposure)
	}
	if _, err := s.Revoke(ctx, testOwner, recs[0].ID, store.Revocation{At: time.Now(), Reason: "rotated out"}); err != nil {
		t.Fatal(err)
	}
	// VALIDATE CONSTRAINT finds nothing against the checks (0007's, which
	// Migrate applied too, among them).
	validateChecks(t, db, table, "api_keys_exposure_check", "api_keys_policy_check", "api_keys_reason_check")
}

// validateChecks fails unless the table's constraints NOT VALID are those
// named, in order, and VALIDATE CONSTRAINT finds no row against them.
func validateChecks(t *testing.T, db *sql.DB, table string, want ...string) {
	t.Helper()
	ctx := context.Background()
	var notValid []string
	rows, err := db.QueryContext(ctx, `SELECT conname FROM pg_constraint WHERE conrelid = $1::regclass AND NOT convalidated ORDER BY conname`, table)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		notValid = append(notValid, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if !slices.Equal(notValid, want) {
		t.Errorf("constraints NOT VALID = %v, want %v", notValid, want)
	}
	for _, c := range notValid {
		if _, err := db.ExecContext(ctx, "ALTER TABLE "+table+" VALIDATE CONSTRAINT "+c); err != nil {
			t.Errorf("VALIDATE CONSTRAINT %s: %v", c, err)
		}
	}
}

// Keys stored before migration 0007, in every form the record's rarely
// set fields took (none, metadata, a revocation reason, an exposure, a
// canary), read back as they were, without a policy, through every read;
// an active one can be given a policy, which the change feed reports, and
// a revoked one cannot. The new check, NOT VALID so that the migration
// does not read the whole table, holds for the rows already there.
func TestMigrate0007KeepsExistingKeys(t *testing.T) {
	db := pgtest.DB(t)
	table := pgtest.Schema(t, db) + ".api_keys"
	ctx := context.Background()
	migrateTo(t, db, table, 6)
	// Keys written by raw SQL, as the store of that release wrote them.
	base := time.Now().Add(-time.Hour).Truncate(time.Microsecond).UTC()
	keys := map[string]*apikey.Record{}
	for i, name := range []string{"plain", "tagged", "revoked", "exposed", "canary"} {
		rec := newRecord(t)
		rec.Name = name + " before 0007"
		rec.CreatedAt = base.Add(time.Duration(i) * time.Second)
		rec.Canary = name == "canary"
		if name == "tagged" {
			rec.Metadata = apikey.MustMetadata(map[string]string{"team": "billing"})
		}
		md, err := rec.Metadata.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO `+table+` (id, owner, hash, prefix, name, mode, scopes, metadata, created_at, canary)
VALUES ($1, $2, $3, $4, $5, 'live', '{sessions:write}', $6::text::jsonb, $7, $8)`,
			rec.ID, rec.Owner, rec.Hash[:], rec.Prefix, rec.Name, string(md), rec.CreatedAt, rec.Canary); err != nil {
			t.Fatal(err)
		}
		keys[name] = &rec
	}
	revoked, exposed := keys["revoked"], keys["exposed"]
	revoked.RevokedAt, revoked.RevokedReason = base.Add(time.Minute), "laptop stolen"
	exposed.Exposure = &apikey.Exposure{At: base.Add(2 * time.Minute), Source: "github", URL: "https://github.com/acme/app/blob/0123abc/.env#L3"}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"UPDATE " + table + " SET revoked_at = $2, revoked_reason = $3 WHERE id = $1", []any{revoked.ID, revoked.RevokedAt, revoked.RevokedReason}},
		{"UPDATE " + table + " SET exposed_at = $2, exposed_source = $3, exposed_url = $4 WHERE id = $1",
			[]any{exposed.ID, exposed.Exposure.At, exposed.Exposure.Source, exposed.Exposure.URL}},
	} {
		if _, err := db.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}

	if err := postgres.Migrate(ctx, db, postgres.WithTable(table)); err != nil {
		t.Fatalf("Migrate to 0007: %v", err)
	}
	checkVersions(t, db, table)
	s, err := postgres.New(db, postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	page, err := s.List(ctx, testOwner, store.ListOptions{})
	if err != nil {
		t.Fatalf("List after 0007: %v", err)
	}
	if len(page.Records) != len(keys) {
		t.Errorf("List after 0007 = %d keys, want %d", len(page.Records), len(keys))
	}
	for name, want := range keys {
		got, err := s.Get(ctx, testOwner, want.ID)
		if err != nil {
			t.Fatalf("Get of the %s key: %v", name, err)
		}
		byHash, err := s.GetByHash(ctx, want.Hash)
		if err != nil {
			t.Fatalf("GetByHash of the %s key: %v", name, err)
		}
		for _, got := range []apikey.Record{got, byHash} {
			if d := diff(got, *want); d != "" {
				t.Errorf("the %s key differs after 0007: %s", name, d)
			}
		}
	}

	chain := newChain(t, s)
	policy := &apikey.Policy{Rate: apikey.RateLimit{Requests: 10, Period: time.Second}}
	for _, name := range []string{"plain", "tagged", "exposed", "canary"} {
		got, err := s.Update(ctx, testOwner, keys[name].ID, store.Update{Policy: policy})
		if err != nil {
			t.Fatalf("giving the %s key a policy: %v", name, err)
		}
		want := *keys[name]
		want.Policy = policy
		if d := diff(got, want); d != "" {
			t.Errorf("the %s key given a policy differs beyond it: %s", name, d)
		}
	}
	if _, err := s.Update(ctx, testOwner, revoked.ID, store.Update{Policy: policy}); !errors.Is(err, store.ErrAlreadyRevoked) {
		t.Errorf("giving the key revoked before 0007 a policy = %v, want ErrAlreadyRevoked", err)
	}
	changed := chain.poll(t)
	if !slices.Contains(changed, keys["plain"].Hash) || slices.Contains(changed, revoked.Hash) {
		t.Errorf("the feed reported the policy given to a key from before 0007: %v, the revoked key left alone: %v; want true, false",
			slices.Contains(changed, keys["plain"].Hash), slices.Contains(changed, revoked.Hash))
	}
	// Migrate applied 0006's checks and 0007's: all NOT VALID.
	validateChecks(t, db, table, "api_keys_exposure_check", "api_keys_policy_check", "api_keys_reason_check")
}

// Migration 0008 leaves the keys alone: keys of the release before it read
// back as they were, verify, have no entry, and their first change after
// it starts their owner's chain; their uses are counted from then on.
func TestMigrate0008KeepsExistingKeys(t *testing.T) {
	db := pgtest.DB(t)
	table := pgtest.Schema(t, db) + ".api_keys"
	ctx := context.Background()
	migrateTo(t, db, table, 7)
	var keys []apikey.Record
	for i := range 2 {
		rec := newRecord(t)
		rec.Name = fmt.Sprint("before 0008 #", i)
		rec.CreatedAt = rec.CreatedAt.Truncate(time.Microsecond).UTC()
		if _, err := db.ExecContext(ctx, `INSERT INTO `+table+` (id, owner, hash, prefix, name, mode, scopes, created_at)
VALUES ($1, $2, $3, $4, $5, 'live', '{sessions:write}', $6)`,
			rec.ID, rec.Owner, rec.Hash[:], rec.Prefix, rec.Name, rec.CreatedAt); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, rec)
	}
	if err := postgres.Migrate(ctx, db, postgres.WithTable(table)); err != nil {
		t.Fatal(err)
	}
	checkVersions(t, db, table)
	s, err := postgres.New(db, postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range keys {
		got, err := s.GetByHash(ctx, want.Hash)
		if err != nil {
			t.Fatal(err)
		}
		if d := diff(got, want); d != "" {
			t.Errorf("key %q after 0008 differs: %s", want.Name, d)
		}
	}
	checkChain(t, s, testOwner, 0)
	if _, err := s.Revoke(ctx, testOwner, keys[1].ID, store.Revocation{At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := s.RecordUses(ctx, []store.Use{{ID: keys[0].ID, At: now, Hour: now, Counts: store.Counts{Verified: 3}}}); err != nil {
		t.Fatal(err)
	}
	if entries := checkChain(t, s, testOwner, 1); len(entries) == 1 && (entries[0].Kind != audit.Revoked || entries[0].KeyID != keys[1].ID) {
		t.Errorf("the first entry after 0008 = %s of %s, want the revocation of %s", entries[0].Kind, entries[0].KeyID, keys[1].ID)
	}
	usage, err := s.Usage(ctx, testOwner, store.UsageQuery{Keys: []uuid.UUID{keys[0].ID}, From: now, To: now})
	if err != nil || len(usage) != 1 || usage[0].Counts.Verified != 3 {
		t.Errorf("Usage after 0008 = %+v, %v; want 3 verifications", usage, err)
	}
}

// A table migrated under its unqualified name, found through the
// search_path, works through a store given its qualified name on a
// session whose search_path does not name its schema, and the other way
// round: the audit trail's function finds its tables in its own schema.
func TestMigrateUnqualifiedUseQualified(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	for _, migrateQualified := range []bool{false, true} {
		t.Run(fmt.Sprint("migrated qualified=", migrateQualified), func(t *testing.T) {
			schema := pgtest.Schema(t, db)
			inSchema, err := sql.Open("pgx", pgtest.SearchPath(pgtest.DSN(t), schema))
			if err != nil {
				t.Fatal(err)
			}
			defer inSchema.Close()
			migrator, user, name := inSchema, db, schema+".api_keys"
			if migrateQualified {
				migrator, user = db, inSchema
			}
			migrateAs := "api_keys"
			if migrateQualified {
				migrateAs = name
			}
			if err := postgres.Migrate(ctx, migrator, postgres.WithTable(migrateAs)); err != nil {
				t.Fatal(err)
			}
			useAs := name
			if migrateQualified {
				useAs = "api_keys"
			}
			s, err := postgres.New(user, postgres.WithTable(useAs))
			if err != nil {
				t.Fatal(err)
			}
			rec := mustCreate(t, s, newRecord(t))
			if _, err := s.Revoke(ctx, testOwner, rec.ID, store.Revocation{At: time.Now()}); err != nil {
				t.Fatal(err)
			}
			checkChain(t, s, testOwner, 2)
		})
	}
}
