package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/postgres"
)

// benchKeys is the number of keys the benchmarks run against.
const benchKeys = 1_000_000

// benchTable is kwbench.api_keys, holding benchKeys live keys whose raw
// keys are given by benchRawKey. It is seeded once, by one INSERT ...
// SELECT FROM generate_series, and kept: on a server named by
// KEYWARD_TEST_DSN, later runs reuse it (drop the schema kwbench to
// reseed); the throwaway cluster is removed with its data.
const benchTable = "kwbench.api_keys"

// benchRawKey returns the raw key of seeded key i, 1 <= i <= benchKeys: a
// well-formed live key whose random part is i in 32 decimal digits.
func benchRawKey(i int) string { return fmt.Sprintf("ck_live_%032d", i) }

var bench struct {
	once sync.Once
	db   *sql.DB
	ids  []uuid.UUID // the IDs of some seeded keys, for RecordUses
	err  error
}

// benchDB returns a pool to the server with benchTable seeded.
func benchDB(b *testing.B) *sql.DB {
	b.Helper()
	db := pgtest.DB(b)
	bench.once.Do(func() {
		// Enough idle connections for the parallel benchmarks: the default
		// of 2 would close and reopen connections all the time.
		db.SetMaxIdleConns(32)
		bench.err = seedBench(db)
		if bench.err == nil {
			bench.ids, bench.err = benchIDs(db, 100_000)
		}
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return db
}

func seedBench(db *sql.DB) error {
	ctx := context.Background()
	if err := postgres.Migrate(ctx, db, postgres.WithTable(benchTable)); err != nil {
		return err
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+benchTable).Scan(&n); err != nil {
		return err
	}
	if n == benchKeys {
		return nil
	}
	if n != 0 {
		return fmt.Errorf("%s holds %d keys, want 0 or %d: drop schema kwbench to reseed", benchTable, n, benchKeys)
	}
	start := time.Now()
	if _, err := db.ExecContext(ctx, `INSERT INTO `+benchTable+` (id, hash, prefix, name, mode, scopes, created_at)
SELECT gen_random_uuid(), sha256(convert_to(k.raw, 'UTF8')), left(k.raw, 14), 'bench key ' || i, 'live',
	'{sessions:write,links:read}', now() - i * interval '1 millisecond'
FROM generate_series(1, $1::int) AS i, LATERAL (SELECT 'ck_live_' || lpad(i::text, 32, '0') AS raw) AS k`,
		benchKeys); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "VACUUM ANALYZE "+benchTable); err != nil {
		return err
	}
	fmt.Printf("seeded %d keys in %v\n", benchKeys, time.Since(start).Round(time.Millisecond))
	return nil
}

func benchIDs(db *sql.DB, n int) ([]uuid.UUID, error) {
	rows, err := db.QueryContext(context.Background(), "SELECT id FROM "+benchTable+" ORDER BY random() LIMIT $1", n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// BenchmarkVerify verifies random keys of a million through the lifecycle
// (one indexed lookup each), from one goroutine and from eight. Last-used
// times are kept in memory and not written during the benchmark: see
// BenchmarkRecordUses for that cost.
func BenchmarkVerify(b *testing.B) {
	db := benchDB(b)
	s, err := postgres.New(db, postgres.WithTable(benchTable))
	if err != nil {
		b.Fatal(err)
	}
	k, err := keyward.New(s, keyward.WithFlushInterval(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close()
	ctx := context.Background()

	b.Run("serial", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 2))
		for b.Loop() {
			if _, err := k.Verify(ctx, benchRawKey(1+rng.IntN(benchKeys))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("goroutines=8", func(b *testing.B) {
		b.SetParallelism((8 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		var seed sync.Mutex
		next := uint64(0)
		b.RunParallel(func(pb *testing.PB) {
			seed.Lock()
			next++
			rng := rand.New(rand.NewPCG(next, 3))
			seed.Unlock()
			for pb.Next() {
				if _, err := k.Verify(ctx, benchRawKey(1+rng.IntN(benchKeys))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkRecordUses measures the cost of recording one use (one
// successful verification) in the table of a million keys: written one
// UPDATE per request, or in the lifecycle's batches of distinct keys.
// ns/op is per use.
func BenchmarkRecordUses(b *testing.B) {
	db := benchDB(b)
	s, err := postgres.New(db, postgres.WithTable(benchTable))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	ids := bench.ids

	// What a store without batching does on every request.
	b.Run("update-per-request", func(b *testing.B) {
		q := "UPDATE " + benchTable + " SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)"
		i := 0
		for b.Loop() {
			if _, err := db.ExecContext(ctx, q, ids[i%len(ids)], time.Now()); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	for _, size := range []int{1, 100, 1000, 10_000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			uses := make([]store.Use, 0, size)
			i := 0
			for i < b.N {
				uses = uses[:0]
				now := time.Now()
				for j := 0; j < size && i < b.N; j++ {
					uses = append(uses, store.Use{ID: ids[i%len(ids)], At: now})
					i++
				}
				if err := s.RecordUses(ctx, uses); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
