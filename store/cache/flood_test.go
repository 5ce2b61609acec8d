package cache

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/heapcheck"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/memory"
)

// floodLookups is the size of the flood TestUnknownFloodKeepsTheHeapFlat
// sends: the 16M random keys.
const floodLookups = 16 << 20

// TestUnknownFloodKeepsTheHeapFlat: 16M lookups of random keys, each a
// miss that reaches the store and records its hash as unknown, leave the
// heap where the first 200,000 left it (within 2 MiB), and allocate
// nothing. It takes a few seconds, so -short skips it.
//
//	go test -run TestUnknownFloodKeepsTheHeapFlat -v ./store/cache/
func TestUnknownFloodKeepsTheHeapFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping 16M lookups (a few seconds); run without -short to measure the heap")
	}
	if raceEnabled {
		t.Skip("the race detector slows 16M lookups down and takes heap of its own: nothing to measure")
	}
	c := newNowhere(t) // the default size, 100,000 unknown hashes
	ctx := context.Background()
	r := rand.New(rand.NewPCG(5, 6))
	lookup := func() {
		if _, err := c.GetByHash(ctx, randomHash(r)); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
	}
	for range 2 * DefaultMaxUnknown { // warm up: the set is full
		lookup()
	}
	before := heapcheck.Settled()
	start := time.Now()
	for range floodLookups {
		lookup()
	}
	took := time.Since(start)
	after := heapcheck.Settled()

	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	allocs := after.Mallocs - before.Mallocs
	st := c.Stats()
	t.Logf("%d lookups of random keys in %v (%v each): HeapInuse %.2f MiB before, %.2f MiB after (%+.3f MiB); %d allocations (%.6f a lookup); %d unknown hashes held",
		floodLookups, took.Round(time.Millisecond), took/floodLookups, mib(before.HeapInuse), mib(after.HeapInuse), float64(grew)/(1<<20),
		allocs, float64(allocs)/floodLookups, st.Unknown)
	if grew > 2<<20 {
		t.Errorf("the heap grew by %.2f MiB over the flood, want at most 2 MiB", float64(grew)/(1<<20))
	}
	// The runtime and the test framework allocate a little on their own.
	if allocs > floodLookups/10_000 {
		t.Errorf("%d allocations for %d lookups", allocs, floodLookups)
	}
	if st.Lookups < floodLookups || st.Unknown > DefaultMaxUnknown {
		t.Errorf("Stats = %+v: every lookup should have reached the store, and the set stay bounded", st)
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// BenchmarkUnknown measures the lookups of unknown keys, against a store
// that answers at once: first (a random key never seen, which reaches the
// store and is recorded), repeat (a key recorded as unknown) and first,
// parallel. Each reports heap-MiB, the growth of HeapInuse over the run:
//
//	go test -run '^$' -bench BenchmarkUnknown -benchmem -benchtime 16000000x ./store/cache/
func BenchmarkUnknown(b *testing.B) {
	ctx := context.Background()
	measure := func(b *testing.B, run func()) {
		before := heapcheck.Settled()
		b.ResetTimer()
		run()
		b.StopTimer()
		after := heapcheck.Settled()
		b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/(1<<20), "heap-MiB")
	}
	b.Run("first", func(b *testing.B) {
		c := newNowhere(b)
		r := rand.New(rand.NewPCG(7, 8))
		for range 2 * DefaultMaxUnknown {
			_, _ = c.GetByHash(ctx, randomHash(r))
		}
		b.ReportAllocs()
		measure(b, func() {
			for b.Loop() {
				_, _ = c.GetByHash(ctx, randomHash(r))
			}
		})
	})
	b.Run("repeat", func(b *testing.B) {
		c := newNowhere(b)
		r := rand.New(rand.NewPCG(9, 10))
		h := randomHash(r)
		_, _ = c.GetByHash(ctx, h)
		b.ReportAllocs()
		measure(b, func() {
			for b.Loop() {
				_, _ = c.GetByHash(ctx, h)
			}
		})
	})
	b.Run("first/parallel", func(b *testing.B) {
		c := newNowhere(b)
		r := rand.New(rand.NewPCG(11, 12))
		for range 2 * DefaultMaxUnknown {
			_, _ = c.GetByHash(ctx, randomHash(r))
		}
		b.ReportAllocs()
		measure(b, func() {
			b.RunParallel(func(pb *testing.PB) {
				r := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
				for pb.Next() {
					_, _ = c.GetByHash(ctx, randomHash(r))
				}
			})
		})
	})
}

// BenchmarkHit measures a lookup answered from a cached record, through
// GetByHash and GetByHashLocal.
func BenchmarkHit(b *testing.B) {
	mem := memory.New()
	sec, err := apikey.Generate(apikey.Live)
	if err != nil {
		b.Fatal(err)
	}
	rec := apikey.Record{
		ID: uuid.New(), Owner: "acct_bench", Name: "bench", Prefix: sec.DisplayPrefix(), Mode: apikey.Live,
		Scopes: scope.NewSet(scope.SessionsWrite), Hash: sec.Hash(), CreatedAt: time.Now(),
	}
	if _, err := mem.Create(context.Background(), rec, store.Idempotency{}); err != nil {
		b.Fatal(err)
	}
	c, err := New(noFeed{mem})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.GetByHash(ctx, rec.Hash); err != nil {
		b.Fatal(err)
	}
	b.Run("GetByHash", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = c.GetByHash(ctx, rec.Hash)
		}
	})
	b.Run("GetByHashLocal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = c.GetByHashLocal(rec.Hash)
		}
	})
}

// noFeed hides a store's change feed.
type noFeed struct{ store.Store }
