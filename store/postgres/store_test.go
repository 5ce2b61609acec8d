package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/postgres"
)

// Keys created through a transaction commit or roll back with it.
func TestCreateInTransaction(t *testing.T) {
	db := pgtest.DB(t)
	s := newStore(t, db)
	ctx := context.Background()

	for _, commit := range []bool{false, true} {
		t.Run(fmt.Sprint("commit=", commit), func(t *testing.T) {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			inTx := s.WithTx(tx)
			rec := mustCreate(t, inTx, newRecord(t))
			if _, err := inTx.Get(ctx, testOwner, rec.ID); err != nil {
				t.Fatalf("Get in the transaction: %v", err)
			}
			if _, err := s.Get(ctx, testOwner, rec.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get outside the transaction before commit = %v, want ErrNotFound", err)
			}
			if commit {
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
			} else if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			_, err = s.Get(ctx, testOwner, rec.ID)
			switch {
			case commit && err != nil:
				t.Errorf("Get after commit = %v", err)
			case !commit && !errors.Is(err, store.ErrNotFound):
				t.Errorf("Get after rollback = %v, want ErrNotFound", err)
			}
		})
	}
	t.Run("duplicate", func(t *testing.T) {
		first := mustCreate(t, s, newRecord(t))
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		dup := newRecord(t)
		dup.Hash = first.Hash
		if _, err := s.WithTx(tx).Create(ctx, dup, store.Idempotency{}); !errors.Is(err, store.ErrDuplicate) {
			t.Errorf("Create of a duplicate in a transaction = %v, want ErrDuplicate", err)
		}
	})
}

// A check added to the table by its owner refuses records with an error
// matching apikey.ErrInvalidRecord, which the lifecycle passes through.
func TestCreateRefusedByCheck(t *testing.T) {
	db := pgtest.DB(t)
	table := migrated(t, db)
	if _, err := db.ExecContext(context.Background(), "ALTER TABLE "+table+" ADD CHECK (length(name) <= 10)"); err != nil {
		t.Fatal(err)
	}
	s, err := postgres.New(db, postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecord(t)
	rec.Name = "a name longer than ten bytes"
	if _, err := s.Create(context.Background(), rec, store.Idempotency{}); !errors.Is(err, apikey.ErrInvalidRecord) {
		t.Errorf("Create = %v, want ErrInvalidRecord", err)
	}
	// And an update the check refuses, in the store's own transaction.
	short := mustCreate(t, s, newRecord(t))
	if _, err := s.Update(context.Background(), testOwner, short.ID, store.Update{Name: rec.Name}); !errors.Is(err, apikey.ErrInvalidRecord) {
		t.Errorf("Update = %v, want ErrInvalidRecord", err)
	}
	if got, err := s.Get(context.Background(), testOwner, short.ID); err != nil || got.Name != short.Name {
		t.Errorf("after a refused Update, the key is named %q (%v), want %q", got.Name, err, short.Name)
	}
}

// A unique violation from a deferrable constraint the owner added is a
// duplicate, with or without an idempotency key: ON CONFLICT names the
// idempotency index alone.
func TestCreateUniqueViolation(t *testing.T) {
	db := pgtest.DB(t)
	table := migrated(t, db)
	if _, err := db.ExecContext(context.Background(),
		"ALTER TABLE "+table+" ADD UNIQUE (name) DEFERRABLE INITIALLY IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	s, err := postgres.New(db, postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, newRecord(t))
	for _, idem := range []store.Idempotency{{}, {Key: [32]byte{1}, Request: [32]byte{2}}} {
		if _, err := s.Create(context.Background(), newRecord(t), idem); !errors.Is(err, store.ErrDuplicate) {
			t.Errorf("Create of a second key with the same name (idempotency %v) = %v, want ErrDuplicate", !idem.IsZero(), err)
		}
	}
}

// Instances flushing batches of the same keys, in different orders, at
// the same time, neither deadlock nor lose the latest time.
func TestRecordUsesConcurrentBatches(t *testing.T) {
	const keys, instances, rounds = 200, 4, 10
	db := pgtest.DB(t)
	s := newStore(t, db)
	ctx := context.Background()
	base := time.Now()
	var ids []uuid.UUID
	for range keys {
		ids = append(ids, mustCreate(t, s, newRecord(t)).ID)
	}
	var wg sync.WaitGroup
	for w := range instances {
		st := s.WithTx(pgtest.Open(t)) // a pool per instance
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for r := range rounds {
				uses := make([]store.Use, keys)
				for i, id := range ids {
					uses[i] = store.Use{ID: id, At: base.Add(time.Duration(r*instances+w) * time.Millisecond)}
				}
				rng.Shuffle(len(uses), func(i, j int) { uses[i], uses[j] = uses[j], uses[i] })
				if err := st.RecordUses(ctx, uses); err != nil {
					t.Errorf("instance %d: RecordUses = %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := store.Time(base.Add(time.Duration((rounds-1)*instances+instances-1) * time.Millisecond))
	for _, id := range ids {
		rec, err := s.Get(ctx, testOwner, id)
		if err != nil {
			t.Fatal(err)
		}
		if rec.LastUsedAt != want {
			t.Fatalf("LastUsedAt = %v, want the latest %v", rec.LastUsedAt, want)
		}
	}
}

// List walks 100,000 keys page by page, while keys are being created,
// returning each existing key exactly once and in order.
func TestList100kWhileCreating(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 100,000 keys")
	}
	const n = 100_000
	db := pgtest.DB(t)
	s, table := migratedStore(t, db)
	ctx := context.Background()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// One statement seeds the keys; pairs share a creation time, so pages
	// split ties.
	if _, err := db.ExecContext(ctx, `INSERT INTO `+table+` (id, owner, hash, prefix, name, mode, scopes, created_at)
SELECT gen_random_uuid(), $3, sha256(('seed ' || i)::bytea), 'ck_live_seed00', 'seeded key', 'live',
	'{sessions:write}', $1::timestamptz + (i / 2) * interval '1 millisecond'
FROM generate_series(1, $2::int) AS i`, base, n, testOwner); err != nil {
		t.Fatal(err)
	}

	// Creations during the walk: newer keys, as a clock gives, and older
	// ones, as a clock that stepped back would.
	stop := make(chan struct{})
	created := make(chan int)
	go func() {
		count := 0
		defer func() { created <- count }()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			rec := newRecord(t)
			if i%2 == 0 {
				rec.CreatedAt = base.Add(time.Hour + time.Duration(i)*time.Microsecond)
			} else {
				rec.CreatedAt = base.Add(time.Duration(rand.IntN(n/2)) * time.Millisecond)
			}
			if _, err := s.Create(ctx, rec, store.Idempotency{}); err != nil {
				t.Errorf("Create during the walk: %v", err)
				return
			}
			count++
		}
	}()

	seen := make(map[uuid.UUID]bool, n)
	var prev *apikey.Record
	seeded, pages := 0, 0
	opts := store.ListOptions{Limit: store.MaxLimit}
	for {
		page, err := s.List(ctx, testOwner, opts)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for i := range page.Records {
			rec := &page.Records[i]
			if seen[rec.ID] {
				t.Fatalf("key %s listed twice", rec.ID)
			}
			seen[rec.ID] = true
			if prev != nil && (rec.CreatedAt.After(prev.CreatedAt) ||
				rec.CreatedAt.Equal(prev.CreatedAt) && store.CompareIDs(rec.ID, prev.ID) >= 0) {
				t.Fatalf("list order broken at %s", rec.ID)
			}
			prev = rec
			if rec.Name == "seeded key" {
				seeded++
			}
		}
		if page.Next == "" {
			break
		}
		opts.Cursor = page.Next
	}
	close(stop)
	during := <-created
	if seeded != n {
		t.Errorf("listed %d of the %d seeded keys", seeded, n)
	}
	if during == 0 {
		t.Error("no key was created during the walk")
	}
	t.Logf("%d pages; %d keys created during the walk, %d of them listed", pages, during, len(seen)-seeded)
}

// A position from one instance works with another: positions are the
// database's time, not a process's.
func TestChangesAcrossInstances(t *testing.T) {
	db := pgtest.DB(t)
	a, table := migratedStore(t, db)
	b, err := postgres.New(pgtest.Open(t), postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rec := mustCreate(t, a, newRecord(t))
	_, pos, err := b.Changes(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Revoke(ctx, testOwner, rec.ID, store.Revocation{At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	changed, _, err := a.Changes(ctx, pos)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(changed, rec.Hash) {
		t.Error("a revocation after B's position was not reported to A")
	}
}

// Every change of a record made in raw SQL is reported, as through the
// store; a use is not.
func TestChangesSeeRawSQL(t *testing.T) {
	db := pgtest.DB(t)
	s, table := migratedStore(t, db)
	ctx := context.Background()
	changes := []struct{ name, set string }{
		{"expiry", "expires_at = now()"},
		{"name", "name = 'renamed'"},
		{"scopes", "scopes = '{sessions:write}'"},
		{"metadata", `metadata = '{"plan": "gold"}'`},
		{"revocation", "revoked_at = now()"},
		{"rotation link", "replaced_by = gen_random_uuid()"},
		{"exposure", "exposed_at = now(), exposed_source = 'github', exposed_url = ''"},
		{"revocation with a reason", "revoked_at = now(), revoked_reason = 'lost'"},
		{"policy", `policy = '{"quota": {"requests": 10, "per": "day"}}'`},
	}
	keys := make([]apikey.Record, len(changes))
	for i := range keys {
		rec := newRecord(t)
		rec.Scopes = scope.NewSet(scope.SessionsWrite, scope.LinksRead)
		keys[i] = mustCreate(t, s, rec)
	}
	used := mustCreate(t, s, newRecord(t))
	_, pos, err := s.Changes(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range changes {
		if _, err := db.ExecContext(ctx, "UPDATE "+table+" SET "+c.set+" WHERE id = $1", keys[i].ID); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	if _, err := db.ExecContext(ctx, "UPDATE "+table+" SET last_used_at = now() WHERE id = $1", used.ID); err != nil {
		t.Fatal(err)
	}
	changed, _, err := s.Changes(ctx, pos)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range changes {
		if !slices.Contains(changed, keys[i].Hash) {
			t.Errorf("a change of the %s made in raw SQL was not reported", c.name)
		}
	}
	if slices.Contains(changed, used.Hash) {
		t.Error("a use was reported as a change")
	}
}

// Update, Rotate, RevokeAll, Expose and RecordTrip through a caller's
// transaction run inside it: their changes, and their audit entries,
// commit or roll back with it.
func TestChangesInCallersTransaction(t *testing.T) {
	db := pgtest.DB(t)
	s := newStore(t, db)
	ctx := context.Background()
	for _, commit := range []bool{false, true} {
		t.Run(fmt.Sprint("commit=", commit), func(t *testing.T) {
			owner := fmt.Sprint("acct_commit_", commit)
			rec := newRecord(t)
			rec.Owner = owner
			rec.Scopes = scope.NewSet(scope.SessionsWrite, scope.LinksRead)
			updated := mustCreate(t, s, rec)
			rec = newRecord(t)
			rec.Owner = owner
			rotated := mustCreate(t, s, rec)
			rec = newRecord(t)
			rec.Owner, rec.Canary = owner, true
			canary := mustCreate(t, s, rec)

			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			inTx := s.WithTx(tx)
			if _, err := inTx.Update(ctx, owner, updated.ID, store.Update{Name: "renamed", Scopes: scope.NewSet(scope.LinksRead)}); err != nil {
				t.Fatalf("Update in the transaction: %v", err)
			}
			next := newRecord(t)
			next.Owner, next.Replaces = owner, rotated.ID
			if _, _, err := inTx.Rotate(ctx, owner, rotated.ID, next, time.Now().Add(time.Hour)); err != nil {
				t.Fatalf("Rotate in the transaction: %v", err)
			}
			// A refusal leaves the caller's transaction usable.
			if _, err := inTx.Update(ctx, owner, updated.ID, store.Update{Scopes: scope.NewSet(scope.SessionsWrite)}); !errors.Is(err, store.ErrWidening) {
				t.Fatalf("widening Update in the transaction = %v, want ErrWidening", err)
			}
			if _, err := inTx.Expose(ctx, owner, updated.ID, apikey.Exposure{At: time.Now(), Source: "github"}, false); err != nil {
				t.Fatalf("Expose in the transaction: %v", err)
			}
			if err := inTx.RecordTrip(ctx, apikey.Trip{KeyID: canary.ID, Owner: owner, At: time.Now()}); err != nil {
				t.Fatalf("RecordTrip in the transaction: %v", err)
			}
			if revoked, err := inTx.RevokeAll(ctx, owner, store.Revocation{At: time.Now()}); err != nil || len(revoked) != 4 {
				t.Fatalf("RevokeAll in the transaction = %d keys, %v; want 4", len(revoked), err)
			}
			// Outside, nothing shows before the end of the transaction.
			if got, err := s.Get(ctx, owner, updated.ID); err != nil || got.Name != updated.Name || got.Revoked() {
				t.Errorf("outside the open transaction, the updated key = %+v, %v; want it unchanged", got, err)
			}
			if commit {
				err = tx.Commit()
			} else {
				err = tx.Rollback()
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Get(ctx, owner, updated.ID)
			if err != nil {
				t.Fatal(err)
			}
			old, err := s.Get(ctx, owner, rotated.ID)
			if err != nil {
				t.Fatal(err)
			}
			_, nextErr := s.Get(ctx, owner, next.ID)
			trips, err := s.Trips(ctx, owner, canary.ID, 0)
			if err != nil {
				t.Fatal(err)
			}
			// The audit entries commit, or roll back, with their changes:
			// the three creations before the transaction, then the update,
			// the rotation's two, the exposure and the four revocations.
			if commit {
				checkChain(t, s, owner, 3+1+2+1+4)
			} else {
				checkChain(t, s, owner, 3)
			}
			if commit {
				if got.Name != "renamed" || !got.Revoked() || got.Exposure == nil || old.ReplacedBy != next.ID || nextErr != nil || len(trips) != 1 {
					t.Errorf("after commit: updated %q revoked %v exposed %v, old replaced by %s, replacement %v, %d trips",
						got.Name, got.Revoked(), got.Exposure != nil, old.ReplacedBy, nextErr, len(trips))
				}
			} else {
				if got.Name != updated.Name || got.Revoked() || got.Exposure != nil || old.ReplacedBy != uuid.Nil || !errors.Is(nextErr, store.ErrNotFound) || len(trips) != 0 {
					t.Errorf("after rollback: updated %q revoked %v exposed %v, old replaced by %s, replacement %v, %d trips",
						got.Name, got.Revoked(), got.Exposure != nil, old.ReplacedBy, nextErr, len(trips))
				}
			}
		})
	}
}

// plainDB hides every method of a pool but the DB interface, as a wrapper
// that neither begins transactions nor is one would.
type plainDB struct{ postgres.DB }

// txDB is a wrapper of a *sql.Tx: a transaction by its methods.
type txDB struct{ *sql.Tx }

// Create, Update, Rotate, Revoke, RevokeAll, Expose and RecordTrip on a
// DB that can neither begin a transaction nor is one refuse to run, rather
// than run their statements unprotected (a change without its audit
// entry); on a wrapped transaction they run inside it.
func TestUpdateNeedsATransaction(t *testing.T) {
	db := pgtest.DB(t)
	s := newStore(t, db)
	ctx := context.Background()
	rec := mustCreate(t, s, newRecord(t))

	plain := s.WithTx(plainDB{db})
	created := newRecord(t)
	if _, err := plain.Create(ctx, created, store.Idempotency{}); err == nil || store.IsAnswer(err) {
		t.Errorf("Create on a DB without transactions = %v, want a failure", err)
	}
	if _, err := s.Get(ctx, testOwner, created.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the refused Create stored the key: %v", err)
	}
	if _, err := plain.Revoke(ctx, testOwner, rec.ID, store.Revocation{At: time.Now()}); err == nil || store.IsAnswer(err) {
		t.Errorf("Revoke on a DB without transactions = %v, want a failure", err)
	}
	_, err := plain.Update(ctx, testOwner, rec.ID, store.Update{Name: "renamed"})
	if err == nil || store.IsAnswer(err) {
		t.Errorf("Update on a DB without transactions = %v, want a failure", err)
	}
	next := newRecord(t)
	next.Replaces = rec.ID
	_, _, err = plain.Rotate(ctx, testOwner, rec.ID, next, time.Now())
	if err == nil || store.IsAnswer(err) {
		t.Errorf("Rotate on a DB without transactions = %v, want a failure", err)
	}
	if _, err := plain.RevokeAll(ctx, testOwner, store.Revocation{At: time.Now()}); err == nil || store.IsAnswer(err) {
		t.Errorf("RevokeAll on a DB without transactions = %v, want a failure", err)
	}
	if _, err := plain.Expose(ctx, testOwner, rec.ID, apikey.Exposure{At: time.Now(), Source: "github"}, true); err == nil || store.IsAnswer(err) {
		t.Errorf("Expose on a DB without transactions = %v, want a failure", err)
	}
	if err := plain.RecordTrip(ctx, apikey.Trip{KeyID: rec.ID, Owner: testOwner, At: time.Now()}); err == nil || store.IsAnswer(err) {
		t.Errorf("RecordTrip on a DB without transactions = %v, want a failure", err)
	}
	if got, err := s.Get(ctx, testOwner, rec.ID); err != nil || got.Name != rec.Name || got.ReplacedBy != uuid.Nil || got.Revoked() || got.Exposure != nil {
		t.Errorf("the refused calls changed the key: %+v, %v", got, err)
	}
	if trips, err := s.Trips(ctx, testOwner, rec.ID, 0); err != nil || len(trips) != 0 {
		t.Errorf("the refused RecordTrip stored %d trips, %v", len(trips), err)
	}
	checkChain(t, s, testOwner, 1) // the creation of rec alone

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := s.WithTx(txDB{tx}).Update(ctx, testOwner, rec.ID, store.Update{Name: "renamed"}); err != nil {
		t.Fatalf("Update on a wrapped transaction: %v", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, testOwner, rec.ID); err != nil || got.Name != rec.Name {
		t.Errorf("an Update in a rolled-back transaction applied: %q, %v", got.Name, err)
	}
}

// waitingOn returns a pool of one connection, for a call that will wait on
// a lock, and a condition that holds once that connection waits on one.
func waitingOn(t *testing.T, admin *sql.DB) (*sql.DB, func() bool) {
	t.Helper()
	pool := pgtest.Open(t)
	pool.SetMaxOpenConns(1)
	var pid int
	if err := pool.QueryRowContext(context.Background(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return pool, func() bool {
		var waiting bool
		err := admin.QueryRowContext(context.Background(),
			"SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock')", pid).Scan(&waiting)
		return err == nil && waiting
	}
}

// An Update or a Rotate that waits for the lock of a concurrent change
// decides on the key as that change committed it, not as it was when the
// call began.
func TestChangesWaitForTheLock(t *testing.T) {
	db := pgtest.DB(t)
	s, table := migratedStore(t, db)
	ctx := context.Background()
	rotate := func(s *postgres.Store, rec apikey.Record) error {
		next := newRecord(t)
		next.Replaces = rec.ID
		_, _, err := s.Rotate(ctx, testOwner, rec.ID, next, time.Now().Add(time.Hour))
		return err
	}
	tests := []struct {
		name  string
		first func(s *postgres.Store, rec apikey.Record) error // committed while the call waits
		call  func(s *postgres.Store, rec apikey.Record) error
		want  error
	}{
		{"rotate after a revocation",
			func(s *postgres.Store, rec apikey.Record) error {
				_, err := s.Revoke(ctx, testOwner, rec.ID, store.Revocation{At: time.Now()})
				return err
			},
			rotate,
			store.ErrAlreadyRevoked},
		{"rotate after a rotation",
			rotate,
			rotate,
			store.ErrReplaced},
		{"expose after an exposure",
			func(s *postgres.Store, rec apikey.Record) error {
				_, err := s.Expose(ctx, testOwner, rec.ID, apikey.Exposure{At: time.Now(), Source: "github"}, false)
				return err
			},
			func(s *postgres.Store, rec apikey.Record) error {
				_, err := s.Expose(ctx, testOwner, rec.ID, apikey.Exposure{At: time.Now(), Source: "pastebin"}, false)
				return err
			},
			store.ErrAlreadyExposed},
		{"rotate after an exposure that revoked",
			func(s *postgres.Store, rec apikey.Record) error {
				_, err := s.Expose(ctx, testOwner, rec.ID, apikey.Exposure{At: time.Now(), Source: "github"}, true)
				return err
			},
			rotate,
			store.ErrAlreadyRevoked},
		{"widen after a narrowing",
			func(s *postgres.Store, rec apikey.Record) error {
				_, err := s.Update(ctx, testOwner, rec.ID, store.Update{Scopes: scope.NewSet(scope.LinksRead)})
				return err
			},
			func(s *postgres.Store, rec apikey.Record) error {
				_, err := s.Update(ctx, testOwner, rec.ID, store.Update{Scopes: scope.NewSet(scope.SessionsWrite)})
				return err
			},
			store.ErrWidening},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecord(t)
			rec.Scopes = scope.NewSet(scope.SessionsWrite, scope.LinksRead)
			rec = mustCreate(t, s, rec)
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			if err := tc.first(s.WithTx(tx), rec); err != nil {
				t.Fatal(err)
			}
			pool, waiting := waitingOn(t, db)
			other, err := postgres.New(pool, postgres.WithTable(table))
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- tc.call(other, rec) }()
			waitFor(t, waiting)
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if !errors.Is(err, tc.want) {
					t.Errorf("the waiting call = %v, want %v", err, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the waiting call did not return within 10s of the commit")
			}
		})
	}
}

// An account's revocation and the last-used batches of the instances still
// serving its keys lock the keys in the same order: they never deadlock,
// and every key ends revoked.
func TestRevokeAllWhileRecordingUses(t *testing.T) {
	const keys, rounds = 100, 5
	db := pgtest.DB(t)
	s, _ := migratedStore(t, db)
	ctx := context.Background()
	for round := range rounds {
		owner := fmt.Sprintf("acct_round_%d", round)
		var ids []uuid.UUID
		base := time.Now()
		for i := range keys {
			rec := newRecord(t)
			rec.Owner = owner
			rec.CreatedAt = base.Add(time.Duration(i) * time.Millisecond) // List order differs from ID order
			ids = append(ids, mustCreate(t, s, rec).ID)
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 4 {
			uses := s.WithTx(pgtest.Open(t))
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(round), uint64(w)))
				batch := make([]store.Use, keys)
				for i, id := range ids {
					batch[i] = store.Use{ID: id, At: time.Now()}
				}
				rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
				<-start
				if err := uses.RecordUses(ctx, batch); err != nil {
					errs <- fmt.Errorf("RecordUses: %w", err)
				}
			})
		}
		revoker := s.WithTx(pgtest.Open(t))
		var revoked []apikey.Record
		wg.Go(func() {
			<-start
			var err error
			if revoked, err = revoker.RevokeAll(ctx, owner, store.Revocation{At: time.Now()}); err != nil {
				errs <- fmt.Errorf("RevokeAll: %w", err)
			}
		})
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
		if len(revoked) != keys {
			t.Fatalf("round %d: RevokeAll revoked %d keys, want %d", round, len(revoked), keys)
		}
	}
}

// A rotation that commits while RevokeAll waits for the old key's lock
// does not leave its replacement active: as in any serial order of the
// two, both keys end revoked.
func TestRevokeAllCatchesAConcurrentRotation(t *testing.T) {
	db := pgtest.DB(t)
	s, table := migratedStore(t, db)
	ctx := context.Background()
	old := mustCreate(t, s, newRecord(t))

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	next := newRecord(t)
	next.Replaces = old.ID
	if _, _, err := s.WithTx(tx).Rotate(ctx, testOwner, old.ID, next, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	pool, waiting := waitingOn(t, db)
	other, err := postgres.New(pool, postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		recs []apikey.Record
		err  error
	}
	done := make(chan result, 1)
	go func() {
		recs, err := other.RevokeAll(ctx, testOwner, store.Revocation{At: time.Now()})
		done <- result{recs, err}
	}()
	waitFor(t, waiting)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("RevokeAll did not return within 10s of the rotation's commit")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := ids(r.recs); !slices.Equal(got, []uuid.UUID{next.ID, old.ID}) {
		t.Errorf("RevokeAll revoked %v, want the replacement and the old key, newest first: %v", got, []uuid.UUID{next.ID, old.ID})
	}
	for _, id := range []uuid.UUID{old.ID, next.ID} {
		if rec, err := s.Get(ctx, testOwner, id); err != nil || !rec.Revoked() {
			t.Errorf("key %s after RevokeAll: revoked %v, %v", id, rec.Revoked(), err)
		}
	}
}
