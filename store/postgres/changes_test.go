package postgres_test

// The change feed is ordered by commit: a change is reported by the first
// poll that begins after its transaction commits, however long after its
// UPDATE that is, and by no poll before.

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/postgres"
)

// A feedChain polls a store's change feed as a verification cache does:
// each call passes the position the previous one returned.
type feedChain struct {
	s   *postgres.Store
	pos string
}

func newChain(t *testing.T, s *postgres.Store) *feedChain {
	t.Helper()
	changed, pos, err := s.Changes(context.Background(), "")
	if err != nil {
		t.Fatalf("Changes(\"\"): %v", err)
	}
	if len(changed) != 0 || pos == "" {
		t.Fatalf("Changes(\"\") = %d hashes, position %q; want none and a position", len(changed), pos)
	}
	return &feedChain{s: s, pos: pos}
}

func (c *feedChain) poll(t *testing.T) []apikey.Hash {
	t.Helper()
	changed, next, err := c.s.Changes(context.Background(), c.pos)
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	if next == "" {
		t.Fatal("Changes returned an empty position")
	}
	c.pos = next
	return changed
}

func count(hashes []apikey.Hash, h apikey.Hash) int {
	n := 0
	for _, x := range hashes {
		if x == h {
			n++
		}
	}
	return n
}

// A change made in a transaction that stays open across several polls is
// reported by none of them, then by the first poll that begins after the
// COMMIT, and once only; keys created or used meanwhile are never
// reported. So whether the transaction began before the chain's first call
// (it is then among the transactions that call's snapshot saw in
// progress) or after it, and however the change is made: a revocation or
// an update through the store in the caller's transaction, or raw SQL in a
// subtransaction.
func TestChangesReportedWhenCommitted(t *testing.T) {
	ctx := context.Background()
	changes := []struct {
		name   string
		change func(s *postgres.Store, tx *sql.Tx, table string, rec apikey.Record) error
	}{
		{"revocation", func(s *postgres.Store, tx *sql.Tx, _ string, rec apikey.Record) error {
			_, err := s.WithTx(tx).Revoke(ctx, testOwner, rec.ID, store.Revocation{At: time.Now()})
			return err
		}},
		{"update", func(s *postgres.Store, tx *sql.Tx, _ string, rec apikey.Record) error {
			_, err := s.WithTx(tx).Update(ctx, testOwner, rec.ID, store.Update{Name: "narrowed", Scopes: scope.NewSet(scope.LinksRead)})
			return err
		}},
		{"raw SQL in a subtransaction", func(_ *postgres.Store, tx *sql.Tx, table string, rec apikey.Record) error {
			for _, q := range []string{"SAVEPOINT kw", "UPDATE " + table + " SET revoked_at = now() WHERE id = $1", "RELEASE SAVEPOINT kw"} {
				var args []any
				if q[0] == 'U' {
					args = []any{rec.ID}
				}
				if _, err := tx.ExecContext(ctx, q, args...); err != nil {
					return err
				}
			}
			return nil
		}},
	}
	for _, c := range changes {
		for _, before := range []bool{true, false} {
			name := c.name + "/transaction began after the chain"
			if before {
				name = c.name + "/transaction began before the chain"
			}
			t.Run(name, func(t *testing.T) {
				db := pgtest.DB(t)
				table := migrated(t, db)
				s, err := postgres.New(db, postgres.WithTable(table))
				if err != nil {
					t.Fatal(err)
				}
				rec := newRecord(t)
				rec.Scopes = scope.NewSet(scope.SessionsWrite, scope.LinksRead)
				rec = mustCreate(t, s, rec)
				used := mustCreate(t, s, newRecord(t))

				var chain *feedChain
				if !before {
					chain = newChain(t, s)
				}
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback()
				if err := c.change(s, tx, table, rec); err != nil {
					t.Fatalf("the change in the transaction: %v", err)
				}
				if before {
					chain = newChain(t, s)
				}

				// Polls while the transaction is open cannot see the change;
				// keys created and used meanwhile are no change. They are
				// another owner's: the open transaction holds the head of
				// testOwner's audit trail, which a create of testOwner's
				// would wait for.
				var quiet []apikey.Record
				for i := range 3 {
					other := newRecord(t)
					other.Owner = "acct_quiet"
					created := mustCreate(t, s, other)
					if err := s.RecordUses(ctx, []store.Use{{ID: used.ID, At: time.Now()}, {ID: created.ID, At: time.Now()}}); err != nil {
						t.Fatal(err)
					}
					quiet = append(quiet, created)
					if changed := chain.poll(t); slices.Contains(changed, rec.Hash) {
						t.Errorf("poll %d, with the transaction still open, reported its change", i+1)
					}
				}
				if got, err := s.Get(ctx, testOwner, rec.ID); err != nil || got.Revoked() || got.Name != rec.Name {
					t.Fatalf("outside the open transaction the key is %+v, %v; want it unchanged", got, err)
				}

				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
				changed := chain.poll(t)
				if n := count(changed, rec.Hash); n != 1 {
					t.Errorf("the first poll after the COMMIT reported the change %d times, want once", n)
				}
				for _, k := range append(quiet, used) {
					if slices.Contains(changed, k.Hash) {
						t.Errorf("a key only created or used (%s) was reported", k.ID)
					}
				}
				for i := range 2 {
					if changed := chain.poll(t); len(changed) != 0 {
						t.Errorf("poll %d after the one that reported the change reported %d keys, want none", i+2, len(changed))
					}
				}
			})
		}
	}
}

// A change rolled back is never reported.
func TestChangesRolledBack(t *testing.T) {
	db := pgtest.DB(t)
	s := newStore(t, db)
	ctx := context.Background()
	rec := mustCreate(t, s, newRecord(t))
	chain := newChain(t, s)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := s.WithTx(tx).Revoke(ctx, testOwner, rec.ID, store.Revocation{At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if changed := chain.poll(t); len(changed) != 0 {
		t.Errorf("a poll with the transaction open reported %d keys", len(changed))
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if changed := chain.poll(t); len(changed) != 0 {
			t.Errorf("a poll after the rollback reported %d keys, want none", len(changed))
		}
	}
}

// A long-running transaction holds back the oldest transaction of every
// snapshot, so each poll scans the index from there; yet what it reports
// is what committed since the previous poll, once: changes committed
// meanwhile are not reported again at each poll.
func TestChangesLongTransactionRepeatsNothing(t *testing.T) {
	db := pgtest.DB(t)
	s := newStore(t, db)
	ctx := context.Background()
	a := mustCreate(t, s, newRecord(t))
	b := mustCreate(t, s, newRecord(t))

	long, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Rollback()
	var longXID string
	if err := long.QueryRowContext(ctx, "SELECT pg_current_xact_id()::text").Scan(&longXID); err != nil {
		t.Fatal(err)
	}
	chain := newChain(t, s)

	if _, err := s.Revoke(ctx, testOwner, a.ID, store.Revocation{At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if changed := chain.poll(t); count(changed, a.Hash) != 1 {
		t.Fatalf("the poll after the revocation of A reported it %d times, want once", count(changed, a.Hash))
	}
	var heldBack bool
	if err := db.QueryRowContext(ctx, "SELECT pg_snapshot_xmin(pg_current_snapshot()) <= $1::text::xid8", longXID).Scan(&heldBack); err != nil {
		t.Fatal(err)
	}
	if !heldBack {
		t.Fatal("the open transaction does not hold the snapshots' xmin back: the test proves nothing")
	}
	if _, err := s.Update(ctx, testOwner, b.ID, store.Update{Name: "renamed"}); err != nil {
		t.Fatal(err)
	}
	changed := chain.poll(t)
	if count(changed, b.Hash) != 1 || slices.Contains(changed, a.Hash) {
		t.Errorf("the poll after the update of B reported B %d times and A %d times; want B once, A not again",
			count(changed, b.Hash), count(changed, a.Hash))
	}
	if changed := chain.poll(t); len(changed) != 0 {
		t.Errorf("a poll with nothing committed since reported %d keys", len(changed))
	}
	if err := long.Commit(); err != nil {
		t.Fatal(err)
	}
	if changed := chain.poll(t); len(changed) != 0 {
		t.Errorf("the poll after the long transaction ended reported %d keys, want none", len(changed))
	}
}

// Changes committed at any moment, by transactions that stay open for a
// random number of polls while others create and use keys, are each
// reported exactly once, no later than by the first poll that began after
// their COMMIT returned; keys only created or used are never reported.
// The waits are on polls done, never on wall time.
func TestChangesUnderConcurrentCommits(t *testing.T) {
	db := pgtest.DB(t)
	s, _ := migratedStore(t, db)
	ctx := context.Background()
	const workers, perWorker = 4, 8
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)

	// Each worker changes keys of an owner of its own, and the keys
	// created meanwhile are of another: a transaction that changed a key
	// holds the head of its owner's audit trail until it ends, which
	// changes of the owner's other keys would wait for.
	keys := make([][]apikey.Record, workers)
	for w := range keys {
		for range perWorker {
			rec := newRecord(t)
			rec.Owner = fmt.Sprintf("acct_worker_%d", w)
			rec.Scopes = scope.NewSet(scope.SessionsWrite, scope.LinksRead)
			keys[w] = append(keys[w], mustCreate(t, s, rec))
		}
	}
	used := mustCreate(t, s, newRecord(t))

	// The poller: poll i (from 1) is reports[i-1]; begun counts the polls
	// begun, done those finished.
	var (
		begun, done atomic.Int64
		mu          sync.Mutex
		reports     [][]apikey.Hash
	)
	chain := newChain(t, s)
	stop := make(chan struct{})
	pollErr := make(chan error, 1)
	go func() {
		pos := chain.pos
		for {
			select {
			case <-stop:
				pollErr <- nil
				return
			default:
			}
			begun.Add(1)
			changed, next, err := s.Changes(ctx, pos)
			if err != nil {
				pollErr <- err
				return
			}
			pos = next
			mu.Lock()
			reports = append(reports, changed)
			mu.Unlock()
			done.Add(1)
		}
	}()
	// waitPolls waits until n polls are done.
	waitPolls := func(n int64) error {
		deadline := time.Now().Add(20 * time.Second)
		for done.Load() < n {
			if time.Now().After(deadline) {
				return fmt.Errorf("%d polls done, waited for %d", done.Load(), n)
			}
			time.Sleep(time.Millisecond)
		}
		return nil
	}

	type committed struct {
		hash  apikey.Hash
		begun int64 // polls begun when its COMMIT had returned
	}
	var (
		wg      sync.WaitGroup
		errs    = make(chan error, workers+1)
		results = make([][]committed, workers)
		quiet   = make(chan apikey.Record, 100)
	)
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for i, rec := range keys[w] {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					errs <- err
					return
				}
				inTx := s.WithTx(tx)
				if i%2 == 0 {
					_, err = inTx.Revoke(ctx, rec.Owner, rec.ID, store.Revocation{At: time.Now()})
				} else {
					_, err = inTx.Update(ctx, rec.Owner, rec.ID, store.Update{Scopes: scope.NewSet(scope.LinksRead)})
				}
				if err == nil {
					err = waitPolls(done.Load() + rng.Int64N(4)) // open across 0 to 3 polls
				}
				if err == nil {
					err = tx.Commit()
				}
				if err != nil {
					tx.Rollback()
					errs <- err
					return
				}
				results[w] = append(results[w], committed{rec.Hash, begun.Load()})
			}
		})
	}
	toCreate := make([]apikey.Record, 10)
	for i := range toCreate {
		toCreate[i] = newRecord(t)
		toCreate[i].Owner = "acct_quiet"
	}
	wg.Go(func() {
		defer close(quiet)
		for _, rec := range toCreate {
			if _, err := s.Create(ctx, rec, store.Idempotency{}); err != nil {
				errs <- err
				return
			}
			quiet <- rec
			if err := s.RecordUses(ctx, []store.Use{{ID: used.ID, At: time.Now()}, {ID: rec.ID, At: time.Now()}}); err != nil {
				errs <- err
				return
			}
			if err := waitPolls(done.Load() + 1); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Every change's first poll begun after its COMMIT is done.
	if err := waitPolls(begun.Load() + 1); err != nil {
		t.Error(err)
	}
	close(stop)
	if err := <-pollErr; err != nil {
		t.Fatalf("poller: %v", err)
	}
	if t.Failed() {
		return
	}

	t.Logf("%d polls", len(reports))
	for _, rs := range results {
		for _, c := range rs {
			first, n := 0, 0
			for i, r := range reports {
				if k := count(r, c.hash); k > 0 {
					n += k
					if first == 0 {
						first = i + 1
					}
				}
			}
			switch {
			case n == 0:
				t.Errorf("a change committed when %d polls had begun was never reported", c.begun)
			case first > int(c.begun)+1:
				t.Errorf("a change committed when %d polls had begun was first reported by poll %d, want %d at the latest", c.begun, first, c.begun+1)
			case n > 1:
				t.Errorf("a change was reported %d times, want once", n)
			}
		}
	}
	for rec := range quiet {
		for i, r := range reports {
			if slices.Contains(r, rec.Hash) {
				t.Errorf("poll %d reported a key only created and used", i+1)
			}
		}
	}
	for i, r := range reports {
		if slices.Contains(r, used.Hash) {
			t.Errorf("poll %d reported a key only used", i+1)
		}
	}
}

// timePosition returns a position of the format of earlier versions: "c"
// and the time of the poll, in microseconds.
func timePosition(t time.Time) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(t.UnixMicro()))
	return "c" + base64.RawURLEncoding.EncodeToString(b[:])
}

// snapshotPosition returns a position made of the unsigned varints vs.
func snapshotPosition(vs ...uint64) string {
	var b []byte
	for _, v := range vs {
		b = binary.AppendUvarint(b, v)
	}
	return "x" + base64.RawURLEncoding.EncodeToString(b)
}

// Positions not made by this store, those of the time-based format of
// earlier versions (which a cache of an instance running an earlier
// version might hold during a rolling upgrade), and those later than the
// database's current snapshot, are refused with ErrInvalidCursor, so that
// a cache starts again from an empty cache rather than miss a change.
func TestChangesRefusesForeignPositions(t *testing.T) {
	db := pgtest.DB(t)
	s := newStore(t, db)
	ctx := context.Background()
	chain := newChain(t, s)

	for name, pos := range map[string]string{
		"time-based, of earlier versions":           timePosition(time.Now()),
		"not a position":                            "not a position",
		"the tag alone":                             "x",
		"not base64url":                             "x+/+/",
		"padded base64":                             "x" + base64.URLEncoding.EncodeToString([]byte{5, 5}),
		"a truncated number":                        "x" + base64.RawURLEncoding.EncodeToString([]byte{0x85}),
		"no xmax":                                   snapshotPosition(5),
		"transaction ID 0":                          snapshotPosition(0, 5),
		"xmax past 2^64":                            snapshotPosition(^uint64(0), 1),
		"in progress from xmax on":                  snapshotPosition(5, 2, 2),
		"in progress listed twice":                  snapshotPosition(5, 5, 1, 0),
		"later than the database's snapshot":        postgres.PositionAhead(chain.pos, 1<<40),
		"a valid position of another tag":           "y" + chain.pos[1:],
		"a valid position with trailing whitespace": chain.pos + " ",
	} {
		t.Run(name, func(t *testing.T) {
			changed, next, err := s.Changes(ctx, pos)
			if !errors.Is(err, store.ErrInvalidCursor) || changed != nil || next != "" {
				t.Errorf("Changes(%q) = %d hashes, %q, %v; want ErrInvalidCursor", pos, len(changed), next, err)
			}
		})
	}

	// Not vacuous: a position made by hand in the same format, with the
	// transactions 6 and 7 in progress, is taken; so is the chain's.
	if _, _, err := s.Changes(ctx, snapshotPosition(5, 5, 1, 1)); err != nil {
		t.Errorf("a valid position made by hand: %v", err)
	}
	chain.poll(t)
}

// Only the trigger sets changed_xid: to the ID of the transaction that
// changed the key, whatever an INSERT or UPDATE says; never on an INSERT
// nor on a use.
func TestChangedXIDCannotBeForged(t *testing.T) {
	db := pgtest.DB(t)
	s, table := migratedStore(t, db)
	ctx := context.Background()
	xidOf := func(rec apikey.Record) sql.NullString {
		t.Helper()
		var x sql.NullString
		if err := db.QueryRowContext(ctx, "SELECT changed_xid::text FROM "+table+" WHERE id = $1", rec.ID).Scan(&x); err != nil {
			t.Fatal(err)
		}
		return x
	}

	forged := newRecord(t)
	if _, err := db.ExecContext(ctx, `INSERT INTO `+table+` (id, owner, hash, prefix, name, mode, scopes, created_at, changed_xid)
VALUES ($1, $2, $3, $4, 'forged', 'live', '{sessions:write}', now(), '1')`, forged.ID, forged.Owner, forged.Hash[:], forged.Prefix); err != nil {
		t.Fatal(err)
	}
	if x := xidOf(forged); x.Valid {
		t.Errorf("an INSERT set changed_xid to %s, want NULL", x.String)
	}

	changed := mustCreate(t, s, newRecord(t))
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := s.WithTx(tx).Revoke(ctx, testOwner, changed.ID, store.Revocation{At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var own string
	if err := tx.QueryRowContext(ctx, "SELECT pg_current_xact_id()::text").Scan(&own); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if x := xidOf(changed); x.String != own {
		t.Errorf("a revocation stamped changed_xid %q, want its transaction's %s", x.String, own)
	}

	if _, err := db.ExecContext(ctx, "UPDATE "+table+" SET changed_xid = '2' WHERE true"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "UPDATE "+table+" SET last_used_at = now() WHERE true"); err != nil {
		t.Fatal(err)
	}
	if x := xidOf(changed); x.String != own {
		t.Errorf("after an UPDATE that set it, changed_xid = %q, want the trigger's %s", x.String, own)
	}
	if x := xidOf(forged); x.Valid {
		t.Errorf("an UPDATE of a key never changed set changed_xid to %s, want NULL", x.String)
	}
}
