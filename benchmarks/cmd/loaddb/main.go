// Command loaddb does scripts/load's work in PostgreSQL.
//
//	loaddb seed -postgres DSN -schema kwload -keys 1000000
//
// creates the schema if needed, migrates keyward's table in it (the DSN
// must set search_path to the schema, as the servers' does), fills it with
// -keys keys in one INSERT ... SELECT FROM generate_series, their hashes
// computed by PostgreSQL, unless it holds them already (a server named by
// KEYWARD_TEST_DSN keeps them between runs), analyzes it, then creates
// one more key through keyward, acme's test key with links:read, and
// prints that raw key alone on stdout: the key the load sends.
//
//	loaddb watch -postgres DSN
//
// holds one session open and answers a command per line of stdin, one line
// each, so that the script counts sessions without opening any:
//
//	sessions     the sessions pg_stat_database counts for the database
//	             (PostgreSQL 14 and later; "n/a" before)
//	backends APP the sessions open now whose application_name is APP
//	gone APP     waits (30 s at most) until APP has no session open, then
//	             answers "ok", or "timeout N" with N still open
//
// PostgreSQL adds a session to pg_stat_database when the session reports
// its statistics, at its end at the latest, and removes it from
// pg_stat_activity only after: once "gone APP" answers ok, every session
// of APP is counted.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store/postgres"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loaddb seed|watch -postgres DSN [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("loaddb "+os.Args[1], flag.ExitOnError)
	dsn := fs.String("postgres", "", "the PostgreSQL connection string")
	schema := fs.String("schema", "kwload", "seed: the schema of the table (the DSN's search_path)")
	n := fs.Int("keys", 1_000_000, "seed: the number of keys")
	fs.Parse(os.Args[2:])
	if *dsn == "" {
		fmt.Fprintln(os.Stderr, "loaddb: -postgres is required")
		os.Exit(2)
	}
	db, err := sql.Open("pgx", *dsn)
	if err != nil {
		fail(err)
	}
	defer db.Close()
	ctx := context.Background()
	switch os.Args[1] {
	case "seed":
		err = seed(ctx, db, *schema, *n)
	case "watch":
		err = watch(ctx, db)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "loaddb:", err)
	os.Exit(1)
}

// seedOwners is the number of owners of the seeded keys: "load_00000" to
// "load_09999", a hundred keys each for a million.
const seedOwners = 10_000

func seed(ctx context.Context, db *sql.DB, schema string, n int) error {
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema); err != nil {
		return err
	}
	if err := postgres.Migrate(ctx, db); err != nil {
		return err
	}
	var have int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM api_keys WHERE owner LIKE 'load\_%'`).Scan(&have); err != nil {
		return err
	}
	switch {
	case have == n:
		fmt.Fprintf(os.Stderr, "%s.api_keys holds the %d seeded keys already\n", schema, n)
	case have != 0:
		return fmt.Errorf("%s.api_keys holds %d seeded keys, want 0 or %d: drop schema %s to reseed", schema, have, n, schema)
	default:
		start := time.Now()
		// Key i's raw form is ck_live_ and i in 32 digits: well formed,
		// never presented by the load, which uses the key created below.
		if _, err := db.ExecContext(ctx, `INSERT INTO api_keys (id, owner, hash, prefix, name, mode, scopes, created_at)
SELECT gen_random_uuid(), 'load_' || lpad(((i - 1) % $2)::text, 5, '0'), sha256(convert_to(k.raw, 'UTF8')),
	left(k.raw, 14), 'load key ' || i, 'live', '{sessions:write,links:read}', now() - i * interval '1 millisecond'
FROM generate_series(1, $1::int) AS i, LATERAL (SELECT 'ck_live_' || lpad(i::text, 32, '0') AS raw) AS k`,
			n, seedOwners); err != nil {
			return err
		}
		if _, err := db.ExecContext(ctx, "VACUUM ANALYZE api_keys"); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "seeded %d keys in %s.api_keys in %v\n", n, schema, time.Since(start).Round(time.Millisecond))
	}

	st, err := postgres.New(db)
	if err != nil {
		return err
	}
	keys, err := keyward.New(st)
	if err != nil {
		return err
	}
	sec, _, err := keys.Owner("acme").Create(ctx, keyward.CreateParams{
		Name:     "scripts/load",
		Mode:     apikey.Test,
		Scopes:   scope.NewSet(scope.LinksRead),
		Metadata: map[string]string{"load": "scripts/load"},
	})
	if err != nil {
		return errors.Join(err, keys.Close())
	}
	if err := keys.Close(); err != nil {
		return err
	}
	fmt.Println(sec.Reveal())
	return nil
}

func watch(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx) // one session for every command
	if err != nil {
		return err
	}
	defer conn.Close()
	var hasSessions bool
	err = conn.QueryRowContext(ctx, "SELECT current_setting('server_version_num')::int >= 140000").Scan(&hasSessions)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		var answer string
		switch cmd {
		case "sessions":
			if !hasSessions {
				answer = "n/a"
				break
			}
			var n int64
			// Each statement runs in a transaction of its own, so it reads
			// the statistics afresh.
			if err := conn.QueryRowContext(ctx, "SELECT sessions FROM pg_stat_database WHERE datname = current_database()").Scan(&n); err != nil {
				return err
			}
			answer = fmt.Sprint(n)
		case "backends":
			n, err := backends(ctx, conn, arg)
			if err != nil {
				return err
			}
			answer = fmt.Sprint(n)
		case "gone":
			deadline := time.Now().Add(30 * time.Second)
			for {
				n, err := backends(ctx, conn, arg)
				if err != nil {
					return err
				}
				if n == 0 {
					answer = "ok"
					break
				}
				if time.Now().After(deadline) {
					answer = fmt.Sprintf("timeout %d", n)
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		default:
			return fmt.Errorf("unknown command %q", sc.Text())
		}
		fmt.Println(answer)
	}
	return sc.Err()
}

// backends returns the number of sessions of the database whose
// application_name is app.
func backends(ctx context.Context, conn *sql.Conn, app string) (int, error) {
	var n int
	err := conn.QueryRowContext(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1", app).Scan(&n)
	return n, err
}
