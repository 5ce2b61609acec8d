package postgres_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/postgres"
)

// guarded is a table with keys in every state, made through the store, for
// raw SQL to attack:
//
//	{r} revoked, with a reason, an expiry, metadata and a policy
//	{a} active, with two scopes, an expiry, metadata and a policy
//	{u} active, without expiry
//	{o} rotated: replaced by {n}
//	{n} the replacement of {o}
//	{i} created with an idempotency key
//	{e} exposed, not revoked
//	{x} exposed and revoked for it, without a policy
//	{c} a canary
type guarded struct {
	table string
	store *postgres.Store
	keys  map[string]apikey.Record // by placeholder letter, as stored
}

func newGuarded(t *testing.T, db *sql.DB) guarded {
	t.Helper()
	ctx := context.Background()
	g := guarded{table: pgtest.Schema(t, db) + ".api_keys", keys: map[string]apikey.Record{}}
	if err := postgres.Migrate(ctx, db, postgres.WithTable(g.table)); err != nil {
		t.Fatal(err)
	}
	var err error
	if g.store, err = postgres.New(db, postgres.WithTable(g.table)); err != nil {
		t.Fatal(err)
	}
	withAll := func() apikey.Record {
		rec := newRecord(t)
		rec.Scopes = scope.NewSet(scope.SessionsWrite, scope.LinksRead)
		rec.ExpiresAt = time.Now().Add(24 * time.Hour)
		rec.Metadata = apikey.MustMetadata(map[string]string{"team": "billing"})
		return rec
	}
	withPolicy := func() apikey.Record {
		rec := withAll()
		rec.Policy = guardedPolicy()
		return rec
	}
	ids := map[string]uuid.UUID{}
	r := mustCreate(t, g.store, withPolicy())
	if _, err := g.store.Revoke(ctx, testOwner, r.ID, store.Revocation{At: time.Now(), Reason: "laptop stolen"}); err != nil {
		t.Fatal(err)
	}
	ids["r"] = r.ID
	ids["a"] = mustCreate(t, g.store, withPolicy()).ID
	ids["u"] = mustCreate(t, g.store, newRecord(t)).ID
	ids["o"] = mustCreate(t, g.store, newRecord(t)).ID
	next := newRecord(t)
	next.Replaces = ids["o"]
	if _, _, err := g.store.Rotate(ctx, testOwner, ids["o"], next, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	ids["n"] = next.ID
	i, err := g.store.Create(ctx, newRecord(t), guardedIdem)
	if err != nil {
		t.Fatal(err)
	}
	ids["i"] = i.ID
	for letter, revoke := range map[string]bool{"e": false, "x": true} {
		rec := mustCreate(t, g.store, withAll())
		e := apikey.Exposure{At: time.Now(), Source: "github", URL: "https://github.com/acme/app/blob/0123abc/.env#L3"}
		if _, err := g.store.Expose(ctx, testOwner, rec.ID, e, revoke); err != nil {
			t.Fatal(err)
		}
		ids[letter] = rec.ID
	}
	canary := newRecord(t)
	canary.Canary = true
	ids["c"] = mustCreate(t, g.store, canary).ID
	for letter, id := range ids {
		if g.keys[letter], err = g.store.Get(ctx, testOwner, id); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

// guardedPolicy returns the policy of keys {r} and {a}, stored as
// {"quota": {"per": "day", "requests": 1000}, "networks": ["203.0.113.0/24"]}.
func guardedPolicy() *apikey.Policy {
	return &apikey.Policy{
		Quota:    apikey.Quota{Requests: 1000, Per: apikey.Day},
		Networks: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")},
	}
}

// guardedIdem is the idempotency of key {i}.
var guardedIdem = store.Idempotency{Key: [32]byte{1}, Request: [32]byte{2}}

// exec runs a statement after replacing {t} with the table and {x} with the
// quoted ID of key x.
func (g guarded) exec(ctx context.Context, db postgres.DB, query string) error {
	pairs := []string{"{t}", g.table}
	for letter, rec := range g.keys {
		pairs = append(pairs, "{"+letter+"}", "'"+rec.ID.String()+"'")
	}
	_, err := db.ExecContext(ctx, strings.NewReplacer(pairs...).Replace(query))
	return err
}

// checkIntact fails unless every key is as the store left it, idempotency
// digests included.
func (g guarded) checkIntact(t *testing.T, db *sql.DB) {
	t.Helper()
	ctx := context.Background()
	for letter, want := range g.keys {
		got, err := g.store.GetByHash(ctx, want.Hash)
		if err != nil {
			t.Fatalf("key {%s}: %v", letter, err)
		}
		if d := diff(got, want); d != "" {
			t.Errorf("key {%s} changed: %s", letter, d)
		}
	}
	var with, exact int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FILTER (WHERE idempotency_key IS NOT NULL OR idempotency_request IS NOT NULL), "+
		"count(*) FILTER (WHERE id = $1 AND idempotency_key = $2 AND idempotency_request = $3) FROM "+g.table,
		g.keys["i"].ID, guardedIdem.Key[:], guardedIdem.Request[:]).Scan(&with, &exact); err != nil {
		t.Fatal(err)
	}
	if with != 1 || exact != 1 {
		t.Errorf("%d keys have idempotency digests, %d of them key {i}'s; want key {i} alone", with, exact)
	}
}

// diff describes how two records differ, or returns "".
func diff(got, want apikey.Record) string {
	var d []string
	check := func(field string, same bool) {
		if !same {
			d = append(d, field)
		}
	}
	check("id", got.ID == want.ID)
	check("owner", got.Owner == want.Owner)
	check("name", got.Name == want.Name)
	check("prefix", got.Prefix == want.Prefix)
	check("mode", got.Mode == want.Mode)
	check("scopes", got.Scopes.Equal(want.Scopes))
	check("metadata", got.Metadata.Equal(want.Metadata))
	check("hash", got.Hash == want.Hash)
	check("created_at", got.CreatedAt.Equal(want.CreatedAt))
	check("last_used_at", got.LastUsedAt.Equal(want.LastUsedAt))
	check("revoked_at", got.RevokedAt.Equal(want.RevokedAt))
	check("expires_at", got.ExpiresAt.Equal(want.ExpiresAt))
	check("replaces", got.Replaces == want.Replaces)
	check("replaced_by", got.ReplacedBy == want.ReplacedBy)
	check("revoked_reason", got.RevokedReason == want.RevokedReason)
	check("exposure", got.Exposure == nil && want.Exposure == nil ||
		got.Exposure != nil && want.Exposure != nil && got.Exposure.At.Equal(want.Exposure.At) &&
			got.Exposure.Source == want.Exposure.Source && got.Exposure.URL == want.Exposure.URL)
	check("canary", got.Canary == want.Canary)
	check("policy", reflect.DeepEqual(got.Policy, want.Policy))
	return strings.Join(d, ", ")
}

// Reasons the guard gives, for attacks to name the rule they break.
const (
	identity  = "never change"
	final     = "is revoked"
	noDelete  = "cannot be deleted"
	noTrunc   = "cannot be truncated"
	earlier   = "can only move earlier"
	narrower  = "can only be narrowed"
	keepsLink = "stays linked"
	reasonNow = "set only when it is revoked"
	firstSeen = "stays as first reported"
)

// attacks are statements that each break one rule of the guard, with the
// reason the guard must give.
var attacks = []struct{ name, sql, why string }{
	// Revocation is final.
	{"un-revoke", `UPDATE {t} SET revoked_at = NULL WHERE id = {r}`, final},
	{"un-revoke every key", `UPDATE {t} SET revoked_at = NULL WHERE true`, final},
	{"move the revocation time", `UPDATE {t} SET revoked_at = revoked_at + interval '1 day' WHERE id = {r}`, final},
	{"delete the revoked key", `DELETE FROM {t} WHERE id = {r}`, noDelete},
	// TRUNCATE alone fails on the trips' foreign key (0A000, see
	// TestGuardRefusesPlainTruncate); with CASCADE, it reaches the guard.
	{"truncate", `TRUNCATE {t} CASCADE`, noTrunc},
	// The reason is the revocation's: set with it, final with it.
	{"change the revocation reason", `UPDATE {t} SET revoked_reason = 'rotated out' WHERE id = {r}`, final},
	{"clear the revocation reason", `UPDATE {t} SET revoked_reason = NULL WHERE id = {r}`, final},
	{"change the reason of a key revoked as exposed", `UPDATE {t} SET revoked_reason = 'rotated out' WHERE id = {x}`, final},
	{"give an active key a revocation reason", `UPDATE {t} SET revoked_reason = 'suspicious' WHERE id = {a}`, reasonNow},
	// An exposure stays as first reported.
	{"clear the exposure", `UPDATE {t} SET exposed_at = NULL, exposed_source = NULL, exposed_url = NULL WHERE id = {e}`, firstSeen},
	{"clear every exposure", `UPDATE {t} SET exposed_at = NULL, exposed_source = NULL, exposed_url = NULL WHERE true`, firstSeen},
	{"clear the exposure of a key revoked for it", `UPDATE {t} SET exposed_at = NULL, exposed_source = NULL, exposed_url = NULL WHERE id = {x}`, firstSeen},
	{"move the exposure's time", `UPDATE {t} SET exposed_at = exposed_at + interval '1 day' WHERE id = {e}`, firstSeen},
	{"change the exposure's source", `UPDATE {t} SET exposed_source = 'support' WHERE id = {e}`, firstSeen},
	{"change the exposure's URL", `UPDATE {t} SET exposed_url = 'https://example.com/' WHERE id = {x}`, firstSeen},
	// A revoked key never changes.
	{"rename a revoked key", `UPDATE {t} SET name = 'renamed' WHERE id = {r}`, final},
	{"narrow a revoked key's scopes", `UPDATE {t} SET scopes = '{sessions:write}' WHERE id = {r}`, final},
	{"change a revoked key's metadata", `UPDATE {t} SET metadata = '{}' WHERE id = {r}`, final},
	{"move a revoked key's expiry earlier", `UPDATE {t} SET expires_at = expires_at - interval '1 hour' WHERE id = {r}`, final},
	{"link a revoked key to a replacement", `UPDATE {t} SET replaced_by = {a} WHERE id = {r}`, final},
	{"lift a revoked key's policy", `UPDATE {t} SET policy = NULL WHERE id = {r}`, final},
	{"lift every policy", `UPDATE {t} SET policy = NULL WHERE true`, final},
	{"change a revoked key's policy", `UPDATE {t} SET policy = '{"quota": {"requests": 1000000, "per": "day"}}' WHERE id = {r}`, final},
	{"widen a revoked key's networks", `UPDATE {t} SET policy = jsonb_set(policy, '{networks}', '["0.0.0.0/0"]') WHERE id = {r}`, final},
	{"give a revoked key a policy", `UPDATE {t} SET policy = '{"rate": {"requests": 1, "period": "1s"}}' WHERE id = {x}`, final},
	// A key's identity never changes.
	{"change the ID", `UPDATE {t} SET id = gen_random_uuid() WHERE id = {a}`, identity},
	{"change the owner", `UPDATE {t} SET owner = 'acct_evil' WHERE id = {a}`, identity},
	{"move every key to another owner", `UPDATE {t} SET owner = 'acct_evil' WHERE true`, identity},
	{"change the hash", `UPDATE {t} SET hash = sha256(hash) WHERE id = {a}`, identity},
	{"give the revoked hash to the active key", `UPDATE {t} SET hash = (SELECT hash FROM {t} WHERE id = {r}) || '' WHERE id = {a}`, identity},
	{"change the prefix", `UPDATE {t} SET prefix = 'ck_live_other' WHERE id = {a}`, identity},
	{"change the mode", `UPDATE {t} SET mode = 'test' WHERE id = {a}`, identity},
	{"change the creation time", `UPDATE {t} SET created_at = created_at - interval '1 day' WHERE id = {a}`, identity},
	{"unlink a replacement from its old key", `UPDATE {t} SET replaces = NULL WHERE id = {n}`, identity},
	{"claim a key replaced another", `UPDATE {t} SET replaces = {r} WHERE id = {a}`, identity},
	{"clear the idempotency digests", `UPDATE {t} SET idempotency_key = NULL, idempotency_request = NULL WHERE id = {i}`, identity},
	{"change the request digest", `UPDATE {t} SET idempotency_request = sha256(idempotency_request) WHERE id = {i}`, identity},
	{"give a key an idempotency key", `UPDATE {t} SET idempotency_key = sha256('k'), idempotency_request = sha256('r') WHERE id = {a}`, identity},
	{"make a key a canary", `UPDATE {t} SET canary = true WHERE id = {a}`, identity},
	{"disarm a canary", `UPDATE {t} SET canary = false WHERE id = {c}`, identity},
	{"disarm every canary", `UPDATE {t} SET canary = false WHERE true`, identity},
	// An expiry only moves earlier.
	{"extend the expiry", `UPDATE {t} SET expires_at = expires_at + interval '1 second' WHERE id = {a}`, earlier},
	{"remove the expiry", `UPDATE {t} SET expires_at = NULL WHERE id = {a}`, earlier},
	{"remove the expiry with a rename", `UPDATE {t} SET name = 'innocent', expires_at = NULL WHERE id = {a}`, earlier},
	{"remove the expiry the rotation set", `UPDATE {t} SET expires_at = NULL WHERE id = {o}`, earlier},
	// Scopes only shrink, never to none.
	{"add a scope", `UPDATE {t} SET scopes = scopes || '{customers:write}' WHERE id = {a}`, narrower},
	{"swap a scope", `UPDATE {t} SET scopes = '{customers:write}' WHERE id = {a}`, narrower},
	{"remove every scope", `UPDATE {t} SET scopes = '{}' WHERE id = {a}`, narrower},
	// A rotated key stays linked to its replacement.
	{"unlink the old key", `UPDATE {t} SET replaced_by = NULL WHERE id = {o}`, keepsLink},
}

// refused fails unless err is the guard's refusal, for the reason why.
func refused(t *testing.T, err error, why string) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23000" || !strings.HasPrefix(pgErr.Message, "keyward:") ||
		!strings.Contains(pgErr.Message, why) {
		t.Errorf("statement = %v, want the guard's integrity_constraint_violation saying %q", err, why)
	}
}

// The guard holds against raw SQL run by the table's owner (here a
// superuser) too, as long as the triggers are enabled.
func TestGuardRefusesRawSQL(t *testing.T) {
	db := pgtest.DB(t)
	g := newGuarded(t, db)
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			refused(t, g.exec(context.Background(), db, a.sql), a.why)
			g.checkIntact(t, db)
		})
	}
}

// TRUNCATE without CASCADE is refused before the guard runs: the keys are
// referenced by their trips' foreign key.
func TestGuardRefusesPlainTruncate(t *testing.T) {
	db := pgtest.DB(t)
	g := newGuarded(t, db)
	var pgErr *pgconn.PgError
	if err := g.exec(context.Background(), db, `TRUNCATE {t}`); !errors.As(err, &pgErr) || pgErr.Code != "0A000" {
		t.Errorf("TRUNCATE = %v, want feature_not_supported: the table is referenced by a foreign key", err)
	}
	g.checkIntact(t, db)
}

// The table's checks refuse malformed reasons and exposures (SQLSTATE
// 23514), at the limits of package apikey, whoever writes them.
func TestChecksRefuseMalformedValues(t *testing.T) {
	db := pgtest.DB(t)
	g := newGuarded(t, db)
	ctx := context.Background()
	exposeSQL := `UPDATE {t} SET exposed_at = now(), exposed_source = $1, exposed_url = $2 WHERE id = {a}`
	revokeSQL := `UPDATE {t} SET revoked_at = now(), revoked_reason = $1 WHERE id = {a}`
	url := func(n int) string { return "https://x.test/" + strings.Repeat("u", n-len("https://x.test/")) }
	tests := []struct {
		name string
		sql  string
		args []any
	}{
		{"an exposure without source nor URL", `UPDATE {t} SET exposed_at = now() WHERE id = {a}`, nil},
		{"an exposure without time", `UPDATE {t} SET exposed_source = 'github', exposed_url = '' WHERE id = {a}`, nil},
		{"an exposure without URL", `UPDATE {t} SET exposed_at = now(), exposed_source = 'github' WHERE id = {a}`, nil},
		{"an empty source", exposeSQL, []any{"", ""}},
		{"a source too long", exposeSQL, []any{strings.Repeat("s", apikey.MaxSourceLen+1), ""}},
		{"a URL too long", exposeSQL, []any{"github", url(apikey.MaxURLLen + 1)}},
		{"a URL with a space", exposeSQL, []any{"github", "https://x.test/a b"}},
		{"a URL with a control character", exposeSQL, []any{"github", "https://x.test/a	b"}},
		{"a URL not ASCII", exposeSQL, []any{"github", "https://x.test/é"}},
		{"an empty reason", revokeSQL, []any{""}},
		{"a reason too long", revokeSQL, []any{strings.Repeat("r", apikey.MaxReasonLen+1)}},
		{"a policy that is an array", `UPDATE {t} SET policy = '[{"quota": {"requests": 10, "per": "day"}}]' WHERE id = {a}`, nil},
		{"a policy that is a string", `UPDATE {t} SET policy = '"unlimited"' WHERE id = {a}`, nil},
		{"a policy that is JSON null", `UPDATE {t} SET policy = 'null' WHERE id = {a}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pairs := []string{"{t}", g.table, "{a}", "'" + g.keys["a"].ID.String() + "'"}
			_, err := db.ExecContext(ctx, strings.NewReplacer(pairs...).Replace(tc.sql), tc.args...)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "23514" {
				t.Errorf("%s = %v, want check_violation", tc.sql, err)
			}
			g.checkIntact(t, db)
		})
	}
	rec := newRecord(t)
	_, err := db.ExecContext(ctx, `INSERT INTO `+g.table+` (id, owner, hash, prefix, name, mode, scopes, created_at, revoked_reason)
VALUES ($1, $2, $3, $4, 'reason without revocation', 'live', '{sessions:write}', now(), 'lost')`, rec.ID, rec.Owner, rec.Hash[:], rec.Prefix)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23514" {
		t.Errorf("an INSERT of a reason without revocation = %v, want check_violation", err)
	}
	rec = newRecord(t)
	_, err = db.ExecContext(ctx, `INSERT INTO `+g.table+` (id, owner, hash, prefix, name, mode, scopes, created_at, policy)
VALUES ($1, $2, $3, $4, 'policy not an object', 'live', '{sessions:write}', now(), '[]')`, rec.ID, rec.Owner, rec.Hash[:], rec.Prefix)
	if !errors.As(err, &pgErr) || pgErr.Code != "23514" {
		t.Errorf("an INSERT of a policy that is not an object = %v, want check_violation", err)
	}

	// The limits themselves are accepted.
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{exposeSQL, []any{strings.Repeat("s", apikey.MaxSourceLen), url(apikey.MaxURLLen)}},
		{revokeSQL, []any{strings.Repeat("r", apikey.MaxReasonLen)}},
	} {
		if _, err := db.ExecContext(ctx, strings.NewReplacer("{t}", g.table, "{a}", "'"+g.keys["a"].ID.String()+"'").Replace(q.sql), q.args...); err != nil {
			t.Errorf("%s at the limits: %v", q.sql, err)
		}
	}
}

// Last-used writes, of keys in every state, run no PL/pgSQL: the WHEN
// conditions of the guard and of the change feed leave them out, as they
// leave the guard out of the first report of an exposure.
func TestTriggersLeaveUsesAlone(t *testing.T) {
	db := pgtest.DB(t)
	g := newGuarded(t, db)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET track_functions = 'pl'"); err != nil {
		t.Skipf("cannot count function calls (%v): the test needs a superuser", err)
	}
	defer conn.ExecContext(ctx, "RESET track_functions")
	schema, _, _ := strings.Cut(g.table, ".")
	// calls returns the calls of the guard and of the change-feed function
	// in the transaction so far.
	calls := func(tx *sql.Tx) (guard, stamp int64) {
		t.Helper()
		if err := tx.QueryRowContext(ctx, "SELECT coalesce(pg_stat_get_xact_function_calls($1::regproc), 0), "+
			"coalesce(pg_stat_get_xact_function_calls($2::regproc), 0)",
			schema+".api_keys_guard", schema+".api_keys_stamp_change").Scan(&guard, &stamp); err != nil {
			t.Fatal(err)
		}
		return guard, stamp
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	inTx := g.store.WithTx(tx)
	var uses []store.Use
	for _, rec := range g.keys {
		uses = append(uses, store.Use{ID: rec.ID, At: time.Now().Add(time.Hour)})
	}
	if err := inTx.RecordUses(ctx, uses); err != nil {
		t.Fatal(err)
	}
	if err := g.exec(ctx, tx, `UPDATE {t} SET last_used_at = now() + interval '2 hours' WHERE true`); err != nil {
		t.Fatal(err)
	}
	if guard, stamp := calls(tx); guard != 0 || stamp != 0 {
		t.Errorf("last-used writes of %d keys called the guard %d times and the change feed's function %d times, want none", len(g.keys), guard, stamp)
	}
	// Not vacuous: a change runs the change feed's function, once.
	for _, letter := range []string{"a", "r"} {
		if _, err := inTx.Expose(ctx, testOwner, g.keys[letter].ID, apikey.Exposure{At: time.Now(), Source: "github"}, false); err != nil {
			t.Fatal(err)
		}
	}
	if guard, stamp := calls(tx); guard != 0 || stamp != 2 {
		t.Errorf("the first report of the exposure of two keys called the guard %d times and the change feed's function %d times, want 0 and 2", guard, stamp)
	}
}

// allowed are the changes raw SQL may make, in order: what the store does,
// and what a caller with the application's role may do by hand.
var allowed = []string{
	`UPDATE {t} SET name = 'renamed', scopes = '{links:read}', metadata = '{"team": "risk"}' WHERE id = {a}`,
	// A policy changes freely while the key is not revoked.
	`UPDATE {t} SET policy = '{"rate": {"requests": 10, "period": "1s"}}' WHERE id = {a}`,
	`UPDATE {t} SET policy = NULL WHERE id = {a}`,
	`UPDATE {t} SET policy = '{"networks": ["10.0.0.0/8"]}' WHERE id = {u}`,
	// A revoked key's policy written again, its keys in another order, is
	// the same jsonb: no change.
	`UPDATE {t} SET policy = '{"networks": ["203.0.113.0/24"], "quota": {"per": "day", "requests": 1000}}' WHERE id = {r}`,
	`UPDATE {t} SET scopes = scopes WHERE true`,
	`UPDATE {t} SET last_used_at = now() WHERE true`,
	`UPDATE {t} SET expires_at = expires_at - interval '1 hour' WHERE id = {a}`,
	`UPDATE {t} SET expires_at = now() + interval '1 hour' WHERE id = {u}`,
	`UPDATE {t} SET replaced_by = gen_random_uuid(), expires_at = now() WHERE id = {a}`,
	`UPDATE {t} SET replaced_by = gen_random_uuid() WHERE id = {o}`, // a rotation again, once the replacement is revoked
	`UPDATE {t} SET revoked_at = now() WHERE id = {n}`,
	`UPDATE {t} SET last_used_at = now() + interval '1 second' WHERE id IN ({r}, {n})`,
	// A first report of an exposure, of a revoked key too; a revocation
	// with its reason, of an exposed key too, or with the report.
	`UPDATE {t} SET exposed_at = now(), exposed_source = 'github', exposed_url = '' WHERE id = {r}`,
	`UPDATE {t} SET revoked_at = now(), revoked_reason = 'exposed' WHERE id = {e}`,
	`UPDATE {t} SET revoked_at = now(), revoked_reason = 'exposed', exposed_at = now(), exposed_source = 'support',
		exposed_url = 'https://support.example.com/tickets/4471' WHERE id = {c}`,
	`UPDATE {t} SET revoked_at = now() WHERE id = {i}`, // no reason
	`UPDATE {t} SET revoked_reason = revoked_reason, exposed_at = exposed_at, exposed_source = exposed_source,
		exposed_url = exposed_url, canary = canary, policy = policy, last_used_at = now() WHERE true`,
	`DELETE FROM {t} WHERE id = {u}`, // a key never revoked may be deleted: that revokes nothing
}

// What the application legitimately changes still works, and changed_at
// cannot be forged.
func TestGuardAllows(t *testing.T) {
	db := pgtest.DB(t)
	g := newGuarded(t, db)
	ctx := context.Background()
	for _, q := range allowed {
		if err := g.exec(ctx, db, q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	if err := g.exec(ctx, db, `UPDATE {t} SET changed_at = '2000-01-01' WHERE true`); err != nil {
		t.Fatal(err)
	}
	var forged int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+g.table+` WHERE changed_at < '2001-01-01'`).Scan(&forged); err != nil {
		t.Fatal(err)
	}
	if forged != 0 {
		t.Errorf("%d rows took a changed_at set by SQL, want the trigger's", forged)
	}
}

// appRole returns a connection that acts as a new role which does not own
// the table of g but holds every privilege on its data, as an application
// role would, and more. The role is dropped when the test ends.
func appRole(t *testing.T, db *sql.DB, g guarded) *sql.Conn {
	t.Helper()
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
		"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON " + g.table + ", " + g.table + "_trips, " +
			g.table + "_audit, " + g.table + "_audit_heads, " + g.table + "_usage TO " + role,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "SET ROLE "+role); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.ExecContext(context.Background(), "RESET ROLE")
		conn.Close()
	})
	return conn
}

// An application role that does not own the table, with every data
// privilege on it, can break none of the guard's rules, nor switch the
// guard off; it can do all of the store's work, through a *sql.Conn.
func TestGuardHoldsForTheApplicationRole(t *testing.T) {
	db := pgtest.DB(t)
	g := newGuarded(t, db)
	ctx := context.Background()
	conn := appRole(t, db, g)

	// The role can do the store's work, on keys of another owner.
	app, err := postgres.New(conn, postgres.WithTable(g.table))
	if err != nil {
		t.Fatal(err)
	}
	const owner = "acct_app_role"
	rec := newRecord(t)
	rec.Owner = owner
	rec.Scopes = scope.NewSet(scope.SessionsWrite, scope.LinksRead)
	rec = mustCreate(t, app, rec)
	if _, err := app.Update(ctx, owner, rec.ID, store.Update{Name: "narrowed", Scopes: scope.NewSet(scope.LinksRead)}); err != nil {
		t.Fatalf("Update as the application role: %v", err)
	}
	next := newRecord(t)
	next.Owner, next.Replaces, next.Scopes = owner, rec.ID, scope.NewSet(scope.LinksRead)
	if _, _, err := app.Rotate(ctx, owner, rec.ID, next, time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("Rotate as the application role: %v", err)
	}
	if err := app.RecordUses(ctx, []store.Use{{ID: rec.ID, At: time.Now()}}); err != nil {
		t.Fatalf("RecordUses as the application role: %v", err)
	}
	if revoked, err := app.RevokeAll(ctx, owner, store.Revocation{At: time.Now(), Reason: "account closed"}); err != nil || len(revoked) != 2 {
		t.Fatalf("RevokeAll as the application role = %d keys, %v; want 2", len(revoked), err)
	}
	if _, err := app.Expose(ctx, owner, rec.ID, apikey.Exposure{At: time.Now(), Source: "github"}, true); err != nil {
		t.Fatalf("Expose of a revoked key as the application role: %v", err)
	}
	canary := newRecord(t)
	canary.Owner, canary.Canary = owner, true
	canary = mustCreate(t, app, canary)
	for range store.MaxTrips + postgres.TripsSlack { // enough to prune
		if err := app.RecordTrip(ctx, apikey.Trip{KeyID: canary.ID, Owner: owner, At: time.Now()}); err != nil {
			t.Fatalf("RecordTrip as the application role: %v", err)
		}
	}
	if trips, err := app.Trips(ctx, owner, canary.ID, 0); err != nil || len(trips) != store.MaxTrips {
		t.Fatalf("Trips as the application role = %d trips, %v; want %d", len(trips), err, store.MaxTrips)
	}
	_, pos, err := app.Changes(ctx, "")
	if err != nil {
		t.Fatalf("Changes as the application role: %v", err)
	}
	if _, _, err := app.Changes(ctx, pos); err != nil {
		t.Fatalf("Changes from a position as the application role: %v", err)
	}

	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			refused(t, g.exec(ctx, conn, a.sql), a.why)
		})
	}
	for _, esc := range []struct{ name, sql string }{
		{"disable every trigger", "ALTER TABLE " + g.table + " DISABLE TRIGGER ALL"},
		{"disable the guard", "ALTER TABLE " + g.table + " DISABLE TRIGGER api_keys_guard"},
		{"drop the guard", "DROP TRIGGER api_keys_guard ON " + g.table},
		{"drop its function", "DROP FUNCTION " + strings.Split(g.table, ".")[0] + ".api_keys_guard() CASCADE"},
		{"replace its function", "CREATE OR REPLACE FUNCTION " + strings.Split(g.table, ".")[0] +
			".api_keys_guard() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'"},
		{"drop the owner check", "ALTER TABLE " + g.table + " DROP CONSTRAINT api_keys_owner_check"},
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
	g.checkIntact(t, db)
}

// The application role may make every change the guard allows.
func TestGuardAllowsTheApplicationRole(t *testing.T) {
	db := pgtest.DB(t)
	g := newGuarded(t, db)
	conn := appRole(t, db, g)
	for _, q := range allowed {
		if err := g.exec(context.Background(), conn, q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
}

// The table's owner assigns existing keys to their accounts as the
// package documentation says: in one transaction, with the guard disabled
// around the UPDATE. The change feed reports the keys moved, and the guard
// is back at commit.
func TestOwnerAssignsKeysToAccounts(t *testing.T) {
	db := pgtest.DB(t)
	g := newGuarded(t, db)
	ctx := context.Background()
	a := g.keys["a"]
	_, pos, err := g.store.Changes(ctx, "")
	if err != nil {
		t.Fatal(err)
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, q := range []string{
		`ALTER TABLE {t} DISABLE TRIGGER api_keys_guard`,
		`UPDATE {t} SET owner = 'acct_42' WHERE id = {a}`,
		`ALTER TABLE {t} ENABLE TRIGGER api_keys_guard`,
	} {
		if err := g.exec(ctx, tx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	if _, err := g.store.Get(ctx, testOwner, a.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get by the former owner = %v, want ErrNotFound", err)
	}
	got, err := g.store.Get(ctx, "acct_42", a.ID)
	if err != nil {
		t.Fatalf("Get by the new owner: %v", err)
	}
	want := a
	want.Owner = "acct_42"
	if d := diff(got, want); d != "" {
		t.Errorf("the moved key changed beyond its owner: %s", d)
	}
	changed, _, err := g.store.Changes(ctx, pos)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(changed, a.Hash) {
		t.Error("the change feed did not report the key given to another owner")
	}
	refused(t, g.exec(ctx, db, `UPDATE {t} SET owner = 'acct_43' WHERE id = {a}`), identity)
}
