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
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/benchkeys"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/postgres"
)

// The benchmarks run against benchkeys.PostgresTable: a million live keys
// of 10,000 owners, seeded once; BenchmarkGetByHash, on a few keys.
const (
	benchKeys  = benchkeys.N
	benchTable = benchkeys.PostgresTable
)

// benchRawKey returns the raw key of seeded key i, 1 <= i <= benchKeys.
func benchRawKey(i int) string { return benchkeys.PostgresRaws()[i-1] }

var bench struct {
	once sync.Once
	err  error

	idsOnce sync.Once
	ids     []uuid.UUID // the IDs of some seeded keys, for RecordUses
	idsErr  error
}

// benchDB returns a pool to the server with benchTable seeded.
func benchDB(b testing.TB) *sql.DB {
	b.Helper()
	db := pgtest.DB(b)
	bench.once.Do(func() {
		// Enough idle connections for the parallel benchmarks: the default
		// of 2 would close and reopen connections all the time.
		db.SetMaxIdleConns(32)
		bench.err = benchkeys.SeedPostgres(context.Background(), db)
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return db
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
	bench.idsOnce.Do(func() { bench.ids, bench.idsErr = benchIDs(db, 100_000) })
	if bench.idsErr != nil {
		b.Fatal(bench.idsErr)
	}
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

// BenchmarkListOwnerPage lists the first page of a random owner's keys
// (the default page, 100 keys, all of them), through the store, in the
// table of a million keys of 10,000 owners: one scan of the index on
// (owner, created_at DESC, id DESC), whose plan TestListOwnerPagePlan
// checks.
func BenchmarkListOwnerPage(b *testing.B) {
	db := benchDB(b)
	s, err := postgres.New(db, postgres.WithTable(benchTable))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(4, 5))
	b.ReportAllocs()
	for b.Loop() {
		owner := benchkeys.PostgresOwner(rng.IntN(benchkeys.PostgresOwners))
		page, err := s.List(ctx, owner, store.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if len(page.Records) != benchKeys/benchkeys.PostgresOwners {
			b.Fatalf("%d keys of %s, want %d", len(page.Records), owner, benchKeys/benchkeys.PostgresOwners)
		}
	}
}

// maxPlainLookupAllocs is what the verification lookup of a key with none
// of the rarely set fields (no metadata, nothing of leaked keys, no
// policy) may allocate, under a context that cannot be cancelled: what it
// allocates since it reads the record as one JSON column (71 when it read
// a column a field), with pgx v5.13.0's database/sql driver and Go 1.26.
// A driver, or a Go release, that allocates otherwise changes it: measure
// again with BenchmarkGetByHash, at this version and at the previous one.
const maxPlainLookupAllocs = 22

// The verification lookup of a plain key costs at most
// maxPlainLookupAllocs: a column of the driver's a query, and no
// allocation for a plain key's fields but the one copy of its owner,
// prefix and name (the scopes are interned). What a key with a policy
// costs is logged.
func TestGetByHashAllocations(t *testing.T) {
	db := pgtest.DB(t)
	s := newStore(t, db)
	ctx := context.Background()
	plain := mustCreate(t, s, newRecord(t))
	limited := newRecord(t)
	limited.Policy = fullPolicy()
	limited = mustCreate(t, s, limited)
	allocs := func(rec apikey.Record) float64 {
		return testing.AllocsPerRun(1000, func() {
			if _, err := s.GetByHash(ctx, rec.Hash); err != nil {
				t.Fatal(err)
			}
		})
	}
	if n := allocs(plain); n > maxPlainLookupAllocs {
		t.Errorf("GetByHash of a plain key allocates %v times, want at most %d", n, maxPlainLookupAllocs)
	} else {
		t.Logf("GetByHash of a plain key: %v allocations", n)
	}
	t.Logf("GetByHash of a key with a policy of every field: %v allocations", allocs(limited))
}

// BenchmarkGetByHash is the verification lookup of one key, again and
// again, in a small table: the store's and the driver's cost, for keys
// with each of the rarely set fields the extras column holds.
func BenchmarkGetByHash(b *testing.B) {
	db := pgtest.DB(b)
	s := newStore(b, db)
	tagged := newRecord(b)
	tagged.Metadata = apikey.MustMetadata(map[string]string{"team": "billing", "plan": "gold"})
	canary := newRecord(b)
	canary.Canary = true
	limited := newRecord(b)
	limited.Policy = fullPolicy()
	rated := newRecord(b)
	rated.Policy = &apikey.Policy{Rate: apikey.RateLimit{Requests: 100, Period: time.Minute}}
	for _, bc := range []struct {
		name string
		rec  apikey.Record
	}{
		{"plain", newRecord(b)},
		{"metadata", tagged},
		{"canary", canary},
		{"policy", limited},
		{"rate", rated},
	} {
		rec := mustCreate(b, s, bc.rec)
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.GetByHash(ctx, rec.Hash); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
