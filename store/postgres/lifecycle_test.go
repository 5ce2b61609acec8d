package postgres_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/heapcheck"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/postgres"
)

// newKeys returns the lifecycle on a store over db and table.
func newKeys(t testing.TB, db postgres.DB, table string, opts ...keyward.Option) *keyward.Keys {
	t.Helper()
	s, err := postgres.New(db, postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	k, err := keyward.New(s, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func migrated(t testing.TB, db *sql.DB) string {
	t.Helper()
	table := pgtest.Schema(t, db) + ".api_keys"
	if err := postgres.Migrate(context.Background(), db, postgres.WithTable(table)); err != nil {
		t.Fatal(err)
	}
	return table
}

// migratedStore is migrated, with a store on the table: for tests that
// also reach the table in raw SQL.
func migratedStore(t testing.TB, db *sql.DB) (*postgres.Store, string) {
	t.Helper()
	table := migrated(t, db)
	s, err := postgres.New(db, postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	return s, table
}

// owner is the account the lifecycle tests' keys belong to.
const owner = "acct_lifecycle"

func createKey(t testing.TB, k *keyward.Keys) (apikey.Secret, apikey.Record) {
	t.Helper()
	sec, rec, err := k.Owner(owner).Create(context.Background(), keyward.CreateParams{
		Name: "Production server", Mode: apikey.Live, Scopes: scope.NewSet(scope.SessionsWrite),
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return sec, rec
}

// A revocation through one application instance is refused by another, with
// its own connection pool, on its very next verification.
func TestRevocationSeenBySecondInstance(t *testing.T) {
	db := pgtest.DB(t)
	table := migrated(t, db)
	a := newKeys(t, db, table)
	b := newKeys(t, pgtest.Open(t), table)
	ctx := context.Background()

	sec, rec := createKey(t, a)
	if _, err := b.Verify(ctx, sec.Reveal()); err != nil {
		t.Fatalf("instance B: Verify of a new key = %v", err)
	}
	if _, err := a.Owner(owner).Revoke(ctx, rec.ID, keyward.RevokeParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(ctx, sec.Reveal()); !errors.Is(err, keyward.ErrRevoked) {
		t.Errorf("instance B: Verify right after instance A revoked = %v, want ErrRevoked", err)
	}
	// And B cannot revoke it again, nor rotate it, nor change it.
	if _, err := b.Owner(owner).Revoke(ctx, rec.ID, keyward.RevokeParams{}); !errors.Is(err, keyward.ErrAlreadyRevoked) {
		t.Errorf("instance B: Revoke = %v, want ErrAlreadyRevoked", err)
	}
	if _, _, err := b.Owner(owner).Rotate(ctx, rec.ID, keyward.RotateParams{}); !errors.Is(err, keyward.ErrAlreadyRevoked) {
		t.Errorf("instance B: Rotate = %v, want ErrAlreadyRevoked", err)
	}
	if _, err := b.Owner(owner).Update(ctx, rec.ID, keyward.UpdateParams{Name: "revived"}); !errors.Is(err, keyward.ErrAlreadyRevoked) {
		t.Errorf("instance B: Update = %v, want ErrAlreadyRevoked", err)
	}
}

// An account's keys revoked all at once through one instance are refused
// by another on their very next verification; other accounts' keys work.
func TestRevokeAllSeenBySecondInstance(t *testing.T) {
	db := pgtest.DB(t)
	table := migrated(t, db)
	a := newKeys(t, db, table)
	b := newKeys(t, pgtest.Open(t), table)
	ctx := context.Background()

	var secs []apikey.Secret
	for range 5 {
		sec, _ := createKey(t, a)
		secs = append(secs, sec)
	}
	theirs, _, err := a.Owner("acct_other").Create(ctx, keyward.CreateParams{
		Name: "Other account", Mode: apikey.Live, Scopes: scope.NewSet(scope.SessionsWrite),
	})
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := a.Owner(owner).RevokeAll(ctx, keyward.RevokeParams{})
	if err != nil || len(revoked) != len(secs) {
		t.Fatalf("RevokeAll = %d keys, %v; want %d", len(revoked), err, len(secs))
	}
	for _, sec := range secs {
		if _, err := b.Verify(ctx, sec.Reveal()); !errors.Is(err, keyward.ErrRevoked) {
			t.Errorf("instance B: Verify of a key of the closed account = %v, want ErrRevoked", err)
		}
	}
	if rec, err := b.Verify(ctx, theirs.Reveal()); err != nil || rec.Owner != "acct_other" {
		t.Errorf("instance B: Verify of another account's key = %v (owner %q), want it to work", err, rec.Owner)
	}
}

// A client retrying a create through two instances with one idempotency
// key gets one key: the second instance returns the first one's record.
func TestIdempotentCreateAcrossInstances(t *testing.T) {
	db := pgtest.DB(t)
	table := migrated(t, db)
	a := newKeys(t, db, table)
	b := newKeys(t, pgtest.Open(t), table)
	ctx := context.Background()
	params := keyward.CreateParams{
		Name: "Checkout plugin", Mode: apikey.Test, Scopes: scope.NewSet(scope.LinksRead),
		Metadata: map[string]string{"order": "1042"}, IdempotencyKey: "5f0c6d1e-retry",
	}
	sec, first, err := a.Owner(owner).Create(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	again, repeat, err := b.Owner(owner).Create(ctx, params)
	if !errors.Is(err, keyward.ErrAlreadyCreated) || repeat.ID != first.ID || again.Reveal() != "" {
		t.Errorf("the repeat through B = %v, key %s, a secret %v; want ErrAlreadyCreated and %s without its secret",
			err, repeat.ID, again.Reveal() != "", first.ID)
	}
	params.Name = "Another plugin"
	if _, _, err := b.Owner(owner).Create(ctx, params); !errors.Is(err, keyward.ErrIdempotencyConflict) {
		t.Errorf("a different request with the same idempotency key = %v, want ErrIdempotencyConflict", err)
	}
	if _, err := b.Verify(ctx, sec.Reveal()); err != nil {
		t.Errorf("the key created once: %v", err)
	}
}

// The table holds no raw key: not in any column, whatever the lifecycle
// did with the keys.
func TestNoRawKeyInTable(t *testing.T) {
	db := pgtest.DB(t)
	table := migrated(t, db)
	k := newKeys(t, db, table)
	ctx := context.Background()

	var secrets []apikey.Secret
	for range 20 {
		sec, _ := createKey(t, k)
		secrets = append(secrets, sec)
	}
	// Use, rotate and revoke some, so that every column is written.
	for _, sec := range secrets[:10] {
		if _, err := k.Verify(ctx, sec.Reveal()); err != nil {
			t.Fatal(err)
		}
	}
	if err := k.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Metadata, idempotency digests, rotation links, updates.
	sec, _, err := k.Owner(owner).Create(ctx, keyward.CreateParams{
		Name: "Tagged", Mode: apikey.Live, Scopes: scope.NewSet(scope.SessionsWrite),
		Metadata: map[string]string{"integration": "erp"}, IdempotencyKey: "create-tagged-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, sec)
	recs, err := k.Owner(owner).List(ctx, keyward.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	newSec, _, err := k.Owner(owner).Rotate(ctx, recs.Keys[0].ID, keyward.RotateParams{Overlap: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, newSec)
	if _, err := k.Owner(owner).Update(ctx, recs.Keys[2].ID, keyward.UpdateParams{
		Name: "Renamed", Metadata: map[string]string{"team": "billing"}, ExpiresAt: time.Now().Add(time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Owner(owner).Revoke(ctx, recs.Keys[1].ID, keyward.RevokeParams{}); err != nil {
		t.Fatal(err)
	}

	// SELECT * as text, row by row.
	rows, err := db.QueryContext(ctx, "SELECT k::text FROM "+table+" k")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var dump strings.Builder
	n := 0
	for rows.Next() {
		var row string
		if err := rows.Scan(&row); err != nil {
			t.Fatal(err)
		}
		dump.WriteString(row + "\n")
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(secrets) {
		t.Fatalf("dumped %d rows, want %d", n, len(secrets))
	}
	for _, sec := range secrets {
		raw := sec.Reveal()
		random := raw[len(raw)-32:] // the secret part, after "ck_live_"
		// No 8-character run of the random part may appear (the display
		// prefix shows its first apikey.DisplayLen characters).
		for i := 0; i+8 <= len(random); i++ {
			if strings.Contains(dump.String(), random[i:i+8]) {
				t.Fatalf("the table dump contains part of a raw key (%q at offset %d)", random[i:i+8], i)
			}
		}
		// What is stored: the SHA-256 of the key, and the display prefix.
		sum := sha256.Sum256([]byte(raw))
		var found bool
		if err := db.QueryRowContext(ctx, "SELECT EXISTS (SELECT FROM "+table+" WHERE hash = $1 AND prefix = $2)",
			sum[:], sec.DisplayPrefix()).Scan(&found); err != nil {
			t.Fatal(err)
		}
		if !found {
			t.Errorf("no row holds the SHA-256 and display prefix of key %s", sec.DisplayPrefix())
		}
	}
}

// TestLastUsedWritesPerFlush puts a sustained load on one key and counts
// the row updates the server actually made, from pg_stat_user_tables: at
// most one last-used write per key per flush interval, however many
// verifications, and as many writes of the key's usage counts.
func TestLastUsedWritesPerFlush(t *testing.T) {
	admin := pgtest.DB(t)
	table := migrated(t, admin)
	app := pgtest.Open(t) // its backends exit on Close, which flushes their statistics
	const interval = 50 * time.Millisecond
	k := newKeys(t, app, table, keyward.WithFlushInterval(interval))
	sec, _ := createKey(t, k)
	raw := sec.Reveal()

	// written returns the rows updated in the keys' table, and the rows
	// inserted or updated in the usage table.
	written := func() (keys, usage int64) {
		t.Helper()
		err := admin.QueryRowContext(context.Background(),
			"SELECT (SELECT n_tup_upd FROM pg_stat_user_tables WHERE relid = $1::regclass), "+
				"(SELECT n_tup_ins + n_tup_upd FROM pg_stat_user_tables WHERE relid = $2::regclass)",
			table, table+"_usage").Scan(&keys, &usage)
		if err != nil {
			t.Fatal(err)
		}
		return keys, usage
	}
	updates := func() int64 { n, _ := written(); return n }
	_, usageBefore := written()
	before := updates()
	start := time.Now()
	verifications := 0
	for time.Since(start) < 20*interval {
		if _, err := k.Verify(context.Background(), raw); err != nil {
			t.Fatal(err)
		}
		verifications++
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	app.Close()

	// Statistics reach the shared view when the backends exit; wait for
	// the count to settle.
	var got int64
	for deadline := time.Now().Add(10 * time.Second); ; {
		got = updates() - before
		time.Sleep(100 * time.Millisecond)
		if again := updates() - before; again == got && got > 0 || time.Now().After(deadline) {
			break
		}
	}
	limit := int64(elapsed/interval) + 2 // the intervals, a partial one, and Close
	_, usage := written()
	usage -= usageBefore
	t.Logf("%d verifications in %v made %d row updates and %d writes of usage (limit %d each)",
		verifications, elapsed.Round(time.Millisecond), got, usage, limit)
	if got == 0 {
		t.Fatal("no last-used update reached the server")
	}
	if got > limit {
		t.Errorf("%d row updates for one key in %v: more than one per %v flush interval", got, elapsed.Round(time.Millisecond), interval)
	}
	if usage == 0 || usage > limit+1 { // an hour may begin meanwhile
		t.Errorf("%d writes of usage for one key in %v: want at least one and at most one per %v flush interval", usage, elapsed.Round(time.Millisecond), interval)
	}
}

// TestUsageWritesPerFlush: N verifications of K keys, then one flush,
// write exactly K rows of the keys' table (their last-used times) and K
// rows of usage (their counts, N in all), in one statement: counting
// requests adds no write per request, nor a statement per flush. The rows
// are counted in the flush's transaction (pg_stat_get_xact_*), the
// statements by the driver.
func TestUsageWritesPerFlush(t *testing.T) {
	const keys, verifications = 20, 2000
	db := pgtest.DB(t)
	table := migrated(t, db)
	ctx := context.Background()
	setup := newKeys(t, db, table)
	var secrets []apikey.Secret
	var ids []uuid.UUID
	for range keys {
		sec, rec := createKey(t, setup)
		secrets = append(secrets, sec)
		ids = append(ids, rec.ID)
	}
	pool, trips := countingPool(t)
	for attempt := 0; ; attempt++ {
		hour := time.Now().Truncate(time.Hour)
		tx, err := pool.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		k := newKeys(t, tx, table, keyward.WithFlushInterval(time.Hour))
		for i := range verifications {
			if _, err := k.Verify(ctx, secrets[i%keys].Reveal()); err != nil {
				t.Fatal(err)
			}
		}
		stop := trips.logging()
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
		sent := stop()
		if time.Now().Truncate(time.Hour) != hour && attempt == 0 {
			tx.Rollback() // an hour began: the counts are in two; again
			continue
		}
		var keyRows, usageInserted, usageUpdated int64
		if err := tx.QueryRowContext(ctx, "SELECT pg_stat_get_xact_tuples_updated($1::regclass), "+
			"pg_stat_get_xact_tuples_inserted($2::regclass), pg_stat_get_xact_tuples_updated($2::regclass)",
			table, table+"_usage").Scan(&keyRows, &usageInserted, &usageUpdated); err != nil {
			t.Fatal(err)
		}
		if len(sent) != 1 || !strings.HasPrefix(sent[0], "WITH uses AS MATERIALIZED") {
			t.Errorf("the flush sent %d statements, want the one of RecordUses:\n%s", len(sent), strings.Join(sent, "\n"))
		}
		if keyRows != keys || usageInserted != keys || usageUpdated != 0 {
			t.Errorf("%d verifications of %d keys, flushed, wrote %d rows of keys and inserted %d rows of usage, updated %d; want %d, %d and 0",
				verifications, keys, keyRows, usageInserted, usageUpdated, keys, keys)
		}
		st, err := postgres.New(tx, postgres.WithTable(table))
		if err != nil {
			t.Fatal(err)
		}
		usage, err := st.Usage(ctx, owner, store.UsageQuery{Keys: ids, From: hour, To: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		for i, u := range usage {
			total += u.Counts.Verified
			if u.KeyID != ids[i] || u.Counts != (store.Counts{Verified: verifications / keys}) {
				t.Errorf("usage %d = %+v, want %d verifications of key %s", i, u, verifications/keys, ids[i])
			}
		}
		if len(usage) != keys || total != verifications {
			t.Errorf("Usage = %d rows, %d verifications; want %d, %d", len(usage), total, keys, verifications)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		return
	}
}

// TestRecordsDoNotPinTheRawKey: no string of a record the PostgreSQL store
// returns points into a raw key's memory (the driver scans into strings of
// its own), so a server's heap holds no raw key but in its Secrets. The
// memory store and the cache have the same test in package keyward.
func TestRecordsDoNotPinTheRawKey(t *testing.T) {
	db := pgtest.DB(t)
	k := newKeys(t, db, migrated(t, db))
	ctx := context.Background()
	sec, rec, err := k.Owner(owner).Create(ctx, keyward.CreateParams{
		Name: "Production server", Mode: apikey.Live, Scopes: scope.NewSet(scope.SessionsWrite),
		Metadata: map[string]string{"region": "eu"},
	})
	if err != nil {
		t.Fatal(err)
	}
	next, nrec, err := k.Owner(owner).Rotate(ctx, rec.ID, keyward.RotateParams{Overlap: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.Owner(owner).Get(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	verified, err := k.Verify(ctx, next.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		where string
		rec   apikey.Record
		raw   string
	}{{"Create", rec, sec.Reveal()}, {"Get", got, sec.Reveal()}, {"Rotate", nrec, next.Reveal()}, {"Verify", verified, next.Reveal()}} {
		strs := []string{c.rec.Prefix, c.rec.Name, c.rec.Owner}
		for key, v := range c.rec.Metadata.All() {
			strs = append(strs, key, v)
		}
		for _, s := range strs {
			if heapcheck.Within(s, c.raw) {
				t.Errorf("%s: the record's %q points into the raw key", c.where, s)
			}
		}
	}
}

// Leaked keys across instances: a key reported exposed through one
// instance is refused by another at once, with the report and the reason
// on its record; a canary presented to one instance is refused as unknown,
// and its trip, stored in PostgreSQL, is read through the other.
func TestLeakedKeysAcrossInstances(t *testing.T) {
	db := pgtest.DB(t)
	table := migrated(t, db)
	tripped := make(chan apikey.Trip, 1)
	a := newKeys(t, db, table)
	b := newKeys(t, pgtest.Open(t), table, keyward.WithCanaryHook(func(_ context.Context, tr apikey.Trip) { tripped <- tr }))
	ctx := context.Background()

	sec, rec := createKey(t, a)
	report, err := b.ReportExposure(ctx, sec.Reveal(), keyward.Exposure{Source: "github", URL: "https://github.com/acme/app/blob/0123abc/.env#L3"})
	if err != nil || !report.Known || !report.First {
		t.Fatalf("ReportExposure through B = %+v, %v; want a first report of a known key", report, err)
	}
	if _, err := a.Verify(ctx, sec.Reveal()); !errors.Is(err, keyward.ErrRevoked) {
		t.Errorf("instance A: Verify of the key reported exposed through B = %v, want ErrRevoked", err)
	}
	got, err := a.Owner(owner).Get(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.RevokedReason != apikey.ReasonExposed || got.Exposure == nil || got.Exposure.Source != "github" {
		t.Errorf("instance A reads the exposed key as revoked for %q, exposure %+v; want %q and the report", got.RevokedReason, got.Exposure, apikey.ReasonExposed)
	}
	if again, err := a.ReportExposure(ctx, sec.Reveal(), keyward.Exposure{Source: "pastebin"}); err != nil || !again.Known || again.First {
		t.Errorf("a second report through A = %+v, %v; want a known key, not a first report", again, err)
	}

	_, other := createKey(t, a)
	if _, err := b.Owner(owner).Revoke(ctx, other.ID, keyward.RevokeParams{Reason: "laptop stolen"}); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Owner(owner).Get(ctx, other.ID); err != nil || got.RevokedReason != "laptop stolen" {
		t.Errorf("instance A reads the reason %q (%v), want %q", got.RevokedReason, err, "laptop stolen")
	}

	canary, crec, err := a.Owner(owner).Create(ctx, keyward.CreateParams{
		Name: "Tripwire", Mode: apikey.Live, Scopes: scope.NewSet(scope.SessionsWrite), Canary: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	caller := keyward.Caller{Addr: "203.0.113.7:5501", UserAgent: "curl/8.5.0", Method: "GET", Path: "/v1/links"}
	if _, err := b.VerifyFrom(ctx, canary.Reveal(), caller); !errors.Is(err, keyward.ErrUnknownKey) {
		t.Errorf("instance B: Verify of a canary = %v, want ErrUnknownKey", err)
	}
	select {
	case <-tripped:
	case <-time.After(10 * time.Second):
		t.Fatal("the canary's trip was not stored within 10s")
	}
	trips, err := a.Owner(owner).Trips(ctx, crec.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(trips) != 1 || trips[0].Addr != caller.Addr || trips[0].UserAgent != caller.UserAgent || trips[0].Route != "GET /v1/links" {
		t.Errorf("instance A reads the canary's trips %+v, want the one through B", trips)
	}
}
