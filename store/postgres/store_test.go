package postgres_test

import (
	"context"
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
			if _, err := inTx.Get(ctx, rec.ID); err != nil {
				t.Fatalf("Get in the transaction: %v", err)
			}
			if _, err := s.Get(ctx, rec.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get outside the transaction before commit = %v, want ErrNotFound", err)
			}
			if commit {
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
			} else if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			_, err = s.Get(ctx, rec.ID)
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
		if err := s.WithTx(tx).Create(ctx, dup); !errors.Is(err, store.ErrDuplicate) {
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
	if err := s.Create(context.Background(), rec); !errors.Is(err, apikey.ErrInvalidRecord) {
		t.Errorf("Create = %v, want ErrInvalidRecord", err)
	}
}

// A unique violation that ON CONFLICT does not absorb, from a deferrable
// constraint the owner added, is a duplicate.
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
	if err := s.Create(context.Background(), newRecord(t)); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("Create of a second key with the same name = %v, want ErrDuplicate", err)
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
		rec, err := s.Get(ctx, id)
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
	table := migrated(t, db)
	s, err := postgres.New(db, postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// One statement seeds the keys; pairs share a creation time, so pages
	// split ties.
	if _, err := db.ExecContext(ctx, `INSERT INTO `+table+` (id, hash, prefix, name, mode, scopes, created_at)
SELECT gen_random_uuid(), sha256(('seed ' || i)::bytea), 'ck_live_seed00', 'seeded key', 'live',
	'{sessions:write}', $1::timestamptz + (i / 2) * interval '1 millisecond'
FROM generate_series(1, $2::int) AS i`, base, n); err != nil {
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
			if err := s.Create(ctx, rec); err != nil {
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
		page, err := s.List(ctx, opts)
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
	table := migrated(t, db)
	a, err := postgres.New(db, postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
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
	if _, err := a.Revoke(ctx, rec.ID, time.Now()); err != nil {
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

// A change made in raw SQL is reported; a use or a rename is not.
func TestChangesSeeRawSQL(t *testing.T) {
	db := pgtest.DB(t)
	table := migrated(t, db)
	s, err := postgres.New(db, postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	expired := mustCreate(t, s, newRecord(t))
	renamed := mustCreate(t, s, newRecord(t))
	_, pos, err := s.Changes(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "UPDATE "+table+" SET expires_at = now() WHERE id = $1", expired.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "UPDATE "+table+" SET name = 'renamed', last_used_at = now() WHERE id = $1", renamed.ID); err != nil {
		t.Fatal(err)
	}
	changed, _, err := s.Changes(ctx, pos)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(changed, expired.Hash) {
		t.Error("an expiry set in raw SQL was not reported")
	}
	if slices.Contains(changed, renamed.Hash) {
		t.Error("a rename and a use were reported as changes")
	}
}

// A revocation committed late, by a transaction that stayed open after it
// changed the row, is reported as long as it commits within the margin.
func TestChangesLateCommit(t *testing.T) {
	tests := []struct {
		name     string
		margin   time.Duration
		reported bool
	}{
		{"within the margin", postgres.DefaultChangeMargin, true},
		// The documented limit: past the margin, a late commit is missed.
		{"past the margin", time.Millisecond, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := pgtest.DB(t)
			s := newStore(t, db, postgres.WithChangeMargin(tc.margin))
			ctx := context.Background()
			rec := mustCreate(t, s, newRecord(t))
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			if _, err := s.WithTx(tx).Revoke(ctx, rec.ID, time.Now()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
			// A poll while the transaction is open cannot see it.
			_, pos, err := s.Changes(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			changed, _, err := s.Changes(ctx, pos)
			if err != nil {
				t.Fatal(err)
			}
			if got := slices.Contains(changed, rec.Hash); got != tc.reported {
				t.Errorf("late commit reported = %v, want %v", got, tc.reported)
			}
		})
	}
}
