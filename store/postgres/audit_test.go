package postgres_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/postgres"
)

// chain returns the owner's whole trail, oldest first, read as a checker
// reads it: page by page through AuditChain.
func chain(t testing.TB, s store.Store, owner string) []audit.Entry {
	t.Helper()
	const page = 7 // small, so that pages are walked
	var all []audit.Entry
	for after := int64(0); ; {
		entries, err := s.AuditChain(context.Background(), owner, after, page)
		if err != nil {
			t.Fatalf("AuditChain(%s, %d): %v", owner, after, err)
		}
		all = append(all, entries...)
		if len(entries) < page {
			return all
		}
		after = entries[len(entries)-1].Seq
	}
}

// checkChain fails unless the owner's trail holds (audit.Check) and has
// want entries; it returns them.
func checkChain(t testing.TB, s store.Store, owner string, want int) []audit.Entry {
	t.Helper()
	entries := chain(t, s, owner)
	if err := audit.Check(owner, entries); err != nil {
		t.Errorf("the trail of %s does not hold: %v", owner, err)
	}
	if len(entries) != want {
		t.Errorf("the trail of %s has %d entries, want %d", owner, len(entries), want)
	}
	return entries
}

func kinds(entries []audit.Entry) []audit.Kind {
	var ks []audit.Kind
	for _, e := range entries {
		ks = append(ks, e.Kind)
	}
	return ks
}

// sameEntries reports whether two walks of a trail are the same entries.
func sameEntries(a, b []audit.Entry) bool {
	return slices.EqualFunc(a, b, func(x, y audit.Entry) bool { return x.Seq == y.Seq && x.Hash == y.Hash })
}

// A changeCase is a change of each kind, of a key rec of an owner that
// has one more active key, spare: with next, a record of the owner not
// stored, for Create and Rotate.
type changeCase struct {
	name  string
	kinds []audit.Kind // of the entries it appends, in order
	run   func(ctx context.Context, s *postgres.Store, rec, next apikey.Record) error
}

var changeCases = []changeCase{
	{"Create", []audit.Kind{audit.Created}, func(ctx context.Context, s *postgres.Store, _, next apikey.Record) error {
		_, err := s.Create(ctx, next, store.Idempotency{Key: [32]byte{7}, Request: [32]byte{8}})
		return err
	}},
	{"Update", []audit.Kind{audit.Updated}, func(ctx context.Context, s *postgres.Store, rec, _ apikey.Record) error {
		_, err := s.Update(ctx, rec.Owner, rec.ID, store.Update{Name: "renamed", Scopes: scope.NewSet(scope.LinksRead)})
		return err
	}},
	{"Rotate", []audit.Kind{audit.Created, audit.Rotated}, func(ctx context.Context, s *postgres.Store, rec, next apikey.Record) error {
		next.Replaces = rec.ID
		_, _, err := s.Rotate(ctx, rec.Owner, rec.ID, next, time.Now().Add(time.Hour))
		return err
	}},
	{"Revoke", []audit.Kind{audit.Revoked}, func(ctx context.Context, s *postgres.Store, rec, _ apikey.Record) error {
		_, err := s.Revoke(ctx, rec.Owner, rec.ID, store.Revocation{At: time.Now(), Reason: "laptop stolen"})
		return err
	}},
	{"RevokeAll", []audit.Kind{audit.RevokedAll, audit.RevokedAll}, func(ctx context.Context, s *postgres.Store, rec, _ apikey.Record) error {
		revoked, err := s.RevokeAll(ctx, rec.Owner, store.Revocation{At: time.Now()})
		if err == nil && len(revoked) != 2 {
			err = fmt.Errorf("RevokeAll revoked %d keys, want 2", len(revoked))
		}
		return err
	}},
	{"Expose", []audit.Kind{audit.Exposed}, func(ctx context.Context, s *postgres.Store, rec, _ apikey.Record) error {
		_, err := s.Expose(ctx, rec.Owner, rec.ID, apikey.Exposure{At: time.Now(), Source: "github"}, true)
		return err
	}},
}

// A changeSetup is the keys of a changeCase, and the owner's trail before
// the change.
type changeSetup struct {
	owner            string
	rec, spare, next apikey.Record
	before           []audit.Entry
}

// setUp creates the keys of a change of an owner of its own, through s.
func setUp(t *testing.T, s *postgres.Store, owner string) changeSetup {
	t.Helper()
	record := func() apikey.Record {
		r := newRecord(t)
		r.Owner = owner
		r.Scopes = scope.NewSet(scope.SessionsWrite, scope.LinksRead)
		return r
	}
	cs := changeSetup{owner: owner, rec: mustCreate(t, s, record()), spare: mustCreate(t, s, record()), next: record()}
	cs.before = checkChain(t, s, owner, 2)
	return cs
}

// checkUnchanged fails unless nothing of the change applied: the keys are
// as they were, next was not stored, and the trail has no new entry.
func (cs changeSetup) checkUnchanged(t *testing.T, s *postgres.Store) {
	t.Helper()
	ctx := context.Background()
	for _, want := range []apikey.Record{cs.rec, cs.spare} {
		got, err := s.Get(ctx, cs.owner, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d := diff(got, want); d != "" {
			t.Errorf("after the failed change, key %s changed: %s", want.ID, d)
		}
	}
	if _, err := s.Get(ctx, cs.owner, cs.next.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after the failed change, the new key: %v, want ErrNotFound", err)
	}
	if got := chain(t, s, cs.owner); !sameEntries(got, cs.before) {
		t.Errorf("after the failed change, the trail has %d entries (kinds %v), want the %d before", len(got), kinds(got), len(cs.before))
	}
}

// checkApplied fails unless the change applied with its entries.
func (cs changeSetup) checkApplied(t *testing.T, s *postgres.Store, c changeCase) {
	t.Helper()
	entries := checkChain(t, s, cs.owner, len(cs.before)+len(c.kinds))
	if got := kinds(entries[min(len(cs.before), len(entries)):]); !slices.Equal(got, c.kinds) {
		t.Errorf("the change appended entries of kinds %v, want %v", got, c.kinds)
	}
}

// errFault is the failure the tests' hook injects.
var errFault = errors.New("injected fault between the change and its entry")

// changedInTx returns how many rows of the table the transaction tx wrote
// so far.
func changedInTx(ctx context.Context, tx postgres.DB, table string) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, "SELECT count(*) FROM "+table+" WHERE xmin = pg_current_xact_id()::xid").Scan(&n)
	return n, err
}

// A fault between the statements of a change and that of its audit entry,
// in the change's own transaction, rolls the change back: every kind of
// change is then as if it never ran, and writes no entry. The fault is
// an error (of the hook) or the connection dropped by the server. Before
// the fault, the change is written in its transaction: the fault is
// between the two. Without the fault, the same change applies with its
// entries.
func TestAuditFaultBetweenChangeAndEntry(t *testing.T) {
	db := pgtest.DB(t)
	table := migrated(t, db)
	faults := []struct {
		name string
		hook func(ctx context.Context, tx postgres.DB) error
		want func(err error) bool
	}{
		{"error", func(context.Context, postgres.DB) error { return errFault },
			func(err error) bool { return errors.Is(err, errFault) }},
		{"connection dropped", func(ctx context.Context, tx postgres.DB) error {
			_, err := tx.ExecContext(ctx, "SELECT pg_terminate_backend(pg_backend_pid())")
			if err == nil {
				err = errors.New("the backend survived pg_terminate_backend")
			}
			return err
		}, func(err error) bool { return err != nil && !store.IsAnswer(err) }},
	}
	for _, f := range faults {
		for _, c := range changeCases {
			t.Run(f.name+"/"+c.name, func(t *testing.T) {
				ctx := context.Background()
				app := pgtest.Open(t) // its connections may be dropped
				s, err := postgres.New(app, postgres.WithTable(table))
				if err != nil {
					t.Fatal(err)
				}
				cs := setUp(t, s, "acct_"+strings.ReplaceAll(f.name, " ", "_")+"_"+strings.ToLower(c.name))
				var written int
				faulty := postgres.WithBeforeAppend(s, func(ctx context.Context, tx postgres.DB, op string) error {
					var err error
					if written, err = changedInTx(ctx, tx, table); err != nil {
						return err
					}
					return f.hook(ctx, tx)
				})
				err = c.run(ctx, faulty, cs.rec, cs.next)
				if !f.want(err) || store.IsAnswer(err) {
					t.Fatalf("%s with a fault = %v, want a failure (%s)", c.name, err, f.name)
				}
				if written == 0 {
					t.Fatalf("the hook saw nothing written by %s in its transaction: the fault is not after the change", c.name)
				}
				cs.checkUnchanged(t, s)

				if err := c.run(ctx, s, cs.rec, cs.next); err != nil {
					t.Fatalf("%s without the fault: %v", c.name, err)
				}
				cs.checkApplied(t, s, c)
			})
		}
	}
}

// In a caller's transaction, a change whose entry could not be written
// leaves the transaction unable to commit: whatever the caller does next,
// the change is not kept without its entry.
func TestAuditFaultInCallersTransaction(t *testing.T) {
	db := pgtest.DB(t)
	s, _ := migratedStore(t, db)
	faulty := postgres.WithBeforeAppend(s, func(context.Context, postgres.DB, string) error { return errFault })
	for _, c := range changeCases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			cs := setUp(t, s, "acct_caller_"+strings.ToLower(c.name))
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			if err := c.run(ctx, faulty.WithTx(tx), cs.rec, cs.next); !errors.Is(err, errFault) {
				t.Fatalf("%s with a fault = %v, want the fault", c.name, err)
			}
			if err := tx.Commit(); err == nil {
				t.Error("the caller's transaction committed after the fault")
			}
			cs.checkUnchanged(t, s)
		})
	}
}

// A server that refuses the entry fails the change, which is rolled back:
// here a trigger that raises on the trail's inserts of some owners, as any
// failure of the entry's statement would.
func TestAuditEntryRefusedByTheServer(t *testing.T) {
	db := pgtest.DB(t)
	s, table := migratedStore(t, db)
	schema, _, _ := strings.Cut(table, ".")
	for _, q := range []string{
		`CREATE TABLE ` + schema + `.refused (owner text PRIMARY KEY)`,
		`CREATE FUNCTION ` + schema + `.refuse_entry() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF EXISTS (SELECT FROM ` + schema + `.refused WHERE owner = NEW.owner) THEN
		RAISE EXCEPTION 'no entry for %', NEW.owner;
	END IF;
	RETURN NEW;
END$$`,
		`CREATE TRIGGER refuse_entry BEFORE INSERT ON ` + table + `_audit FOR EACH ROW EXECUTE FUNCTION ` + schema + `.refuse_entry()`,
	} {
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range changeCases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			cs := setUp(t, s, "acct_refused_"+strings.ToLower(c.name))
			if _, err := db.ExecContext(ctx, `INSERT INTO `+schema+`.refused VALUES ($1)`, cs.owner); err != nil {
				t.Fatal(err)
			}
			err := c.run(ctx, s, cs.rec, cs.next)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "P0001" || store.IsAnswer(err) {
				t.Fatalf("%s with its entry refused = %v, want a failure with the trigger's error", c.name, err)
			}
			cs.checkUnchanged(t, s)

			if _, err := db.ExecContext(ctx, `DELETE FROM `+schema+`.refused WHERE owner = $1`, cs.owner); err != nil {
				t.Fatal(err)
			}
			if err := c.run(ctx, s, cs.rec, cs.next); err != nil {
				t.Fatalf("%s with its entry accepted: %v", c.name, err)
			}
			cs.checkApplied(t, s, c)
		})
	}
}

// A change the database refuses writes no entry: here a trigger on the
// keys that raises for the keys of some owners.
func TestAuditNoEntryWithoutItsChange(t *testing.T) {
	db := pgtest.DB(t)
	s, table := migratedStore(t, db)
	schema, _, _ := strings.Cut(table, ".")
	for _, q := range []string{
		`CREATE TABLE ` + schema + `.frozen (owner text PRIMARY KEY)`,
		`CREATE FUNCTION ` + schema + `.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF EXISTS (SELECT FROM ` + schema + `.frozen WHERE owner = NEW.owner) THEN
		RAISE EXCEPTION 'the keys of % are frozen', NEW.owner;
	END IF;
	RETURN NEW;
END$$`,
		`CREATE TRIGGER refuse_change BEFORE INSERT OR UPDATE ON ` + table + ` FOR EACH ROW EXECUTE FUNCTION ` + schema + `.refuse_change()`,
	} {
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range changeCases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			cs := setUp(t, s, "acct_frozen_"+strings.ToLower(c.name))
			if _, err := db.ExecContext(ctx, `INSERT INTO `+schema+`.frozen VALUES ($1)`, cs.owner); err != nil {
				t.Fatal(err)
			}
			if err := c.run(ctx, s, cs.rec, cs.next); err == nil || store.IsAnswer(err) {
				t.Fatalf("%s of a frozen key = %v, want a failure", c.name, err)
			}
			cs.checkUnchanged(t, s)
		})
	}
}

// roleConn returns a connection that acts as a new role, which does not own
// the store's tables, with the grants given ({role} stands for the role,
// {t} for the table, {s} for its schema). The role is dropped when the
// test ends.
func roleConn(t *testing.T, db *sql.DB, table string, grants ...string) *sql.Conn {
	t.Helper()
	ctx := context.Background()
	var b [6]byte
	rand.Read(b[:])
	role := "kwtest_role_" + hex.EncodeToString(b[:])
	schema, _, _ := strings.Cut(table, ".")
	if _, err := db.ExecContext(ctx, "CREATE ROLE "+role); err != nil {
		t.Skipf("cannot create a role on this server (%v): the test needs CREATEROLE", err)
	}
	t.Cleanup(func() {
		if _, err := db.ExecContext(context.Background(), "DROP OWNED BY "+role+"; DROP ROLE "+role); err != nil {
			t.Errorf("dropping role %s: %v", role, err)
		}
	})
	r := strings.NewReplacer("{role}", role, "{t}", table, "{s}", schema)
	for _, g := range grants {
		if _, err := db.ExecContext(ctx, r.Replace(g)); err != nil {
			t.Fatalf("%s: %v", r.Replace(g), err)
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

// documentedGrants are the grants the package documentation gives the
// application's role.
var documentedGrants = []string{
	"GRANT USAGE ON SCHEMA {s} TO {role}",
	"GRANT SELECT, INSERT, UPDATE ON {t} TO {role}",
	"GRANT SELECT, INSERT, DELETE ON {t}_trips TO {role}",
	"GRANT SELECT, INSERT ON {t}_audit TO {role}",
	"GRANT SELECT, INSERT, UPDATE ON {t}_audit_heads TO {role}",
	"GRANT SELECT, INSERT, UPDATE, DELETE ON {t}_usage TO {role}",
}

// With the grants of the package documentation, the application's role
// does all of the store's work, and can neither change nor remove an
// entry of the trail, nor switch its trigger off; without INSERT on the
// trail, it can make no change at all.
func TestAuditDocumentedGrants(t *testing.T) {
	db := pgtest.DB(t)
	table := migrated(t, db)
	ctx := context.Background()
	app, err := postgres.New(roleConn(t, db, table, documentedGrants...), postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changeCases {
		cs := setUp(t, app, "acct_app_"+strings.ToLower(c.name))
		if err := c.run(ctx, app, cs.rec, cs.next); err != nil {
			t.Errorf("%s as the application's role: %v", c.name, err)
			continue
		}
		cs.checkApplied(t, app, c)
	}
	rec := mustCreate(t, app, newRecord(t))
	hour := time.Now()
	if err := app.RecordUses(ctx, []store.Use{{ID: rec.ID, At: hour, Hour: hour, Counts: store.Counts{Verified: 2}}}); err != nil {
		t.Errorf("RecordUses as the application's role: %v", err)
	}
	if u, err := app.Usage(ctx, testOwner, store.UsageQuery{Keys: []uuid.UUID{rec.ID}, From: hour, To: hour.Add(time.Hour)}); err != nil || len(u) != 1 {
		t.Errorf("Usage as the application's role = %v, %v; want one hour", u, err)
	}
	if err := app.PruneUsage(ctx, hour.Add(-24*time.Hour)); err != nil {
		t.Errorf("PruneUsage as the application's role: %v", err)
	}
	if _, err := app.Audit(ctx, testOwner, store.AuditOptions{}); err != nil {
		t.Errorf("Audit as the application's role: %v", err)
	}

	// Another role with those grants but INSERT on the trail.
	grants := slices.Clone(documentedGrants)
	grants[3] = "GRANT SELECT ON {t}_audit TO {role}"
	noInsert, err := postgres.New(roleConn(t, db, table, grants...), postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changeCases {
		t.Run("without INSERT on the trail/"+c.name, func(t *testing.T) {
			cs := setUp(t, app, "acct_noinsert_"+strings.ToLower(c.name))
			err := c.run(ctx, noInsert, cs.rec, cs.next)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "42501" || store.IsAnswer(err) {
				t.Fatalf("%s = %v, want a failure for insufficient_privilege", c.name, err)
			}
			cs.checkUnchanged(t, app)
		})
	}
}

// tamperWith runs statements on the trail as its owner (here a superuser)
// can: with its trigger skipped, by session_replication_role = replica or
// by disabling the trigger, in a transaction. {a} stands for the trail,
// $1 for the owner.
func tamperWith(t *testing.T, db *sql.DB, trail, owner string, replica bool, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	around := []string{"ALTER TABLE " + trail + " DISABLE TRIGGER api_keys_audit_append_only",
		"ALTER TABLE " + trail + " ENABLE TRIGGER api_keys_audit_append_only"}
	if replica {
		around = []string{"SET LOCAL session_replication_role = replica", "SET LOCAL session_replication_role = origin"}
	}
	if _, err := tx.ExecContext(ctx, around[0]); err != nil {
		t.Skipf("cannot skip the trail's trigger (%v): the test needs the table's owner or a superuser", err)
	}
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, strings.ReplaceAll(q, "{a}", trail), owner); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := tx.ExecContext(ctx, around[1]); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// sixEntries makes six entries in the owner's trail: three creations, an
// update (a rename to "renamed"), a revocation and an exposure.
func sixEntries(t *testing.T, s *postgres.Store, owner string) {
	t.Helper()
	ctx := context.Background()
	var recs []apikey.Record
	for range 3 {
		rec := newRecord(t)
		rec.Owner = owner
		recs = append(recs, mustCreate(t, s, rec))
	}
	if _, err := s.Update(ctx, owner, recs[0].ID, store.Update{Name: "renamed"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revoke(ctx, owner, recs[1].ID, store.Revocation{At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expose(ctx, owner, recs[2].ID, apikey.Exposure{At: time.Now(), Source: "github"}, false); err != nil {
		t.Fatal(err)
	}
	checkChain(t, s, owner, 6)
}

// The table's owner can get around the trail's trigger; what it does then
// shows: a checker walking the trail through the store reports the first
// entry that no longer holds, whatever was done. The store reads the
// entries as they are, a garbled one too.
func TestAuditTampering(t *testing.T) {
	db := pgtest.DB(t)
	s, table := migratedStore(t, db)
	trail := table + "_audit"
	// sealed is the SQL of an entry's hash, as audit.Seal computes it,
	// for a body b.
	sealed := func(b string) string {
		return `sha256(convert_to('keyward audit v1', 'UTF8') || decode('00', 'hex') || prev || int8send(seq) || convert_to(` + b + `, 'UTF8'))`
	}
	tampers := []struct {
		name  string
		stmts []string
		seq   int64 // the first entry that does not hold
	}{
		{"edit a body", []string{`UPDATE {a} SET body = replace(body, '"renamed"', '"innocent"') WHERE owner = $1 AND seq = 4`}, 4},
		{"edit a body and seal it again", []string{
			`UPDATE {a} SET body = replace(body, '"renamed"', '"innocent"') WHERE owner = $1 AND seq = 4`,
			`UPDATE {a} SET hash = ` + sealed("body") + ` WHERE owner = $1 AND seq = 4`}, 5},
		{"garble a body", []string{`UPDATE {a} SET body = 'not an event' WHERE owner = $1 AND seq = 3`}, 3},
		// The columns the body repeats are not sealed, and the store reads
		// the event from the body: the trail holds, and tells the truth.
		{"edit a column the body repeats", []string{`UPDATE {a} SET kind = 'key.created', key_id = gen_random_uuid(), at = now() WHERE owner = $1 AND seq = 5`}, 0},
		{"delete an entry", []string{`DELETE FROM {a} WHERE owner = $1 AND seq = 2`}, 2},
		{"delete the first entry", []string{`DELETE FROM {a} WHERE owner = $1 AND seq = 1`}, 1},
		{"swap two entries", []string{
			`UPDATE {a} SET seq = 1000 WHERE owner = $1 AND seq = 4`,
			`UPDATE {a} SET seq = 4 WHERE owner = $1 AND seq = 5`,
			`UPDATE {a} SET seq = 5 WHERE owner = $1 AND seq = 1000`}, 4},
		// The newest entries removed leave a chain that holds, shorter: it
		// shows against a head kept elsewhere (audit.Checker.Head).
		{"move the newest entry to another owner", []string{`UPDATE {a} SET owner = $1 || '_other' WHERE owner = $1 AND seq = 6`}, 0},
		{"give an entry another owner's body", []string{
			`UPDATE {a} SET body = replace(body, '"owner":"' || $1 || '"', '"owner":"someone"') WHERE owner = $1 AND seq = 2`}, 2},
	}
	for i, tc := range tampers {
		for _, replica := range []bool{false, true} {
			name := tc.name + "/trigger disabled"
			if replica {
				name = tc.name + "/session_replication_role"
			}
			t.Run(name, func(t *testing.T) {
				owner := fmt.Sprintf("acct_tamper_%d_%v", i, replica)
				sixEntries(t, s, owner)
				kept := audit.NewChecker(owner) // the head kept before, elsewhere
				for _, e := range chain(t, s, owner) {
					kept.Add(e)
				}
				keptSeq, keptHash := kept.Head()
				// With the trigger in place, the owner cannot.
				for _, q := range tc.stmts {
					_, err := db.ExecContext(context.Background(), strings.ReplaceAll(q, "{a}", trail), owner)
					refusedAppendOnly(t, err)
				}
				tamperWith(t, db, trail, owner, replica, tc.stmts...)

				entries := chain(t, s, owner) // no error, whatever was done
				err := audit.Check(owner, entries)
				if tc.seq == 0 {
					if err != nil {
						t.Errorf("audit.Check = %v, want nil: what the hashes seal is intact", err)
					}
					c := audit.NewChecker(owner)
					for _, e := range entries {
						c.Add(e)
					}
					seq, hash := c.Head()
					removed := seq != keptSeq || hash != keptHash
					if wantRemoved := strings.Contains(tc.name, "newest"); removed != wantRemoved {
						t.Errorf("the head is entry %d, the one kept before entry %d: removal shown %v, want %v", seq, keptSeq, removed, wantRemoved)
					}
					page, err := s.Audit(context.Background(), owner, store.AuditOptions{Limit: 2})
					if err != nil {
						t.Fatal(err)
					}
					if e := page.Entries[len(page.Entries)-1]; !removed && e.Kind != audit.Revoked {
						t.Errorf("entry %d reads as %s, want what its body says: %s", e.Seq, e.Kind, audit.Revoked)
					}
					return
				}
				var te *audit.TamperError
				if !errors.Is(err, audit.ErrTampered) || !errors.As(err, &te) || te.Seq != tc.seq || te.Owner != owner {
					t.Fatalf("audit.Check = %v, want the entry %d of %s reported as tampered with", err, tc.seq, owner)
				}
				t.Logf("%v", err)
				// A checker fed page by page stops at the same entry.
				c := audit.NewChecker(owner)
				var first error
				for after := int64(0); first == nil; {
					page, err := s.AuditChain(context.Background(), owner, after, 2)
					if err != nil {
						t.Fatal(err)
					}
					if len(page) == 0 {
						break
					}
					for _, e := range page {
						if err := c.Add(e); err != nil && first == nil {
							first = err
						}
					}
					after = page[len(page)-1].Seq
				}
				if !errors.As(first, &te) || te.Seq != tc.seq {
					t.Errorf("the checker fed page by page reported %v, want entry %d", first, tc.seq)
				}
				// The listing still reads the trail.
				if _, err := s.Audit(context.Background(), owner, store.AuditOptions{}); err != nil {
					t.Errorf("Audit of the tampered trail: %v", err)
				}
			})
		}
	}
	// Tampering with an owner's trail leaves the others' holding.
	sixEntries(t, s, "acct_untouched")
}

// refusedAppendOnly fails unless err is the trail's trigger refusing.
func refusedAppendOnly(t *testing.T, err error) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23000" || !strings.Contains(pgErr.Message, "append-only") {
		t.Errorf("statement = %v, want the trail's integrity_constraint_violation (append-only)", err)
	}
}

// The trail's trigger refuses UPDATE, DELETE (even of no row) and
// TRUNCATE, to the table's owner (here a superuser) as to a role that
// holds every privilege on it; such a role can neither switch the trigger
// off nor skip it.
func TestAuditAppendOnly(t *testing.T) {
	db := pgtest.DB(t)
	s, table := migratedStore(t, db)
	trail := table + "_audit"
	schema, _, _ := strings.Cut(table, ".")
	sixEntries(t, s, testOwner)
	ctx := context.Background()
	stmts := []string{
		`UPDATE {a} SET kind = 'key.created'`,
		`UPDATE {a} SET seq = seq + 100 WHERE seq = 6`,
		`UPDATE {a} SET body = body WHERE false`,
		`DELETE FROM {a}`,
		`DELETE FROM {a} WHERE seq = 6`,
		`DELETE FROM {a} WHERE false`,
		`TRUNCATE {a}`,
		`INSERT INTO {a} SELECT * FROM {a} WHERE seq = 6 ON CONFLICT (owner, seq) DO UPDATE SET body = 'x'`,
	}
	role := roleConn(t, db, table, append(slices.Clone(documentedGrants),
		"GRANT ALL ON {t}_audit, {t}_audit_heads TO {role}")...)
	for who, conn := range map[string]postgres.DB{"the table's owner": db, "a role with every privilege": role} {
		for _, q := range stmts {
			t.Run(who+"/"+q, func(t *testing.T) {
				_, err := conn.ExecContext(ctx, strings.ReplaceAll(q, "{a}", trail))
				refusedAppendOnly(t, err)
			})
		}
	}
	for _, esc := range []string{
		"ALTER TABLE " + trail + " DISABLE TRIGGER ALL",
		"ALTER TABLE " + trail + " DISABLE TRIGGER api_keys_audit_append_only",
		"DROP TRIGGER api_keys_audit_append_only ON " + trail,
		"CREATE OR REPLACE FUNCTION " + schema + ".api_keys_audit_refuse() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'",
		"SET session_replication_role = replica",
		"DROP TABLE " + trail,
	} {
		t.Run("a role with every privilege/"+esc, func(t *testing.T) {
			_, err := role.ExecContext(ctx, esc)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
				t.Errorf("%s = %v, want insufficient_privilege", esc, err)
			}
		})
	}
	checkChain(t, s, testOwner, 6)
}

// Changes of one owner's keys made at once, from several pools, each in
// its own transaction, chain without gap nor fork: the trail holds, has
// one entry per change made, and its head is its newest entry. RevokeAll
// runs meanwhile, locking keys that the others change: nothing deadlocks.
func TestAuditConcurrentChanges(t *testing.T) {
	const workers, rounds = 8, 6
	db := pgtest.DB(t)
	s, table := migratedStore(t, db)
	const owner = "acct_busy"
	ctx := context.Background()
	var (
		made atomic.Int64 // entries of the changes that succeeded
		wg   sync.WaitGroup
	)
	// done counts what a call appended, if it succeeded; an answer of the
	// contract (a key revoked meanwhile) appends nothing.
	done := func(what string, n int, err error) bool {
		switch {
		case err == nil:
			made.Add(int64(n))
			return true
		case !store.IsAnswer(err):
			t.Errorf("%s: %v", what, err)
		}
		return false
	}
	for w := range workers {
		st := s.WithTx(pgtest.Open(t))
		wg.Go(func() {
			for range rounds {
				rec := newRecord(t)
				rec.Owner = owner
				rec.Scopes = scope.NewSet(scope.SessionsWrite, scope.LinksRead)
				created, err := st.Create(ctx, rec, store.Idempotency{})
				if !done("Create", 1, err) {
					return
				}
				_, err = st.Update(ctx, owner, created.ID, store.Update{Name: fmt.Sprint("worker ", w), Scopes: scope.NewSet(scope.LinksRead)})
				done("Update", 1, err)
				next := newRecord(t)
				next.Owner, next.Replaces, next.Scopes = owner, created.ID, scope.NewSet(scope.LinksRead)
				_, _, err = st.Rotate(ctx, owner, created.ID, next, time.Now().Add(time.Hour))
				if done("Rotate", 2, err) {
					_, err = st.Expose(ctx, owner, next.ID, apikey.Exposure{At: time.Now(), Source: "github"}, false)
					done("Expose", 1, err)
					_, err = st.Revoke(ctx, owner, next.ID, store.Revocation{At: time.Now()})
					done("Revoke", 1, err)
				}
			}
		})
	}
	revoker := s.WithTx(pgtest.Open(t))
	wg.Go(func() {
		for range 3 {
			time.Sleep(20 * time.Millisecond)
			revoked, err := revoker.RevokeAll(ctx, owner, store.Revocation{At: time.Now(), Reason: "sweep"})
			done("RevokeAll", len(revoked), err)
		}
	})
	wg.Wait()
	if t.Failed() {
		return
	}
	entries := checkChain(t, s, owner, int(made.Load()))
	t.Logf("%d entries", len(entries))
	var seq int64
	var hash []byte
	if err := db.QueryRowContext(ctx, "SELECT seq, hash FROM "+table+"_audit_heads WHERE owner = $1", owner).Scan(&seq, &hash); err != nil {
		t.Fatal(err)
	}
	if last := entries[len(entries)-1]; seq != last.Seq || string(hash) != string(last.Hash[:]) {
		t.Errorf("the head is entry %d, want the newest, %d, with its hash", seq, last.Seq)
	}
}

// The entries are those package audit makes, byte for byte: each body is
// the event's Body, with the actor of the context, and each hash is
// audit.Seal of the one before, the number and the body, although the
// database computed it. Text that JSON escapes, or that is not ASCII,
// included.
func TestAuditEntriesAsSealedInGo(t *testing.T) {
	db := pgtest.DB(t)
	s, table := migratedStore(t, db)
	actor := audit.Actor{Type: audit.TypeOperator, ID: `Ada "the first" \ Lovelace, née Byron ✓ <ada@example.com>`}
	ctx := audit.WithActor(context.Background(), actor)
	rec := newRecord(t)
	rec.Owner = "acct_sealed"
	rec.Name = `clé "de prod" \ {a,b} NULL`
	rec.Scopes = scope.NewSet(scope.SessionsWrite, scope.LinksRead)
	rec.Metadata = apikey.MustMetadata(map[string]string{"team": "billing"})
	rec.Policy = fullPolicy()
	rec.ExpiresAt = time.Now().Add(48 * time.Hour)
	created, err := s.Create(ctx, rec, store.Idempotency{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.FixedZone("UTC-3", -3*3600))
	updated, err := s.Update(ctx, rec.Owner, rec.ID, store.Update{Name: "ünïcode ∑", Scopes: scope.NewSet(scope.LinksRead),
		ExpiresAt: time.Now().Add(time.Hour), At: at})
	if err != nil {
		t.Fatal(err)
	}
	next := newRecord(t)
	next.Owner, next.Replaces, next.Scopes = rec.Owner, rec.ID, scope.NewSet(scope.LinksRead)
	old, replacement, err := s.Rotate(ctx, rec.Owner, rec.ID, next, time.Now().Add(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := s.RevokeAll(ctx, rec.Owner, store.Revocation{At: time.Now(), Reason: "account closed"})
	if err != nil || len(revoked) != 2 {
		t.Fatalf("RevokeAll = %d keys, %v", len(revoked), err)
	}
	exposed, err := s.Expose(ctx, rec.Owner, next.ID, apikey.Exposure{At: time.Now(), Source: "github", URL: "https://github.com/acme/app/blob/0123abc/.env#L3"}, true)
	if err != nil {
		t.Fatal(err)
	}
	revokedNext := revoked[0]
	want := []audit.Event{
		audit.CreatedEvent(created, actor),
		func() audit.Event { e, _ := audit.UpdatedEvent(created, updated, at, actor); return e }(),
		audit.CreatedEvent(replacement, actor),
		audit.RotatedEvent(updated, old, replacement.CreatedAt, actor),
		audit.RevokedEvent(audit.RevokedAll, revoked[0], actor),
		audit.RevokedEvent(audit.RevokedAll, revoked[1], actor),
		audit.ExposedEvent(revokedNext, exposed, exposed.Exposure.At, actor),
	}
	entries := checkChain(t, s, rec.Owner, len(want))
	var prev [32]byte
	for i, e := range entries {
		body := want[i].Body()
		var stored string
		var storedPrev, storedHash []byte
		if err := db.QueryRowContext(ctx, "SELECT body, prev, hash FROM "+table+"_audit WHERE owner = $1 AND seq = $2",
			rec.Owner, e.Seq).Scan(&stored, &storedPrev, &storedHash); err != nil {
			t.Fatal(err)
		}
		seal := audit.Seal(prev, int64(i+1), body)
		switch {
		case stored != string(body):
			t.Errorf("entry %d: stored body\n%s\nwant\n%s", i+1, stored, body)
		case string(e.Body()) != string(body):
			t.Errorf("entry %d: the store read back the event\n%s\nwant\n%s", i+1, e.Body(), body)
		case e.Seq != int64(i+1) || e.Prev != prev || string(storedPrev) != string(prev[:]):
			t.Errorf("entry %d: seq %d, prev %x, want %d, %x", i+1, e.Seq, e.Prev, i+1, prev)
		case e.Hash != seal || string(storedHash) != string(seal[:]):
			t.Errorf("entry %d: hash %x, want audit.Seal's %x", i+1, e.Hash, seal)
		case e.Actor != actor:
			t.Errorf("entry %d: actor %v, want %v", i+1, e.Actor, actor)
		}
		prev = e.Hash
	}
}

// An actor that audit.Actor.Validate refuses fails every change before
// the store sends anything to the database.
func TestAuditInvalidActorTouchesNothing(t *testing.T) {
	db := pgtest.DB(t)
	s, table := migratedStore(t, db)
	pool, trips := countingPool(t)
	counted, err := postgres.New(pool, postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	for i, actor := range []audit.Actor{{Type: "Not A Type"}, {ID: "no type"}, {Type: "cli", ID: "bell\a"}} {
		ctx := audit.WithActor(context.Background(), actor)
		for _, c := range changeCases {
			t.Run(fmt.Sprintf("%q/%s", actor.String(), c.name), func(t *testing.T) {
				cs := setUp(t, s, fmt.Sprintf("acct_invalid_%d_%s", i, strings.ToLower(c.name)))
				before := trips.Load()
				if err := c.run(ctx, counted, cs.rec, cs.next); !errors.Is(err, audit.ErrInvalidActor) {
					t.Errorf("%s by %q = %v, want ErrInvalidActor", c.name, actor.String(), err)
				}
				if n := trips.Load() - before; n != 0 {
					t.Errorf("%s by an invalid actor sent %d statements, want none", c.name, n)
				}
				cs.checkUnchanged(t, s)
			})
		}
	}
}

// Each change appends its entries in one statement, in the change's own
// transaction, and never reads the head in a statement of its own: the
// change's statements, then the append, then the commit.
func TestAuditAppendIsOneStatement(t *testing.T) {
	db := pgtest.DB(t)
	s, table := migratedStore(t, db)
	pool, trips := countingPool(t)
	counted, err := postgres.New(pool, postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	// What each sends: BEGIN, the change's statements, the append, COMMIT.
	want := map[string]int{
		"Create":    4, // INSERT
		"Update":    5, // lock, UPDATE
		"Rotate":    6, // lock, INSERT, UPDATE
		"Revoke":    4, // revoke
		"RevokeAll": 5, // two passes, the second revoking nothing
		"Expose":    5, // lock, UPDATE
	}
	for _, c := range changeCases {
		t.Run(c.name, func(t *testing.T) {
			cs := setUp(t, s, "acct_trips_"+strings.ToLower(c.name))
			stop := trips.logging()
			err := c.run(context.Background(), counted, cs.rec, cs.next)
			sent := stop()
			if err != nil {
				t.Fatal(err)
			}
			appends := 0
			for _, q := range sent {
				if strings.Contains(q, "_audit_append") {
					appends++
				}
				if strings.Contains(q, "_audit_heads") {
					t.Errorf("%s read the head in a statement of its own: %s", c.name, q)
				}
			}
			if appends != 1 || len(sent) != want[c.name] || sent[0] != "BEGIN" || sent[len(sent)-1] != "COMMIT" ||
				!strings.Contains(sent[len(sent)-2], "_audit_append") {
				t.Errorf("%s sent %d statements, %d of them appends:\n%s\nwant %d, the one append last before COMMIT",
					c.name, len(sent), appends, strings.Join(sent, "\n"), want[c.name])
			}
			cs.checkApplied(t, s, c)
		})
	}
}

// A call that changes nothing appends nothing: an update to the values
// the key has, a report of an exposure already reported, a revocation of
// a revoked key, RevokeAll with no active key, a repeated idempotent
// create.
func TestAuditNoEntryWhenNothingChanges(t *testing.T) {
	db := pgtest.DB(t)
	s := newStore(t, db)
	ctx := context.Background()
	rec := newRecord(t)
	rec.ExpiresAt = time.Now().Add(time.Hour)
	idem := store.Idempotency{Key: [32]byte{3}, Request: [32]byte{4}}
	rec, err := s.Create(ctx, rec, idem)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []store.Update{{}, {Name: rec.Name}, {Scopes: rec.Scopes}, {ExpiresAt: rec.ExpiresAt.Add(time.Hour)},
		{Metadata: &rec.Metadata}, {Policy: &apikey.Policy{}}, {At: time.Now()}} {
		if got, err := s.Update(ctx, testOwner, rec.ID, u); err != nil || diff(got, rec) != "" {
			t.Errorf("Update(%+v) = %v, %v; want the key unchanged", u, diff(got, rec), err)
		}
	}
	if _, err := s.Create(ctx, rec, idem); !errors.Is(err, store.ErrAlreadyCreated) {
		t.Errorf("repeated Create = %v, want ErrAlreadyCreated", err)
	}
	checkChain(t, s, testOwner, 1)
	e := apikey.Exposure{At: time.Now(), Source: "github"}
	if _, err := s.Expose(ctx, testOwner, rec.ID, e, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expose(ctx, testOwner, rec.ID, e, false); !errors.Is(err, store.ErrAlreadyExposed) {
		t.Errorf("second Expose = %v, want ErrAlreadyExposed", err)
	}
	if _, err := s.Revoke(ctx, testOwner, rec.ID, store.Revocation{At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revoke(ctx, testOwner, rec.ID, store.Revocation{At: time.Now()}); !errors.Is(err, store.ErrAlreadyRevoked) {
		t.Errorf("second Revoke = %v, want ErrAlreadyRevoked", err)
	}
	if _, err := s.Expose(ctx, testOwner, rec.ID, e, true); !errors.Is(err, store.ErrAlreadyExposed) {
		t.Errorf("Expose of a revoked, exposed key = %v, want ErrAlreadyExposed", err)
	}
	if revoked, err := s.RevokeAll(ctx, testOwner, store.Revocation{At: time.Now()}); err != nil || len(revoked) != 0 {
		t.Errorf("RevokeAll with no active key = %d keys, %v", len(revoked), err)
	}
	if got := kinds(checkChain(t, s, testOwner, 3)); !slices.Equal(got, []audit.Kind{audit.Created, audit.Exposed, audit.Revoked}) {
		t.Errorf("kinds %v", got)
	}
}

// In a caller's transaction at REPEATABLE READ, a change of an owner whose
// trail moved since the transaction's snapshot fails with a serialization
// failure, to retry, rather than fork the chain.
func TestAuditRepeatableRead(t *testing.T) {
	db := pgtest.DB(t)
	s := newStore(t, db)
	ctx := context.Background()
	a := mustCreate(t, s, newRecord(t))
	b := mustCreate(t, s, newRecord(t))
	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT 1"); err != nil { // the snapshot
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, testOwner, a.ID, store.Update{Name: "moved the head"}); err != nil {
		t.Fatal(err)
	}
	_, err = s.WithTx(tx).Update(ctx, testOwner, b.ID, store.Update{Name: "in the old snapshot"})
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "40001" {
		t.Fatalf("Update in a REPEATABLE READ transaction behind the trail = %v, want a serialization failure", err)
	}
	tx.Rollback()
	if _, err := s.Update(ctx, testOwner, b.ID, store.Update{Name: "retried"}); err != nil {
		t.Fatal(err)
	}
	checkChain(t, s, testOwner, 4)
}
