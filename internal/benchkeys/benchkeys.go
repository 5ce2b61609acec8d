// Package benchkeys builds the key populations that benchmarks share: a
// memory store holding a million keys of 10,000 owners, with or without
// metadata, and access patterns over them.
package benchkeys

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/memory"
)

// N is the number of keys in the benchmark population.
const N = 1_000_000

// Population is a set of active live keys. Only their raw forms are
// kept: the records live in the stores built from them, so that the heap
// the garbage collector marks during a benchmark is the library's, not the
// harness's.
type Population struct {
	Raws []string // the raw keys
}

// Owners is the number of owners the population's keys are spread over,
// round robin.
const Owners = 10_000

// MetadataPairs is the number of metadata pairs of each key of
// [MemoryWithMetadata].
const MetadataPairs = 10

var (
	popOnce     sync.Once
	pop         *Population
	memOnce     sync.Once
	mem         *memory.Store
	memMetaOnce sync.Once
	memMeta     *memory.Store
)

// Keys returns N keys, generated once per process.
func Keys(tb testing.TB) *Population {
	tb.Helper()
	popOnce.Do(func() {
		p := &Population{Raws: make([]string, N)}
		for i := range p.Raws {
			sec, err := apikey.Generate(apikey.Live)
			if err != nil {
				panic(err)
			}
			p.Raws[i] = sec.Reveal()
		}
		pop = p
	})
	return pop
}

// Memory returns a memory store holding the population of [Keys], built
// once per process. Creation times are one microsecond apart, oldest
// first; every key holds sessions:write and links:read, and belongs to one
// of [Owners] owners; no key has metadata.
func Memory(tb testing.TB) *memory.Store {
	tb.Helper()
	memOnce.Do(func() { mem = newMemory(tb, nil) })
	return mem
}

// MemoryWithMetadata is [Memory] with [MetadataPairs] metadata pairs on
// every key, such as {"integration": "woocommerce", "shop_id": "shop_42",
// ...}. Metadata is immutable and a record holds it by one pointer, which
// Verify copies without reading the pairs, so the keys share 1,000
// distinct metadata values: the heap then weighs what Memory's does, and
// the two benchmarks differ by the metadata alone. Run them in separate
// processes, so that neither carries the other's store.
func MemoryWithMetadata(tb testing.TB) *memory.Store {
	tb.Helper()
	memMetaOnce.Do(func() {
		values := make([]apikey.Metadata, 1000)
		for i := range values {
			m := map[string]string{}
			for j := range MetadataPairs {
				m[fmt.Sprintf("key_%02d", j)] = fmt.Sprintf("value %d of metadata %d", j, i)
			}
			values[i] = apikey.MustMetadata(m)
		}
		memMeta = newMemory(tb, values)
	})
	return memMeta
}

// newMemory builds a memory store of the population, giving key i the
// metadata metadata[i%len(metadata)] if metadata is not empty.
func newMemory(tb testing.TB, metadata []apikey.Metadata) *memory.Store {
	p := Keys(tb)
	st := memory.New()
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	scopes := scope.NewSet(scope.SessionsWrite, scope.LinksRead)
	owners := make([]string, Owners)
	for i := range owners {
		owners[i] = fmt.Sprintf("acct_%05d", i)
	}
	for i, raw := range p.Raws {
		rec := apikey.Record{
			ID:        uuid.New(),
			Owner:     owners[i%Owners],
			Name:      "bench",
			Prefix:    apikey.Default.DisplayPrefix(raw),
			Mode:      apikey.Live,
			Scopes:    scopes,
			Hash:      apikey.HashOf(raw),
			CreatedAt: created.Add(time.Duration(i) * time.Microsecond),
		}
		if len(metadata) > 0 {
			rec.Metadata = metadata[i%len(metadata)]
		}
		if _, err := st.Create(context.Background(), rec, store.Idempotency{}); err != nil {
			panic(err)
		}
	}
	runtime.GC() // start timing without the set-up's garbage
	return st
}

// Patterns are the access patterns benchmarks run: "hot" presents one key
// on every request; "uniform" walks all N keys in a scattered order.
var Patterns = []string{"hot", "uniform"}

// Picker returns, for a pattern, the function choosing the i-th request's
// key index.
func Picker(pattern string) func(i int) int {
	if pattern == "hot" {
		return func(int) int { return 0 }
	}
	// 7919 is prime and coprime with N: i*7919 mod N visits every key.
	return func(i int) int { return (i * 7919) % N }
}

// Hit99 is the index of the i-th request of a workload whose keys a cache
// holds 99% of the time: requests 0-98 of every hundred go to a warm set of
// 1,000 keys, request 99 to a key outside it, a different one each time.
func Hit99(i int) int {
	if i%100 != 99 {
		return i % 1000
	}
	return 1000 + (i/100*7919)%(N-1000)
}

// Run runs op over the access patterns, serially and in parallel, with
// allocation reporting. Sub-benchmarks are named serial/hot,
// serial/uniform, parallel/hot and parallel/uniform. keyOf maps a key
// index to the raw key; parallelism multiplies GOMAXPROCS for the parallel
// runs (b.SetParallelism), for benchmarks that wait on a server.
func Run(b *testing.B, parallelism int, keyOf func(i int) string, op func(raw string) error) {
	for _, mode := range []string{"serial", "parallel"} {
		for _, pattern := range Patterns {
			pick := Picker(pattern)
			b.Run(mode+"/"+pattern, func(b *testing.B) {
				b.ReportAllocs()
				if mode == "serial" {
					i := 0
					for b.Loop() {
						if err := op(keyOf(pick(i))); err != nil {
							b.Fatal(err)
						}
						i++
					}
					return
				}
				b.SetParallelism(parallelism)
				var worker atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					i := int(worker.Add(1)) * 104729 // workers start far apart
					for pb.Next() {
						if err := op(keyOf(pick(i))); err != nil {
							b.Error(err)
							return
						}
						i++
					}
				})
			})
		}
	}
}
