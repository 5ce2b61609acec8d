package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/postgres"
)

// These tests use go-sqlmock for what a real server cannot be made to do
// on demand. Everything a real server can answer is tested against one.

// newMock returns a store on a mock database, and the mock. The test fails
// if an expected statement was not run.
func newMock(t *testing.T) (*postgres.Store, *sql.DB, sqlmock.Sqlmock) {
	t.Helper()
	db, mock, err := sqlmock.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		if err := mock.ExpectationsWereMet(); err != nil {
			t.Error(err)
		}
	})
	s, err := postgres.New(db)
	if err != nil {
		t.Fatal(err)
	}
	return s, db, mock
}

var recordColumns = []string{"id", "hash", "prefix", "name", "mode", "scopes",
	"created_at", "last_used_at", "revoked_at", "expires_at"}

func mockRows(t *testing.T, n int) *sqlmock.Rows {
	rows := sqlmock.NewRows(recordColumns)
	for range n {
		rec := newRecord(t)
		rows.AddRow(rec.ID.String(), rec.Hash[:], rec.Prefix, rec.Name, "live", "sessions:write",
			rec.CreatedAt, nil, nil, nil)
	}
	return rows
}

// A connection that drops while rows are read fails the read: no partial
// page, and no "not found" for the verification lookup.
func TestMockConnectionDroppedMidRead(t *testing.T) {
	s, _, mock := newMock(t)
	k, err := keyward.New(s)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	ctx := context.Background()

	mock.ExpectQuery(`(?s)SELECT .* FROM "api_keys" WHERE hash = \$1`).
		WillReturnRows(mockRows(t, 1).RowError(0, io.ErrUnexpectedEOF))
	_, err = k.Verify(ctx, rawKey(t))
	unavailable(t, "Verify", err)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Verify = %v, want it to wrap the driver's error", err)
	}

	mock.ExpectQuery(`(?s)SELECT .* FROM "api_keys" ORDER BY created_at DESC, id DESC LIMIT \$1`).
		WillReturnRows(mockRows(t, 5).RowError(3, io.ErrUnexpectedEOF))
	page, err := k.List(ctx, store.ListOptions{})
	unavailable(t, "List", err)
	if len(page.Records) != 0 || page.Next != "" {
		t.Errorf("List returned a partial page of %d records", len(page.Records))
	}
}

// A driver error on commit fails Migrate, which rolls nothing forward.
func TestMockMigrateCommitFails(t *testing.T) {
	_, db, mock := newMock(t)
	broken := errors.New("driver: connection reset on commit")
	mock.ExpectBegin()
	mock.ExpectExec(`SELECT pg_advisory_xact_lock\(\$1\)`).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectExec(`CREATE TABLE IF NOT EXISTS "api_keys_migrations"`).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectQuery(`SELECT version FROM "api_keys_migrations"`).
		WillReturnRows(sqlmock.NewRows([]string{"version"}).AddRow(1).AddRow(2))
	mock.ExpectExec(`CREATE TRIGGER "api_keys_stamp_change"`).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectExec(`INSERT INTO "api_keys_migrations"`).WithArgs(3, "0003_change_feed.up.sql").
		WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectCommit().WillReturnError(broken)

	err := postgres.Migrate(context.Background(), db)
	if !errors.Is(err, broken) {
		t.Errorf("Migrate = %v, want the commit's error", err)
	}
}

// A migration that fails rolls the transaction back.
func TestMockMigrateRollsBack(t *testing.T) {
	_, db, mock := newMock(t)
	mock.ExpectBegin()
	mock.ExpectExec(`SELECT pg_advisory_xact_lock`).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectExec(`CREATE TABLE IF NOT EXISTS`).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectQuery(`SELECT version`).WillReturnRows(sqlmock.NewRows([]string{"version"}))
	mock.ExpectExec(`CREATE TABLE "api_keys"`).WillReturnError(errors.New("disk full"))
	mock.ExpectRollback()
	if err := postgres.Migrate(context.Background(), db); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Migrate = %v, want the migration's error", err)
	}
}

// A deadline that passes during a query is reported as the deadline, even
// when the driver's own error does not wrap it, and never as a miss.
func TestMockDeadline(t *testing.T) {
	s, _, mock := newMock(t)
	k, err := keyward.New(s)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	mock.ExpectQuery(`WHERE hash = \$1`).WillDelayFor(2 * time.Second).WillReturnRows(sqlmock.NewRows(recordColumns))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = k.Verify(ctx, rawKey(t))
	unavailable(t, "Verify", err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Verify = %v, want it to wrap context.DeadlineExceeded", err)
	}
}

// RecordUses sends a whole batch as one statement, and nothing at all for
// a batch with nothing to record.
func TestMockRecordUsesOneStatement(t *testing.T) {
	s, _, mock := newMock(t)
	ctx := context.Background()
	at := time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.FixedZone("UTC+2", 2*3600))
	a, b := newRecord(t).ID, newRecord(t).ID
	mock.ExpectExec(`(?s)^WITH uses AS MATERIALIZED .* UPDATE "api_keys" k SET last_used_at = uses.at`).
		WithArgs("{"+a.String()+","+b.String()+","+a.String()+"}",
			"{2026-03-14T13:09:26.535897Z,2026-03-14T13:09:27.535897Z,2026-03-14T13:09:26.535897Z}").
		WillReturnResult(sqlmock.NewResult(0, 2))
	err := s.RecordUses(ctx, []store.Use{{ID: a, At: at}, {ID: b, At: at.Add(time.Second)}, {ID: a, At: at}, {ID: b}})
	if err != nil {
		t.Fatal(err)
	}
	for _, uses := range [][]store.Use{nil, {}, {{ID: a}}} {
		if err := s.RecordUses(ctx, uses); err != nil {
			t.Errorf("RecordUses(%v) = %v", uses, err)
		}
	}
}

// rawKey returns a new well-formed raw key.
func rawKey(t *testing.T) string {
	t.Helper()
	sec, err := apikey.Generate(apikey.Live)
	if err != nil {
		t.Fatal(err)
	}
	return sec.Reveal()
}
