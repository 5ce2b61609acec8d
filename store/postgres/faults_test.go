package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/store"
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
				{"Get", func(ctx context.Context) error { _, err := k.Get(ctx, rec.ID); return err }},
				{"List", func(ctx context.Context) error { _, err := k.List(ctx, store.ListOptions{}); return err }},
				{"Revoke", func(ctx context.Context) error { _, err := k.Revoke(ctx, rec.ID); return err }},
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
			_, err = k.Revoke(context.Background(), rec.ID)
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
