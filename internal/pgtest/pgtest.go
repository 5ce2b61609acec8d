// Package pgtest gives tests a real PostgreSQL server: an existing one named
// by the environment variable KEYWARD_TEST_DSN ([EnvDSN]), or else a
// throwaway cluster that it creates in a temporary directory, starts on
// first use and stops when the tests end.
//
// A package whose tests need PostgreSQL runs them through [Main]:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// and each test asks for what it needs:
//
//	db := pgtest.DB(t)            // a pool shared by the test binary
//	schema := pgtest.Schema(t, db) // an empty schema, dropped after the test
//
// # The throwaway cluster
//
// initdb and postgres are looked up on PATH, then under
// /usr/lib/postgresql/*/bin (the newest version wins). The cluster listens
// only on a Unix socket in its temporary directory, with fsync off: it is
// fast and disposable. initdb refuses to run as root, so when the tests run
// as root the server runs as the user "postgres". The directory is removed
// when the tests end.
//
// If no PostgreSQL is found, tests that need it are skipped with a message
// saying so, except when the environment variable CI is "true": then they
// fail, so that CI never passes without having run them. A server that is
// found but fails to start always fails the tests.
//
// # A server of the test's own
//
// A test that stops the server, to see what an outage does, needs one that
// no other test uses: [NewServer] starts a throwaway cluster for that test
// alone, which it can stop and start again ([Server.Stop], [Server.Start]),
// and removes it when the test ends. It needs the PostgreSQL binaries even
// when KEYWARD_TEST_DSN is set, and skips or fails as above without them.
//
// # An existing server
//
// With KEYWARD_TEST_DSN set (for example
// "postgres://user:pass@localhost:5432/keyward_test"), tests use that server
// instead. They create schemas named kwtest_<random> and drop them when they
// end; the role needs CREATE on the database. Benchmarks may keep a schema
// with seeded data between runs (see the benchmark's documentation).
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/keyward/keyward/internal/needs"
)

// EnvDSN names the environment variable holding the connection string of
// an existing PostgreSQL server for tests. If it is empty, pgtest starts a
// throwaway cluster.
const EnvDSN = "KEYWARD_TEST_DSN"

// server is the state of the process's PostgreSQL server, set once.
var server struct {
	inMain bool // Main is running the tests

	once    sync.Once
	dsn     string   // set if a server is available
	cluster *cluster // set if pgtest started it
	skip    string   // why no server is available, if none is
	err     error    // why the server failed to start

	poolOnce sync.Once
	pool     *sql.DB
	poolErr  error
}

// Main runs the tests of a package (m.Run), then stops the throwaway cluster
// if one was started, and exits with the tests' exit code. Call it from
// TestMain. The cluster is started on first use, so a run whose selected
// tests need no database starts none.
func Main(m *testing.M) {
	server.inMain = true
	code := m.Run()
	if server.pool != nil {
		server.pool.Close()
	}
	if server.cluster != nil {
		if err := server.cluster.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stopping the throwaway PostgreSQL cluster: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// DSN returns the connection string of the test server, starting the
// throwaway cluster on first use. If no PostgreSQL is available it skips
// tb, or fails it when CI is "true"; if the server fails to start, it fails
// tb.
func DSN(tb testing.TB) string {
	tb.Helper()
	if !server.inMain {
		tb.Fatal("pgtest: call pgtest.Main(m) from TestMain, so that the throwaway cluster is stopped after the tests")
	}
	server.once.Do(func() {
		if dsn := os.Getenv(EnvDSN); dsn != "" {
			server.dsn = dsn
			return
		}
		bin, err := findBinaries()
		if err != nil {
			server.skip = fmt.Sprintf("no PostgreSQL for the tests: %v; install PostgreSQL (Debian: apt-get install postgresql) or set %s to the DSN of a server", err, EnvDSN)
			return
		}
		c, err := startCluster(bin)
		if err != nil {
			server.err = fmt.Errorf("starting a throwaway PostgreSQL cluster with %s: %w", bin, err)
			return
		}
		server.cluster = c
		server.dsn = c.dsn
	})
	needs.Check(tb, "pgtest", server.skip, server.err)
	return server.dsn
}

// DB returns a connection pool to the test server, shared by every test of
// the binary and closed by [Main]. Tests must not close it.
func DB(tb testing.TB) *sql.DB {
	tb.Helper()
	dsn := DSN(tb)
	server.poolOnce.Do(func() {
		server.pool, server.poolErr = open(dsn)
	})
	if server.poolErr != nil {
		tb.Fatalf("pgtest: %v", server.poolErr)
	}
	return server.pool
}

// Open returns a new connection pool to the test server, closed when tb
// ends: a second application instance, in effect.
func Open(tb testing.TB) *sql.DB {
	tb.Helper()
	db, err := open(DSN(tb))
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func open(dsn string) (*sql.DB, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connecting to the test server: %w", err)
	}
	return db, nil
}

// Schema creates an empty schema that only tb uses, and drops it, with
// everything in it, when tb ends. It returns the schema's name, a valid
// unquoted identifier.
func Schema(tb testing.TB, db *sql.DB) string {
	tb.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	name := "kwtest_" + hex.EncodeToString(b[:])
	if _, err := db.ExecContext(context.Background(), "CREATE SCHEMA "+name); err != nil {
		tb.Fatalf("pgtest: creating schema %s: %v", name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			tb.Errorf("pgtest: dropping schema %s: %v", name, err)
		}
	})
	return name
}

// SearchPath returns dsn with its search_path set to schema, so that a
// program given the DSN (rather than a *sql.DB) creates and finds its
// unqualified tables there. dsn may be a URL or key=value pairs.
func SearchPath(dsn, schema string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema
}
