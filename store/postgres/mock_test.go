package postgres_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
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

var recordColumns = []string{"id", "owner", "hash", "prefix", "name", "mode", "scopes", "extras",
	"created_at", "last_used_at", "revoked_at", "expires_at", "replaces", "replaced_by"}

// mockRow returns the columns of rec as the store reads them.
func mockRow(rec apikey.Record) []driver.Value {
	return []driver.Value{rec.ID.String(), rec.Owner, rec.Hash[:], rec.Prefix, rec.Name, rec.Mode.String(),
		rec.Scopes.String(), nil, rec.CreatedAt, nil, nil, nil, nil, nil}
}

func mockRows(t *testing.T, n int) *sqlmock.Rows {
	rows := sqlmock.NewRows(recordColumns)
	for range n {
		rows.AddRow(mockRow(newRecord(t))...)
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

	mock.ExpectQuery(`(?s)SELECT .* FROM "api_keys" WHERE owner = \$1 ORDER BY created_at DESC, id DESC LIMIT \$2`).
		WillReturnRows(mockRows(t, 5).RowError(3, io.ErrUnexpectedEOF))
	page, err := k.Owner(testOwner).List(ctx, keyward.ListOptions{})
	unavailable(t, "List", err)
	if len(page.Keys) != 0 || page.Next != "" {
		t.Errorf("List returned a partial page of %d records", len(page.Keys))
	}

	mock.ExpectBegin()
	mock.ExpectQuery(`(?s)WITH locked AS MATERIALIZED .* UPDATE "api_keys" k SET revoked_at`).
		WillReturnRows(mockRows(t, 5).RowError(3, io.ErrUnexpectedEOF))
	mock.ExpectRollback()
	revoked, err := k.Owner(testOwner).RevokeAll(ctx, keyward.RevokeParams{})
	unavailable(t, "RevokeAll", err)
	if len(revoked) != 0 {
		t.Errorf("RevokeAll returned %d of the revoked records", len(revoked))
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
		WillReturnRows(sqlmock.NewRows([]string{"version"}).AddRow(1).AddRow(2).AddRow(3).AddRow(4))
	mock.ExpectExec(`ADD COLUMN IF NOT EXISTS changed_xid xid8`).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectExec(`INSERT INTO "api_keys_migrations"`).WithArgs(5, "0005_change_feed_by_commit.up.sql").
		WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectExec(`CREATE TABLE "api_keys_trips"`).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectExec(`INSERT INTO "api_keys_migrations"`).WithArgs(6, "0006_leaked_keys.up.sql").
		WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectExec(`ADD COLUMN policy jsonb`).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectExec(`INSERT INTO "api_keys_migrations"`).WithArgs(7, "0007_policies.up.sql").
		WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectExec(`CREATE TABLE "api_keys_audit"`).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectExec(`INSERT INTO "api_keys_migrations"`).WithArgs(8, "0008_audit_trail.up.sql").
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
	// No version recorded: Migrate looks for a table to adopt.
	mock.ExpectQuery(`SELECT to_regclass\(\$1\) IS NOT NULL`).WithArgs(`"api_keys"`).
		WillReturnRows(sqlmock.NewRows([]string{"exists"}).AddRow(false))
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

// RecordUses sends a whole batch, last-used times and counts, as one
// statement, and nothing at all for a batch with nothing to record.
func TestMockRecordUsesOneStatement(t *testing.T) {
	s, _, mock := newMock(t)
	ctx := context.Background()
	at := time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.FixedZone("UTC+2", 2*3600))
	a, b := newRecord(t).ID, newRecord(t).ID
	mock.ExpectExec(`(?s)^WITH uses AS MATERIALIZED .* INSERT INTO "api_keys_usage" .* UPDATE "api_keys" k SET last_used_at = uses.at`).
		WithArgs("{"+a.String()+","+b.String()+","+a.String()+"}",
			"{2026-03-14T13:09:26.535897Z,2026-03-14T13:09:27.535897Z,2026-03-14T13:09:26.535897Z}",
			"{"+a.String()+","+b.String()+"}", "{2026-03-14T13:00:00.000000Z,2026-03-14T12:00:00.000000Z}",
			"{3,0}", "{0,1}", "{0,0}", "{1,0}", "{0,0}").
		WillReturnResult(sqlmock.NewResult(0, 2))
	err := s.RecordUses(ctx, []store.Use{
		{ID: a, At: at, Hour: at, Counts: store.Counts{Verified: 3, Limited: 1}},
		{ID: b, At: at.Add(time.Second)},
		{ID: a, At: at},
		{ID: b, Hour: at.Add(-time.Hour), Counts: store.Counts{Scope: 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Counts alone, last-used times alone.
	mock.ExpectExec(`WITH uses AS MATERIALIZED`).WithArgs("{}", "{}", "{"+a.String()+"}", "{2026-03-14T13:00:00.000000Z}",
		"{1}", "{0}", "{0}", "{0}", "{0}").WillReturnResult(sqlmock.NewResult(0, 0))
	if err := s.RecordUses(ctx, []store.Use{{ID: a, Hour: at, Counts: store.Counts{Verified: 1}}}); err != nil {
		t.Fatal(err)
	}
	mock.ExpectExec(`WITH uses AS MATERIALIZED`).WithArgs("{"+a.String()+"}", "{2026-03-14T13:09:26.535897Z}",
		"{}", "{}", "{}", "{}", "{}", "{}", "{}").WillReturnResult(sqlmock.NewResult(0, 1))
	if err := s.RecordUses(ctx, []store.Use{{ID: a, At: at}}); err != nil {
		t.Fatal(err)
	}
	for _, uses := range [][]store.Use{nil, {}, {{ID: a}}, {{ID: a, Hour: at}}} {
		if err := s.RecordUses(ctx, uses); err != nil {
			t.Errorf("RecordUses(%v) = %v", uses, err)
		}
	}
}

// A commit that fails ends an Update or a Rotate with a failure, never an
// answer of the contract: the change may or may not have been made, so a
// cache in front of the store must forget everything it holds.
func TestMockCommitFails(t *testing.T) {
	broken := errors.New("driver: connection reset on commit")
	rec := newRecord(t)
	next := newRecord(t)
	next.Replaces = rec.ID
	calls := []struct {
		name   string
		expect func(mock sqlmock.Sqlmock)
		call   func(s *postgres.Store) error
	}{
		{"Update", func(mock sqlmock.Sqlmock) {
			mock.ExpectQuery(`UPDATE "api_keys" SET name = \$2`).
				WillReturnRows(sqlmock.NewRows(recordColumns).AddRow(mockRow(rec)...))
			mock.ExpectExec(`SELECT "api_keys_audit_append"\(\$1, \$2::text::text\[\]\)`).
				WillReturnResult(sqlmock.NewResult(0, 1))
		}, func(s *postgres.Store) error {
			_, err := s.Update(context.Background(), testOwner, rec.ID, store.Update{Name: "renamed"})
			return err
		}},
		{"Rotate", func(mock sqlmock.Sqlmock) {
			mock.ExpectQuery(`INSERT INTO "api_keys"`).
				WillReturnRows(sqlmock.NewRows(recordColumns).AddRow(mockRow(next)...))
			mock.ExpectQuery(`UPDATE "api_keys" SET expires_at = \$2, replaced_by = \$3`).
				WillReturnRows(sqlmock.NewRows(recordColumns).AddRow(mockRow(rec)...))
			mock.ExpectExec(`SELECT "api_keys_audit_append"`).WillReturnResult(sqlmock.NewResult(0, 1))
		}, func(s *postgres.Store) error {
			_, _, err := s.Rotate(context.Background(), testOwner, rec.ID, next, time.Now().Add(time.Hour))
			return err
		}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			s, _, mock := newMock(t)
			mock.ExpectBegin()
			mock.ExpectQuery(`SELECT .* WHERE id = \$1 AND owner = \$2 FOR UPDATE`).WithArgs(rec.ID, testOwner).
				WillReturnRows(sqlmock.NewRows(recordColumns).AddRow(mockRow(rec)...))
			c.expect(mock)
			mock.ExpectCommit().WillReturnError(broken)
			err := c.call(s)
			if !errors.Is(err, broken) || store.IsAnswer(err) {
				t.Errorf("%s = %v, want a failure wrapping the commit's error", c.name, err)
			}
		})
	}
}

// A statement that fails in the store's own transaction rolls it back.
func TestMockRollsBackOnFailure(t *testing.T) {
	s, _, mock := newMock(t)
	rec := newRecord(t)
	mock.ExpectBegin()
	mock.ExpectQuery(`FOR UPDATE`).WillReturnRows(sqlmock.NewRows(recordColumns).AddRow(mockRow(rec)...))
	mock.ExpectQuery(`UPDATE "api_keys" SET name`).WillReturnError(io.ErrUnexpectedEOF)
	mock.ExpectRollback()
	_, err := s.Update(context.Background(), testOwner, rec.ID, store.Update{Name: "renamed"})
	if !errors.Is(err, io.ErrUnexpectedEOF) || store.IsAnswer(err) {
		t.Errorf("Update = %v, want a failure wrapping the driver's error", err)
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
