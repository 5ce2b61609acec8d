package postgres_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/postgres"
)

// guarded is a table with a revoked and an active key, for raw SQL to
// attack.
type guarded struct {
	table           string
	store           *postgres.Store
	revoked, active apikey.Record
	revokedAt       time.Time
}

func newGuarded(t *testing.T, db *sql.DB) guarded {
	t.Helper()
	g := guarded{table: pgtest.Schema(t, db) + ".api_keys"}
	if err := postgres.Migrate(context.Background(), db, postgres.WithTable(g.table)); err != nil {
		t.Fatal(err)
	}
	var err error
	if g.store, err = postgres.New(db, postgres.WithTable(g.table)); err != nil {
		t.Fatal(err)
	}
	g.revoked = mustCreate(t, g.store, newRecord(t))
	g.active = mustCreate(t, g.store, newRecord(t))
	rec, err := g.store.Revoke(context.Background(), g.revoked.ID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	g.revokedAt = rec.RevokedAt
	return g
}

// attacks are statements that would undo a revocation or change a key's
// identity, for exec.
var attacks = []struct{ name, sql string }{
	{"un-revoke", `UPDATE {t} SET revoked_at = NULL WHERE id = {r}`},
	{"un-revoke every key", `UPDATE {t} SET revoked_at = NULL WHERE true`},
	{"move the revocation time", `UPDATE {t} SET revoked_at = revoked_at + interval '1 day' WHERE id = {r}`},
	{"delete the revoked key", `DELETE FROM {t} WHERE id = {r}`},
	{"truncate", `TRUNCATE {t}`},
	{"change the mode", `UPDATE {t} SET mode = 'test' WHERE id = {a}`},
	{"change the hash", `UPDATE {t} SET hash = sha256(hash) WHERE id = {a}`},
	{"give the revoked hash to the active key", `UPDATE {t} SET hash = (SELECT hash FROM {t} WHERE id = {r}) || '' WHERE id = {a}`},
	{"change the prefix", `UPDATE {t} SET prefix = 'ck_live_other' WHERE id = {a}`},
	{"change the ID", `UPDATE {t} SET id = gen_random_uuid() WHERE id = {a}`},
	{"change the creation time", `UPDATE {t} SET created_at = created_at - interval '1 day' WHERE id = {a}`},
}

// exec runs a statement after replacing {t} with the table, {r} and {a}
// with the IDs of the revoked and the active key.
func (g guarded) exec(ctx context.Context, db postgres.DB, query string) error {
	query = strings.NewReplacer("{t}", g.table,
		"{r}", "'"+g.revoked.ID.String()+"'",
		"{a}", "'"+g.active.ID.String()+"'").Replace(query)
	_, err := db.ExecContext(ctx, query)
	return err
}

// checkIntact fails unless both keys are as the store left them.
func (g guarded) checkIntact(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	got, err := g.store.GetByHash(ctx, g.revoked.Hash)
	if err != nil {
		t.Fatalf("the revoked key: %v", err)
	}
	if got.RevokedAt != g.revokedAt {
		t.Errorf("revoked_at = %v, want %v", got.RevokedAt, g.revokedAt)
	}
	got, err = g.store.GetByHash(ctx, g.active.Hash)
	if err != nil {
		t.Fatalf("the active key: %v", err)
	}
	if got.ID != g.active.ID || got.Mode != g.active.Mode || got.Prefix != g.active.Prefix ||
		!got.CreatedAt.Equal(store.Time(g.active.CreatedAt)) {
		t.Errorf("the active key changed: %+v", got)
	}
}

// refused fails unless err is the guard's refusal.
func refused(t *testing.T, err error) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23000" || !strings.Contains(pgErr.Message, "keyward:") {
		t.Errorf("statement = %v, want the guard's integrity_constraint_violation", err)
	}
}

// The guard holds against raw SQL run by the table's owner (here a
// superuser) too, as long as the triggers are enabled.
func TestGuardRefusesRawSQL(t *testing.T) {
	db := pgtest.DB(t)
	g := newGuarded(t, db)
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			refused(t, g.exec(context.Background(), db, a.sql))
			g.checkIntact(t)
		})
	}
}

// What the application legitimately changes still works, and changed_at
// cannot be forged.
func TestGuardAllows(t *testing.T) {
	db := pgtest.DB(t)
	g := newGuarded(t, db)
	ctx := context.Background()
	for _, q := range []string{
		`UPDATE {t} SET name = 'renamed', scopes = '{links:read}' WHERE id IN ({r}, {a})`,
		`UPDATE {t} SET last_used_at = now() WHERE id IN ({r}, {a})`,
		`UPDATE {t} SET expires_at = now() + interval '1 hour' WHERE id = {a}`,
	} {
		if err := g.exec(ctx, db, q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	g.checkIntact(t)

	if err := g.exec(ctx, db, `UPDATE {t} SET changed_at = '2000-01-01' WHERE id IN ({r}, {a})`); err != nil {
		t.Fatal(err)
	}
	var forged int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+g.table+` WHERE changed_at < '2001-01-01'`).Scan(&forged); err != nil {
		t.Fatal(err)
	}
	if forged != 0 {
		t.Errorf("%d rows took a changed_at set by SQL, want the trigger's", forged)
	}

	// A key never revoked may be deleted: that revokes nothing.
	if err := g.exec(ctx, db, `DELETE FROM {t} WHERE id = {a}`); err != nil {
		t.Errorf("deleting an active key: %v", err)
	}
}

// An application role that does not own the table, with every data
// privilege on it, can neither undo a revocation nor switch the guard off.
func TestGuardHoldsForTheApplicationRole(t *testing.T) {
	db := pgtest.DB(t)
	g := newGuarded(t, db)
	ctx := context.Background()

	var b [6]byte
	rand.Read(b[:])
	role := "kwtest_app_" + hex.EncodeToString(b[:])
	schema, _, _ := strings.Cut(g.table, ".")
	if _, err := db.ExecContext(ctx, "CREATE ROLE "+role); err != nil {
		t.Skipf("cannot create a role on this server (%v): the test needs CREATEROLE", err)
	}
	t.Cleanup(func() {
		if _, err := db.ExecContext(context.Background(), "DROP OWNED BY "+role+"; DROP ROLE "+role); err != nil {
			t.Errorf("dropping role %s: %v", role, err)
		}
	})
	for _, q := range []string{
		"GRANT USAGE ON SCHEMA " + schema + " TO " + role,
		"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON " + g.table + " TO " + role,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET ROLE "+role); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(context.Background(), "RESET ROLE")

	// The role can do the store's work.
	app, err := postgres.New(conn, postgres.WithTable(g.table))
	if err != nil {
		t.Fatal(err)
	}
	rec := mustCreate(t, app, newRecord(t))
	if _, err := app.Revoke(ctx, rec.ID, time.Now()); err != nil {
		t.Fatalf("Revoke as the application role: %v", err)
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			refused(t, g.exec(ctx, conn, a.sql))
		})
	}
	for _, esc := range []struct{ name, sql string }{
		{"disable every trigger", "ALTER TABLE " + g.table + " DISABLE TRIGGER ALL"},
		{"disable the guard", "ALTER TABLE " + g.table + " DISABLE TRIGGER api_keys_guard"},
		{"drop the guard", "DROP TRIGGER api_keys_guard ON " + g.table},
		{"drop its function", "DROP FUNCTION " + schema + ".api_keys_guard() CASCADE"},
		{"skip triggers as a replica", "SET session_replication_role = replica"},
	} {
		t.Run(esc.name, func(t *testing.T) {
			_, err := conn.ExecContext(ctx, esc.sql)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
				t.Errorf("%s = %v, want insufficient_privilege", esc.sql, err)
			}
		})
	}
	g.checkIntact(t)
}
