package benchkeys

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/keyward/keyward/store/postgres"
)

// PostgresTable is the table PostgreSQL benchmarks use: it holds N live
// keys whose raw forms are given by [PostgresRawKey], spread over
// [PostgresOwners] owners ([PostgresOwner]). It is seeded once, by one
// INSERT ... SELECT FROM generate_series, and kept: on a server named by
// KEYWARD_TEST_DSN, later runs reuse it (drop schema kwbench to reseed);
// the throwaway test cluster is removed with its data.
const PostgresTable = "kwbench.api_keys"

// PostgresOwners is the number of owners of the keys of PostgresTable: a
// hundred keys each.
const PostgresOwners = 10_000

// PostgresOwner returns the owner of seeded key i, 0 <= i < N:
// "acct_00000" to "acct_09999", in turn, so that each owner's keys are
// spread over the whole table, as keys created over time by many accounts
// are.
func PostgresOwner(i int) string { return fmt.Sprintf("acct_%05d", i%PostgresOwners) }

// PostgresRawKey returns the raw key of seeded key i, 0 <= i < N: a
// well-formed live key whose random part is i+1 in 32 decimal digits.
func PostgresRawKey(i int) string { return fmt.Sprintf("ck_live_%032d", i+1) }

var (
	pgRawsOnce sync.Once
	pgRaws     []string
)

// PostgresRaws returns the raw keys of all N seeded keys, built once, so
// that benchmarks do not count the formatting of a key as a cost of its
// verification.
func PostgresRaws() []string {
	pgRawsOnce.Do(func() {
		pgRaws = make([]string, N)
		for i := range pgRaws {
			pgRaws[i] = PostgresRawKey(i)
		}
	})
	return pgRaws
}

// SeedPostgres migrates PostgresTable on db (creating schema kwbench) and
// fills it with N keys, unless it holds them already, then analyzes it. It
// reports what it did on stdout.
func SeedPostgres(ctx context.Context, db *sql.DB) error {
	if err := postgres.Migrate(ctx, db, postgres.WithTable(PostgresTable)); err != nil {
		return err
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+PostgresTable).Scan(&n); err != nil {
		return err
	}
	if n == N {
		// A table seeded before keys had owners holds them all under
		// "default", which 0004 gave them.
		var owner string
		if err := db.QueryRowContext(ctx, "SELECT owner FROM "+PostgresTable+" WHERE hash = sha256(convert_to($1, 'UTF8'))",
			PostgresRawKey(0)).Scan(&owner); err != nil {
			return err
		}
		if owner != PostgresOwner(0) {
			return fmt.Errorf("%s was seeded without owners: drop schema kwbench to reseed", PostgresTable)
		}
		return nil
	}
	if n != 0 {
		return fmt.Errorf("%s holds %d keys, want 0 or %d: drop schema kwbench to reseed", PostgresTable, n, N)
	}
	start := time.Now()
	// Key i (from 1 in SQL, from 0 in Go) belongs to PostgresOwner(i-1).
	if _, err := db.ExecContext(ctx, `INSERT INTO `+PostgresTable+` (id, owner, hash, prefix, name, mode, scopes, created_at)
SELECT gen_random_uuid(), 'acct_' || lpad(((i - 1) % $2)::text, 5, '0'), sha256(convert_to(k.raw, 'UTF8')),
	left(k.raw, 14), 'bench key ' || i, 'live', '{sessions:write,links:read}', now() - i * interval '1 millisecond'
FROM generate_series(1, $1::int) AS i, LATERAL (SELECT 'ck_live_' || lpad(i::text, 32, '0') AS raw) AS k`,
		N, PostgresOwners); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "VACUUM ANALYZE "+PostgresTable); err != nil {
		return err
	}
	fmt.Printf("seeded %d keys in %s in %v\n", N, PostgresTable, time.Since(start).Round(time.Millisecond))
	return nil
}
