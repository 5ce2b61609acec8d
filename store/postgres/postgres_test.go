package postgres_test

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/postgres"
	"github.com/keyward/keyward/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newTable migrates a table in a schema of its own and returns the options
// that name it.
func newTable(t testing.TB, db *sql.DB) []postgres.Option {
	t.Helper()
	opts := []postgres.Option{postgres.WithTable(pgtest.Schema(t, db) + ".api_keys")}
	if err := postgres.Migrate(context.Background(), db, opts...); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return opts
}

// newStore returns a store on an empty table of its own.
func newStore(t testing.TB, db *sql.DB, opts ...postgres.Option) *postgres.Store {
	t.Helper()
	s, err := postgres.New(db, append(newTable(t, db), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t, pgtest.DB(t)) })
}

// The store returns UTC times whatever the zones of the process (which the
// pgx driver returns times in) and of the database session: the
// conformance suite passes in a process whose local zone is UTC+5:30,
// talking to sessions in America/New_York.
func TestConformanceInOtherTimeZones(t *testing.T) {
	if os.Getenv("TZ") == zoneOfChild {
		t.Skip("already in the child process")
	}
	dsn := pgtest.DSN(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestConformance$", "-test.count=1")
	cmd.Env = append(os.Environ(), "TZ="+zoneOfChild, "PGTZ=America/New_York", pgtest.EnvDSN+"="+dsn)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("conformance suite with TZ=%s, PGTZ=America/New_York: %v\n%s", zoneOfChild, err, out)
	}
	if !strings.Contains(string(out), "PASS") {
		t.Fatalf("the child process ran no test:\n%s", out)
	}
}

const zoneOfChild = "Asia/Kolkata"

// testOwner owns the records of newRecord.
const testOwner = "acct_test"

// newRecord returns a valid record of a freshly generated key of testOwner.
func newRecord(t testing.TB) apikey.Record {
	t.Helper()
	sec, err := apikey.Generate(apikey.Live)
	if err != nil {
		t.Fatal(err)
	}
	return apikey.Record{
		ID:        uuid.New(),
		Owner:     testOwner,
		Name:      "test key",
		Prefix:    sec.DisplayPrefix(),
		Mode:      apikey.Live,
		Scopes:    scope.NewSet(scope.SessionsWrite),
		Hash:      sec.Hash(),
		CreatedAt: time.Now(),
	}
}

func mustCreate(t testing.TB, s store.Store, rec apikey.Record) apikey.Record {
	t.Helper()
	got, err := s.Create(context.Background(), rec, store.Idempotency{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return got
}
