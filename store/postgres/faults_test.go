package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/postgres"
)

// unavailable fails unless err is a store failure, reported as such and
// never as an invalid key or a missing one.
func unavailable(t *testing.T, op string, err error) {
	t.Helper()
	switch {
	case !errors.Is(err, keyward.ErrStoreUnavailable):
		t.Errorf("%s = %v, want an error matching ErrStoreUnavailable", op, err)
	case errors.Is(err, keyward.ErrInvalidKey), errors.Is(err, keyward.ErrNotFound):
		t.Errorf("%s = %v: a store failure reported as an invalid or unknown key", op, err)
	}
}

// lockTable holds an ACCESS EXCLUSIVE lock on the table until the test
// ends, so that every query on it waits.
func lockTable(t *testing.T, db *sql.DB, table string) {
	t.Helper()
	tx, err := db.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	if _, err := tx.ExecContext(context.Background(), "LOCK TABLE "+table+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
}

// A query that outlives its context's deadline, or whose context is
// cancelled, is a store failure: 503, not 401.
func TestContextEndsDuringQuery(t *testing.T) {
	db := pgtest.DB(t)
	table := migrated(t, db)
	k := newKeys(t, db, table)
	sec, rec := createKey(t, k)
	lockTable(t, pgtest.Open(t), table)

	ends := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 200*time.Millisecond)
		}, context.DeadlineExceeded},
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(200*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
	}
	for _, end := range ends {
		t.Run(end.name, func(t *testing.T) {
			ops := []struct {
				name string
				call func(context.Context) error
			}{
				{"Verify", func(ctx context.Context) error { _, err := k.Verify(ctx, sec.Reveal()); return err }},
				{"Get", func(ctx context.Context) error { _, err := k.Owner(owner).Get(ctx, rec.ID); return err }},
				{"List", func(ctx context.Context) error { _, err := k.Owner(owner).List(ctx, keyward.ListOptions{}); return err }},
				{"Revoke", func(ctx context.Context) error {
					_, err := k.Owner(owner).Revoke(ctx, rec.ID, keyward.RevokeParams{})
					return err
				}},
				{"RevokeAll", func(ctx context.Context) error {
					_, err := k.Owner(owner).RevokeAll(ctx, keyward.RevokeParams{})
					return err
				}},
				{"Update", func(ctx context.Context) error {
					_, err := k.Owner(owner).Update(ctx, rec.ID, keyward.UpdateParams{Name: "renamed"})
					return err
				}},
				{"Rotate", func(ctx context.Context) error {
					_, _, err := k.Owner(owner).Rotate(ctx, rec.ID, keyward.RotateParams{})
					return err
				}},
				{"ReportExposure", func(ctx context.Context) error {
					_, err := k.ReportExposure(ctx, sec.Reveal(), keyward.Exposure{Source: "github"})
					return err
				}},
				{"Trips", func(ctx context.Context) error { _, err := k.Owner(owner).Trips(ctx, rec.ID, 0); return err }},
			}
			for _, op := range ops {
				ctx, cancel := end.ctx()
				err := op.call(ctx)
				cancel()
				unavailable(t, op.name, err)
				if !errors.Is(err, end.want) {
					t.Errorf("%s = %v, want it to wrap %v", op.name, err, end.want)
				}
			}
		})
	}
}

// A connection that the server drops in the middle of a query is a store
// failure.
func TestConnectionDroppedDuringQuery(t *testing.T) {
	db := pgtest.DB(t)
	table := migrated(t, db)
	app := pgtest.Open(t)
	app.SetMaxOpenConns(1)
	k := newKeys(t, app, table)
	sec, _ := createKey(t, k)
	ctx := context.Background()

	var pid int
	if err := app.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	lockTable(t, db, table)
	done := make(chan error, 1)
	go func() {
		_, err := k.Verify(ctx, sec.Reveal())
		done <- err
	}()
	// Once the verification waits on the lock, end its connection.
	waitFor(t, func() bool {
		var waiting bool
		err := db.QueryRowContext(ctx,
			"SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock')", pid).Scan(&waiting)
		return err == nil && waiting
	})
	var ended bool
	if err := db.QueryRowContext(ctx, "SELECT pg_terminate_backend($1)", pid).Scan(&ended); err != nil || !ended {
		t.Fatalf("pg_terminate_backend = %v, %v", ended, err)
	}
	unavailable(t, "Verify on a dropped connection", <-done)
}

// A server that cannot be reached, or a closed pool, is a store failure.
func TestServerUnreachable(t *testing.T) {
	db := pgtest.DB(t)
	table := migrated(t, db)
	k := newKeys(t, db, table)
	sec, rec := createKey(t, k)

	// A port nothing listens on: connection refused.
	down, err := sql.Open("pgx", "host=127.0.0.1 port=1 user=postgres dbname=postgres sslmode=disable connect_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	closed := pgtest.Open(t)
	closed.Close()
	for name, db := range map[string]*sql.DB{"connection refused": down, "closed pool": closed} {
		t.Run(name, func(t *testing.T) {
			k := newKeys(t, db, table)
			_, err := k.Verify(context.Background(), sec.Reveal())
			unavailable(t, "Verify", err)
			_, err = k.Owner(owner).Revoke(context.Background(), rec.ID, keyward.RevokeParams{})
			unavailable(t, "Revoke", err)
		})
	}
	down.Close()
	// The key was never revoked.
	if _, err := k.Verify(context.Background(), sec.Reveal()); err != nil {
		t.Errorf("Verify on the working server = %v", err)
	}
}

// waitFor polls cond until it holds, or fails the test after 10 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The store's own transactions fail as single statements do when their
// context ends while they wait: the error wraps the context's, is no
// answer of the contract, and nothing changes.
func TestContextEndsDuringTransaction(t *testing.T) {
	db := pgtest.DB(t)
	s, table := migratedStore(t, db)
	rec := newRecord(t)
	rec.Scopes = scope.NewSet(scope.SessionsWrite, scope.LinksRead)
	rec = mustCreate(t, s, rec)
	next := newRecord(t)
	next.Replaces = rec.ID
	locker, err := pgtest.Open(t).BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Rollback()
	if _, err := locker.ExecContext(context.Background(), "LOCK TABLE "+table+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}

	calls := []struct {
		name string
		call func(context.Context) error
	}{
		{"Update", func(ctx context.Context) error {
			_, err := s.Update(ctx, testOwner, rec.ID, store.Update{Scopes: scope.NewSet(scope.LinksRead)})
			return err
		}},
		{"Rotate", func(ctx context.Context) error {
			_, _, err := s.Rotate(ctx, testOwner, rec.ID, next, time.Now().Add(time.Hour))
			return err
		}},
		{"RevokeAll", func(ctx context.Context) error {
			_, err := s.RevokeAll(ctx, testOwner, store.Revocation{At: time.Now()})
			return err
		}},
		{"Expose", func(ctx context.Context) error {
			_, err := s.Expose(ctx, testOwner, rec.ID, apikey.Exposure{At: time.Now(), Source: "github"}, true)
			return err
		}},
		{"RecordTrip", func(ctx context.Context) error {
			return s.RecordTrip(ctx, apikey.Trip{KeyID: rec.ID, Owner: testOwner, At: time.Now()})
		}},
		{"Create with an idempotency key", func(ctx context.Context) error {
			_, err := s.Create(ctx, newRecord(t), store.Idempotency{Key: [32]byte{1}, Request: [32]byte{2}})
			return err
		}},
	}
	for _, c := range calls {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.call(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || store.IsAnswer(err) {
			t.Errorf("%s = %v, want a failure wrapping context.DeadlineExceeded", c.name, err)
		}
	}
	if err := locker.Rollback(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(context.Background(), testOwner, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Scopes.Equal(rec.Scopes) || got.Revoked() || got.ReplacedBy != uuid.Nil || got.Exposure != nil {
		t.Errorf("a failed call changed the key: %+v", got)
	}
	if trips, err := s.Trips(context.Background(), testOwner, rec.ID, 0); err != nil || len(trips) != 0 {
		t.Errorf("a failed RecordTrip stored %d trips, %v", len(trips), err)
	}
	if _, err := s.Get(context.Background(), testOwner, next.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a failed rotation stored the replacement: %v", err)
	}
}

// A connection that the server drops while a rotation waits for its lock
// fails the rotation, which changes nothing.
func TestConnectionDroppedDuringRotation(t *testing.T) {
	db := pgtest.DB(t)
	s, table := migratedStore(t, db)
	ctx := context.Background()
	old := mustCreate(t, s, newRecord(t))

	// Another transaction holds the old key's row.
	holder, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.ExecContext(ctx, "SELECT FROM "+table+" WHERE id = $1 FOR UPDATE", old.ID); err != nil {
		t.Fatal(err)
	}
	pool, waiting := waitingOn(t, db)
	var pid int
	if err := pool.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	app, err := postgres.New(pool, postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	next := newRecord(t)
	next.Replaces = old.ID
	done := make(chan error, 1)
	go func() {
		_, _, err := app.Rotate(ctx, testOwner, old.ID, next, time.Now().Add(time.Hour))
		done <- err
	}()
	waitFor(t, waiting)
	var ended bool
	if err := db.QueryRowContext(ctx, "SELECT pg_terminate_backend($1)", pid).Scan(&ended); err != nil || !ended {
		t.Fatalf("pg_terminate_backend = %v, %v", ended, err)
	}
	if err := <-done; err == nil || store.IsAnswer(err) {
		t.Errorf("Rotate on a dropped connection = %v, want a failure", err)
	}
	if err := holder.Rollback(); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, testOwner, old.ID); err != nil || got.ReplacedBy != uuid.Nil || !got.ExpiresAt.IsZero() {
		t.Errorf("after the failed rotation, the old key = %+v, %v; want it unchanged", got, err)
	}
	if _, err := s.Get(ctx, testOwner, next.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after the failed rotation, its replacement: %v, want ErrNotFound", err)
	}
}
