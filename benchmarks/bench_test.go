package benchmarks

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/benchkeys"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/cache"
	"github.com/keyward/keyward/store/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// pgParallelism makes the parallel PostgreSQL benchmarks run 8 goroutines
// on a 2-core machine (GOMAXPROCS x 4), as a server with requests in
// flight would.
const pgParallelism = 4

// memRaw is the i-th key of the memory population.
func memRaw(b *testing.B) func(int) string {
	raws := benchkeys.Keys(b).Raws
	return func(i int) string { return raws[i] }
}

// BenchmarkFloor is the least any in-memory verification can cost: the
// SHA-256 of the key and one lookup in a plain Go map of 1,000,000
// records, without parsing, locking, status checks or use recording.
func BenchmarkFloor(b *testing.B) {
	raws := benchkeys.Keys(b).Raws
	m := make(map[apikey.Hash]*apikey.Record, len(raws))
	for _, raw := range raws {
		m[apikey.HashOf(raw)] = &apikey.Record{Name: "bench", Prefix: apikey.Default.DisplayPrefix(raw)}
	}
	runtime.GC()
	benchkeys.Run(b, 1, memRaw(b), func(raw string) error {
		if m[apikey.HashOf(raw)] == nil {
			return errors.New("missing key")
		}
		return nil
	})
}

// BenchmarkVerifyMemory is keyward's Verify on the memory store, in the
// steady state of a server that has seen its keys: the first verification
// of each key in a process allocates its last-used cell (about 100 bytes),
// so every key is verified once before timing.
func BenchmarkVerifyMemory(b *testing.B) { benchVerifyMemory(b, benchkeys.Memory(b)) }

// BenchmarkVerifyMemoryMetadata is BenchmarkVerifyMemory with 10 metadata
// pairs on every key (see benchkeys.MemoryWithMetadata). scripts/bench runs
// it in a process of its own, beside BenchmarkVerifyMemory's.
func BenchmarkVerifyMemoryMetadata(b *testing.B) {
	benchVerifyMemory(b, benchkeys.MemoryWithMetadata(b))
}

func benchVerifyMemory(b *testing.B, st store.Store) {
	keys, err := keyward.New(st)
	if err != nil {
		b.Fatal(err)
	}
	defer keys.Close()
	ctx := context.Background()
	for _, raw := range benchkeys.Keys(b).Raws {
		if _, err := keys.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
	verify := func(raw string) error {
		_, err := keys.Verify(ctx, raw)
		return err
	}
	benchkeys.Run(b, 1, memRaw(b), verify)
	runHit99(b, memRaw(b), verify) // the pattern of VerifyCached/serial/hit99
}

// requestContext returns the context of a request as net/http hands it to
// a handler: one that can be cancelled (the server cancels it when the
// client goes away). database/sql and pgx watch such a context during each
// query, at a cost (a goroutine per query, 14 allocations); a context that
// can never end, such as context.Background, is not watched. A server
// always pays that cost, so every PostgreSQL benchmark works under such a
// context, and keyward's deadline adds only its timer.
func requestContext(b *testing.B) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	return ctx
}

// pgRaw is the i-th key of the PostgreSQL population.
func pgRaw(i int) string { return benchkeys.PostgresRaws()[i] }

// pgDB returns a database/sql pool to the seeded benchmark table.
func pgDB(b *testing.B) *sql.DB {
	db := pgtest.DB(b)
	db.SetMaxIdleConns(32)
	if err := benchkeys.SeedPostgres(context.Background(), db); err != nil {
		b.Fatal(err)
	}
	benchkeys.PostgresRaws() // built before any timing
	return db
}

// pgxPool returns a pgxpool of 32 connections to the seeded benchmark
// table, closed when the benchmark ends: what the floors query through,
// with no database/sql in between.
func pgxPool(b *testing.B) *pgxpool.Pool {
	pgDB(b) // seeds
	cfg, err := pgxpool.ParseConfig(pgtest.DSN(b))
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = 32
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	return pool
}

// BenchmarkFloorPostgres is the floor of a PostgreSQL verification: the
// SHA-256 and one raw pgx query by hash, through a pgxpool, selecting and
// scanning what keyward's store does, with no database/sql in between.
func BenchmarkFloorPostgres(b *testing.B) {
	pool := pgxPool(b)
	ctx := requestContext(b)
	// The store's columns (store/postgres: columns), owner, metadata,
	// rotation links and the one column of the rarely set fields of
	// leaked keys (store/postgres: extras) included.
	q := `SELECT id, owner, hash, prefix, name, mode, array_to_string(scopes, ' '), ` +
		`CASE WHEN revoked_reason IS NULL AND exposed_at IS NULL AND NOT canary ` +
		`THEN nullif(metadata, '{}')::text ` +
		`ELSE json_build_array(json_build_object('m', nullif(metadata, '{}'), 'r', revoked_reason, ` +
		`'e', (extract(epoch FROM exposed_at) * 1000000)::bigint, 's', exposed_source, 'u', exposed_url, 'c', canary))::text END, ` +
		`created_at, last_used_at, revoked_at, expires_at, replaces, replaced_by FROM ` +
		benchkeys.PostgresTable + ` WHERE hash = $1`
	benchkeys.Run(b, pgParallelism, pgRaw, func(raw string) error {
		h := sha256.Sum256([]byte(raw))
		var (
			id                                [16]byte
			hash, metadata                    []byte
			owner, prefix, name, mode, scopes string
			created                           time.Time
			lastUsed, revoked, expires        *time.Time
			replaces, replacedBy              *[16]byte
		)
		return pool.QueryRow(ctx, q, h[:]).Scan(&id, &owner, &hash, &prefix, &name, &mode, &scopes, &metadata,
			&created, &lastUsed, &revoked, &expires, &replaces, &replacedBy)
	})
}

// BenchmarkFloorPostgresLookup is BenchmarkFloorPostgres for the query
// the store's verification lookup now runs: the same record, but for its
// hash, as one JSON column (store/postgres: lookupRow), which the pgx
// driver scans into a string. The store then decodes the string; the floor
// does not. BenchmarkFloorPostgres stays the floor of the goal: the
// record read the usual way, a column a field.
func BenchmarkFloorPostgresLookup(b *testing.B) {
	pool := pgxPool(b)
	ctx := requestContext(b)
	micros := func(col string) string { return `(extract(epoch FROM ` + col + `) * 1000000)::bigint, ` }
	q := `SELECT json_build_array(id, owner, prefix, name, mode, array_to_string(scopes, ' '), ` +
		micros("created_at") + micros("last_used_at") + micros("revoked_at") + micros("expires_at") +
		`replaces, replaced_by, ` +
		`CASE WHEN revoked_reason IS NULL AND exposed_at IS NULL AND NOT canary AND policy IS NULL ` +
		`THEN nullif(metadata, '{}')::json ` +
		`ELSE json_build_array(json_build_object('m', nullif(metadata, '{}'), 'r', revoked_reason, ` +
		`'e', (extract(epoch FROM exposed_at) * 1000000)::bigint, 's', exposed_source, 'u', exposed_url, 'c', canary, ` +
		`'p', policy)) END)::text FROM ` + benchkeys.PostgresTable + ` WHERE hash = $1`
	benchkeys.Run(b, pgParallelism, pgRaw, func(raw string) error {
		h := sha256.Sum256([]byte(raw))
		var row string
		return pool.QueryRow(ctx, q, h[:]).Scan(&row)
	})
}

// BenchmarkVerifyPostgres is keyward's Verify on the PostgreSQL store,
// through database/sql and pgx's stdlib driver: one indexed query per
// verification; last-used times are batched off the request path.
func BenchmarkVerifyPostgres(b *testing.B) {
	keys := pgKeys(b, pgDB(b), false)
	ctx := requestContext(b)
	benchkeys.Run(b, pgParallelism, pgRaw, func(raw string) error {
		_, err := keys.Verify(ctx, raw)
		return err
	})
}

// BenchmarkVerifyPostgresUnbounded is BenchmarkVerifyPostgres without the
// lifecycle's deadline and bound on lookups in flight: the store is handed
// to the lifecycle as one that answers "from memory" (store.LocalLookup),
// which the lifecycle calls directly, so that the two differ by exactly
// what the deadline (a context with a timer) and the bound (a channel
// send and receive) cost. A benchmark device only: a real store that waits
// on I/O must never claim LocalLookup.
func BenchmarkVerifyPostgresUnbounded(b *testing.B) {
	st, err := postgres.New(pgDB(b), postgres.WithTable(benchkeys.PostgresTable))
	if err != nil {
		b.Fatal(err)
	}
	ctx := requestContext(b)
	keys, err := keyward.New(unbounded{st, ctx})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { keys.Close() })
	benchkeys.Run(b, pgParallelism, pgRaw, func(raw string) error {
		_, err := keys.Verify(ctx, raw)
		return err
	})
}

// unbounded passes every lookup to the PostgreSQL store under the
// request's context, without a deadline: see
// BenchmarkVerifyPostgresUnbounded.
type unbounded struct {
	*postgres.Store
	ctx context.Context
}

// The lifecycle takes this path only if unbounded is a store.LocalLookup:
// a signature that drifted from the interface's would silently measure the
// bounded path twice.
var _ store.LocalLookup = unbounded{}

func (u unbounded) GetByHashLocal(h apikey.Hash) (*apikey.Record, error) {
	rec, err := u.Store.GetByHash(u.ctx, h)
	if err != nil {
		return nil, err
	}
	return &rec, nil // as the lifecycle's bounded path returns it
}

// pgKeys returns the lifecycle on the PostgreSQL store, behind a cache
// with its defaults if cached.
func pgKeys(b *testing.B, db *sql.DB, cached bool) *keyward.Keys {
	st, err := postgres.New(db, postgres.WithTable(benchkeys.PostgresTable))
	if err != nil {
		b.Fatal(err)
	}
	var s store.Store = st
	if cached {
		c, err := cache.New(st)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		s = c
		defer warmCache(b, c)
	}
	keys, err := keyward.New(s)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { keys.Close() })
	return keys
}

// warmCache waits until the cache has read its change feed once and
// answers from memory, as it does a second after a server starts.
func warmCache(b *testing.B, c *cache.Store) {
	h := apikey.HashOf(pgRaw(0))
	for deadline := time.Now().Add(10 * time.Second); c.Stats().Hits == 0; {
		if _, err := c.GetByHash(context.Background(), h); err != nil {
			b.Fatal(err)
		}
		if time.Now().After(deadline) {
			b.Fatal("the cache never answered from memory")
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkHandwritten is the pattern keyward replaces: database/sql
// SELECT by hash, then UPDATE last_used_at, on every request.
func BenchmarkHandwritten(b *testing.B) {
	db := pgDB(b)
	ctx := requestContext(b)
	sel := `SELECT id, revoked_at FROM ` + benchkeys.PostgresTable + ` WHERE hash = $1`
	upd := `UPDATE ` + benchkeys.PostgresTable + ` SET last_used_at = now() WHERE id = $1`
	benchkeys.Run(b, pgParallelism, pgRaw, func(raw string) error {
		h := sha256.Sum256([]byte(raw))
		var id []byte
		var revoked sql.NullTime
		if err := db.QueryRowContext(ctx, sel, h[:]).Scan(&id, &revoked); err != nil {
			return err
		}
		if revoked.Valid {
			return errors.New("revoked")
		}
		_, err := db.ExecContext(ctx, upd, id)
		return err
	})
}

// BenchmarkVerifyCached is keyward's Verify through the verification
// cache on the PostgreSQL store. hot: one key (all hits); uniform: a
// million keys against a 100,000-entry cache (mostly misses); hit99: 99%
// of requests over 1,000 warm keys, 1% over cold ones (benchkeys.Hit99).
func BenchmarkVerifyCached(b *testing.B) {
	keys := pgKeys(b, pgDB(b), true)
	ctx := requestContext(b)
	verify := func(raw string) error {
		_, err := keys.Verify(ctx, raw)
		return err
	}
	benchkeys.Run(b, pgParallelism, pgRaw, verify)

	runHit99(b, pgRaw, verify)
}

// runHit99 runs the serial/hit99 sub-benchmark: benchkeys.Hit99's
// pattern, after one pass over the warm set.
func runHit99(b *testing.B, keyOf func(int) string, op func(string) error) {
	for i := range 1000 {
		if err := op(keyOf(benchkeys.Hit99(i))); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("serial/hit99", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := op(keyOf(benchkeys.Hit99(i))); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
