package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/store"
)

// BenchmarkCreate creates keys, one call each, through a store on a table
// of its own: what a creation costs the caller, its audit entry included.
// trips/op counts what the store sends the server (statements, BEGIN and
// COMMIT): round trips, once the driver has prepared the statements.
func BenchmarkCreate(b *testing.B) {
	pool, trips := countingPool(b)
	s, _ := migratedStore(b, pool)
	ctx := context.Background()
	recs := make([]apikey.Record, b.N)
	for i := range recs {
		recs[i] = newRecord(b)
	}
	b.ReportAllocs()
	start := trips.Load()
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Create(ctx, recs[i], store.Idempotency{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(trips.Load()-start)/float64(b.N), "trips/op")
}

// BenchmarkRevoke revokes keys of one owner, one call each, through a
// store on a table of its own, seeded with the keys beforehand: what a
// revocation costs the caller, its audit entry included. trips/op as in
// BenchmarkCreate.
func BenchmarkRevoke(b *testing.B) {
	pool, trips := countingPool(b)
	s, table := migratedStore(b, pool)
	ctx := context.Background()
	rows, err := pool.QueryContext(ctx, `INSERT INTO `+table+` (id, owner, hash, prefix, name, mode, scopes, created_at)
SELECT gen_random_uuid(), $2, sha256(('bench ' || i || ' ' || clock_timestamp())::bytea), 'ck_live_bench0', 'bench key', 'live',
	'{sessions:write}', now()
FROM generate_series(1, $1::int) AS i
RETURNING id`, b.N, testOwner)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]uuid.UUID, 0, b.N)
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	rows.Close()
	b.ReportAllocs()
	start := trips.Load()
	b.ResetTimer()
	for _, id := range ids {
		if _, err := s.Revoke(ctx, testOwner, id, store.Revocation{At: time.Now(), Reason: "benchmark"}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(trips.Load()-start)/float64(b.N), "trips/op")
}
