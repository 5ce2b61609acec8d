package postgres_test

import (
	"cmp"
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
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/postgres"
)

// newCanary creates a canary key of testOwner.
func newCanary(t testing.TB, s store.Store) apikey.Record {
	t.Helper()
	rec := newRecord(t)
	rec.Canary = true
	return mustCreate(t, s, rec)
}

// storedTrips returns how many trips of the key the table holds, and the
// highest trip number.
func storedTrips(t testing.TB, db *sql.DB, table string, id uuid.UUID) (n, last int64) {
	t.Helper()
	if err := db.QueryRowContext(context.Background(), "SELECT count(*), coalesce(max(seq), 0) FROM "+table+"_trips WHERE key_id = $1", id).
		Scan(&n, &last); err != nil {
		t.Fatal(err)
	}
	return n, last
}

// A flood of trips of one key keeps at most MaxTrips+TripsSlack of them in
// the table, and exactly the count the pruning rule gives: each time the
// key's count reaches MaxTrips plus a multiple of the slack, the slack
// past the newest MaxTrips goes, all of it.
func TestTripsFloodStaysBounded(t *testing.T) {
	const n = 3*store.MaxTrips + 17
	db := pgtest.DB(t)
	s, table := migratedStore(t, db)
	ctx := context.Background()
	canary := newCanary(t, s)
	base := time.Now()
	for i := 1; i <= n; i++ {
		if err := s.RecordTrip(ctx, apikey.Trip{KeyID: canary.ID, Owner: testOwner, At: base.Add(time.Duration(i) * time.Millisecond),
			Addr: fmt.Sprint("192.0.2.1:", i)}); err != nil {
			t.Fatal(err)
		}
		stored, last := storedTrips(t, db, table, canary.ID)
		want := int64(i)
		if i > store.MaxTrips {
			want = store.MaxTrips + int64(i-store.MaxTrips)%postgres.TripsSlack
		}
		if stored != want || last != int64(i) {
			t.Fatalf("after %d trips, the table holds %d, numbered up to %d; want %d, up to %d", i, stored, last, want, i)
		}
	}
	got, err := s.Trips(ctx, testOwner, canary.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != store.MaxTrips {
		t.Fatalf("Trips = %d trips, want %d", len(got), store.MaxTrips)
	}
	for i, tr := range got {
		if want := fmt.Sprint("192.0.2.1:", n-i); tr.Addr != want {
			t.Fatalf("trip %d is from %s, want %s: the newest first", i, tr.Addr, want)
		}
	}
}

// What is kept is the newest by time, not the last recorded: trips recorded
// in random order of their times, many of them at the same time, are
// pruned to the newest MaxTrips by time, then by the reverse order they
// were recorded in.
func TestTripsKeepTheNewestByTime(t *testing.T) {
	const n = 4 * store.MaxTrips
	db := pgtest.DB(t)
	s := newStore(t, db)
	ctx := context.Background()
	canary := newCanary(t, s)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	base := time.Now().UTC().Truncate(time.Microsecond)
	type recorded struct {
		trip apikey.Trip
		i    int // recording order
	}
	var all []recorded
	for i := range n {
		at := base.Add(time.Duration(rng.IntN(n/3)) * time.Second) // about three trips a time
		tr := apikey.Trip{KeyID: canary.ID, Owner: testOwner, At: at, Addr: fmt.Sprint("trip ", i)}
		if err := s.RecordTrip(ctx, tr); err != nil {
			t.Fatal(err)
		}
		all = append(all, recorded{tr, i})
	}
	slices.SortFunc(all, func(a, b recorded) int {
		return cmp.Or(b.trip.At.Compare(a.trip.At), b.i-a.i)
	})
	got, err := s.Trips(ctx, testOwner, canary.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != store.MaxTrips {
		t.Fatalf("Trips = %d trips, want %d", len(got), store.MaxTrips)
	}
	for i, tr := range got {
		if want := all[i].trip; tr != want {
			t.Fatalf("trip %d = %s at %v, want %s at %v", i, tr.Addr, tr.At, want.Addr, want.At)
		}
	}
}

// Instances recording trips of one key at once, while its row is locked
// by other changes now and then, neither fail nor deadlock, and number the
// trips without a gap or a repeat.
func TestRecordTripConcurrent(t *testing.T) {
	const instances, each = 4, 60
	db := pgtest.DB(t)
	s, table := migratedStore(t, db)
	ctx := context.Background()
	canary := newCanary(t, s)
	base := time.Now()
	var wg sync.WaitGroup
	for w := range instances {
		st := s.WithTx(pgtest.Open(t)) // a pool per instance
		wg.Go(func() {
			for i := range each {
				at := base.Add(time.Duration(i*instances+w) * time.Millisecond)
				if err := st.RecordTrip(ctx, apikey.Trip{KeyID: canary.ID, Owner: testOwner, At: at, Addr: fmt.Sprint(i*instances + w)}); err != nil {
					t.Errorf("instance %d: RecordTrip: %v", w, err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 20 {
			if _, err := s.Update(ctx, testOwner, canary.ID, store.Update{Name: fmt.Sprint("canary ", i)}); err != nil {
				t.Errorf("Update: %v", err)
				return
			}
			if err := s.RecordUses(ctx, []store.Use{{ID: canary.ID, At: time.Now()}}); err != nil {
				t.Errorf("RecordUses: %v", err)
				return
			}
		}
	})
	wg.Wait()
	if t.Failed() {
		return
	}
	stored, last := storedTrips(t, db, table, canary.ID)
	const total = instances * each
	if last != total || stored > store.MaxTrips+postgres.TripsSlack || stored < store.MaxTrips {
		t.Errorf("after %d trips, the table holds %d, numbered up to %d; want %d to %d, up to %d",
			total, stored, last, store.MaxTrips, store.MaxTrips+postgres.TripsSlack, total)
	}
	got, err := s.Trips(ctx, testOwner, canary.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, tr := range got {
		if want := fmt.Sprint(total - 1 - i); tr.Addr != want {
			t.Fatalf("trip %d is %s, want %s: the newest first", i, tr.Addr, want)
		}
	}
}

// A key's trips go with it when it is deleted (a key never revoked may
// be); those of a revoked key, which cannot be deleted, stay readable.
func TestTripsGoWithTheirKey(t *testing.T) {
	db := pgtest.DB(t)
	s, table := migratedStore(t, db)
	ctx := context.Background()
	gone, kept := newCanary(t, s), newCanary(t, s)
	for _, rec := range []apikey.Record{gone, kept} {
		for range 3 {
			if err := s.RecordTrip(ctx, apikey.Trip{KeyID: rec.ID, Owner: testOwner, At: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := db.ExecContext(ctx, "DELETE FROM "+table+" WHERE id = $1", gone.ID); err != nil {
		t.Fatal(err)
	}
	if n, _ := storedTrips(t, db, table, gone.ID); n != 0 {
		t.Errorf("%d trips of a deleted key are left", n)
	}
	if _, err := s.Trips(ctx, testOwner, gone.ID, 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Trips of a deleted key = %v, want ErrNotFound", err)
	}
	if err := s.RecordTrip(ctx, apikey.Trip{KeyID: gone.ID, Owner: testOwner, At: time.Now()}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RecordTrip of a deleted key = %v, want ErrNotFound", err)
	}
	if _, err := s.Revoke(ctx, testOwner, kept.ID, store.Revocation{At: time.Now(), Reason: "found on a paste site"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordTrip(ctx, apikey.Trip{KeyID: kept.ID, Owner: testOwner, At: time.Now()}); err != nil {
		t.Errorf("RecordTrip of a revoked key: %v", err)
	}
	if got, err := s.Trips(ctx, testOwner, kept.ID, 0); err != nil || len(got) != 4 {
		t.Errorf("Trips of a revoked key = %d trips, %v; want 4", len(got), err)
	}
}

// An Expose that waits for the lock of a concurrent revocation decides on
// the key as the revocation committed it: it records the exposure and
// keeps the revocation, with its time and reason.
func TestExposeWaitsForARevocation(t *testing.T) {
	db := pgtest.DB(t)
	s, table := migratedStore(t, db)
	ctx := context.Background()
	rec := mustCreate(t, s, newRecord(t))
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	revokedAt := time.Now().Add(-time.Minute)
	if _, err := s.WithTx(tx).Revoke(ctx, testOwner, rec.ID, store.Revocation{At: revokedAt, Reason: "employee left"}); err != nil {
		t.Fatal(err)
	}
	pool, waiting := waitingOn(t, db)
	other, err := postgres.New(pool, postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		rec apikey.Record
		err error
	}
	done := make(chan result, 1)
	e := apikey.Exposure{At: time.Now(), Source: "github", URL: "https://github.com/acme/app/blob/0123abc/.env#L3"}
	go func() {
		rec, err := other.Expose(ctx, testOwner, rec.ID, e, true)
		done <- result{rec, err}
	}()
	waitFor(t, waiting)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Expose did not return within 10s of the revocation's commit")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !r.rec.RevokedAt.Equal(store.Time(revokedAt)) || r.rec.RevokedReason != "employee left" || r.rec.Exposure == nil {
		t.Errorf("Expose after a concurrent revocation = revoked at %v for %q, exposure %+v; want the revocation kept, at %v for %q, and the exposure",
			r.rec.RevokedAt, r.rec.RevokedReason, r.rec.Exposure, store.Time(revokedAt), "employee left")
	}
	// A second report returns the key as it stands.
	again, err := s.Expose(ctx, testOwner, rec.ID, apikey.Exposure{At: time.Now(), Source: "pastebin"}, true)
	if !errors.Is(err, store.ErrAlreadyExposed) || again.Exposure == nil || again.Exposure.Source != "github" || again.RevokedReason != "employee left" {
		t.Errorf("a second report = %+v, %v; want the key with the first report, and ErrAlreadyExposed", again, err)
	}
}

// BenchmarkRecordTrip records trips of one canary key, flooded: the cost of
// a trip does not grow with the number recorded before it.
func BenchmarkRecordTrip(b *testing.B) {
	db := pgtest.DB(b)
	s := newStore(b, db)
	ctx := context.Background()
	canary := newCanary(b, s)
	base := time.Now()
	i := 0
	for b.Loop() {
		i++
		if err := s.RecordTrip(ctx, apikey.Trip{KeyID: canary.ID, Owner: testOwner, At: base.Add(time.Duration(i) * time.Microsecond),
			Addr: "203.0.113.7:5501", UserAgent: "curl/8.5.0", Route: "GET /v1/links"}); err != nil {
			b.Fatal(err)
		}
	}
}
